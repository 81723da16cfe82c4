"""`perfsuite run`, the main job: parity summary, then latency per workload and the speed-up table, into a
results folder (results.json, report.md, PNG plots).

Order of work: (1) the memory probes start (perfsuite.memory: one fresh process per path at the probed batch
size, its peak RSS) and, alongside them, parity: the op-level grid on CPU (quick) and the whole-model check of
each selected path on the 'small' model; (2) the timer's own overhead and this machine's FP32 GEMM peak; (3) one
measurement pass (perfsuite.measure_pass): per (model, task, seq_len, batch), the paths of its optimizations
(perfsuite.workloads.SPEEDUPS) timed in counterbalanced alternation (A B C, C B A, ...), until each has its clean
samples and minimum time; each
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
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from perfsuite import __version__, bench, timing as tm
from perfsuite.env import collect_env, usable_cpus
from perfsuite.errors import PerfsuiteInputError, one_line
from perfsuite.measure_pass import MIN_SAMPLES, PROFILE_TIMING, Timing, measure_all, speedup_groups
from perfsuite.memory import MemoryProbes
from perfsuite.outputs import check_output_folder, check_writable_anchor, reserve_folder
from perfsuite.parity import ops as parity
from perfsuite.parity.model import (ModelCase, int8_calibration, int8_task_result, model_weights, own_pass_selection,
                                    run_model_cases)
from perfsuite.paths.model import prepare, skip_reason_path
from perfsuite.progress import ProgressBar
from perfsuite.report import markdown as rp
from perfsuite.results import write_json_atomic
from perfsuite.tables import clock, table
from perfsuite.weights import CONFIGS
from perfsuite.workloads import MODEL_PARITY_SHAPES, PROFILES, Workload, select

__all__ = ["Timing", "PROFILE_TIMING", "RunOptions", "RunOutcome", "plan", "run_job", "ProgressBar",
           "speedup_groups", "default_out_dir", "MIN_SAMPLES", "PARITY_MODEL", "apply_default_threads",
           "Terminated"]

#: The whole-model parity check of each selected path runs on this model (at its MODEL_PARITY_SHAPES shape).
PARITY_MODEL = ("small",) + MODEL_PARITY_SHAPES["small"]


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

        if (Path(opts.out) / "results.json").exists():
            raise PerfsuiteInputError(f"--out {opts.out!r} already holds results.json; choose another folder (or "
                                      "re-render it with 'perfsuite report')")
        check_output_folder(opts.out, "--out")
    else:

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

    n = usable_cpus()
    if "mxnet" in sys.modules:
        return ("OMP_NUM_THREADS was unset and MXNet was already imported: MXNet's default (half the usable CPUs) "
                "is in effect.")
    environ["OMP_NUM_THREADS"] = str(n)
    return (f"OMP_NUM_THREADS was unset: perfsuite run set it to {n} (every usable CPU; MXNet's own default would "
            "be half). Set OMP_NUM_THREADS yourself to choose.")


# ------------------------------------------------------------------------------------------------ parity
def _parity(paths: Sequence[str], stream: TextIO, int8_task: bool = True) -> Dict[str, Any]:
    """The op grid (CPU, quick) and the whole-model check of each selected path on the small model."""

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
    """What INT8's speed-up costs: the MLPerf-style task result (MiniLM semantic search, perfsuite.parity.int8_task)."""
    from perfsuite.models import minilm_available

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
    for line in table(rows[0], rows[1:], "simple").splitlines():
        print("  " + line.rstrip(), file=stream)


# ------------------------------------------------------------------------------------------------ the job
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


def run_job(opts: RunOptions, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> RunOutcome:
    """Run the whole job; results.json is complete after every step. Re-raises KeyboardInterrupt (and any error
    outside a single workload) after saving what was measured, with status 'interrupted'."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    workloads, timing = plan(opts)

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
        probes = _start_probes(memory_workloads(opts, workloads, reasons), err)
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
        measure_all(doc, workloads, reasons, groups, timing, err, save)
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
    print("\n" + rp.text_summary(doc), file=out)
    print(f"results: {results_path}\nreport:  {report_path}" + "".join(f"\nplot:    {out_dir / p}" for p in plots)
          + f"\ntook {clock(doc['elapsed_s'])} (min:s)", file=out)
    return RunOutcome(out_dir, results_path, report_path, plots, doc, _exit_code(doc))


def _start_probes(mem: List[Workload], err: TextIO) -> Any:
    """The memory probes (perfsuite.memory), started in the background: fresh processes that overlap the parity
    checks and are all done before anything is timed; None when there is nothing to probe."""
    if not mem:
        return None

    print(f"memory probes: {len(mem)} fresh processes (one per path at batch "
          f"{', '.join(str(b) for b in sorted({w.batch for w in mem}))}), alongside the parity checks", file=err)
    return MemoryProbes(mem).start()


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


