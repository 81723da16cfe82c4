"""Where perfsuite writes, checked before any work: output files and folders are validated (right kind, writable,
not somebody else's results) and results folders are *reserved* atomically, so two runs started in the same second
never share a folder and nothing written before is overwritten without --force."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

from perfsuite.errors import PerfsuiteInputError

__all__ = ["reserve_folder", "check_output_file", "check_output_folder", "check_writable_anchor", "print_format",
           "RESERVED_MARKER"]

#: Created with O_EXCL in a folder a run has reserved: a second run cannot reserve the same folder.
RESERVED_MARKER = ".perfsuite-reserved"


def check_writable_anchor(path: Path, option: str) -> None:
    """The nearest existing ancestor of `path` must be a writable folder (so `path` can be created)."""
    anchor = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not anchor.is_dir():
        raise PerfsuiteInputError(f"{option} {str(path)!r}: {str(anchor)!r} is a file, not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise PerfsuiteInputError(f"{option} {str(path)!r}: folder {str(anchor)!r} is not writable")


def check_output_folder(path: str, option: str, *, must_be_new: bool = True) -> Path:
    """Validate a results folder to be created: not a file, creatable, and (when `must_be_new`) empty or absent."""
    if not str(path).strip():
        raise PerfsuiteInputError(f"{option} {path!r} is empty; give a folder (it is created)")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise PerfsuiteInputError(f"{option} {path!r} is a file; give a folder (it is created)")
    check_writable_anchor(p, option)
    if must_be_new and p.is_dir() and any(p.iterdir()):
        raise PerfsuiteInputError(f"{option} {path!r} already holds files; give a new or empty folder (perfsuite never "
                                  "overwrites earlier results)")
    return p


def reserve_folder(path: Optional[str], default_name: str, option: str = "--out", root: str = "results") -> Path:
    """Create and claim a results folder: `path` (new or empty), or root/default_name with a numeric suffix when
    taken. The claim is a marker file created with O_EXCL, so two processes can never both get one folder."""
    if path is not None:
        p = check_output_folder(path, option)
        candidates = [p]
    else:
        base = Path(root) / default_name
        check_writable_anchor(base, option)
        candidates = [base] + [Path(f"{base}-{i}") for i in range(2, 1000)]
    for cand in candidates:
        try:
            cand.mkdir(parents=True, exist_ok=path is not None)
            fd = os.open(cand / RESERVED_MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if path is not None:
                raise PerfsuiteInputError(f"{option} {path!r} is being used by another perfsuite run") from None
            continue
        except OSError as exc:
            raise PerfsuiteInputError(f"{option} {str(cand)!r}: cannot create it ({exc.strerror})") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(f"pid {os.getpid()} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        if path is not None and any(x.name != RESERVED_MARKER for x in cand.iterdir()):
            raise PerfsuiteInputError(f"{option} {path!r} already holds files; give a new or empty folder")
        return cand
    raise PerfsuiteInputError(f"cannot reserve a results folder like {str(candidates[0])!r}")


def check_output_file(path: str, option: str, suffix: Optional[str] = None, force: bool = False) -> Path:
    """Validate a file to be written: the right suffix, not a folder, its folder exists and is writable, and it does
    not exist yet unless `force`."""
    p = Path(path)
    if suffix and not p.name.endswith(suffix):
        raise PerfsuiteInputError(f"{option} {path!r}: must end in {suffix}")
    if p.is_dir():
        raise PerfsuiteInputError(f"{option} {path!r} is a folder; give a file name")
    folder = p.parent if str(p.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise PerfsuiteInputError(f"{option} {path!r}: {str(folder)!r} is a file, not a folder")
    if not folder.is_dir():
        raise PerfsuiteInputError(f"{option} {path!r}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PerfsuiteInputError(f"{option} {path!r}: folder {str(folder)!r} is not writable")
    if p.exists() and not force:
        raise PerfsuiteInputError(f"{option} {path!r} already exists; pass --force to replace it")
    return p


def print_format(json_flag: bool, fmt: Optional[str], default: str, command: str) -> str:
    """What a command prints: --format, or the deprecated print flag --json of `info` and `asv-compare` (one name
    per concept: elsewhere --json FILE writes a file). The old flag still works for this release, and says so."""
    if json_flag:
        if fmt not in (None, "json"):
            raise PerfsuiteInputError(f"--json and --format {fmt} disagree; give --format only")
        print(f"perfsuite: {command} --json (print JSON) is deprecated and will be removed in the next release; use "
              "--format json (elsewhere --json FILE writes a file)", file=sys.stderr)
        return "json"
    return fmt or default
