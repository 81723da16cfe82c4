"""The gate's decisions: what its measurements say, from one parity case to the verdict and its exit code.

Parity: the outcomes of both environments are matched case by case (`diff_parity`): pass on the baseline and fail
on the candidate is a *regression* (blocks); fail on both is *pre-existing* (blocks only with --strict); fail then
pass is a *fix*; skipped on one side only is reported with both reasons (blocks only with --strict).

Latency: sampling is sequential. After each session the gate takes a `look` at every undecided workload's session
figures (perfsuite.stats.compare_sessions under the group-sequential design, perfsuite.stats.sequential_decision):
"slower", "no slowdown" (a change beyond the threshold ruled out), or go on; a workload decided "no slowdown" whose
estimate is a clear speed-up goes on to report it (`wants_faster`). `replay` walks a workload's figures through the
same looks (the calibration's resampled gates, the tests). A workload's `outcome` is one of OUTCOMES; its
`comparison_doc` is what gate.json keeps of its comparison, with what deciding it would take (`needs`).

The verdict (`decide`, from gate.json's document): exit 0 SAFE, 1 NOT SAFE (a regression), 2 the gate could not run
(ERROR), 3 UNDECIDED (it ran, but the evidence decides neither way within the budget).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from perfsuite import stats
from perfsuite.stats import compare_sessions, sequential_decision, trimmed_t
from perfsuite.tables import clock

__all__ = ["diff_parity", "look", "wants_faster", "replay", "outcome", "needs", "comparison_doc", "decide",
           "PARITY_ORDER", "OUTCOMES", "MAX_DISTURBED_SHARE", "EXIT_SAFE", "EXIT_REGRESSION", "EXIT_GATE_ERROR",
           "EXIT_UNDECIDED"]

#: 0 SAFE, 1 NOT SAFE, 2 the gate could not run (bad input, install failure, a crashed or hung worker),
#: 3 UNDECIDED: it ran, but the evidence decides neither way within the budget.
EXIT_SAFE, EXIT_REGRESSION, EXIT_GATE_ERROR, EXIT_UNDECIDED = 0, 1, 2, 3
#: A workload's outcomes (see outcome).
OUTCOMES = ("slower", "faster", "no slowdown", "inconclusive", "not enough data", "disturbed", "skipped", "error")
#: A workload with more than this share of its pairs disturbed by other processes is not decided (its clean pairs
#: would be a selection the disturbance chose).
MAX_DISTURBED_SHARE = 0.25
#: A parity case's classes, most important first.
PARITY_ORDER = ("regression", "fix", "pre-existing", "skipped on candidate only", "skipped on baseline only",
                "both pass", "both skip")


def _bad(status: Optional[str]) -> bool:
    return status in ("fail", "error")


def diff_parity(base_cases: Sequence[Dict[str, Any]], cand_cases: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Match parity outcomes case by case and classify each (see PARITY_ORDER)."""
    b = {c["id"]: c for c in base_cases}
    c = {x["id"]: x for x in cand_cases}
    out = []
    for cid in list(dict.fromkeys(list(b) + list(c))):
        bs = b.get(cid, {}).get("status", "missing")
        cs = c.get(cid, {}).get("status", "missing")
        if _bad(cs) and bs == "pass":
            kind = "regression"
        elif _bad(bs) and cs == "pass":
            kind = "fix"
        elif _bad(bs) and _bad(cs):
            kind = "pre-existing"
        elif bs == "pass" and cs in ("skip", "missing"):
            kind = "skipped on candidate only"
        elif cs == "pass" and bs in ("skip", "missing"):
            kind = "skipped on baseline only"
        elif _bad(cs):  # skipped or missing on the baseline, failing on the candidate: nothing passed before
            kind = "pre-existing"
        elif _bad(bs):
            kind = "fix" if cs == "pass" else "skipped on candidate only"
        elif bs == cs == "pass":
            kind = "both pass"
        else:
            kind = "both skip"
        out.append({"id": cid, "group": (b.get(cid) or c.get(cid) or {}).get("group", ""), "kind": kind,
                    "baseline": b.get(cid), "candidate": c.get(cid)})
    return out


def look(figures: Sequence[float], design: Any, workloads: int, threshold: float,
         ignore_below: float = 0.0) -> Optional[str]:
    """The gate's decision after the sessions whose figures are given: "slower", "no slowdown" or None (go on).
    The gate calls this after every session; perfsuite.gate.calibration's resampled gates and the tests call the
    same."""
    if len(figures) < design.first_look or len(figures) > design.max_sessions:
        return None
    return sequential_decision(compare_sessions(figures, design, workloads, threshold=threshold,
                                                ignore_below=ignore_below, rank_p=False))


def wants_faster(c: Any, threshold: float) -> bool:
    """Is a workload decided "no slowdown" worth more sessions to report a speed-up: its estimate is faster than
    1 / (1 + threshold) but its interval does not exclude 1 yet."""
    return c is not None and not c.faster and c.ratio == c.ratio and c.ratio < 1.0 / (1.0 + threshold)


def replay(figures: Sequence[float], design: Any, workloads: int, threshold: float,
           ignore_below: float = 0.0) -> Tuple[Optional[str], Optional[int]]:
    """A workload's sequential path through its sessions: (decision, the session count it came at), or (None, None)
    if no look up to the last figure (or the design's maximum) decides."""
    for k in range(design.first_look, min(len(figures), design.max_sessions) + 1):
        d = look(figures[:k], design, workloads, threshold, ignore_below)
        if d is not None:
            return d, k
    return None, None


def outcome(t: Any, c: Any) -> str:
    """A workload's outcome in the gate: slower, faster (informative: it also rules a slowdown out), no slowdown
    (beyond the threshold: ruled out), inconclusive, not enough data, disturbed, skipped or error. `t` is the gate's
    state of the workload (perfsuite.gate.gate's TargetState), `c` its comparison (None before any figure)."""
    if t.error:
        return "error"
    if t.skipped:
        return "skipped"
    if t.outcome == "slower":
        return "slower"
    if t.outcome == "no slowdown":
        return "faster" if c is not None and c.faster else "no slowdown"
    if t.disturbed_share > MAX_DISTURBED_SHARE:
        return "disturbed"
    if c is None or not c.enough:
        return "not enough data"
    return "inconclusive"


def needs(t: Any, design: Any, workloads: int, threshold: float) -> Optional[Dict[str, Any]]:
    """For a workload left undecided: how many sessions in all, and how much more time, the measured noise says
    ruling a slowdown beyond the threshold out would take (the design's last-look bound, this workload's session
    sd and estimate; a planning figure, not a promise). `t` is the gate's state of the workload, `design` its
    sequential design, `workloads` the number of workloads compared."""
    if t.outcome is not None or len(t.figures) < 3:
        return None
    est, se, _ = trimmed_t(t.figures)
    sd = se * math.sqrt(len(t.figures))
    room = math.log1p(threshold) - max(est, 0.0)
    per = float(np.mean(t.session_s)) if t.session_s else math.nan
    done = len(t.figures)
    if room <= 0:
        return {"sessions": None, "seconds": None,
                "why": f"its estimate ({math.exp(est):.3f}) lies beyond the threshold: more sessions would "
                       "likely call it slower"}
    q = design.critical(design.max_sessions, workloads)[1]
    n = max(done + 1, math.ceil((q * sd / room) ** 2))
    more = n - done
    beyond = f", beyond this design's {design.max_sessions}" if n > design.max_sessions else ""
    return {"sessions": n, "seconds": more * per if per == per else None,
            "why": f"about {n} sessions in all, {more} more (~{clock(more * per)} at {per:.0f} s each{beyond}), at "
                   f"its session sd of {sd * 100:.2f} % and estimate {math.exp(est):.3f}"}


def comparison_doc(t: Any, c: Any, needs_doc: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """What gate.json keeps of a compared workload's comparison (`c`, perfsuite.stats.compare_sessions of the gate's
    state `t`): the ratio, its interval and p-value, the verdict, the medians of the clean pairs, the disturbed
    pairs, the noise's variance components, and `needs_doc` (what deciding it would take, or None)."""
    cp = t.clean_pairs
    vc = stats.variance_components([math.log(p["candidate_s"] / p["baseline_s"]) for p in cp],
                                   [p["session"] for p in cp]) if cp else {}
    vc.pop("session_figures", None)

    def num(x: float) -> Optional[float]:
        return x if x == x and math.isfinite(x) else None

    return {"ratio": c.ratio, "low": num(c.low), "high": num(c.high), "threshold_bound": num(c._margin[1]),
            "p_value": num(c.p_value), "sessions": c.n_units, "pairs": c.n_pairs, "min_sessions": c.min_units,
            "verdict": c.verdict, "within_threshold": c.within_threshold, "rules_out_slowdown": c.rules_out_slowdown,
            "slower": c.slower, "faster": c.faster, "describe": c.describe(),
            "baseline_median_s": float(np.median([p["baseline_s"] for p in cp])) if cp else None,
            "candidate_median_s": float(np.median([p["candidate_s"] for p in cp])) if cp else None,
            "disturbed_pairs": int(sum(p["disturbed"] for p in t.pairs)), "disturbed_share": t.disturbed_share,
            "noise": vc, "needs": needs_doc}


def decide(doc: Dict[str, Any], strict: bool = False) -> Dict[str, Any]:
    """The gate's verdict from its document: exit code and the reasons, most important first.

    NOT SAFE (exit 1): a parity regression (or, with --strict, a pre-existing failure or a case the candidate
    lost), or a workload measured slower. SAFE (exit 0): none of that, and every compared workload ruled a slowdown
    beyond the threshold out. Anything else is UNDECIDED (exit 3): the evidence does not say which, and the reasons
    name the workloads and what deciding them would take. A workload that failed in a worker makes the gate an
    ERROR (exit 2) unless it is already NOT SAFE."""
    reasons: List[str] = []
    undecided: List[str] = []
    errors: List[str] = []
    par = doc.get("parity")
    if par:
        c = par["counts"]
        if c.get("regression"):
            reasons.append(f"{c['regression']} parity regression(s): passes on the baseline, fails on the candidate")
        if strict and c.get("pre-existing"):
            reasons.append(f"{c['pre-existing']} pre-existing parity failure(s) (--strict)")
        if strict and c.get("skipped on candidate only"):
            reasons.append(f"{c['skipped on candidate only']} parity case(s) that ran on the baseline cannot run on "
                           "the candidate (--strict)")
    lat = doc.get("latency")
    geo = None
    if lat is not None:
        targets = lat.get("targets") or {}
        thr = doc["config"]["threshold"]
        outcomes = {tid: t.get("outcome") for tid, t in targets.items()}
        slower = [tid for tid, o in outcomes.items() if o == "slower"]
        if slower:
            reasons.append(f"{len(slower)} workload(s) slower: " + "; ".join(
                f"{tid} {targets[tid]['comparison']['describe']}" for tid in slower))
        for tid, o in outcomes.items():
            if o in ("inconclusive", "not enough data", "disturbed"):
                t = targets[tid]
                needs = (t.get("comparison") or {}).get("needs") or {}
                what = {"inconclusive": f"a slowdown beyond {thr:.0%} is not ruled out",
                        "not enough data": "too few sessions for a verdict",
                        "disturbed": f"{(t.get('comparison') or {}).get('disturbed_share', 0):.0%} of its pairs were "
                                     f"disturbed by other processes (more than {MAX_DISTURBED_SHARE:.0%})"}[o]
                ratio = (t.get("comparison") or {}).get("describe")
                undecided.append(f"{tid}: {what}" + (f" ({ratio})" if ratio and o != "not enough data" else "")
                                 + (f"; deciding it needs {needs['why']}" if needs.get("why") else ""))
        errors = [f"{tid}: {t['error']}" for tid, t in targets.items() if t.get("error")]
        compared = [tid for tid, o in outcomes.items() if o not in ("skipped", "error")]
        if not compared and not errors:
            undecided.append("no workload could be timed on both sides (every one was skipped), so no slowdown is "
                             "ruled out")
        if strict:
            lost = [tid for tid, t in targets.items()
                    if (t.get("skip") or {}).get("candidate") and not (t.get("skip") or {}).get("baseline")]
            if lost:
                reasons.append(f"{len(lost)} workload(s) that run on the baseline cannot run on the candidate "
                               "(--strict): " + ", ".join(lost))
        valid = [t["comparison"]["ratio"] for t in targets.values()
                 if t.get("comparison") and t["comparison"]["verdict"] != "not enough data"]
        geo = float(np.exp(np.mean(np.log(valid)))) if valid else None
    if reasons:
        code, word = EXIT_REGRESSION, "NOT SAFE"
    elif errors:
        code, word = EXIT_GATE_ERROR, "ERROR"
    elif undecided:
        code, word = EXIT_UNDECIDED, "UNDECIDED"
    else:
        code, word = EXIT_SAFE, "SAFE"
    extra = ["a workload failed in a worker: " + "; ".join(errors)] if errors else []
    return {"exit_code": code, "word": word, "reasons": reasons + extra + undecided, "geomean_ratio": geo}
