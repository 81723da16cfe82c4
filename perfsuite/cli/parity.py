"""`perfsuite parity`: the op grid (or a selection of it), the whole-model cases, tolerances, JSON output."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, Optional, Sequence

from perfsuite import env
from perfsuite.cli.common import EXIT_FAILED, EXIT_NOTHING_RAN, EXIT_OK, TASKS, check_json_folder, csv_list
from perfsuite.env import skip_reason_gpu
from perfsuite.errors import PerfsuiteInputError
from perfsuite.parity import ops as parity, tolerance
from perfsuite.parity.model import ModelCase, run_model_cases
from perfsuite.paths.model import MODEL_PATHS
from perfsuite.results import write_json_atomic
from perfsuite.tables import table
from perfsuite.validate import check_choice
from perfsuite.weights import CONFIGS
from perfsuite.workloads import MODEL_PARITY_SHAPES


PARITY_FORMAT = "perfsuite-parity"
PARITY_FORMAT_VERSION = 1



def add_parity_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``perfsuite parity``."""
    parser = subparsers.add_parser(
        "parity",
        help="check MXNet's optimized ops against float64 NumPy references; exit 1 on any failure",
        description=(
            "Run the op-level parity grid (interleaved attention, softmax with length, LayerNorm, GELU, "
            "FullyConnected, bias+GELU fusion) on the installed MXNet, each case under its precision mode's "
            "MXNET_* flags and judged by the tolerance table (perfsuite/parity/tolerance.py). Prints one row per "
            "(path, mode, device): the shapes run, the worst error/bound ratio (< 1 passes) and the verdict. "
            "GPU rows skip with the exact reason on CPU builds."
        ),
        epilog=(
            "Exit codes: 0 every case that could run passed; 1 a case failed or MXNet raised; 2 bad usage; "
            "3 nothing ran (everything selected was skipped). Examples: 'perfsuite parity --quick', "
            "'perfsuite parity --path softmax_length,layer_norm --mode float16 --json parity.json'."
        ),
    )
    parser.add_argument("--path", "--paths", dest="path", type=csv_list, default=None, metavar="P[,P...]",
                        help="only these paths (default: all; see --list). With --model: whole-model paths "
                             "(imperative, hybridized, exported, naive_attention, onednn, int8, graph_pass, gpu_*)")
    parser.add_argument("--model", type=csv_list, default=None, metavar="M[,M...]",
                        help="run the whole-model checks for these models instead of the op grid: small, bert-base, "
                             "bert-large, minilm (real all-MiniLM-L6-v2 weights on real text)")
    parser.add_argument("--task", type=csv_list, default=None, metavar="T[,T...]",
                        help="whole-model task graphs, as deploy.py exports them: classification (BERTClassifier), qa "
                             "(BertForQA), embedding (the bare BERTModel); default: all three")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="whole-model batch size (default: the model's in perfsuite.workloads.MODEL_PARITY_SHAPES: "
                             "small 4, minilm 8, bert-base 2, bert-large 1)")
    parser.add_argument("--seq-len", type=int, default=None,
                        help="whole-model sequence length (default: the model's: small 64, minilm 48, bert-base and "
                             "bert-large 128)")
    parser.add_argument("--custom-pass-lib", default=None, metavar="LIB.so",
                        help="graph-pass library for the graph_pass path (as the seed's --custom_pass_lib)")
    parser.add_argument("--custom-passes", type=csv_list, default=(), metavar="PASS[,PASS...]",
                        help="passes of --custom-pass-lib to apply, in order (as the seed's --custom_passes); the "
                             "library is loaded and applied in a child process, so a crash or hang is an ERROR row")
    parser.add_argument("--pass-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="a pass library that takes longer is killed and its case is an ERROR (default 120)")
    parser.add_argument("--mode", type=csv_list, default=None, metavar="M[,M...]",
                        help="only these precision modes: float32, float16, float16-unsafe, float16-true")
    parser.add_argument("--device", type=csv_list, default=None, metavar="D[,D...]",
                        help="cpu, gpu or both (default: cpu, plus gpu on a CUDA build; '--device gpu' on a CPU "
                             "build lists the GPU cases as skipped, with the reason)")
    parser.add_argument("--quick", action="store_true", help="sequence length 128 only (about half the cases)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write every case's outcome, the environment and the summary as JSON (atomically)")
    parser.add_argument("--force", action="store_true", help="replace the --json file if it exists")
    parser.add_argument("--list", action="store_true", help="list the selected cases and exit")
    parser.add_argument("--tolerances", action="store_true", help="print the tolerance table with its reasons and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-case progress on stderr")
    parser.set_defaults(handler=_cmd_parity)


def _select_cases(args: argparse.Namespace) -> list:
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


def _text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned terminal columns, through the one table writer."""

    return "\n".join(ln.rstrip() for ln in table(header, rows, "simple").splitlines())


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
    return _text_table(header, lines)


def _cmd_parity(args: argparse.Namespace) -> int:
    _check_parity_options(args)
    if args.tolerances:
        print(tolerance.describe_table())
        return EXIT_OK

    info = env.collect_env()
    gpu_note = ""
    if args.device is None:
        gpu_reason = skip_reason_gpu(info)
        args.device = ["cpu"] if gpu_reason else ["cpu", "gpu"]
        if gpu_reason:
            gpu_note = f"GPU cases not selected: {gpu_reason} (--device gpu lists them as skipped)"
    if args.model:
        return _cmd_model_parity(args, info, gpu_note)
    cases = _select_cases(args)
    if not cases:
        raise PerfsuiteInputError("the selection matches no case; see 'perfsuite parity --list'")
    if args.list:
        for c in cases:
            print(c.id)
        return EXIT_OK
    check_json_folder(args.json, args.force)

    print(f"perfsuite parity: {info.describe_mxnet()} (mx {info.mxnet_version}), "
          f"{'CUDA' if info.is_cuda_build else 'CPU'} build, {len(cases)} cases", file=sys.stderr)

    def progress(i: int, n: int, out: Any) -> None:
        if not args.quiet and (out.status != "skip" or i == n):
            print(f"[{i:4d}/{n}] {out.status.upper():5s} {out.case.id} ({out.seconds:.2f}s)", file=sys.stderr)

    outcomes = parity.run_cases(cases, progress=progress)
    rows = parity.summarize(outcomes)
    print(format_parity_table(rows))
    counts = _report(outcomes, info, gpu_note, args.json, {"summary": [dict(r.__dict__, shapes=list(r.shapes))
                                                                       for r in rows]}, with_errors=True)
    if counts["fail"] or counts["error"]:
        return EXIT_FAILED
    if counts["pass"] == 0:
        print("perfsuite parity: nothing ran: every selected case was skipped (reasons above)", file=sys.stderr)
        return EXIT_NOTHING_RAN
    return EXIT_OK


def _model_cases(args: argparse.Namespace) -> list:
    for m in args.model:
        check_choice("model", m, list(CONFIGS))
    paths = args.path or [p for p, spec in MODEL_PATHS.items() if spec.device in args.device]
    for p in paths:
        check_choice("whole-model path", p, list(MODEL_PATHS))
    if args.custom_passes and not args.custom_pass_lib:
        raise PerfsuiteInputError("--custom-passes needs --custom-pass-lib (the library that defines them)")
    tasks = args.task or list(TASKS)
    if not tasks:
        raise PerfsuiteInputError(f"--task is empty; allowed: {', '.join(TASKS)}")
    for t in tasks:
        check_choice("task", t, list(TASKS))

    def shape(m: str) -> tuple:
        b, L = MODEL_PARITY_SHAPES[m]
        return (args.batch_size if args.batch_size is not None else b, args.seq_len if args.seq_len is not None else L)

    return [ModelCase(m, p, *shape(m), "text" if m == "minilm" else "random", task=t)
            for m in args.model for p in paths for t in dict.fromkeys(tasks)]


def format_model_table(outcomes: Sequence[Any]) -> str:
    """Whole-model outcomes as an aligned text table."""
    header = ("model", "path", "task", "batch x seq", "inputs", "worst err/bound", "verdict")
    rows = []
    for o in outcomes:
        r = o.result
        note = ""
        if r is not None and r.metrics is not None:
            ratio = ", ".join(f"{k}={v:.3f}" for k, v in r.metrics.items() if "top1" in k or "cosine" in k)
        elif r is not None and r.base_comparisons:  # a graph pass: vs the unpassed model, and vs the reference
            ref_worst = max((c.worst_ratio for c in r.comparisons), default=float("nan"))
            ratio = f"{r.worst_ratio:.3g} vs unpassed; {ref_worst:.3g} vs reference"
            if o.status == "pass" and not r.reference_passed:
                note = " (the base model fails the reference on this MXNet, not the pass)"
        elif r is not None:
            ratio = f"{r.worst_ratio:.3g}"
        else:
            ratio = "-"
        verdict = o.status.upper() + (note if o.status == "pass" else f": {o.detail.splitlines()[0][:240]}")
        rows.append((o.case.model, o.case.path, o.case.task, f"{o.case.batch} x {o.case.seq_len}", o.case.inputs, ratio,
                     verdict))
    return _text_table(header, rows)


def _cmd_model_parity(args: argparse.Namespace, info: Any, gpu_note: str) -> int:
    if args.custom_pass_lib and not os.path.isfile(args.custom_pass_lib):
        raise PerfsuiteInputError(f"--custom-pass-lib {args.custom_pass_lib!r} does not exist")
    cases = _model_cases(args)
    if args.list:
        for c in cases:
            print(c.id)
        return EXIT_OK
    check_json_folder(args.json, args.force)
    print(f"perfsuite parity: whole model on {info.describe_mxnet()}, {len(cases)} cases", file=sys.stderr)

    def progress(i: int, n: int, out: Any) -> None:
        if not args.quiet:
            print(f"[{i:3d}/{n}] {out.status.upper():5s} {out.case.id} ({out.seconds:.1f}s)", file=sys.stderr)

    if not args.pass_timeout > 0:
        raise PerfsuiteInputError(f"--pass-timeout {args.pass_timeout!r}: must be a positive number of seconds")
    outcomes = run_model_cases(cases, args.custom_pass_lib, tuple(args.custom_passes), progress,
                               pass_timeout_s=args.pass_timeout)
    print(format_model_table(outcomes))
    counts = _report(outcomes, info, gpu_note, args.json, {"level": "model"}, with_errors=False)
    if counts["fail"] or counts["error"]:
        return EXIT_FAILED
    return EXIT_OK if counts["pass"] else EXIT_NOTHING_RAN


def _report(outcomes: Sequence[Any], info: Any, gpu_note: str, json_path: Optional[str], extra: Dict[str, Any],
            with_errors: bool) -> Dict[str, int]:
    """The counts line (and the GPU note) after a parity table, and the --json file; returns the counts."""
    counts = {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "error", "skip")}
    errors = f"({counts['error']} MXNet errors) " if with_errors else ""
    print(f"\n{counts['pass']} passed, {counts['fail'] + counts['error']} failed, {counts['skip']} skipped "
          f"{errors}on {info.describe_mxnet()}")
    if gpu_note:
        print(gpu_note)
    if json_path:

        write_json_atomic(json_path, {"format": PARITY_FORMAT, "format_version": PARITY_FORMAT_VERSION,
                                      "env": info.to_dict(), **extra, "cases": [o.to_dict() for o in outcomes]})
        print(f"wrote {json_path}", file=sys.stderr)
    return counts


def _check_parity_options(args: argparse.Namespace) -> None:
    """Options that do not apply to the chosen mode are errors, never silently ignored."""
    if args.tolerances and (args.list or args.json or args.model):
        raise PerfsuiteInputError("--tolerances prints the tolerance table and exits; it takes no --list, --json or "
                                  "--model")
    if args.list and args.json:
        raise PerfsuiteInputError("--list prints the selected cases and exits; --json would write nothing")
    if args.model is not None:
        if not args.model:
            raise PerfsuiteInputError("--model is empty; allowed: small, bert-base, bert-large, minilm")
        for opt, val in (("--mode", args.mode), ("--quick", args.quick)):
            if val:
                raise PerfsuiteInputError(f"{opt} selects op-level cases and does not apply with --model")
        paths = args.path or []
        if (args.custom_pass_lib or args.custom_passes) and paths and "graph_pass" not in paths:
            raise PerfsuiteInputError("--custom-pass-lib/--custom-passes apply to the graph_pass path, which --paths "
                                      "does not select")
    else:
        for opt, val in (("--task", args.task), ("--custom-pass-lib", args.custom_pass_lib),
                         ("--custom-passes", args.custom_passes)):
            if val:
                raise PerfsuiteInputError(f"{opt} applies to whole-model checks (--model) only")
        if args.batch_size is not None or args.seq_len is not None:
            raise PerfsuiteInputError("--batch-size and --seq-len apply to whole-model checks (--model) only")
        if args.pass_timeout != 120.0:
            raise PerfsuiteInputError("--pass-timeout applies to the graph-pass checks of --model only")
    if args.force and not args.json:
        raise PerfsuiteInputError("--force applies to --json, which was not given")
    for opt, val in (("--path", args.path), ("--mode", args.mode), ("--device", args.device), ("--task", args.task)):
        if val is not None and not val:
            raise PerfsuiteInputError(f"{opt} is empty; give at least one value (or leave the option out)")
