"""How good is the upgrade gate on *this* machine? Repeated A/A gates (the same MXNet in two separately built
environments) give the false-alarm rate; gates with a known slowdown injected into the candidate
(`--inject-slowdown`: a busy-wait proportional to each timed call's own duration) give the detection rate per
slowdown and the smallest one detected in at least 9 of 10 gates. Runs are interleaved (A/A, 3 %, 5 %, ...,
A/A, ...) so the machine's drift over hours hits every condition alike, and the results file is rewritten
after every gate, so an interrupted calibration resumes where it stopped.

    python -m perfsuite.gate_calibration --spec mxnet==1.9.1 --profile quick --aa 10 --slowdowns 0.03,0.05,0.1 \\
        --gates 10 --out results/gate-calibration

This is a benchmark, not a test: it takes hours for the quick profile (about 5-10 minutes a gate).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from perfsuite.errors import PerfsuiteInputError
from perfsuite.results import write_json_atomic, write_text_atomic

__all__ = ["main", "summarize", "render"]

FORMAT = "perfsuite-gate-calibration"


def _plan(aa: int, slowdowns: Sequence[float], gates: int) -> List[float]:
    """Interleaved conditions: round r runs one A/A gate (while any remain) and one gate per slowdown."""
    runs: List[float] = []
    for r in range(max(aa, gates)):
        if r < aa:
            runs.append(0.0)
        if r < gates:
            runs.extend(slowdowns)
    return runs


def _summary_of_gate(doc: Dict[str, Any]) -> Dict[str, Any]:
    lat = doc.get("latency") or {}
    targets = {}
    for tid, t in (lat.get("targets") or {}).items():
        c = t.get("comparison")
        if not c:
            continue
        pairs = t["pairs"]
        sessions = sorted({p["session"] for p in pairs})
        lr = np.log([p["candidate_s"] / p["baseline_s"] for p in pairs])
        s = np.array([p["session"] for p in pairs])
        meds = [float(np.median(lr[s == k])) for k in sessions]
        mads = [float(1.4826 * np.median(np.abs(lr[s == k] - np.median(lr[s == k])))) for k in sessions]
        targets[tid] = {"verdict": c["verdict"], "ratio": c["ratio"], "low": c["low"], "high": c["high"],
                        "sessions": c["sessions"], "pairs": c["pairs"], "session_medians": meds,
                        "within_mad": float(np.median(mads)) if mads else None}
    v = doc.get("verdict") or {}
    return {"exit_code": v.get("exit_code"), "elapsed_s": doc.get("elapsed_s"), "targets": targets,
            "sessions": len(lat.get("sessions") or []), "status": doc.get("status")}


def summarize(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """False alarms, detection per slowdown, time per gate, noise per workload (from the A/A gates)."""
    from scipy.stats import binomtest

    def rate(k: int, n: int) -> Dict[str, Any]:
        if n == 0:
            return {"k": 0, "n": 0}
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        return {"k": k, "n": n, "rate": k / n, "ci95": [ci.low, ci.high]}

    out: Dict[str, Any] = {"conditions": {}}
    for x in sorted({r["inject"] for r in runs}):
        rs = [r for r in runs if r["inject"] == x and r["exit_code"] in (0, 1)]
        tids = sorted({t for r in rs for t in r["targets"]})
        per = {t: rate(sum(r["targets"].get(t, {}).get("verdict") == "slower" for r in rs),
                       sum(t in r["targets"] for r in rs)) for t in tids}
        ratios = {t: float(np.median([r["targets"][t]["ratio"] for r in rs if t in r["targets"]])) for t in tids}
        out["conditions"][str(x)] = {
            "inject": x, "gates": len(rs), "undecided_or_failed": sum(r["inject"] == x for r in runs) - len(rs),
            "gates_not_safe": rate(sum(r["exit_code"] == 1 for r in rs), len(rs)),
            "per_workload_slower": per, "median_ratio": ratios,
            "seconds": {"median": float(np.median([r["elapsed_s"] for r in rs])) if rs else None,
                        "max": float(max(r["elapsed_s"] for r in rs)) if rs else None},
            "sessions_median": float(np.median([r["sessions"] for r in rs])) if rs else None}
    aa = [r for r in runs if r["inject"] == 0.0]
    noise = {}
    for t in sorted({t for r in aa for t in r["targets"]}):
        meds = [m for r in aa for m in r["targets"].get(t, {}).get("session_medians", [])]
        mads = [r["targets"][t]["within_mad"] for r in aa if t in r["targets"] and r["targets"][t]["within_mad"]]
        noise[t] = {"sd_session_median": float(np.std(meds, ddof=1)) if len(meds) > 1 else None,
                    "within_pair_mad": float(np.median(mads)) if mads else None}
    out["aa_noise"] = noise
    detected = [c["inject"] for c in out["conditions"].values()
                if c["inject"] > 0 and c["gates"] >= 10 and c["gates_not_safe"]["k"] >= 0.9 * c["gates"]]
    out["smallest_detected_9_of_10"] = min(detected) if detected else None
    return out


def render(doc: Dict[str, Any]) -> str:
    from perfsuite.tables import table

    s = doc["summary"]
    lines = [f"# Gate calibration: {doc['spec']}, profile {doc['profile']}", "",
             f"Machine: {doc.get('machine')}; {len(doc['runs'])} gates, {doc.get('elapsed_s', 0) / 3600:.1f} h.", ""]
    rows = []
    for c in s["conditions"].values():
        g = c["gates_not_safe"]
        ci = f"[{g['ci95'][0]:.0%}, {g['ci95'][1]:.0%}]" if g.get("ci95") else "-"
        rows.append([f"{c['inject']:.0%}" if c["inject"] else "A/A (0 %)", c["gates"],
                     f"{g['k']} of {g['n']}", ci, c["sessions_median"],
                     f"{c['seconds']['median']:.0f} / {c['seconds']['max']:.0f}" if c["seconds"]["median"] else "-",
                     c["undecided_or_failed"]])
    lines += [table(["injected slowdown", "gates", "gates NOT SAFE", "95% CI (exact)", "median sessions",
                     "seconds per gate (median / max)", "undecided or failed"], rows), ""]
    tids = sorted({t for c in s["conditions"].values() for t in c["per_workload_slower"]})
    rows = []
    for t in tids:
        row = [t]
        for c in s["conditions"].values():
            p = c["per_workload_slower"].get(t)
            row.append(f"{p['k']}/{p['n']} ({c['median_ratio'][t]:.3f})" if p and p.get("n") else "-")
        n = s["aa_noise"].get(t, {})
        row += [f"{n['sd_session_median'] * 100:.2f}%" if n.get("sd_session_median") else "-",
                f"{n['within_pair_mad'] * 100:.1f}%" if n.get("within_pair_mad") else "-"]
        rows.append(row)
    heads = [f"{c['inject']:.0%} slower: k/n (median ratio)" if c["inject"] else "A/A slower: k/n (median ratio)"
             for c in s["conditions"].values()]
    lines += [table(["workload"] + heads + ["A/A sd of session medians", "A/A within-session pair MAD"], rows), ""]
    sm = s.get("smallest_detected_9_of_10")
    lines += [f"Smallest injected slowdown detected in at least 9 of 10 gates: "
              f"{f'{sm:.0%}' if sm is not None else 'none of those tried (or fewer than 10 gates each)'}.", ""]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from perfsuite import gate
    from perfsuite.env import _cpu_model, _usable_cpus

    p = argparse.ArgumentParser(prog="python -m perfsuite.gate_calibration", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", default="mxnet==1.9.1", help="the MXNet on both sides (default mxnet==1.9.1)")
    p.add_argument("--profile", default="quick")
    p.add_argument("--aa", type=int, default=10, help="A/A gates (default 10)")
    p.add_argument("--slowdowns", default="0.03,0.05,0.1", help="injected slowdowns (default 0.03,0.05,0.1)")
    p.add_argument("--gates", type=int, default=10, help="gates per slowdown (default 10)")
    p.add_argument("--time-budget", type=float, default=None, help="per gate (default: the profile's)")
    p.add_argument("--parity", action="store_true", help="also run parity in every gate (off: latency only)")
    p.add_argument("--out", default="results/gate-calibration")
    args = p.parse_args(argv)
    try:
        slowdowns = [float(x) for x in args.slowdowns.split(",") if x.strip()]
    except ValueError:
        print(f"error: --slowdowns {args.slowdowns!r}: comma-separated fractions, e.g. 0.03,0.05", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "calibration.json"
    doc: Dict[str, Any] = {"format": FORMAT, "format_version": 1, "spec": args.spec, "profile": args.profile,
                           "machine": f"{_cpu_model()}, {_usable_cpus()} CPUs", "runs": [], "elapsed_s": 0.0}
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("spec") == args.spec and old.get("profile") == args.profile:
            doc = old
    plan = _plan(args.aa, slowdowns, args.gates)
    t0 = time.perf_counter() - doc.get("elapsed_s", 0.0)
    for i, x in enumerate(plan):
        if i < len(doc["runs"]):
            continue
        name = f"{i:03d}-{'aa' if x == 0 else f'slow{x:g}'}"
        print(f"[calibration {i + 1}/{len(plan)}] {name}", file=sys.stderr, flush=True)
        opts = gate.GateOptions(baseline=args.spec, candidate=args.spec, allow_same=True, profile=args.profile,
                                inject_slowdown=x, seed=i, out=str(out / name), parity=args.parity,
                                time_budget_s=args.time_budget)
        try:
            res = gate.run_gate(opts, err=open(out / f"{name}.progress.log", "w"))
            summary = _summary_of_gate(res.doc)
        except (PerfsuiteInputError, RuntimeError) as exc:
            summary = {"exit_code": 2, "error": str(exc)[:500], "targets": {}, "elapsed_s": None, "sessions": 0}
        summary.update(index=i, name=name, inject=x)
        doc["runs"].append(summary)
        doc["elapsed_s"] = time.perf_counter() - t0
        doc["summary"] = summarize(doc["runs"])
        write_json_atomic(path, doc)
        write_text_atomic(out / "calibration.md", render(doc))
        print(f"  exit {summary['exit_code']}, {summary.get('elapsed_s') or 0:.0f} s", file=sys.stderr, flush=True)
    print(render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
