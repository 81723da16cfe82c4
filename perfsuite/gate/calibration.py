"""How good is the upgrade gate on *this* machine? Real gates with the same MXNet on both sides (separately built
environments), some with a known slowdown injected into ONE workload of the candidate (`--inject-slowdown` with
`--inject-target`: a busy-wait proportional to each timed call's own duration), give per-workload detection rates,
and a pool of real A/A sessions, resampled through the gate's own decision code, gives the false-alarm rate.

    python -m perfsuite.gate.calibration --spec mxnet==1.9.1 --profile quick --aa 10 \\
        --inject 0.02@model:bert-base/hybridized/classification/b1/L128 --inject 0.02@random-op --gates 10 \\
        --resample 10000 --out results/gate-calibration

Conditions are interleaved (A/A, then one gate per --inject, then A/A, ...) so the machine's drift over hours hits
each alike; `random-op` picks one of the profile's single-op workloads at random (seeded) per gate. The results
file is rewritten after every gate, so an interrupted calibration resumes where it stopped.

The false-alarm pool: every session figure of every workload that was not injected (in A/A gates, all of them; in
injected gates, the others) is a draw of a session under "no difference". The two sides of an A/A session are
exchangeable, so the figure's sign is a fair coin: each resampled gate draws, for every workload, up to the
design's maximum of sessions from that workload's pool with random signs and runs them through verdict.replay (the
gate's look after every session). A resampled gate is a false alarm when any workload is called slower.

`--disturb DUTY` runs a competing process on one core at that duty cycle (busy 10 ms of every 10/DUTY ms) during
every gate: the standard disturbance for comparing gate modes. This is a benchmark, not a test: hours on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from perfsuite.bench import skip_reason_op
from perfsuite.env import read_cpu_model, usable_cpus
from perfsuite.errors import PerfsuiteInputError
from perfsuite.gate import gate, options
from perfsuite.gate.verdict import replay
from perfsuite.results import write_json_atomic, write_text_atomic
from perfsuite.stats import SequentialDesign
from perfsuite.tables import table
from perfsuite.workloads import GATE_PROFILES

__all__ = ["main", "summarize", "render", "resample", "plan", "parse_inject", "session_power", "noise_needs"]

FORMAT = "perfsuite-gate-calibration"
FORMAT_VERSION = 2
RANDOM_OP = "random-op"


def parse_inject(text: str) -> Tuple[float, str]:
    """'0.02@model:...' or '0.02@random-op' -> (fraction, target)."""
    frac, sep, target = text.partition("@")
    try:
        x = float(frac)
    except ValueError:
        x = math.nan
    if not sep or not target or not 0 < x < 10:
        raise PerfsuiteInputError(f"--inject {text!r}: expected FRACTION@WORKLOAD or FRACTION@{RANDOM_OP}, e.g. "
                                  "0.02@model:bert-base/hybridized/classification/b1/L128 (0 < FRACTION < 10)")
    return x, target


def plan(aa: int, injects: Sequence[Tuple[float, str]], gates: int) -> List[Dict[str, Any]]:
    """Interleaved conditions: round r runs one A/A gate (while any remain) and one gate per --inject."""
    runs: List[Dict[str, Any]] = []
    for r in range(max(aa, gates)):
        if r < aa:
            runs.append({"inject": 0.0, "into": None, "condition": "A/A"})
        if r < gates:
            runs.extend({"inject": x, "into": tgt, "condition": f"{x:g} into {tgt}"} for x, tgt in injects)
    return runs


def _summary_of_gate(doc: Dict[str, Any]) -> Dict[str, Any]:
    lat = doc.get("latency") or {}
    targets = {}
    for tid, t in (lat.get("targets") or {}).items():
        c = t.get("comparison") or {}
        targets[tid] = {"outcome": t.get("outcome"), "injected": bool(t.get("injected")), "ratio": c.get("ratio"),
                        "low": c.get("low"), "high": c.get("threshold_bound"), "sessions": c.get("sessions"),
                        "pairs": c.get("pairs"), "figures": t.get("figures") or [],
                        "decided_after": t.get("decided_after_sessions"), "noise": c.get("noise"),
                        "session_s": t.get("session_s") or [], "disturbed_share": c.get("disturbed_share")}
    v = doc.get("verdict") or {}
    return {"exit_code": v.get("exit_code"), "word": v.get("word"), "elapsed_s": doc.get("elapsed_s"),
            "targets": targets, "sessions": len(lat.get("sessions") or []), "status": doc.get("status"),
            "design": lat.get("design"), "op_design": lat.get("op_design"),
            "stopped_because": lat.get("stopped_because")}


def _rate(k: int, n: int) -> Dict[str, Any]:
    from scipy.stats import binomtest

    if n == 0:
        return {"k": 0, "n": 0}
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return {"k": k, "n": n, "rate": k / n, "ci95": [ci.low, ci.high]}


def pool(runs: List[Dict[str, Any]]) -> Dict[str, List[float]]:
    """Every A/A session figure per workload: all workloads of A/A gates, the non-injected ones of the others."""
    out: Dict[str, List[float]] = {}
    for r in runs:
        for tid, t in r.get("targets", {}).items():
            if not t.get("injected") and t.get("figures"):
                out.setdefault(tid, []).extend(t["figures"])
    return out


def resample(pooled: Dict[str, List[float]], design: Any, n_gates: int, threshold: float,
             seed: int = 0, op_design: Any = None) -> Dict[str, Any]:
    """Resampled A/A gates through verdict.replay: false alarms (any workload slower), SAFE (every workload ruled
    out within the design's sessions), and sessions to a decision per workload. Single ops follow `op_design`
    (the gate's own for them: more sessions) when given, the others `design`."""

    rng = np.random.default_rng(seed)
    tids = sorted(t for t, v in pooled.items() if len(v) >= 2)
    w = max(1, len(tids))
    alarms = safe = 0
    per: Dict[str, Dict[str, Any]] = {t: {"slower": 0, "no slowdown": 0, "undecided": 0, "sessions": []} for t in tids}
    for _ in range(n_gates):
        any_slow, all_out = False, True
        for tid in tids:
            p = np.asarray(pooled[tid])
            d = op_design if op_design is not None and tid.startswith("op:") else design
            draw = rng.choice(p, size=d.max_sessions) * rng.choice((-1.0, 1.0), size=d.max_sessions)
            decision, k = replay(list(draw), d, w, threshold)
            per[tid][decision or "undecided"] += 1
            if k:
                per[tid]["sessions"].append(k)
            any_slow |= decision == "slower"
            all_out &= decision == "no slowdown"
        alarms += any_slow
        safe += all_out
    for tid, d in per.items():
        s = d.pop("sessions")
        d["median_sessions"] = float(np.median(s)) if s else None
        d["pool"] = len(pooled[tid])
    return {"gates": n_gates, "workloads": w, "false_alarms": _rate(alarms, n_gates),
            "safe": _rate(safe, n_gates), "per_workload": per, "seed": seed}


def summarize(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Per condition: gates NOT SAFE / SAFE / UNDECIDED, detection of the injected workload, time per gate; the A/A
    noise per workload; false alarms among real non-injected workload verdicts."""
    out: Dict[str, Any] = {"conditions": {}}
    for cond in dict.fromkeys(r["condition"] for r in runs):
        rs = [r for r in runs if r["condition"] == cond]
        ran = [r for r in rs if r.get("exit_code") in (0, 1, 3)]
        injected = [next((tid for tid, t in r["targets"].items() if t.get("injected")), None) for r in ran]
        caught = [tid is not None and r["targets"][tid]["outcome"] == "slower" for r, tid in zip(ran, injected)]
        named_only = [c and all(t["outcome"] != "slower" for x, t in r["targets"].items() if x != tid)
                      for r, tid, c in zip(ran, injected, caught)]
        secs = [r["elapsed_s"] for r in ran if r.get("elapsed_s")]
        out["conditions"][cond] = {
            "condition": cond, "inject": rs[0]["inject"], "gates": len(ran), "failed": len(rs) - len(ran),
            "not_safe": _rate(sum(r["exit_code"] == 1 for r in ran), len(ran)),
            "safe": _rate(sum(r["exit_code"] == 0 for r in ran), len(ran)),
            "undecided": _rate(sum(r["exit_code"] == 3 for r in ran), len(ran)),
            "injected_caught": _rate(sum(caught), len(ran)) if rs[0]["inject"] else None,
            "injected_named_alone": _rate(sum(named_only), len(ran)) if rs[0]["inject"] else None,
            "injected_targets": sorted({t for t in injected if t}),
            "seconds": {"median": float(np.median(secs)) if secs else None, "max": max(secs) if secs else None},
            "sessions_median": float(np.median([r["sessions"] for r in ran])) if ran else None}
    verdicts = [(tid, t["outcome"]) for r in runs for tid, t in r["targets"].items()
                if not t.get("injected") and t["outcome"] not in ("skipped", "error")]
    out["real_false_alarms"] = _rate(sum(o == "slower" for _, o in verdicts), len(verdicts))
    noise: Dict[str, Any] = {}
    for tid in sorted({tid for tid, _ in verdicts}):
        ns = [r["targets"][tid]["noise"] for r in runs if tid in r["targets"] and not r["targets"][tid]["injected"]
              and r["targets"][tid].get("noise")]
        pooled = pool(runs).get(tid, [])
        outcomes = [o for x, o in verdicts if x == tid]
        noise[tid] = {"within_sd_per_pair": _median(n.get("within_sd_per_pair") for n in ns),
                      "between_sd": _median(n.get("between_sd") for n in ns),
                      "session_sd": float(np.std(pooled, ddof=1)) if len(pooled) > 1 else None,
                      "pairs_per_session": _median((n.get("pairs") or 0) / max(1, n.get("sessions") or 1) for n in ns),
                      "sessions_pooled": len(pooled),
                      "session_s": _median(x for r in runs if tid in r["targets"] and not r["targets"][tid]["injected"]
                                           for x in r["targets"][tid].get("session_s") or []),
                      "ruled_out": sum(o in ("no slowdown", "faster") for o in outcomes), "verdicts": len(outcomes)}
    out["aa_noise"] = noise
    out["needs"] = noise_needs(noise, max(1, len(noise))) if noise else None
    return out


def session_power(sd: float, sessions: int, effect: float, workloads: int,
                  confidence: float = 0.99) -> Dict[str, float]:
    """Planning figures for one workload whose session figures have sd `sd` (log-ratio): the chance that a gate
    planned for `sessions` sessions, run to its last look, calls a true slowdown of `effect` (a ratio - 1) slower,
    and the chance that it rules a slowdown of `effect` out when there is none. Normal theory: a noncentral t at
    the design's last-look bounds (SequentialDesign, W workloads, the trimmed-mean t's degrees of freedom); the
    trimming's small loss of efficiency and the earlier looks' small gain are left out."""
    from scipy import stats as st

    design = SequentialDesign(confidence, sessions, min(4, sessions))
    df = sessions - 2 * int(math.floor(0.1 * sessions)) - 1
    q_slow, q_safe = design.critical(sessions, workloads, df)
    ncp = math.log1p(effect) / (sd / math.sqrt(sessions)) if sd > 0 else math.inf
    return {"catch": float(st.nct.sf(q_slow, df, ncp)), "rule_out": float(st.nct.sf(q_safe, df, ncp))}


def _fewest_sessions(enough: Any, most: int) -> Optional[int]:
    """The smallest k in [4, most] for which enough(k) holds (power grows with the sessions: bisection, since each
    new design's boundaries take a second or two to compute), or None."""
    if not enough(most):
        return None
    lo, hi = 3, most  # enough(hi) holds; lo is below every candidate
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if enough(mid):
            hi = mid
        else:
            lo = mid
    return hi


def noise_needs(noise: Dict[str, Any], workloads: int, effect: float = 0.02, power: float = 0.9,
                confidence: float = 0.99, most: int = 60) -> Dict[str, Any]:
    """For each workload of the A/A noise table (summarize's aa_noise: session sd, median seconds per session): the
    fewest sessions of a design planned for that many with which a slowdown of `effect` is caught with chance
    `power`, and those with which one is ruled out under A/A with that chance, with the seconds such sessions took
    in the gates (None beyond `most` sessions). What the measured noise allows on this machine, whatever the budget."""
    out: Dict[str, Any] = {}
    for tid, n in noise.items():
        sd, per = n.get("session_sd"), n.get("session_s")
        row: Dict[str, Any] = {"session_sd": sd, "session_s": per}
        for what in ("catch", "rule_out"):
            k = _fewest_sessions(lambda k: session_power(sd, k, effect, workloads, confidence)[what] >= power,
                                 most) if sd else None
            row[f"{what}_sessions"] = k
            row[f"{what}_s"] = k * per if k and per else None
        out[tid] = row
    return {"effect": effect, "power": power, "confidence": confidence, "workloads": workloads, "targets": out}


def _median(xs: Any) -> Optional[float]:
    v = [x for x in xs if x is not None and x == x]
    return float(np.median(v)) if v else None


def _fmt_rate(r: Optional[Dict[str, Any]]) -> str:
    if not r or not r.get("n"):
        return "-"
    lo, hi = r["ci95"]
    fmt = ".0%" if r["n"] < 1000 else ".2%"  # thousands of resampled gates: a rate of 0.3 % must not print as 0 %
    return f"{r['k']} of {r['n']} [{lo:{fmt}}, {hi:{fmt}}]"


def render(doc: Dict[str, Any]) -> str:
    s = doc["summary"]
    lines = [f"# Gate calibration: {doc['spec']}, profile {doc['profile']}", "",
             f"Machine: {doc.get('machine')}; threads per worker {doc.get('threads')}; {len(doc['runs'])} gates in "
             f"{doc.get('elapsed_s', 0) / 3600:.1f} h" + (f"; disturbance: one core at {doc['disturb']:.0%} duty"
                                                          if doc.get("disturb") else "") + ".", ""]
    rows = [[c["condition"], c["gates"], _fmt_rate(c["not_safe"]), _fmt_rate(c["safe"]), _fmt_rate(c["undecided"]),
             _fmt_rate(c["injected_caught"]), _fmt_rate(c["injected_named_alone"]), c["sessions_median"],
             f"{c['seconds']['median']:.0f} / {c['seconds']['max']:.0f}" if c["seconds"]["median"] else "-",
             c["failed"]] for c in s["conditions"].values()]
    lines += [table(["condition", "gates", "NOT SAFE (95% CI)", "SAFE", "UNDECIDED", "injected workload called slower",
                     "... and no other", "median sessions", "s per gate (median / max)", "failed"], rows), ""]
    rows = [[tid, f"{n['within_sd_per_pair'] * 100:.2f}" if n["within_sd_per_pair"] is not None else "-",
             f"{n['between_sd'] * 100:.2f}" if n["between_sd"] is not None else "-",
             f"{n['session_sd'] * 100:.2f}" if n["session_sd"] is not None else "-",
             f"{n['pairs_per_session']:.0f}" if n["pairs_per_session"] else "-", n["sessions_pooled"],
             f"{n['ruled_out']} of {n['verdicts']}"] for tid, n in s["aa_noise"].items()]
    lines += ["A/A noise per workload (medians over gates): sd of one pair's log-ratio within a session, sd between "
              "sessions beyond the pairs', sd of the session figures, and how often the real gates ruled a slowdown "
              "beyond the threshold out:", "",
              table(["workload", "sd per pair %", "sd between sessions %", "sd of session figures %",
                     "pairs per session", "A/A sessions pooled", "ruled out"], rows), ""]
    nd = s.get("needs")
    if nd:
        rows = [[tid, f"{r['session_sd'] * 100:.2f}" if r["session_sd"] is not None else "-",
                 f"{r['session_s']:.1f}" if r["session_s"] else "-",
                 r["catch_sessions"] or f"> {60}", f"{r['catch_s']:.0f}" if r["catch_s"] else "-",
                 r["rule_out_sessions"] or f"> {60}", f"{r['rule_out_s']:.0f}" if r["rule_out_s"] else "-"]
                for tid, r in nd["targets"].items()]
        catch = [r["catch_s"] for r in nd["targets"].values()]
        total = f"{sum(catch):.0f} s" if all(catch) else "more than any budget"
        lines += [f"What this noise needs (planning figures, normal theory at the design's last look, "
                  f"{nd['workloads']} workloads, confidence {nd['confidence']}): the sessions of a design planned "
                  f"for that many that catch a {nd['effect']:.0%} slowdown {nd['power']:.0%} of the time, and that "
                  f"rule one out under A/A {nd['power']:.0%} of the time, with what such sessions cost in these "
                  f"gates (worker starts not included). Catching it on every workload in one gate takes {total} "
                  "of sessions:", "",
                  table(["workload", "sd of session figures %", "s per session", "sessions to catch",
                         "their s", "sessions to rule out", "their s"], rows), ""]
    rf = s["real_false_alarms"]
    lines += [f"Real gates: {_fmt_rate(rf)} workload verdicts without an injected slowdown were 'slower'.", ""]
    rs = doc.get("resampled")
    if rs:
        lines += [f"Resampled A/A gates ({rs['gates']}, {rs['workloads']} workloads, sign-flipped session figures from "
                  f"the pool, gate.replay): false alarms {_fmt_rate(rs['false_alarms'])}, SAFE within the design's "
                  f"sessions {_fmt_rate(rs['safe'])}.", ""]
        rows = [[tid, d["pool"], d["slower"], d["no slowdown"], d["undecided"], d["median_sessions"]]
                for tid, d in rs["per_workload"].items()]
        lines += [table(["workload", "pool", "slower", "no slowdown", "undecided", "median sessions to decide"], rows),
                  ""]
    return "\n".join(lines)


def _disturber(duty: float, stop: Any) -> None:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    period = 0.010 / duty
    while not stop.is_set():
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.010:
            pass
        time.sleep(max(0.0, period - 0.010))


def _set_aside_interrupted(out: Path, name: str) -> None:
    """A gate interrupted with its calibration (the results file lists only finished gates) left its folder and
    log: renamed to `<name>.interrupted-<k>` (kept, never reused), so the gate that replaces it can reserve its
    folder; without this the resumed gate was refused ("already holds files") and counted as failed."""
    stale = [p for p in (out / name, out / f"{name}.progress.log") if p.exists()]
    if not stale:
        return
    k = 1
    while any(Path(f"{p}.interrupted-{k}").exists() for p in stale):
        k += 1
    for p in stale:
        p.rename(f"{p}.interrupted-{k}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m perfsuite.gate.calibration", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--spec", default="mxnet==1.9.1", help="the MXNet on both sides (default mxnet==1.9.1)")
    p.add_argument("--profile", default="quick", help="the gate profile (default quick)")
    p.add_argument("--aa", type=int, default=10, help="A/A gates (default 10)")
    p.add_argument("--inject", action="append", default=[], metavar="FRACTION@WORKLOAD",
                   help=f"a condition: this slowdown injected into one workload (or {RANDOM_OP}: one single-op "
                        "workload at random per gate); repeatable")
    p.add_argument("--gates", type=int, default=10, help="gates per --inject condition (default 10)")
    p.add_argument("--resample", type=int, default=10000, help="resampled A/A gates (default 10000)")
    p.add_argument("--time-budget", type=float, default=None, help="per gate (default: the profile's)")
    p.add_argument("--threads", type=int, default=None, help="the gates' --threads (default: the gate's default)")
    p.add_argument("--parity", action="store_true", help="also run parity in every gate (off: latency only)")
    p.add_argument("--disturb", type=float, default=0.0, metavar="DUTY",
                   help="a competing process on one core at this duty cycle (0 < DUTY < 1) during the gates")
    p.add_argument("--only-resample", action="store_true", help="no new gates: resample the pool of --out")
    p.add_argument("--out", default="results/gate-calibration")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        injects = [parse_inject(x) for x in args.inject]
        prof = GATE_PROFILES.get(args.profile)
        if prof is None:
            raise PerfsuiteInputError(f"unknown profile {args.profile!r}; allowed: {', '.join(GATE_PROFILES)}")
        known = [t.id for t in prof.target_list()]
        for _, tgt in injects:
            if tgt != RANDOM_OP and tgt not in known:
                raise PerfsuiteInputError(f"--inject: {tgt!r} is not a workload of profile {args.profile!r}; "
                                          f"allowed: {', '.join(known)}, {RANDOM_OP}")
        if not 0 <= args.disturb < 1:
            raise PerfsuiteInputError(f"--disturb {args.disturb!r}: allowed 0 <= DUTY < 1")
        if args.aa < 0 or args.gates < 0 or args.resample < 0:
            raise PerfsuiteInputError("--aa, --gates and --resample must be >= 0")
    except PerfsuiteInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "calibration.json"
    doc: Dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": args.spec,
                           "profile": args.profile, "machine": f"{read_cpu_model()}, {usable_cpus()} CPUs",
                           "threads": args.threads or int(os.environ.get("OMP_NUM_THREADS") or 0)
                           or options.default_threads(), "disturb": args.disturb, "runs": [], "elapsed_s": 0.0}
    if path.exists():
        old = json.loads(path.read_text())
        if (old.get("format_version") == FORMAT_VERSION and old.get("spec") == args.spec
                and old.get("profile") == args.profile):
            doc = old
    ops = [t for t in known if t.startswith("op:")]

    ops = [t for t in ops if not skip_reason_op(t[3:])] or ops
    rng = np.random.default_rng(len(doc["runs"]))
    stop = multiprocessing.Event()
    disturber = None
    if args.disturb and not args.only_resample:
        disturber = multiprocessing.Process(target=_disturber, args=(args.disturb, stop), daemon=True)
        disturber.start()
    t0 = time.perf_counter() - doc.get("elapsed_s", 0.0)
    try:
        for i, cond in enumerate([] if args.only_resample else plan(args.aa, injects, args.gates)):
            if i < len(doc["runs"]):
                continue
            into = cond["into"]
            if into == RANDOM_OP:
                into = str(rng.choice(ops))
            name = f"{i:03d}-{'aa' if not cond['inject'] else 'slow'}"
            print(f"[calibration {i + 1}] {cond['condition']}" + (f" ({into})" if into != cond["into"] else ""),
                  file=sys.stderr, flush=True)
            summary = _one_gate(args, out, name, i, cond["inject"], into)
            summary.update(index=i, name=name, **cond)
            summary["injected_into"] = into
            doc["runs"].append(summary)
            doc["elapsed_s"] = time.perf_counter() - t0
            doc["summary"] = summarize(doc["runs"])
            write_json_atomic(path, doc)
            write_text_atomic(out / "calibration.md", render(doc))
            print(f"  {summary.get('word')} (exit {summary['exit_code']}), {summary.get('elapsed_s') or 0:.0f} s",
                  file=sys.stderr, flush=True)
    finally:
        stop.set()
        if disturber is not None:
            disturber.join(5)
    if doc["runs"]:
        _finish(doc, path, args.resample)
    return 0


def _one_gate(args: argparse.Namespace, out: Path, name: str, seed: int, inject: float,
              into: Optional[str]) -> Dict[str, Any]:
    """One real gate of the calibration (an interrupted earlier attempt's folder set aside), as its summary."""

    opts = options.GateOptions(baseline=args.spec, candidate=args.spec, allow_same=True, profile=args.profile,
                               inject_slowdown=inject, inject_targets=(into,) if into else (), seed=seed,
                               out=str(out / name), parity=args.parity, threads=args.threads,
                               time_budget_s=args.time_budget)
    _set_aside_interrupted(out, name)
    try:
        with open(out / f"{name}.progress.log", "w") as log:
            res = gate.run_gate(opts, err=log)
        return _summary_of_gate(res.doc)
    except (PerfsuiteInputError, RuntimeError) as exc:
        return {"exit_code": 2, "error": str(exc)[:500], "targets": {}, "elapsed_s": None, "sessions": 0}


def _finish(doc: Dict[str, Any], path: Path, resamples: int) -> None:
    """Resample the A/A pool through the gate's decision, write calibration.json and .md, print the report."""

    design_doc = next((r["design"] for r in doc["runs"] if r.get("design")), None)
    op_doc = next((r["op_design"] for r in doc["runs"] if r.get("op_design")), None)
    if design_doc and resamples:
        design = SequentialDesign(design_doc["confidence"], design_doc["max_sessions"], design_doc["first_look"])
        op_design = SequentialDesign(op_doc["confidence"], op_doc["max_sessions"], op_doc["first_look"]) \
            if op_doc else None
        thr = 0.02
        doc["summary"] = summarize(doc["runs"])
        doc["resampled"] = resample(pool(doc["runs"]), design, resamples, thr, seed=0, op_design=op_design)
        doc["resampled"]["threshold"] = thr
    write_json_atomic(path, doc)
    write_text_atomic(path.parent / "calibration.md", render(doc))
    print(render(doc))


if __name__ == "__main__":
    sys.exit(main())
