"""What every `perfsuite` command shares: exit codes, option parsing helpers, limits and help texts."""

from __future__ import annotations

from typing import Optional
from perfsuite.outputs import check_output_file
from perfsuite.weights import TASKS

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_NOTHING_RAN", "EXIT_UNDECIDED", "MAX_ROUNDS", "SPEC_HELP",
           "PROG", "TASKS", "csv_list", "check_json_folder"]

#: Exit codes, the same for every command: 0 done (and, for the gate, SAFE); 1 a finding (parity failures, the
#: gate NOT SAFE); 2 a user error or something that could not run (bad input, an install failure, a crash); 3 no
#: verdict: the command ran but the evidence decides nothing (no parity case ran, the gate UNDECIDED, bisect found
#: no boundary among the releases it could check).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOTHING_RAN = 3
EXIT_UNDECIDED = 3
#: The most alternating rounds explain accepts.
MAX_ROUNDS = 1000
SPEC_HELP = ("a SPEC is a pinned requirement (mxnet==1.9.1, mxnet-cu102==1.7.0), a local MXNet .whl file, or "
              "python:/path/to/bin/python (an interpreter that already has MXNet)")

PROG = "perfsuite"


def csv_list(value: str) -> list[str]:
    """A comma-separated option value as its non-empty items (argparse type=)."""
    return [v.strip() for v in value.split(",") if v.strip()]


def check_json_folder(path: Optional[str], force: bool = False) -> None:
    """--json FILE: refused before any work when it exists (unless --force) or its folder cannot be written."""
    if path:

        check_output_file(path, "--json", force=force)
