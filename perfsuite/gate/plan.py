"""How much each of the gate's sessions times, and where: calls per timed block, clean pairs per workload and
session (first from the steady-state call time, then from the measured variance components, so a decision is
reached soonest), and the CPUs both workers of a session run on. The session loop (perfsuite.gate.gate) follows
these plans; the decisions they aim at are perfsuite.gate.verdict's.
"""

from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from perfsuite import stats

__all__ = ["first_plan", "replan", "session_cpus", "BLOCK_TARGET_S", "MIN_PAIRS", "MAX_PAIRS", "MAX_PAIRS_GROWN",
           "MAX_PAIR_SECONDS_FACTOR", "MIN_PAIRS_OP"]

#: A timed block lasts at least this long: short ops are timed in blocks of calls (timer overhead negligible).
BLOCK_TARGET_S = 0.05
#: Clean pairs per workload and session at the start: even (half AB, half BA), at least 16 (BERT-base included),
#: sized from the steady-state call time and the profile's session_s; they grow with the measured noise up to
#: MAX_PAIRS_GROWN, and to at most MAX_PAIR_SECONDS_FACTOR x session_s of pairs per workload and session.
#: Why not fewer: each workload's plan minimises its own time to a decision while the sessions go on until the
#: slowest workload is decided, which suggests capping the growth; in virtual gates (python -m
#: perfsuite.studies.virtual_gate on the 30 calibration gates of 2026-12-03) a cap of 24 did worse than 128: A/A
#: SAFE within 10 minutes 57 % vs 68 %, a 2 % slowdown of BERT-base b1 caught 63 % vs 76 % (150 gates each).
MIN_PAIRS, MAX_PAIRS, MAX_PAIRS_GROWN, MAX_PAIR_SECONDS_FACTOR = 16, 64, 128, 10.0
#: Single ops: their session figures vary mostly between processes, so many short sessions beat long ones.
MIN_PAIRS_OP = 8


def first_plan(t: Any, index: int, session_s: float, most: Optional[int] = None) -> None:
    """The calls per block (a block lasts >= BLOCK_TARGET_S) and the pairs per session of a workload from its
    steady-state call time on the baseline, once its first session has prepared it (`t`: the gate's state of the
    workload, perfsuite.gate.gate's TargetState; `session_s`: the profile's time per workload and session)."""
    one = max(t.call_s["baseline"], 1e-6)
    t.calls = max(1, math.ceil(BLOCK_TARGET_S / one))
    n = int(round(session_s / (2 * t.calls * one)))
    least, most = (MIN_PAIRS_OP, MIN_PAIRS) if t.id.startswith("op:") else (MIN_PAIRS, most or MAX_PAIRS)
    t.pairs_per_session = max(least, min(most, n + n % 2))
    t.plan_history.append({"session": index, "pairs": t.pairs_per_session, "why": "from the call time"})


def replan(t: Any, index: int, design: Any, workloads: int, threshold: float, session_s: float,
           worker_start_s: float, most: Optional[int] = None) -> None:
    """Plan the pairs per session from the measured variance components once 3 sessions have figures.

    With sd_w per pair within a session and sd_b between sessions, k sessions of m pairs give a standard error
    sqrt((sd_b^2 + (pi/3) sd_w^2 / m) / k) (HL figures). A slowdown of the threshold is decided at look k when
    that is below log(1 + threshold) / (q_k + z_0.9), q_k being the design's slower bound at k: the plan takes,
    among the looks still ahead, the one reached soonest (session cost: this target's overhead and its share
    of starting the workers, plus m pairs) and the m it needs, between MIN_PAIRS and what
    MAX_PAIR_SECONDS_FACTOR x the profile's session time and MAX_PAIRS_GROWN (or `most`) allow. If no look
    ahead can reach it (the sessions' own spread is too large), m is the cost-optimal split
    (_cost_optimal_pairs): sessions are what is short then."""
    from scipy import stats as st

    if len(t.figures) < 3 or (t.plan_history and t.plan_history[-1].get("figures") == len(t.figures)):
        return
    cp = t.clean_pairs
    vc = stats.variance_components([math.log(p["candidate_s"] / p["baseline_s"]) for p in cp],
                                   [p["session"] for p in cp])
    c_pair = float(np.median([(p["baseline_s"] + p["candidate_s"]) * (t.calls or 1) for p in cp]))
    c_sess = float(np.median(t.overhead_s)) + worker_start_s / workloads
    sw, sb = vc["within_sd_per_pair"], vc["between_sd"]
    least = MIN_PAIRS_OP if t.id.startswith("op:") else MIN_PAIRS
    cap = min(most or MAX_PAIRS_GROWN, max(least, int(MAX_PAIR_SECONDS_FACTOR * session_s / max(c_pair, 1e-9))))
    delta = math.log1p(threshold)
    z_power = float(st.norm.isf(0.1))
    done = len(t.figures)
    best: Optional[Tuple[float, int, int]] = None
    for k in range(max(done + 1, design.first_look), design.max_sessions + 1):
        q = design.critical(k, workloads)[0]
        if not math.isfinite(q):
            continue
        room = k * (delta / (q + z_power)) ** 2 - sb ** 2
        if room <= 0:
            continue
        m = max(least, math.ceil(math.pi / 3 * sw ** 2 / room))
        m += m % 2
        if m > cap:
            continue
        cost = (k - done) * (c_sess + m * c_pair)
        if best is None or cost < best[0]:
            best = (cost, k, m)
    entry: Dict[str, Any] = {"session": index, "figures": done, "within_sd_per_pair": sw, "between_sd": sb,
                             "pair_s": c_pair, "overhead_s": c_sess, "cap": cap}
    if best is None:  # the sessions are what is short: the split that buys the most precision per second
        m = _cost_optimal_pairs(sw, sb, c_sess, c_pair, least, cap)
        t.pairs_per_session = m
        entry.update(pairs=m, why="no look ahead reaches the threshold's precision at this noise; pairs at the "
                                  "cost-optimal split, sqrt(session cost / pair cost x (pi/3) sd_w^2 / sd_b^2)")
    else:
        t.pairs_per_session = best[2]
        entry.update(pairs=best[2], planned_sessions=best[1], planned_s=round(best[0], 1),
                     why="variance components")
    t.plan_history.append(entry)


def _cost_optimal_pairs(sw: float, sb: float, c_sess: float, c_pair: float, least: int, cap: int) -> int:
    """The pairs per session that minimise the standard error bought per second of a two-level design (sessions
    costing c_sess plus m pairs of c_pair; variance (sd_b^2 + (pi/3) sd_w^2 / m) / k): m* = sqrt(c_sess / c_pair x
    (pi/3) sd_w^2 / sd_b^2) (Cochran, Sampling Techniques, two-stage sampling), even, within [least, cap]."""
    if sb <= 0:
        m = cap
    else:
        m = int(round(math.sqrt(max(c_sess, 0.0) / max(c_pair, 1e-9) * math.pi / 3 * sw ** 2 / sb ** 2)))
    m = max(least, min(cap, m))
    return m + m % 2 if m + m % 2 <= cap else m - m % 2


def session_cpus(index: int, threads: int) -> Optional[List[int]]:
    """Both workers of a session run on the same CPUs from their start, as many as their threads, chosen in turn
    per session. Two workers left to the scheduler settle on different cores, and cores differ: in an A/A gate
    with one thread each, FullyConnected ran 15 % slower in the worker on one core than in the other in 5 of 7
    sessions. Pinning only for the timing (preparing on every CPU) was worse: an op's arrays prepared on one
    core and timed on the other ran in two modes 14 % apart (fc_float32's session figures: sd 9.3 % against
    1.1 % pinned from the start). Only one worker runs at a time (the other is paused), so sharing costs only
    the preparation, which runs on one core. None: every CPU (nothing to choose, or no affinity here)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    usable = sorted(os.sched_getaffinity(0))
    n = min(threads, len(usable))
    if n >= len(usable):
        return None  # every CPU: nothing to choose
    start = (index * n) % len(usable)
    return [usable[(start + i) % len(usable)] for i in range(n)]
