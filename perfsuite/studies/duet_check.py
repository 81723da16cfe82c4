"""Would a duet design time the gate's pairs with less noise? A benchmark, not a test.

The gate times a pair sequentially: both workers pinned to the same core, the idle one paused (SIGSTOP), baseline
and candidate blocks in alternating order. A duet design (Bulej et al., ICPE 2020) times both sides at the same
moment, one thread each on separate cores, so interference both see cancels in the ratio. This study runs both
designs as an A/A comparison (this interpreter on both sides, the staged perfsuite, OMP_NUM_THREADS=1) through
the gate's own worker processes: per round a fresh pair of workers per design (designs in alternating order,
cores swapped every round), warm-up blocks, then `--pairs` pairs of ~50 ms blocks. It reports, per workload and
design, the median per-pair sd of log(B/A) within a round and the sd of the rounds' Hodges-Lehmann figures (what
a gate session's figure would vary by). `--disturb D` adds the calibration's standard disturbance: a process
busy D of every 100 ms on the first usable CPU (0.3 by default when given without a value).

    python -m perfsuite.studies.duet_check --rounds 4 --pairs 40            # quiet
    python -m perfsuite.studies.duet_check --rounds 4 --pairs 40 --disturb  # one core 30 % busy
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from perfsuite.errors import PerfsuiteInputError
from perfsuite.gate.driver import WorkerProcess
from perfsuite.gate.venvs import stage_perfsuite
from perfsuite.outputs import check_output_file
from perfsuite.results import write_json_atomic
from perfsuite.stats import hodges_lehmann
from perfsuite.tables import table
from perfsuite.workloads import Target

__all__ = ["DESIGNS", "one_round", "main"]

DESIGNS = ("sequential", "duet")
BLOCK_TARGET_S = 0.05  # the gate's block length
WARMUP_BLOCKS = 2


def _disturber(cpu: int, duty: float) -> subprocess.Popen:
    code = (f"import os, time\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True:\n"
            f"    t = time.perf_counter()\n    while time.perf_counter() - t < {duty * 0.1!r}:\n        pass\n"
            f"    time.sleep({(1 - duty) * 0.1!r})\n")
    return subprocess.Popen([sys.executable, "-c", code])


def _time_pair(ws: Dict[str, WorkerProcess], req: Dict[str, Any], design: str, order: str) -> Dict[str, float]:
    """One pair: sequential (the other side paused, in `order`) or duet (both sides sent, then both received)."""
    got: Dict[str, float] = {}
    if design == "sequential":
        for side in order:
            ws["B" if side == "A" else "A"].pause()
            ws[side].resume()
            got[side] = ws[side].request(req, 120.0)["wall_s"]
        return got
    for side in "AB":
        ws[side].send(req)
    for side in "AB":
        got[side] = ws[side].receive(120.0, "time")["wall_s"]
    return got


def one_round(target: str, design: str, index: int, pairs: int, cpus: Sequence[int], pythonpath: str) -> List[float]:
    """log(B/A) of each pair of one round: fresh workers, cores chosen by `index` (swapped every round)."""
    a = cpus[index % 2]
    cpu = {"A": [a], "B": [a] if design == "sequential" else [cpus[(index + 1) % 2]]}
    ws = {s: WorkerProcess(sys.executable, f"{design} {s}", pythonpath=pythonpath, env={"OMP_NUM_THREADS": "1"},
                           cpus=cpu[s]) for s in "AB"}
    try:
        for w in ws.values():
            w.request({"cmd": "hello"}, 120.0)
        call_s = []
        for w in ws.values():
            rep = w.request({"cmd": "prepare", "target": target, "path_map": {}, "variants": 1, "seed": index}, 900.0)
            if not rep.get("ok") or rep.get("skip"):
                raise PerfsuiteInputError(f"{target}: {rep.get('error') or rep.get('skip')}")
            call_s.append(rep["call_s"])
        req = {"cmd": "time", "target": target, "calls": max(1, round(BLOCK_TARGET_S / max(call_s))), "variant": 0,
               "inject": 0.0}
        for k in range(WARMUP_BLOCKS):
            _time_pair(ws, req, design, "AB" if k % 2 == 0 else "BA")
        out = []
        for k in range(pairs):
            got = _time_pair(ws, req, design, "AB" if k % 2 == 0 else "BA")
            out.append(math.log(got["B"] / got["A"]))
        return out
    finally:
        for w in ws.values():
            w.resume()
            w.close()


def _summary(rows: Dict[str, Dict[str, List[List[float]]]]) -> List[List[Any]]:
    out = []
    for target, by_design in rows.items():
        for design, rounds in by_design.items():
            figures = [hodges_lehmann(lr) for lr in rounds]
            out.append([target, design, f"{statistics.median(statistics.stdev(lr) for lr in rounds) * 100:.2f} %",
                        f"{statistics.stdev(figures) * 100:.2f} %" if len(figures) > 1 else "-",
                        " ".join(f"{f * 100:+.1f}" for f in figures)])
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perfsuite.studies.duet_check", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--targets", help="comma-separated gate workloads (default: the noisiest of the quick profile "
                   "and fc_float32)",
                   default="op:attention_interleaved,op:fc_float32,model:small/onednn/classification/b8/L64")
    p.add_argument("--rounds", type=int, default=4, help="rounds per design (fresh workers each; default 4)")
    p.add_argument("--pairs", type=int, default=40, help="pairs per round (default 40)")
    p.add_argument("--disturb", type=float, nargs="?", const=0.3, default=0.0, metavar="DUTY",
                   help="a process busy DUTY of every 100 ms on the first CPU (0.3 when given alone; default none)")
    p.add_argument("--json", default=None, metavar="FILE.json", help="also write the per-pair log-ratios here")
    p.add_argument("--force", action="store_true", help="replace --json if it exists")
    args = p.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    try:  # every input checked before any work
        for t in targets:
            Target(t).parts()
        if args.json:
            check_output_file(args.json, "--json", ".json", force=args.force)
    except PerfsuiteInputError as exc:
        p.error(str(exc))
    if args.rounds < 2 or args.pairs < 4:
        p.error(f"--rounds {args.rounds} --pairs {args.pairs}: allowed --rounds >= 2 and --pairs >= 4")
    if not 0.0 <= args.disturb < 1.0:
        p.error(f"--disturb {args.disturb}: allowed 0 <= DUTY < 1")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        p.error(f"the duet design needs two CPUs; this process may use {len(cpus)}")
    pythonpath = str(stage_perfsuite())
    disturber = _disturber(cpus[0], args.disturb) if args.disturb else None
    rows: Dict[str, Dict[str, List[List[float]]]] = {}
    t0 = time.perf_counter()
    try:
        for target in targets:
            for r in range(args.rounds):
                for design in DESIGNS if r % 2 == 0 else DESIGNS[::-1]:
                    lr = one_round(target, design, r, args.pairs, cpus, pythonpath)
                    rows.setdefault(target, {}).setdefault(design, []).append(lr)
                    print(f"{target} {design} round {r + 1}/{args.rounds}: pair sd "
                          f"{statistics.stdev(lr) * 100:.2f} %, figure {hodges_lehmann(lr) * 100:+.2f} %",
                          file=sys.stderr, flush=True)
    finally:
        if disturber is not None:
            disturber.kill()
    print(f"A/A, this interpreter on both sides, 1 thread, disturbance {args.disturb:.0%} on CPU {cpus[0]}, "
          f"{time.perf_counter() - t0:.0f} s")
    print(table(["workload", "design", "per-pair sd (median of rounds)", "sd of round figures", "round figures (%)"],
                _summary(rows), "simple"))
    if args.json:
        write_json_atomic(args.json, {"disturb": args.disturb, "pairs": args.pairs, "log_ratios": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
