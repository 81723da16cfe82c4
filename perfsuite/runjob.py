"""`perfsuite run`, the main job: parity summary, then latency per workload and the speed-up table, into a
results folder (results.json, report.md, PNG plots).

Order of work: (1) the memory probes start (perfsuite.memory: one fresh process per path at the probed batch
size, its peak RSS) and, alongside them, parity: the op-level grid on CPU (quick) and the whole-model check of
each selected path on the 'small' model; (2) the timer's own overhead and this machine's FP32 GEMM peak; (3) one
measurement pass: per (model, task, seq_len, batch), the paths of its optimizations (perfsuite.workloads.SPEEDUPS)
timed in counterbalanced alternation (A B C, C B A, ...), until each has its clean samples and minimum time; each
path's samples are its latency figures (median, IQR, p90, p99) and, paired by round, the speed-ups, so drift and
interference hit optimized and baseline alike. A workload of no speed-up pair is timed alone; workloads whose
path cannot run here are recorded with the reason; (4) report.md and plots. results.json is versioned, holds raw
samples plus metadata, and is rewritten atomically after every step: an interrupted run loses nothing already
measured.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from perfsuite import __version__
from perfsuite import report as rp
from perfsuite.errors import PerfsuiteInputError, one_line
from perfsuite.results import write_json_atomic
from perfsuite.progress import ProgressBar
from perfsuite.tables import clock
from perfsuite.workloads import MODEL_PARITY_SHAPES, PROFILES, SPEEDUPS, Workload, select

__all__ = ["Timing", "PROFILE_TIMING", "RunOptions", "RunOutcome", "plan", "run_job", "ProgressBar",
           "speedup_groups", "default_out_dir", "MIN_SAMPLES", "PARITY_MODEL", "apply_default_threads",
           "Terminated"]

#: Every workload keeps at least this many samples (clean ones, unless max_time_s runs out first).
MIN_SAMPLES = 5
#: The whole-model parity check of each selected path runs on this model (at its MODEL_PARITY_SHAPES shape).
PARITY_MODEL = ("small",) + MODEL_PARITY_SHAPES["small"]


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
        from perfsuite.stats import min_units_paired

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


@dataclass
class RunOptions:
    """What `perfsuite run` was asked to do (the CLI's options; None means the profile's default)."""

    profile: str = "quick"
    models: Optional[Sequence[str]] = None
    paths: Optional[Sequence[str]] = None
    tasks: Optional[Sequence[str]] = None
    batch_sizes: Optional[Sequence[int]] = None
    seq_lens: Optional[Sequence[int]] = None
    out: Optional[str] = None
    price_per_hour: Optional[float] = None
    instance: Optional[str] = None  # which of the seed's instances this machine is (report.PRICES), for the cost
    parity: bool = True
    min_time_s: Optional[float] = None
    max_repeat: Optional[int] = None
    memory: bool = True  # the memory probes (perfsuite.memory): one fresh process per path and probed batch size
    memory_batches: Optional[Sequence[int]] = None  # None: the smallest selected batch size
    argv: Optional[Sequence[str]] = None  # the options as given, recorded in results.json
    threads_note: str = ""


@dataclass
class RunOutcome:
    """Where the run wrote its results and how it went."""

    out_dir: Path
    results_path: Path
    report_path: Optional[Path]
    plots: List[str]
    doc: Dict[str, Any]
    exit_code: int


def plan(opts: RunOptions) -> Tuple[List[Workload], Timing]:
    """Validate every option before any MXNet work; the selected workloads and the timing settings."""
    workloads = select(opts.profile, models=opts.models, paths=opts.paths, tasks=opts.tasks,
                       batch_sizes=opts.batch_sizes, seq_lens=opts.seq_lens)
    if not workloads:
        raise PerfsuiteInputError("the selection matches no workload")
    if opts.instance is not None and opts.instance not in rp.PRICES:
        raise PerfsuiteInputError(f"--instance {opts.instance!r}; allowed: {', '.join(rp.PRICES)} (or give this "
                                  "machine's price with --price-per-hour)")
    if opts.price_per_hour is not None:
        p = opts.price_per_hour
        if not isinstance(p, (int, float)) or not math.isfinite(p) or p <= 0:
            raise PerfsuiteInputError(f"--price-per-hour {p!r}: must be a positive, finite number of dollars per hour "
                                      "(e.g. 0.17 for c5.xlarge)")
    t = PROFILE_TIMING[opts.profile]
    if opts.min_time_s is not None:
        if not math.isfinite(opts.min_time_s) or opts.min_time_s < 0:
            raise PerfsuiteInputError(f"--min-time {opts.min_time_s!r}: must be a finite number of seconds >= 0")
        # "at least": sampling goes on until min_time_s even past max_repeat (time_callable), within max_time_s
        t = Timing(**{**asdict(t), "min_time_s": float(opts.min_time_s),
                      "max_time_s": max(t.max_time_s, 2 * float(opts.min_time_s))})
    if opts.max_repeat is not None:
        if not isinstance(opts.max_repeat, int) or opts.max_repeat < MIN_SAMPLES:
            raise PerfsuiteInputError(f"--max-repeat {opts.max_repeat!r}: must be an integer >= {MIN_SAMPLES} (every "
                                      f"workload keeps at least {MIN_SAMPLES} samples)")
        t = Timing(**{**asdict(t), "max_repeat": opts.max_repeat, "min_repeat": min(t.min_repeat, opts.max_repeat)})
    if opts.memory_batches is not None:
        chosen = sorted({w.batch for w in workloads})
        bad = [b for b in opts.memory_batches if b not in chosen]
        if bad or not opts.memory_batches:
            raise PerfsuiteInputError(f"--memory-batch {','.join(map(str, opts.memory_batches)) or '(empty)'}: each "
                                      f"must be a selected batch size ({', '.join(map(str, chosen))})")
    if opts.out is not None:
        from perfsuite.outputs import check_output_folder

        if (Path(opts.out) / "results.json").exists():
            raise PerfsuiteInputError(f"--out {opts.out!r} already holds results.json; choose another folder (or "
                                      "re-render it with 'perfsuite report')")
        check_output_folder(opts.out, "--out")
    else:
        from perfsuite.outputs import check_writable_anchor

        check_writable_anchor(Path("results"), "the default results folder")
    return workloads, t


def default_out_dir(dist_version: str, root: str = "results") -> Path:
    """results/<timestamp>-mxnet-<version>/ (reserve_folder adds -2, -3, ... when another run has it)."""
    return Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-mxnet-{dist_version}"


def apply_default_threads(environ: Optional[Dict[str, str]] = None) -> str:
    """With OMP_NUM_THREADS unset and MXNet not yet imported, use every usable CPU (MXNet 1.x's own default is
    half of them); returns a note for the report saying what was decided."""
    environ = os.environ if environ is None else environ
    if "OMP_NUM_THREADS" in environ:
        return f"OMP_NUM_THREADS={environ['OMP_NUM_THREADS']} was set by the caller."
    from perfsuite.env import usable_cpus

    n = usable_cpus()
    if "mxnet" in sys.modules:
        return ("OMP_NUM_THREADS was unset and MXNet was already imported: MXNet's default (half the usable CPUs) "
                "is in effect.")
    environ["OMP_NUM_THREADS"] = str(n)
    return (f"OMP_NUM_THREADS was unset: perfsuite run set it to {n} (every usable CPU; MXNet's own default would "
            "be half). Set OMP_NUM_THREADS yourself to choose.")


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


# ------------------------------------------------------------------------------------------------ parity
def _parity(paths: Sequence[str], stream: TextIO, int8_task: bool = True) -> Dict[str, Any]:
    """The op grid (CPU, quick) and the whole-model check of each selected path on the small model."""
    from perfsuite import parity
    from perfsuite.model_parity import ModelCase, run_model_cases

    t0 = time.perf_counter()
    outcomes = parity.run_cases(parity.default_cases(devices=["cpu"], quick=True))
    rows = parity.summarize(outcomes)
    ops = {"counts": {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "error", "skip")},
           "rows": [{"path": r.path, "mode": r.mode, "device": r.device,
                     "ran": r.counts["pass"] + r.counts["fail"] + r.counts["error"], "skipped": r.counts["skip"],
                     "worst_ratio": None if r.worst_ratio != r.worst_ratio else r.worst_ratio,
                     "verdict": r.verdict, "detail": r.detail} for r in rows],
           "seconds": time.perf_counter() - t0}
    model, batch, seq = PARITY_MODEL
    lib, passes = None, ()
    if "graph_pass" in paths:
        from perfsuite.model_parity import own_pass_selection

        lib, passes, _ = own_pass_selection()
    t0 = time.perf_counter()
    from perfsuite.models import TASKS

    mouts = run_model_cases([ModelCase(model, p, batch, seq, task=t) for p in paths for t in TASKS], lib, passes)
    cases = []
    for o in mouts:
        r = o.result
        if r is not None and r.metrics is not None:
            fig = ", ".join(f"{k}={v:.3f}" for k, v in r.metrics.items())
        elif r is not None:
            fig = f"{r.worst_ratio:.3g}"
        else:
            fig = "-"
        cases.append({"path": o.case.path, "task": o.case.task, "status": o.status, "figure": fig,
                      "detail": "" if o.status == "pass" else o.detail.splitlines()[0] if o.detail else "",
                      "worst_ratio": None if r is None or not r.comparisons else r.worst_ratio,
                      "metrics": None if r is None else r.metrics, "seconds": o.seconds})
    mod = {"model": model, "batch": batch, "seq_len": seq, "cases": cases, "seconds": time.perf_counter() - t0,
           "counts": {s: sum(o.status == s for o in mouts) for s in ("pass", "fail", "error", "skip")}}
    _print_parity(ops, mod, stream)
    out = {"ops": ops, "model": mod}
    if "int8" in paths:
        out["int8_quality"] = (_int8_quality(stream) if int8_task else
                               {"skipped": "the smoke profile skips the INT8 task (about a minute on 2 cores)"})
    return out


def _int8_quality(stream: TextIO) -> Dict[str, Any]:
    """What INT8's speed-up costs: the MLPerf-style task result (MiniLM semantic search, perfsuite.int8_task)."""
    from perfsuite.model_parity import ModelCase, int8_calibration, int8_task_result, model_weights
    from perfsuite.models import minilm_available
    from perfsuite.paths.model import prepare, skip_reason_path
    from perfsuite.weights import CONFIGS

    reason = skip_reason_path("int8") or minilm_available()
    if reason:
        return {"skipped": reason}
    t0 = time.perf_counter()
    case = ModelCase("minilm", "int8", *MODEL_PARITY_SHAPES["minilm"], inputs="text", task="embedding")
    try:
        runner = prepare("int8", CONFIGS["minilm"], model_weights("minilm"), task="embedding",
                         calib_batches=[int8_calibration(case)])
        res = int8_task_result(runner)
    except Exception as exc:  # a finding about this build, reported
        return {"error": one_line(exc)}
    print(f"INT8 quality: {res.message}", file=stream)
    return {"metrics": res.metrics, "passed": res.passed, "config": res.config, "corpus": res.corpus,
            "message": res.message, "seconds": round(time.perf_counter() - t0, 1)}


def _print_parity(ops: Dict[str, Any], mod: Dict[str, Any], stream: TextIO) -> None:
    c = ops["counts"]
    print(f"parity, op level (CPU, quick): {c['pass']} passed, {c['fail'] + c['error']} failed, {c['skip']} skipped "
          f"({ops['seconds']:.0f} s)", file=stream)
    per_path: Dict[str, List[Dict[str, Any]]] = {}
    for r in ops["rows"]:
        per_path.setdefault(r["path"], []).append(r)
    rows = [("op path", "modes passed", "modes failed", "modes skipped", "worst err/bound")]
    for p, rs in per_path.items():
        worst = [r["worst_ratio"] for r in rs if r["worst_ratio"] is not None]
        rows.append((p, ",".join(r["mode"] for r in rs if r["verdict"] == "PASS") or "-",
                     ",".join(r["mode"] for r in rs if r["verdict"] == "FAIL") or "-",
                     str(sum(r["verdict"] == "SKIP" for r in rs)), f"{max(worst):.3g}" if worst else "-"))
    _print_rows(rows, stream)
    c = mod["counts"]
    print(f"parity, whole model ({mod['model']}, batch {mod['batch']} x seq {mod['seq_len']}): {c['pass']} passed, "
          f"{c['fail'] + c['error']} failed, {c['skip']} skipped ({mod['seconds']:.0f} s)", file=stream)
    rows = [("path", "task", "status", "worst err/bound or agreement")]
    for r in mod["cases"]:
        detail = f": {r['detail'][:100]}" if r["detail"] else ""
        rows.append((r["path"], r.get("task", "classification"), r["status"].upper(), r["figure"][:100] + detail))
    _print_rows(rows, stream)


def _print_rows(rows: List[Tuple[str, ...]], stream: TextIO) -> None:
    from perfsuite.tables import table

    for line in table(rows[0], rows[1:], "simple").splitlines():
        print("  " + line.rstrip(), file=stream)


# ------------------------------------------------------------------------------------------------ the job
def _wdict(w: Workload) -> Dict[str, Any]:
    return {"model": w.model, "path": w.path, "task": w.task, "batch": w.batch, "seq_len": w.seq_len}


def _new_doc(opts: RunOptions, workloads: List[Workload], timing: Timing, info: Any) -> Dict[str, Any]:
    """The results document before anything is measured (format perfsuite-results v1)."""
    prices = {opts.instance: rp.PRICES[opts.instance]} if opts.instance else {}
    if opts.price_per_hour is not None:
        prices[rp.USER_PRICE] = float(opts.price_per_hour)
    return {
        "format": rp.RESULTS_FORMAT, "format_version": rp.RESULTS_FORMAT_VERSION, "perfsuite_version": __version__,
        "status": "running", "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "finished_utc": None, "elapsed_s": None, "options": list(opts.argv) if opts.argv is not None else None,
        "config": {"profile": opts.profile, "profile_doc": PROFILES[opts.profile].doc,
                   "models": list(dict.fromkeys(w.model for w in workloads)),
                   "paths": list(dict.fromkeys(w.path for w in workloads)),
                   "tasks": list(dict.fromkeys(w.task for w in workloads)),
                   "batch_sizes": sorted({w.batch for w in workloads}),
                   "seq_lens": sorted({w.seq_len for w in workloads}), "timing": asdict(timing),
                   "parity": opts.parity, "threads_note": opts.threads_note},
        "env": info.to_dict(), "prices": prices, "timer_overhead": None, "gemm_n": timing.gemm_n,
        "gemm_peak_gflops": None, "gemm_peak_runs_gflops": [], "parity": None, "measurements": [], "skipped": [],
        "errors": [], "speedups": [], "speedups_skipped": [], "memory": [], "progress": [],
    }


def _machine_figures(doc: Dict[str, Any], timing: Timing, out: TextIO) -> None:
    """The timer's own overhead and this machine's FP32 GEMM peak."""
    from perfsuite import bench
    from perfsuite import timing as tm

    doc["timer_overhead"] = tm.timer_overhead()
    doc["gemm_peak_runs_gflops"].append(bench.gemm_peak_gflops(timing.gemm_n, repeat=timing.gemm_repeat))
    doc["gemm_peak_gflops"] = max(doc["gemm_peak_runs_gflops"])
    ov = doc["timer_overhead"]
    print(f"timer overhead per sample: {ov['timer_s'] * 1e6:.1f} us (bare loop {ov['bare_loop_s'] * 1e6:.2f} us, "
          f"with waitall {ov['timer_with_waitall_s'] * 1e6:.1f} us); FP32 GEMM peak "
          f"{doc['gemm_peak_gflops']:.1f} GFLOP/s", file=out)


def memory_workloads(opts: RunOptions, workloads: Sequence[Workload],
                     reasons: Dict[Workload, Optional[str]]) -> List[Workload]:
    """The workloads the memory probes run: every runnable path of each (model, task, seq_len) at the probed batch
    sizes (--memory-batch; by default the smallest selected, the latency-bound serving case)."""
    if not opts.memory:
        return []
    batches = set(opts.memory_batches or [min(w.batch for w in workloads)])
    return [w for w in workloads if w.batch in batches and not reasons[w]]


def _memory_line(results: List[Dict[str, Any]]) -> str:
    parts = []
    for r in results:
        w = r["workload"]
        fig = (f"{r['peak_rss_bytes'] / 2 ** 20:.0f} MiB" if r.get("peak_rss_bytes") else
               "skipped" if r.get("skip") else f"error: {str(r.get('error'))[:60]}")
        parts.append(f"{w['path']} b{w['batch']} {fig}")
    return "memory, peak RSS of a process running only that path: " + "; ".join(parts)


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


def _measure(doc: Dict[str, Any], workloads: List[Workload], reasons: Dict[Workload, Optional[str]],
             groups: Dict[Any, List[Tuple[str, str, str]]], timing: Timing, err: TextIO,
             save: Callable[[], None]) -> None:
    """The one measurement pass: each group's paths alternated (their latency samples are also the speed-ups'
    pairs), each other workload timed alone; skips and MXNet errors are recorded, not raised. Prepared paths stay
    cached while their model and task do (the alternation needs them all); memory per path comes from the probes.
    A progress bar shows each step as it completes, its ETA from the planned rounds (_Plan)."""
    import gc

    from perfsuite import bench

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
    from perfsuite import bench

    if reason:
        doc["skipped"].append({"id": w.id, "workload": _wdict(w), "reason": reason})
        return f"skip {w.id}: {reason[:60]}"
    bar.show(f"timing {w.id}")
    try:
        with bar.unpaced():
            bench.runner_for(w.model, w.path, w.task)
        m = bench.measure(w, warmup=timing.warmup, min_repeat=timing.min_repeat, max_repeat=timing.max_repeat,
                          min_time_s=timing.min_time_s, max_time_s=timing.max_time_s)
    except Exception as exc:  # an MXNet error on one path is a finding about this build, not a crash
        doc["errors"].append({"id": w.id, "workload": _wdict(w), "error": one_line(exc)})
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
    from perfsuite import bench
    from perfsuite import timing as tm

    model, task, seq, batch = key
    gid = f"{model}/{task}/b{batch}/L{seq}"
    fns: Dict[str, Callable[[], Any]] = {}
    runners: Dict[str, Any] = {}
    failed: Dict[str, str] = {}

    def fail(path: str, exc: BaseException) -> None:
        w = Workload(model, path, task, batch, seq)
        failed[path] = one_line(exc)
        doc["errors"].append({"id": w.id, "workload": _wdict(w), "error": failed[path]})

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


def run_job(opts: RunOptions, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> RunOutcome:
    """Run the whole job; results.json is complete after every step. Re-raises KeyboardInterrupt (and any error
    outside a single workload) after saving what was measured, with status 'interrupted'."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    workloads, timing = plan(opts)

    from perfsuite import bench
    from perfsuite.env import collect_env
    from perfsuite.outputs import reserve_folder

    info = collect_env()
    default = default_out_dir(info.mxnet_dist_version)
    out_dir = reserve_folder(opts.out, default.name, root=str(default.parent))
    results_path = out_dir / "results.json"
    t_start = time.perf_counter()
    doc = _new_doc(opts, workloads, timing, info)

    def save() -> None:
        doc["elapsed_s"] = time.perf_counter() - t_start
        write_json_atomic(results_path, doc)

    print(f"perfsuite run: {info.describe_mxnet()} (mx {info.mxnet_version}), {info.omp_threads} OpenMP threads, "
          f"profile {opts.profile}: {len(workloads)} workloads; results in {out_dir}/", file=err)
    save()
    previous_term = _terminate_as_interrupt()
    reasons = {w: bench.skip_reason_workload(w) for w in workloads}
    probes = None
    try:
        mem = memory_workloads(opts, workloads, reasons)
        if mem:  # fresh processes, overlapping the parity checks; all done before anything is timed
            from perfsuite.memory import MemoryProbes

            print(f"memory probes: {len(mem)} fresh processes (one per path at batch "
                  f"{', '.join(str(b) for b in sorted({w.batch for w in mem}))}), alongside the parity checks",
                  file=err)
            probes = MemoryProbes(mem).start()
        if opts.parity:
            print("parity checks ...", file=err)
            doc["parity"] = _parity(doc["config"]["paths"], out, int8_task=opts.profile != "smoke")
            save()
        if probes is not None:
            t0 = time.perf_counter()
            doc["memory"] = probes.results()
            probes = None
            print(_memory_line(doc["memory"]) + f" (waited {time.perf_counter() - t0:.0f} s for the probes)", file=out)
            save()
        _machine_figures(doc, timing, out)
        save()
        groups, doc["speedups_skipped"] = speedup_groups(workloads, lambda w: reasons.get(w)
                                                         or bench.skip_reason_workload(w))
        _measure(doc, workloads, reasons, groups, timing, err, save)
        # measured again at the end: another process holding a core during all of the first attempt lowers it
        doc["gemm_peak_runs_gflops"].append(bench.gemm_peak_gflops(timing.gemm_n, repeat=timing.gemm_repeat))
        doc["gemm_peak_gflops"] = max(doc["gemm_peak_runs_gflops"])
        doc["status"] = "complete"
        doc["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        save()
    except BaseException as exc:
        if probes is not None:
            probes.cancel()
        doc["status"] = "interrupted"
        doc["error"] = (str(exc) if isinstance(exc, Terminated) else "interrupted by the user (Ctrl-C)"
                        if isinstance(exc, KeyboardInterrupt) else one_line(exc))
        save()
        try:
            rp.render(doc, out_dir)
        except Exception:  # the saved JSON is what matters; 'perfsuite report' can render it later
            pass
        print(f"\nperfsuite run: stopped ({doc['error']}); what was measured is in {results_path}", file=err)
        raise
    finally:
        _restore_terminate(previous_term)
    report_path, plots = rp.render(doc, out_dir)
    print("", file=out)
    print(rp.text_summary(doc), file=out)
    print(f"results: {results_path}\nreport:  {report_path}", file=out)
    for p in plots:
        print(f"plot:    {out_dir / p}", file=out)
    print(f"took {clock(doc['elapsed_s'])} (min:s)", file=out)
    return RunOutcome(out_dir, results_path, report_path, plots, doc, _exit_code(doc))


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run: handled like Ctrl-C, so results.json is marked interrupted and the report written."""


def _terminate_as_interrupt() -> Any:
    """Turn SIGTERM into Terminated while the job runs (main thread only); returns the previous handler."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise Terminated("terminated (SIGTERM)")

    return signal.signal(signal.SIGTERM, handler)


def _restore_terminate(previous: Any) -> None:
    import signal

    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _exit_code(doc: Dict[str, Any]) -> int:
    """0 ok; 1 a parity check failed or a workload raised; 3 nothing could be measured."""
    par = doc.get("parity") or {}
    failed = any((par.get(k) or {}).get("counts", {}).get(s, 0) for k in ("ops", "model") for s in ("fail", "error"))
    if failed or doc.get("errors"):
        return 1
    if not doc.get("measurements"):
        return 3
    return 0


