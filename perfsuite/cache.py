"""Where perfsuite keeps what it builds once and reuses: $PERFSUITE_CACHE_DIR, else $XDG_CACHE_HOME/perfsuite,
else ~/.cache/perfsuite. Sub-folders: passes/ (compiled graph-pass libraries), envs/ (the upgrade gate's MXNet
environments), src/ (staged copies of perfsuite that the gate's workers import)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    """The root of perfsuite's cache (not created here)."""
    explicit = os.environ.get("PERFSUITE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "perfsuite"
