"""The ``perfsuite`` command line: one subcommand per job, each a parser-registration function plus a handler.

Add a subcommand by writing ``_add_<name>_parser(subparsers)`` (which must call
``parser.set_defaults(handler=_cmd_<name>)``) and ``_cmd_<name>(args) -> int``, then listing the
registration function in :data:`_PARSER_REGISTRARS`. Handlers return the exit code; a
:class:`~perfsuite.errors.PerfsuiteInputError` becomes "perfsuite: error: ..." and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Optional, Sequence

from perfsuite.errors import PerfsuiteInputError

__all__ = ["main", "build_parser", "format_env_table"]

#: Exit codes: 0 success, 1 a check failed (e.g. parity), 2 bad usage or input.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_PROG = "perfsuite"


# ---------------------------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------------------------


def _add_info_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``perfsuite info``."""
    parser = subparsers.add_parser(
        "info",
        help="show the MXNet build, threads, CPU and MXNET_* flags in effect",
        description=(
            "Show the environment every perfsuite measurement records: the installed MXNet distribution "
            "and version (mxnet vs mxnet-cu102; 1.7.0.post2 reports mx.__version__ 1.7.0), build features "
            "(CUDA, MKLDNN), visible GPUs, OpenMP threads MXNet will use, CPU, library versions and the "
            "MXNET_* variables set. Imports mxnet (a few seconds)."
        ),
        epilog=(
            "OpenMP threads: with OMP_NUM_THREADS unset, MXNet 1.x on x86 uses half the CPUs (1 on a "
            "2-core machine); set OMP_NUM_THREADS for timings."
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (with 'format_version') instead of the table, for scripts and result files",
    )
    parser.set_defaults(handler=_cmd_info)


def _format_value(value: Any) -> str:
    """One table cell: dicts of flags as NAME=value, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) if value else "(none)"
    return str(value)


def format_env_table(info: Any) -> str:
    """Render an :class:`~perfsuite.env.EnvInfo` as an aligned 'key  value' table, one fact per line."""
    enabled = [name for name, on in info.features.items() if on]
    rows: list[tuple[str, str]] = [
        ("mxnet distribution", f"{info.mxnet_distribution} {info.mxnet_dist_version}"),
        ("mxnet.__version__", info.mxnet_version),
        ("build", "CUDA" if info.is_cuda_build else "CPU"),
        ("mkldnn/onednn", "yes" if info.has_mkldnn else "no"),
        ("gpus visible", str(info.num_gpus)),
        ("features enabled", ", ".join(enabled) if enabled else "(none)"),
        ("omp threads", str(info.omp_threads)),
        ("cpu model", info.cpu_model),
        ("cpus usable", str(info.cpu_count)),
        ("gluonnlp", _format_value(info.gluonnlp_version)),
        ("numpy", info.numpy_version),
        ("python", info.python_version),
        ("platform", info.platform),
        ("MXNET_* flags set", _format_value(info.mxnet_flags)),
    ]
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


def _cmd_info(args: argparse.Namespace) -> int:
    """Print the environment as a table or JSON."""
    from perfsuite.env import collect_env  # lazy: keeps `perfsuite --help` fast

    info = collect_env()
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        print(format_env_table(info))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Subcommand registry
# ---------------------------------------------------------------------------------------------

#: Parser-registration functions, one per subcommand, in the order `perfsuite --help` lists them.
#: LEAD: add `_add_parity_parser` (with `_cmd_parity(args) -> int`) to this list.
_PARSER_REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_info_parser,
]


def build_parser() -> argparse.ArgumentParser:
    """The full ``perfsuite`` argument parser with every registered subcommand."""
    from perfsuite import __version__

    parser = argparse.ArgumentParser(
        prog=_PROG,
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
        return int(handler(args))
    except PerfsuiteInputError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
