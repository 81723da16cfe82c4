"""Does the upgrade gate time a workload at the speed a user's process runs it? A benchmark, not a test.

Each round runs, in alternating order, (a) a standalone process that prepares the workload the way `perfsuite run`
does and times it with its quick-profile timer (OMP_NUM_THREADS as the gate's workers), and (b) two sessions of a
real A/A gate on that workload alone (this interpreter on both sides: fresh workers, pinned, the idle side paused,
pairs of blocks), and keeps each one's median per call. A round is one unit (each side a fresh process); the ratio
gate / standalone comes from perfsuite.stats.compare_paired over rounds.

    python -m perfsuite.studies.gate_speed --workload model:bert-base/hybridized/classification/b1/L128 --rounds 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from perfsuite import bench
from perfsuite.gate import gate, options
from perfsuite.measure_pass import PROFILE_TIMING
from perfsuite.results import write_json_atomic
from perfsuite.stats import compare_paired
from perfsuite.timing import mxnet_sync, time_block, time_callable
from perfsuite.workloads import GATE_PROFILES, GateProfile, Target

__all__ = ["main", "standalone_median"]


def standalone_median(target: str) -> Dict[str, Any]:
    """This process: prepare `target` as `perfsuite run` does and time it with the quick profile's timer."""

    kind, op, w = Target(target).parts()
    timing = PROFILE_TIMING["quick"]
    if kind == "op":  # the gate times ops in blocks of >= 50 ms; so does this
        fn, _ = bench.op_callable(op or "")
        fn()
        mxnet_sync()
        one = time_block(fn, 1).wall_s
        calls = max(1, int(np.ceil(0.05 / one)))
        samples = [time_block(fn, calls) for _ in range(max(timing.min_repeat, 10))]
    else:
        assert w is not None
        fn, _ = bench.timed(w)
        samples, _ = time_callable(fn, warmup=timing.warmup, min_repeat=timing.min_repeat,
                                   max_repeat=timing.max_repeat, min_time_s=timing.min_time_s,
                                   max_time_s=timing.max_time_s, sync=mxnet_sync)
    clean = [s.wall_s for s in samples if not s.contaminated] or [s.wall_s for s in samples]
    return {"median_s": float(np.median(clean)), "samples": len(samples), "pid": os.getpid()}


def _gate_session(target: str, threads: int) -> Dict[str, Any]:
    """Two sessions of an A/A gate on `target` alone; the median per call over both sides' clean pairs."""

    name = "gate-speed"
    # two sessions (the design's fewest: its first look needs two), whatever they take: a budget that ends the gate
    # before its first session (as 1 s did) would time nothing
    GATE_PROFILES[name] = GateProfile(name, "gate_speed: one workload", (target,), parity_ops="none",
                                      parity_models=(), time_budget_s=3600.0, session_s=3.0, max_sessions=2)
    with tempfile.TemporaryDirectory(prefix="perfsuite-gate-speed-") as tmp:
        spec = f"python:{sys.executable}"
        opts = options.GateOptions(baseline=spec, candidate=spec, allow_same=True, profile=name, parity=False,
                                   threads=threads, out=os.path.join(tmp, "g"))
        with open(os.devnull, "w") as devnull:
            res = gate.run_gate(opts, err=devnull)
    t = res.doc["latency"]["targets"][target]
    clean = [p for p in t["pairs"] if not p["disturbed"]]
    both = [p["baseline_s"] for p in clean] + [p["candidate_s"] for p in clean]
    if not clean:
        raise RuntimeError(f"the gate session timed no clean pair of {target} (stopped because: "
                           f"{res.doc['latency'].get('stopped_because')})")
    return {"median_s": float(np.median(both)), "pairs": len(clean),
            "cpus": [s.get("cpus") for s in res.doc["latency"]["sessions"]]}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perfsuite.studies.gate_speed", description=__doc__.split("\n\n")[0],
                                allow_abbrev=False)
    p.add_argument("--workload", default="model:bert-base/hybridized/classification/b1/L128",
                   help="a gate target (default BERT-base b1 L128, hybridized)")
    p.add_argument("--rounds", type=int, default=8, help="rounds (default 8)")
    p.add_argument("--threads", type=int, default=None, help="OpenMP threads (default: the gate's default)")
    p.add_argument("--json", default=None, metavar="FILE", help="write the rounds here")
    p.add_argument("--standalone", default=None, help=argparse.SUPPRESS)  # internal: the standalone process
    args = p.parse_args(argv)
    if args.standalone:
        print(json.dumps(standalone_median(args.standalone)))
        return 0
    threads = args.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or options.default_threads()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    alone: List[float] = []
    in_gate: List[float] = []
    rounds: List[Dict[str, Any]] = []
    for r in range(args.rounds):
        got: Dict[str, Dict[str, Any]] = {}
        for who in (("standalone", "gate") if r % 2 == 0 else ("gate", "standalone")):
            if who == "standalone":
                out = subprocess.run([sys.executable, "-m", "perfsuite.studies.gate_speed", "--standalone", args.workload],
                                     env=env, capture_output=True, text=True, check=True)
                got[who] = json.loads(out.stdout.strip().splitlines()[-1])
            else:
                got[who] = _gate_session(args.workload, threads)
        alone.append(got["standalone"]["median_s"])
        in_gate.append(got["gate"]["median_s"])
        rounds.append(got)
        print(f"round {r + 1}/{args.rounds}: standalone {alone[-1] * 1e3:.2f} ms, gate {in_gate[-1] * 1e3:.2f} ms",
              file=sys.stderr, flush=True)
    c = compare_paired(alone, in_gate, threshold=0.02, unit="round")
    print(f"gate / standalone on {args.workload} at {threads} thread(s): {c.describe()}")
    print(f"medians: standalone {np.median(alone) * 1e3:.2f} ms, gate {np.median(in_gate) * 1e3:.2f} ms")
    if args.json:

        write_json_atomic(args.json, {"workload": args.workload, "threads": threads, "rounds": rounds,
                                      "ratio": c.ratio, "low": c.low, "high": c.high, "describe": c.describe()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
