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
EXIT_NOTHING_RAN = 3

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
# parity
# ---------------------------------------------------------------------------------------------

PARITY_FORMAT = "perfsuite-parity"
PARITY_FORMAT_VERSION = 1


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _add_parity_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``perfsuite parity``."""
    parser = subparsers.add_parser(
        "parity",
        help="check MXNet's optimized ops against float64 NumPy references; exit 1 on any failure",
        description=(
            "Run the op-level parity grid (interleaved attention, softmax with length, LayerNorm, GELU, "
            "FullyConnected, bias+GELU fusion) on the installed MXNet, each case under its precision mode's "
            "MXNET_* flags and judged by the tolerance table (perfsuite/tolerance.py). Prints one row per "
            "(path, mode, device): the shapes run, the worst error/bound ratio (< 1 passes) and the verdict. "
            "GPU rows skip with the exact reason on CPU builds."
        ),
        epilog=(
            "Exit codes: 0 every case that could run passed; 1 a case failed or MXNet raised; 2 bad usage; "
            "3 nothing ran (everything selected was skipped). Examples: 'perfsuite parity --quick', "
            "'perfsuite parity --path softmax_length,layer_norm --mode float16 --json parity.json'."
        ),
    )
    parser.add_argument("--path", type=_csv, default=None, metavar="P[,P...]",
                        help="only these paths (default: all; see --list)")
    parser.add_argument("--mode", type=_csv, default=None, metavar="M[,M...]",
                        help="only these precision modes: float32, float16, float16-unsafe, float16-true")
    parser.add_argument("--device", type=_csv, default=None, metavar="D[,D...]",
                        help="cpu, gpu or both (default: cpu, plus gpu on a CUDA build; '--device gpu' on a CPU "
                             "build lists the GPU cases as skipped, with the reason)")
    parser.add_argument("--quick", action="store_true", help="sequence length 128 only (about half the cases)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write every case's outcome, the environment and the summary as JSON (atomically)")
    parser.add_argument("--list", action="store_true", help="list the selected cases and exit")
    parser.add_argument("--tolerances", action="store_true", help="print the tolerance table with its reasons and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-case progress on stderr")
    parser.set_defaults(handler=_cmd_parity)


def _select_cases(args: argparse.Namespace) -> list:
    from perfsuite import parity, tolerance
    from perfsuite.validate import check_choice

    for d in args.device:
        check_choice("device", d, ("cpu", "gpu"))
    if not args.device:
        raise PerfsuiteInputError("--device is empty; allowed: cpu, gpu")
    for p in args.path or ():
        check_choice("path", p, sorted(parity.OPS))
    for m in args.mode or ():
        check_choice("mode", m, list(tolerance.MODES))
    cases = parity.default_cases(devices=args.device, quick=args.quick)
    return [c for c in cases
            if (args.path is None or c.path in args.path) and (args.mode is None or c.mode in args.mode)]


def format_parity_table(rows: Sequence[Any]) -> str:
    """The parity summary as an aligned text table."""
    header = ("path", "mode", "device", "run/skip", "shapes", "worst err/bound", "verdict")
    lines = []
    for r in rows:
        ran = r.counts["pass"] + r.counts["fail"] + r.counts["error"]
        shapes = ", ".join(r.shapes[:2]) + (f" (+{len(r.shapes) - 2})" if len(r.shapes) > 2 else "")
        ratio = "-" if r.worst_ratio != r.worst_ratio else f"{r.worst_ratio:.3g}"
        verdict = r.verdict if r.verdict == "PASS" else f"{r.verdict}: {r.detail}"
        lines.append((r.path, r.mode, r.device, f"{ran}/{r.counts['skip']}", shapes, ratio, verdict))
    widths = [max(len(str(x[i])) for x in [header] + lines) for i in range(len(header) - 1)]
    out = []
    for row in [header] + lines:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row[:-1], widths)) + "  " + str(row[-1]))
        if row is header:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * 7)
    return "\n".join(out)


def _cmd_parity(args: argparse.Namespace) -> int:
    from perfsuite import tolerance

    if args.tolerances:
        print(tolerance._describe())
        return EXIT_OK
    from perfsuite.env import collect_env, skip_reason_gpu

    info = collect_env()
    gpu_note = ""
    if args.device is None:
        gpu_reason = skip_reason_gpu(info)
        args.device = ["cpu"] if gpu_reason else ["cpu", "gpu"]
        if gpu_reason:
            gpu_note = f"GPU cases not selected: {gpu_reason} (--device gpu lists them as skipped)"
    cases = _select_cases(args)
    if not cases:
        raise PerfsuiteInputError("the selection matches no case; see 'perfsuite parity --list'")
    if args.list:
        for c in cases:
            print(c.id)
        return EXIT_OK
    if args.json:
        import os

        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            raise PerfsuiteInputError(f"--json {args.json!r}: folder {folder!r} does not exist")

    from perfsuite import parity

    print(f"perfsuite parity: {info.describe_mxnet()} (mx {info.mxnet_version}), "
          f"{'CUDA' if info.is_cuda_build else 'CPU'} build, {len(cases)} cases", file=sys.stderr)

    def progress(i: int, n: int, out: Any) -> None:
        if not args.quiet and (out.status != "skip" or i == n):
            print(f"[{i:4d}/{n}] {out.status.upper():5s} {out.case.id} ({out.seconds:.2f}s)", file=sys.stderr)

    outcomes = parity.run_cases(cases, progress=progress)
    rows = parity.summarize(outcomes)
    print(format_parity_table(rows))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "error", "skip")}
    print(f"\n{counts['pass']} passed, {counts['fail'] + counts['error']} failed, {counts['skip']} skipped "
          f"({counts['error']} MXNet errors) on {info.describe_mxnet()}")
    if gpu_note:
        print(gpu_note)
    if args.json:
        from perfsuite.results import write_json_atomic

        write_json_atomic(args.json, {
            "format": PARITY_FORMAT, "format_version": PARITY_FORMAT_VERSION, "env": info.to_dict(),
            "summary": [dict(r.__dict__, shapes=list(r.shapes)) for r in rows],
            "cases": [o.to_dict() for o in outcomes]})
        print(f"wrote {args.json}", file=sys.stderr)
    if counts["fail"] or counts["error"]:
        return EXIT_FAILED
    if counts["pass"] == 0:
        print("perfsuite parity: nothing ran: every selected case was skipped (reasons above)", file=sys.stderr)
        return EXIT_NOTHING_RAN
    return EXIT_OK

# ---------------------------------------------------------------------------------------------
# Subcommand registry
# ---------------------------------------------------------------------------------------------

#: Parser-registration functions, one per subcommand, in the order `perfsuite --help` lists them.
_PARSER_REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_info_parser,
    _add_parity_parser,
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
