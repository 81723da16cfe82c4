"""`perfsuite gate`, `perfsuite explain` and `perfsuite bisect`: upgrade verdicts and their causes."""

from __future__ import annotations

import argparse
import sys

from perfsuite.cli.common import EXIT_NOTHING_RAN, EXIT_OK, MAX_ROUNDS, SPEC_HELP, check_json_folder, csv_list
from perfsuite.errors import PerfsuiteInputError
from perfsuite.gate import explain as ex, gate, options, summary
from perfsuite.results import write_json_atomic
from perfsuite.workloads import GATE_PROFILES


def add_gate_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``perfsuite gate``."""

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
    opts = options.GateOptions(
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
    print(summary.text_summary(outcome.doc))
    print(f"results: {outcome.out_dir / 'gate.json'}\nsummary: {outcome.out_dir / 'summary.md'}")
    return outcome.exit_code




def add_explain_parser(subparsers: argparse._SubParsersAction) -> None:
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
    parser.add_argument("--baseline", required=True, metavar="SPEC", help=f"the MXNet before the change; {SPEC_HELP}")
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
    if args.json:
        check_json_folder(args.json, force=args.force)
    elif args.force:
        raise PerfsuiteInputError("--force applies to --json, which was not given")
    doc = ex.explain(args.baseline, args.candidate, workload=args.workload, parity=args.parity, rounds=args.rounds,
                     installer=args.installer, allow_same=args.allow_same)
    print(ex.render_explain(doc))
    if args.json:
        write_json_atomic(args.json, doc)
    return EXIT_OK


def add_bisect_parser(subparsers: argparse._SubParsersAction) -> None:
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
    parser.add_argument("--versions", type=csv_list, default=None, metavar="V[,V...]",
                        help="the releases to consider instead of PyPI's list (e.g. when PyPI is out of reach); "
                             "--good's and --bad's are always checked")
    parser.add_argument("--installer", default="uv", help="uv (default) or pip, to build environments")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the result as JSON")
    parser.add_argument("--force", action="store_true", help="replace an existing --json file")
    parser.set_defaults(handler=_cmd_bisect)


def _cmd_bisect(args: argparse.Namespace) -> int:
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
        check_json_folder(args.json, force=args.force)
    elif args.force:
        raise PerfsuiteInputError("--force applies to --json, which was not given")
    doc = ex.bisect(args.good, args.bad, args.check, threshold=threshold, budget_s=budget,
                    installer=args.installer, versions=args.versions)
    print(ex.render_bisect(doc))
    if args.json:
        write_json_atomic(args.json, doc)
    return EXIT_OK if doc.get("first_change") else EXIT_NOTHING_RAN
