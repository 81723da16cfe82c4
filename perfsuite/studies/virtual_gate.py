"""Virtual gates: the gate's own planner and decision on synthetic sessions. A study, not a test.

A real calibration gate takes 10 quiet minutes; a design question (how far may the pairs per session grow? how many
sessions should the design plan?) needs hundreds of gates per answer. This study replays the gate's session loop
with perfsuite.gate.plan (first_plan, replan) and perfsuite.gate.verdict (look) unchanged, on pairs drawn from the
variance components a calibration measured: per workload and session, a between-session shift ~ N(0, sd_b), and
per pair a log-ratio ~ N(shift + effect, sd_w); the session's figure is the Hodges-Lehmann estimate of its pairs,
its cost the workload's measured overhead plus its pairs' blocks, plus a worker start per session, against the
profile's budget. Each condition (A/A; 2 % into BERT-base b1; 2 % into a random single op) runs `--gates` gates
per cap on the pairs' growth.

    python -m perfsuite.studies.virtual_gate --calibration /path/to/calibration-folder --gates 150 --caps 24,128

What it leaves out, so its rates are planning figures, not the gate's: real sessions' heavy tails and process
"modes" (a process whose layout makes an op 13 % slower), disturbed pairs, and costs that vary with the machine.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from perfsuite.errors import PerfsuiteInputError
from perfsuite.gate import plan
from perfsuite.gate.gate import TargetState
from perfsuite.gate.verdict import look
from perfsuite.stats import SequentialDesign, hodges_lehmann
from perfsuite.tables import table
from perfsuite.workloads import GATE_PROFILES

__all__ = ["Component", "components", "virtual_gate", "conditions", "main"]

BERT_B1 = "model:bert-base/hybridized/classification/b1/L128"


@dataclass(frozen=True)
class Component:
    """One workload's noise and costs: sd of a pair's log-ratio within a session, sd between sessions, the steady
    time of one call, the time of the call the gate plans from (the second, right after preparing: about twice the
    steady one), and the session's overhead (prepare, warm up, release) in seconds."""

    within_sd: float
    between_sd: float
    call_s: float
    first_call_s: float
    overhead_s: float


def components(folder: str) -> Dict[str, Component]:
    """Medians over the A/A sessions of a calibration folder's gate.json files (every workload not injected)."""
    acc: Dict[str, Dict[str, List[float]]] = {}
    for path in sorted(glob.glob(os.path.join(folder, "*", "gate.json"))):
        with open(path) as f:
            doc = json.load(f)
        for tid, t in ((doc.get("latency") or {}).get("targets") or {}).items():
            c = t.get("comparison") or {}
            noise = c.get("noise") or {}
            if t.get("injected") or not noise or not c.get("baseline_median_s"):
                continue
            a = acc.setdefault(tid, {"w": [], "b": [], "call": [], "first": [], "ovh": []})
            a["w"].append(noise["within_sd_per_pair"])
            a["b"].append(noise["between_sd"])
            a["call"].append(c["baseline_median_s"])  # per call (the gate's pairs record a block's time / calls)
            a["first"].append((t.get("call_s") or {}).get("baseline") or c["baseline_median_s"])
            a["ovh"].extend(t.get("overhead_s") or [])
    if not acc:
        raise PerfsuiteInputError(f"--calibration {folder!r}: no gate.json with measured workloads under it (a "
                                  "folder written by python -m perfsuite.gate.calibration is expected)")
    return {tid: Component(*(float(np.median(a[k])) for k in ("w", "b", "call", "first", "ovh")))
            for tid, a in acc.items()}


def virtual_gate(rng: np.random.Generator, comps: Dict[str, Component], inject: Optional[str] = None,
                 effect: float = 0.02, budget_s: float = 600.0, setup_s: float = 15.0, start_s: float = 1.0,
                 session_s: float = 3.0, max_sessions: int = 12, max_op_sessions: int = 24,
                 cap: Optional[int] = None, threshold: float = 0.02, confidence: float = 0.99) -> Dict[str, Any]:
    """One virtual gate: sessions until every workload is decided, its design's sessions are spent, or the next
    session (as long as the last one of each workload still running) would not fit the budget; the gate's verdict
    word, whether the injected workload was called slower, the sessions run and the seconds spent."""
    designs = {False: SequentialDesign(confidence, max_sessions, min(4, max_sessions)),
               True: SequentialDesign(confidence, max_op_sessions, min(4, max_op_sessions))}
    states = {tid: TargetState(tid) for tid in comps}
    w = len(states)
    elapsed, index = setup_s, 0
    while True:
        active = [t for t in states.values() if t.outcome is None
                  and len(t.figures) < designs[t.id.startswith("op:")].max_sessions]
        if not active:
            break
        need = start_s + sum(t.session_s[-1] for t in active if t.session_s)
        if index and elapsed + need > budget_s:
            break
        elapsed += start_s
        for t in active:
            c = comps[t.id]
            design = designs[t.id.startswith("op:")]
            if t.calls is None:
                t.call_s = {"baseline": c.first_call_s}
                plan.first_plan(t, index, session_s, most=cap)
            plan.replan(t, index, design, w, threshold, session_s, start_s, most=cap)
            m = int(t.pairs_per_session)
            lr = rng.normal(0.0, c.between_sd) + (math.log1p(effect) if t.id == inject else 0.0) \
                + rng.normal(0.0, c.within_sd, m)
            for x in lr:  # per call, as the gate records them
                t.pairs.append({"session": index, "baseline_s": c.call_s, "candidate_s": c.call_s * math.exp(x),
                                "disturbed": False})
            t.figures.append(hodges_lehmann(lr))
            t.figure_sessions.append(index)
            t.overhead_s.append(c.overhead_s)
            t.session_s.append(c.overhead_s + 2 * m * t.calls * c.call_s)
            elapsed += t.session_s[-1]
        index += 1
        for t in active:
            t.outcome = look(t.figures, designs[t.id.startswith("op:")], w, threshold)
    outcomes = [t.outcome for t in states.values()]
    word = "NOT SAFE" if "slower" in outcomes else "SAFE" if all(o == "no slowdown" for o in outcomes) else "UNDECIDED"
    return {"word": word, "caught": inject is not None and states[inject].outcome == "slower", "sessions": index,
            "seconds": elapsed}


def conditions(comps: Dict[str, Component], gates: int, cap: Optional[int], seed: int = 0,
               **kw: Any) -> List[Dict[str, Any]]:
    """A/A, 2 % into BERT-base b1 (when measured), 2 % into a random single op per gate: rates over `gates`."""
    ops = sorted(t for t in comps if t.startswith("op:"))
    rows = []
    for k, cond in enumerate(["A/A", BERT_B1, "random-op"]):
        if cond == BERT_B1 and cond not in comps or cond == "random-op" and not ops:
            continue
        rng = np.random.default_rng(seed + k)
        runs = [virtual_gate(rng, comps, inject=None if cond == "A/A" else
                             str(rng.choice(ops)) if cond == "random-op" else cond, cap=cap, **kw)
                for _ in range(gates)]
        rows.append({"cap": cap, "condition": cond if cond == "A/A" else f"2 % into {cond}", "gates": gates,
                     "safe": sum(r["word"] == "SAFE" for r in runs) / gates,
                     "not_safe": sum(r["word"] == "NOT SAFE" for r in runs) / gates,
                     "caught": None if cond == "A/A" else sum(r["caught"] for r in runs) / gates,
                     "sessions": float(np.median([r["sessions"] for r in runs])),
                     "seconds": float(np.median([r["seconds"] for r in runs]))})
    return rows


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m perfsuite.studies.virtual_gate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--calibration", required=True, metavar="DIR",
                   help="a folder written by python -m perfsuite.gate.calibration (its gates' gate.json files)")
    p.add_argument("--gates", type=int, default=150, help="virtual gates per condition and cap (default 150)")
    p.add_argument("--caps", default=f"{plan.MAX_PAIRS_GROWN}",
                   help=f"comma-separated caps on the pairs per session (default {plan.MAX_PAIRS_GROWN}, the gate's)")
    p.add_argument("--profile", default="quick", help="its budget, session time and sessions (default quick)")
    p.add_argument("--start-s", type=float, default=1.0, help="starting a session's two workers (default 1.0 s)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        prof = GATE_PROFILES.get(args.profile)
        if prof is None:
            raise PerfsuiteInputError(f"--profile {args.profile!r}; allowed: {', '.join(GATE_PROFILES)}")
        try:
            caps = [int(x) for x in args.caps.split(",")]
        except ValueError:
            caps = []
        if not caps or min(caps) < plan.MIN_PAIRS:
            raise PerfsuiteInputError(f"--caps {args.caps!r}: comma-separated integers >= {plan.MIN_PAIRS}")
        if args.gates < 1:
            raise PerfsuiteInputError(f"--gates {args.gates!r}: at least 1")
        comps = components(args.calibration)
    except PerfsuiteInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows: List[Tuple[Any, ...]] = []
    for cap in caps:
        for r in conditions(comps, args.gates, cap, seed=args.seed, budget_s=prof.time_budget_s,
                            session_s=prof.session_s, max_sessions=prof.max_sessions,
                            max_op_sessions=prof.max_op_sessions or prof.max_sessions, start_s=args.start_s):
            rows.append((cap, r["condition"], r["gates"], f"{r['safe']:.0%}", f"{r['not_safe']:.0%}",
                         "-" if r["caught"] is None else f"{r['caught']:.0%}", r["sessions"], f"{r['seconds']:.0f}"))
        print(f"cap {cap}: done", file=sys.stderr, flush=True)
    print(table(["pairs cap", "condition", "gates", "SAFE", "NOT SAFE", "injected caught", "median sessions",
                 "median s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
