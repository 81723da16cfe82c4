"""The ``perfsuite`` command line: one subcommand per job, each a parser-registration function plus a handler, one
module per command group (info, parity, infer, run, gate) over common.py (exit codes, shared option helpers).

Add a subcommand by writing ``add_<name>_parser(subparsers)`` in its group's module (which must call
``parser.set_defaults(handler=_cmd_<name>)``) and ``_cmd_<name>(args) -> int``, then listing the registration
function in :data:`_PARSER_REGISTRARS`. Handlers return the exit code; a
:class:`~perfsuite.errors.PerfsuiteInputError` becomes "perfsuite: error: ..." and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional, Sequence

from perfsuite import __version__
from perfsuite.cli.common import EXIT_FAILED, EXIT_NOTHING_RAN, EXIT_OK, EXIT_UNDECIDED, EXIT_USAGE, PROG
from perfsuite.cli.gate import add_bisect_parser, add_explain_parser, add_gate_parser
from perfsuite.cli.infer import add_infer_parser
from perfsuite.cli.info import add_info_parser, format_env_table
from perfsuite.cli.parity import add_parity_parser
from perfsuite.cli.run import add_asv_compare_parser, add_report_parser, add_run_parser
from perfsuite.errors import PerfsuiteInputError

__all__ = ["main", "build_parser", "format_env_table", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_NOTHING_RAN",
           "EXIT_UNDECIDED"]


#: Parser-registration functions, one per subcommand, in the order `perfsuite --help` lists them.
_PARSER_REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_info_parser,
    add_parity_parser,
    add_infer_parser,
    add_run_parser,
    add_report_parser,
    add_asv_compare_parser,
    add_gate_parser,
    add_explain_parser,
    add_bisect_parser,
]


def build_parser() -> argparse.ArgumentParser:
    """The full ``perfsuite`` argument parser with every registered subcommand."""

    parser = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False,
        description=(
            "Numerical-parity and latency regression checks for BERT inference on MXNet 1.6-1.9.1 "
            "with GluonNLP 0.10."
        ),
        epilog="Run 'perfsuite COMMAND --help' for a command's options. Exit codes: 0 ok, 1 check failed, 2 usage.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for register in _PARSER_REGISTRARS:
        register(subparsers)
    for sub in subparsers.choices.values():  # a typo in a CI script (--no-parit) must be an error, not a guess
        sub.allow_abbrev = False
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``perfsuite`` command line with `argv` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        _check_environment_variables()
        return int(handler(args))
    except PerfsuiteInputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: stopped (Ctrl-C); what was already written is kept", file=sys.stderr)
        return 130
    except OSError as exc:  # a disk full, a folder that vanished: one line, not a traceback
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        print(f"{PROG}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:  # a bug of perfsuite's: never exit 1 (a finding to CI) or 0; the traceback is for the report
        import traceback

        traceback.print_exc()
        print(f"{PROG}: internal error (the traceback above); nothing was decided. Please report it.",
              file=sys.stderr)
        return EXIT_USAGE


#: MXNet reads these at import; a bad value aborts the process in C++ (OMP_NUM_THREADS=abc: exit 134) or raises
#: deep inside MXNet, so they are checked first.
_ENGINE_TYPES = ("NaiveEngine", "ThreadedEngine", "ThreadedEnginePerDevice")


def _check_environment_variables() -> None:
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads is not None:
        try:
            ok = int(threads) >= 1
        except ValueError:
            ok = False
        if not ok:
            raise PerfsuiteInputError(f"OMP_NUM_THREADS={threads!r}: must be a positive integer (or unset)")
    engine = os.environ.get("MXNET_ENGINE_TYPE")
    if engine is not None and engine not in _ENGINE_TYPES:
        raise PerfsuiteInputError(f"MXNET_ENGINE_TYPE={engine!r}; allowed: {', '.join(_ENGINE_TYPES)} (or unset)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
