"""`perfsuite run`, `perfsuite report` and `perfsuite asv-compare`: the main job and its saved results."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from perfsuite import run as runjob
from perfsuite.cli.common import EXIT_OK, PROG, csv_list
from perfsuite.errors import PerfsuiteInputError
from perfsuite.outputs import check_output_folder, reserve_folder
from perfsuite.report import asv as asv_compare, comparison, markdown as report


def _list_option(option: str, values: Optional[list]) -> Optional[list]:
    """A comma-separated option (already split by csv_list): empty is an error, never 'the default'; repeated values
    are measured once, and said so."""
    if values is None:
        return None
    if not values:
        raise PerfsuiteInputError(f"{option} is empty; give at least one value (or leave the option out for the "
                                  "profile's)")
    unique = list(dict.fromkeys(values))
    if len(unique) < len(values):
        print(f"{PROG}: note: {option} lists {', '.join(str(v) for v in unique if values.count(v) > 1)} more than "
              "once; each is measured once", file=sys.stderr)
    return unique


def _int_list(option: str, values: Optional[list]) -> Optional[list]:
    """'1,4,8' (already split by csv_list) as integers; a non-integer is named with its option."""
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


def add_run_parser(subparsers: argparse._SubParsersAction) -> None:
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
    parser.add_argument("--model", type=csv_list, default=None, metavar="M[,M...]",
                        help="models instead of the profile's: small, bert-base, bert-large, minilm")
    parser.add_argument("--path", "--paths", dest="path", type=csv_list, default=None, metavar="P[,P...]",
                        help="deployment paths instead of the profile's (naive_attention, hybridized, onednn, int8, "
                             "imperative, exported, graph_pass, gpu_*)")
    parser.add_argument("--task", type=csv_list, default=None, metavar="T[,T...]",
                        help="classification, qa, embedding (default: the profile's)")
    parser.add_argument("--batch-size", type=csv_list, default=None, metavar="N[,N...]",
                        help="batch sizes instead of the profile's (the seed's: 1,4,8,16,32,64,128,300)")
    parser.add_argument("--seq-len", type=csv_list, default=None, metavar="L[,L...]",
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
    parser.add_argument("--memory-batch", type=csv_list, default=None, metavar="N[,N...]",
                        help="batch sizes at which a fresh process per path measures its peak resident memory "
                             "(selected batch sizes only; default: the smallest selected)")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the memory probes (one fresh process per path, alongside the parity checks)")
    parser.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
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


def add_report_parser(subparsers: argparse._SubParsersAction) -> None:
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

    if not 1 <= args.baseline <= len(args.results):
        raise PerfsuiteInputError(f"--baseline {args.baseline}: allowed 1 to {len(args.results)} (the position of "
                                  "one of the RESULTS given)")

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


def add_asv_compare_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``perfsuite asv-compare`` (MXNet versions side by side from asv results)."""

    parser = subparsers.add_parser(
        "asv-compare", help="MXNet versions side by side from asv results, with ratios to a baseline version",
        description="asv compare/continuous compare commits in one environment, never two environments; this "
                    "reads asv's result files and tabulates each MXNet version's value per benchmark and "
                    "parameter combination with its ratio to --baseline.")
    asv_compare.add_arguments(parser)
    parser.set_defaults(handler=asv_compare.run_args)
