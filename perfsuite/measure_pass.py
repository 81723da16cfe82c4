"""The one measurement pass of `perfsuite run`, and how long it times things.

Per (model, task, seq_len, batch), the paths of its optimizations (perfsuite.workloads.SPEEDUPS) are timed in
counterbalanced alternation (perfsuite.timing.time_alternating: 6 rounds at least, more in pairs of rounds until
each path has its clean samples and minimum time); each path's samples are its latency measurement and, paired by
round, the speed-ups between them, so drift and interference hit optimized and baseline alike. A workload of no
speed-up pair is timed alone (perfsuite.bench.measure). A progress bar shows each step as it completes, its ETA
from the planned rounds at the per-call times measured so far (_Plan).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from perfsuite import bench, timing as tm
from perfsuite.errors import PerfsuiteInputError, one_line
from perfsuite.progress import ProgressBar
from perfsuite.report import markdown as rp
from perfsuite.stats import min_units_paired
from perfsuite.workloads import SPEEDUPS, Workload

__all__ = ["MIN_SAMPLES", "Timing", "PROFILE_TIMING", "planned_rounds", "speedup_groups", "group_paths",
           "measure_all", "workload_dict"]

#: Every workload keeps at least this many samples (clean ones, unless max_time_s runs out first).
MIN_SAMPLES = 5


@dataclass(frozen=True)
class Timing:
    """How long each workload and each speed-up is timed (a profile's defaults, overridable from the CLI)."""

    warmup: int  # calls after the first (binding) call, before samples
    min_repeat: int  # clean samples at least
    max_repeat: int
    min_time_s: float
    max_time_s: float  # per workload: stop sampling here even if samples were contaminated
    rounds: int  # alternating rounds of the speed-up timing (each path gets this many paired samples)
    gemm_n: int  # size of the GEMM that measures the machine's peak
    gemm_repeat: int = 15  # the peak is the best of this many: on a shared machine some will have both cores

    def __post_init__(self) -> None:
        if self.min_repeat < MIN_SAMPLES:
            raise PerfsuiteInputError(f"min_repeat must be >= {MIN_SAMPLES}")
        if self.rounds < min_units_paired(0.95):  # fewer alternating rounds can never give a speed-up verdict
            raise PerfsuiteInputError(f"rounds must be >= {min_units_paired(0.95)}")


# quick: the quick profile (BERT-base, seq 128, batch 1-32, 4 CPU paths: 24 workloads in 6 alternated groups) is
# timed in one pass (planned_rounds): per group, each path's binding call, two warm-up calls (without them the
# first samples ran 3-7 % slow against a hand-written loop with 3 warm-ups over the same graph, issue 10), then 6
# counterbalanced rounds at least (the speed-ups' pairs), more in pairs of rounds until every path has 5 clean
# samples and 1 s of samples, at most 8 once that holds; max_time_s per path is high enough never to cut a group
# below its rounds (a BERT-base batch of 32 takes about 5 s here).
PROFILE_TIMING: Dict[str, Timing] = {
    "smoke": Timing(warmup=0, min_repeat=5, max_repeat=10, min_time_s=0.0, max_time_s=10.0, rounds=6, gemm_n=256,
                    gemm_repeat=5),
    "quick": Timing(warmup=2, min_repeat=5, max_repeat=7, min_time_s=1.0, max_time_s=60.0, rounds=6, gemm_n=2048),
    "full": Timing(warmup=2, min_repeat=10, max_repeat=50, min_time_s=5.0, max_time_s=120.0, rounds=10, gemm_n=4096),
}


# ------------------------------------------------------------------------------------------------ speed-ups
def speedup_groups(workloads: Sequence[Workload], runnable: Callable[[Workload], Optional[str]]
                   ) -> Tuple[Dict[Tuple[str, str, int, int], List[Tuple[str, str, str]]], List[Dict[str, str]]]:
    """Which SPEEDUPS pairs to time per (model, task, seq_len, batch), and why the others are not measured.

    A pair is timed where both its paths are selected and can run here; all the pairs of one batch are timed in
    one alternation over their paths."""
    selected = {(w.model, w.task, w.seq_len, w.batch): set() for w in workloads}
    for w in workloads:
        selected[(w.model, w.task, w.seq_len, w.batch)].add(w.path)
    groups: Dict[Tuple[str, str, int, int], List[Tuple[str, str, str]]] = {}
    skipped: Dict[Tuple[str, str, str], str] = {}
    for key, paths in selected.items():
        for opt, base, lab in SPEEDUPS:
            reasons = [r for r in (runnable(Workload(key[0], p, key[1], key[3], key[2])) for p in (opt, base)) if r]
            if reasons:  # the reason it cannot run here says more than "not selected"
                skipped.setdefault((opt, base, lab), reasons[0])
                continue
            if opt not in paths or base not in paths:
                missing = [p for p in (opt, base) if p not in paths]
                skipped.setdefault((opt, base, lab), f"path {' and '.join(missing)} not selected (--path)")
                continue
            groups.setdefault(key, []).append((opt, base, lab))
    measured = {pair for pairs in groups.values() for pair in pairs}
    notes = [{"optimized": o, "baseline": b, "label": lab, "reason": r}
             for (o, b, lab), r in skipped.items() if (o, b, lab) not in measured]
    return groups, notes


def workload_dict(w: Workload) -> Dict[str, Any]:
    return {"model": w.model, "path": w.path, "task": w.task, "batch": w.batch, "seq_len": w.seq_len}


def planned_rounds(timing: Timing) -> Tuple[int, int]:
    """(rounds at least, rounds at most once min_time_s is reached) of a group's alternation: every path gets as many
    samples as a workload timed alone (min_repeat clean) and a speed-up needs (timing.rounds)."""
    least = max(timing.rounds, timing.min_repeat)
    return least, max(least, timing.max_repeat)


class _Plan:
    """What each step of the measurement pass should take: its planned calls (binding, warm-up, the planned rounds or
    samples) times the per-call time of each path. Before a path is timed its call time is guessed from FLOPs at a
    fraction of the measured GEMM peak; from its first group on it comes from the medians measured: one batch size
    scaled by (batch + 1) (a call has a fixed part: batch 1 runs far below the GEMM rate), two or more fitted by a
    line in the batch size. The ETA is the sum over the steps left, so it follows the planned rounds."""

    def __init__(self, timing: Timing, gemm_peak_gflops: float) -> None:
        self.timing = timing
        self.rate = max(gemm_peak_gflops * 0.3, 1.0)  # a forward pass reaches a fraction of the GEMM peak
        self.seen: Dict[Tuple[str, str, int, str], Dict[int, float]] = {}

    def record(self, w: Workload, median_s: float) -> None:
        self.seen.setdefault((w.model, w.task, w.seq_len, w.path), {})[w.batch] = median_s

    def call_s(self, w: Workload) -> float:
        pts = self.seen.get((w.model, w.task, w.seq_len, w.path), {})
        if not pts:
            return w.flops / (self.rate * 1e9)
        bs = sorted(pts)
        if len(bs) >= 2:
            slope, icpt = np.polyfit(bs, [pts[b] for b in bs], 1)
            if slope > 0:
                return max(float(icpt + slope * w.batch), 0.5 * min(pts.values()))
        near = min(bs, key=lambda b: abs(b - w.batch))
        return pts[near] * (w.batch + 1) / (near + 1)

    def seconds(self, step: Any, reasons: Dict[Workload, Optional[str]]) -> float:
        t = self.timing
        if isinstance(step, Workload):
            if reasons[step]:
                return 0.0
            calls = 1 + t.warmup + t.min_repeat
            return max(t.min_time_s, calls * self.call_s(step))
        (model, task, seq, batch), paths = step
        calls = 1 + t.warmup + planned_rounds(t)[0]
        return sum(calls * self.call_s(Workload(model, p, task, batch, seq)) for p in paths)


def _steps(workloads: List[Workload], reasons: Dict[Workload, Optional[str]],
           groups: Dict[Any, List[Tuple[str, str, str]]]) -> List[Any]:
    """The measurement pass in order: a group (key, its paths) where its first workload comes, a workload alone
    where it belongs to no group (or cannot run here)."""
    steps: List[Any] = []
    seen = set()
    for w in workloads:
        key = (w.model, w.task, w.seq_len, w.batch)
        if key in groups and not reasons[w]:
            if key not in seen:
                seen.add(key)
                steps.append((key, group_paths(groups[key])))
        else:
            steps.append(w)
    return steps


def group_paths(pairs: Sequence[Tuple[str, str, str]]) -> List[str]:
    """The paths a group alternates: those of its speed-up pairs, in order of first mention."""
    return list(dict.fromkeys(p for pair in pairs for p in pair[:2]))


def measure_all(doc: Dict[str, Any], workloads: List[Workload], reasons: Dict[Workload, Optional[str]],
             groups: Dict[Any, List[Tuple[str, str, str]]], timing: Timing, err: TextIO,
             save: Callable[[], None]) -> None:
    """The one measurement pass: each group's paths alternated (their latency samples are also the speed-ups'
    pairs), each other workload timed alone; skips and MXNet errors are recorded, not raised. Prepared paths stay
    cached while their model and task do (the alternation needs them all); memory per path comes from the probes.
    A progress bar shows each step as it completes, its ETA from the planned rounds (_Plan)."""
    import gc

    steps = _steps(workloads, reasons, groups)
    plan = _Plan(timing, doc["gemm_peak_gflops"])
    bar = ProgressBar([plan.seconds(s, reasons) for s in steps], err)
    last_graph = None
    for i, step in enumerate(steps):
        model, task = (step.model, step.task) if isinstance(step, Workload) else (step[0][0], step[0][1])
        if (model, task) != last_graph:
            bench.runner_for.cache_clear()
            gc.collect()
            last_graph = (model, task)
        t0, unpaced0, n0 = time.perf_counter(), bar.unpaced_s, len(doc["measurements"])
        if isinstance(step, Workload):
            text = _measure_alone(doc, step, reasons[step], timing, bar)
        else:
            text = _measure_group(doc, step[0], groups[step[0]], timing, bar)
        for m in doc["measurements"][n0:]:
            clean = [x for x, c in zip(m["samples_s"], m["contaminated"]) if not c] or m["samples_s"]
            plan.record(Workload(m["workload"]["model"], m["workload"]["path"], m["workload"]["task"],
                                 m["workload"]["batch"], m["workload"]["seq_len"]), float(np.median(clean)))
        bar.step(text, weight=time.perf_counter() - t0 - (bar.unpaced_s - unpaced0),
                 replan=[plan.seconds(s, reasons) for s in steps[i + 1:]])
        doc["progress"].append({"step": i + 1, "elapsed_s": round(time.perf_counter() - bar.start, 1),
                                "eta_s": None if bar.eta_s() is None else round(bar.eta_s(), 1)})
        save()


def _measure_alone(doc: Dict[str, Any], w: Workload, reason: Optional[str], timing: Timing,
                   bar: ProgressBar) -> str:
    """A workload of no speed-up pair, timed alone (bench.measure); the progress text of the step."""

    if reason:
        doc["skipped"].append({"id": w.id, "workload": workload_dict(w), "reason": reason})
        return f"skip {w.id}: {reason[:60]}"
    bar.show(f"timing {w.id}")
    try:
        with bar.unpaced():
            bench.runner_for(w.model, w.path, w.task)
        m = bench.measure(w, warmup=timing.warmup, min_repeat=timing.min_repeat, max_repeat=timing.max_repeat,
                          min_time_s=timing.min_time_s, max_time_s=timing.max_time_s)
    except Exception as exc:  # an MXNet error on one path is a finding about this build, not a crash
        doc["errors"].append({"id": w.id, "workload": workload_dict(w), "error": one_line(exc)})
        return f"ERROR {w.id}: {one_line(exc)[:60]}"
    doc["measurements"].append(m.to_dict())
    return f"{w.id}: {m.median_s * 1e3:.1f} ms median, {len(m.samples_s)} samples, {m.dropped} dropped"


class _PathFailed(Exception):
    def __init__(self, path: str, exc: BaseException) -> None:
        super().__init__(path)
        self.path, self.exc = path, exc


def _measure_group(doc: Dict[str, Any], key: Tuple[str, str, int, int], pairs: List[Tuple[str, str, str]],
                   timing: Timing, bar: ProgressBar) -> str:
    """One (model, task, seq_len, batch): its paths timed in counterbalanced alternation (planned_rounds). Each
    path's samples are its latency measurement and, paired by round, the speed-ups between them. A path that
    raises is recorded as an error and the others are timed again without it. Returns the step's progress text."""

    model, task, seq, batch = key
    gid = f"{model}/{task}/b{batch}/L{seq}"
    fns: Dict[str, Callable[[], Any]] = {}
    runners: Dict[str, Any] = {}
    failed: Dict[str, str] = {}

    def fail(path: str, exc: BaseException) -> None:
        w = Workload(model, path, task, batch, seq)
        failed[path] = one_line(exc)
        doc["errors"].append({"id": w.id, "workload": workload_dict(w), "error": failed[path]})

    for p in group_paths(pairs):
        bar.show(f"preparing {p} at {gid}")
        try:
            with bar.unpaced():  # preparing a path happens once per run: not the pace of the timing
                bench.runner_for(model, p, task)
            fns[p], runners[p] = bench.timed(Workload(model, p, task, batch, seq))
        except Exception as exc:
            fail(p, exc)

    def tagged(p: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            try:
                return fn()
            except Exception as exc:
                raise _PathFailed(p, exc) from exc
        return call

    least, most = planned_rounds(timing)
    samples: Dict[str, List[Any]] = {}
    while len(fns) >= 1:
        try:
            samples = tm.time_alternating(
                {p: tagged(p, f) for p, f in fns.items()}, rounds=least, warmup=timing.warmup,
                min_clean=timing.min_repeat, min_time_s=timing.min_time_s, max_rounds=most,
                max_time_s=timing.max_time_s * len(fns),
                on_round=lambda k: bar.show(f"alternating {', '.join(fns)} at {gid}: round {k} of {least}+"))
            break
        except _PathFailed as f:
            fail(f.path, f.exc)
            del fns[f.path]
    alternated = list(fns)
    for p in alternated:
        m = bench.measurement(Workload(model, p, task, batch, seq), samples[p], timing.warmup, runners[p],
                              alternated_with=alternated, group=gid)
        doc["measurements"].append(m.to_dict())
    done: List[Dict[str, Any]] = []
    for opt, base, lab in pairs:
        if opt in fns and base in fns:
            done.append({
                "model": model, "task": task, "seq_len": seq, "batch": batch, "optimized": opt, "baseline": base,
                "label": lab, "rounds": len(samples[opt]), "alternated": alternated,
                "from_latency_samples": True,
                "optimized_samples_s": [s.wall_s for s in samples[opt]],
                "baseline_samples_s": [s.wall_s for s in samples[base]],
                "optimized_contaminated": [s.contaminated for s in samples[opt]],
                "baseline_contaminated": [s.contaminated for s in samples[base]]})
            doc["speedups"].append(done[-1])
        else:
            bad = [p for p in (opt, base) if p in failed]
            doc["speedups_skipped"].append({"optimized": opt, "baseline": base, "label": lab, "batch": batch,
                                            "reason": f"{bad[0]} raised at {gid}: {failed[bad[0]][:200]}"})
    med = "; ".join(f"{p} {1e3 * float(np.median([s.wall_s for s in samples[p]])):.0f} ms" for p in alternated)
    spd = "; ".join(f"{r['label'].split(' vs ')[0]} {rp.format_speedup(rp.speedup_ratio(r))}" for r in done)
    return (f"{gid} ({len(samples[alternated[0]]) if alternated else 0} rounds): {med}"
            + (f" | {spd}" if spd else "") + (f" | ERROR {', '.join(failed)}" if failed else ""))
