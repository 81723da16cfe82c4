"""Where perfsuite keeps what it builds once and reuses: $PERFSUITE_CACHE_DIR, else $XDG_CACHE_HOME/perfsuite,
else ~/.cache/perfsuite. Sub-folders: passes/ (compiled graph-pass libraries), envs/ (the upgrade gate's MXNet
environments), src/ (staged copies of perfsuite that the gate's workers import)."""

from __future__ import annotations

import os
from pathlib import Path
from perfsuite.errors import PerfsuiteInputError

__all__ = ["cache_root", "check_cache_root"]


def cache_root() -> Path:
    """The root of perfsuite's cache (not created here)."""
    explicit = os.environ.get("PERFSUITE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "perfsuite"


def check_cache_root() -> Path:
    """The cache root, refused before any work when it cannot be one: a file, or a folder that cannot be written
    (or created). The error names the variable that chose it."""

    root = cache_root()
    source = ("PERFSUITE_CACHE_DIR" if os.environ.get("PERFSUITE_CACHE_DIR")
              else "XDG_CACHE_HOME" if os.environ.get("XDG_CACHE_HOME") else "the home folder")
    probe = root
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise PerfsuiteInputError(f"perfsuite's cache {str(root)!r} (from {source}) is under a file, {str(probe)!r}; "
                                  "point PERFSUITE_CACHE_DIR at a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PerfsuiteInputError(f"perfsuite's cache {str(root)!r} (from {source}) cannot be written ({str(probe)!r} "
                                  "is not writable); point PERFSUITE_CACHE_DIR at a writable folder")
    return root
