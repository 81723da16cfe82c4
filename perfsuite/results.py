"""Versioned JSON result files, written atomically: an interrupted write never leaves a half file behind.

Every file perfsuite writes is an object with "format" (what it is) and "format_version"; reading checks both,
so a corrupt or foreign file gets an error that names the file and what was expected.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Union

from perfsuite.errors import PerfsuiteInputError

__all__ = ["write_json_atomic", "write_text_atomic", "read_result"]

PathLike = Union[str, "os.PathLike[str]"]


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write text to a temporary file in the same folder, fsync it, then rename it over `path` (the one atomic
    writer: JSON results, reports, summaries and JUnit files all go through it)."""
    path = Path(path)
    folder = path.parent  # Path("r.json").parent is Path(".")
    if not folder.is_dir():
        raise PerfsuiteInputError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared like any other file
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path: PathLike, obj: Dict[str, Any]) -> Path:
    """Write JSON atomically (write_text_atomic)."""
    return write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    """numpy scalars and tuples, as JSON understands them."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def read_result(path: PathLike, fmt: str, version: int) -> Dict[str, Any]:
    """Read a perfsuite JSON file of format `fmt`, refusing corrupt, foreign or newer files with a clear error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PerfsuiteInputError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise PerfsuiteInputError(f"{str(path)!r} is not a text file (not UTF-8); expected a perfsuite {fmt!r} JSON "
                                  "file") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PerfsuiteInputError(f"{str(path)!r} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise PerfsuiteInputError(f"{str(path)!r} is not a perfsuite {fmt!r} file (format: {found!r})")
    if obj.get("format_version") != version:
        raise PerfsuiteInputError(
            f"{str(path)!r} has {fmt} format_version {obj.get('format_version')!r}; this perfsuite reads {version}")
    return obj
