"""Versioned JSON result files, written atomically: an interrupted write never leaves a half file behind.

Every file perfsuite writes is an object with "format" (what it is) and "format_version"; reading checks both,
so a corrupt or foreign file gets an error that names the file and what was expected.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, Optional, Union

from perfsuite.errors import PerfsuiteInputError

__all__ = ["atomic_path", "write_atomic", "write_json_atomic", "write_text_atomic", "read_result"]

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = ".tmp", mode: Optional[int] = None) -> Iterator[str]:
    """A temporary name in `path`'s folder for a writer that needs a file name (a compiler, MXNet's save); on
    success it is renamed over `path`, on any failure removed, so `path` is complete or as it was. The file gets
    the permissions of a normal new file (umask), or `mode`."""
    path = Path(path)
    folder = path.parent  # Path("r.json").parent is Path(".")
    if not folder.is_dir():
        raise PerfsuiteInputError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # mkstemp makes 0600; results are meant to be shared like any other file
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path: PathLike, write: Callable[[IO[Any]], Any], binary: bool = False) -> Path:
    """The one atomic writer: `write(fh)` fills a temporary file in the same folder (atomic_path), which is
    fsynced and renamed over `path`. JSON results, reports, summaries, JUnit files, `perfsuite infer`'s outputs,
    the ONNX export cache, the pass library and passed graphs all go through it."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb" if binary else "w") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write text atomically (write_atomic)."""
    return write_atomic(path, lambda fh: fh.write(text))


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
