"""Reports of `perfsuite run` results: the figures users want, as Markdown tables (plots: perfsuite.report.plots;
comparisons of several results: perfsuite.report.comparison).

A results file (format 'perfsuite-results') holds raw samples plus metadata; every figure here is computed from
those samples when the report is rendered, so `perfsuite report` re-renders or compares saved results exactly
as `perfsuite run` rendered them. Per workload: median latency with IQR, p90, p99; throughput (sentences/s);
cost per 1M requests at the seed's instance prices and the user's; achieved GFLOP/s and its fraction of the GEMM
peak measured in the same run; peak memory; contaminated (dropped) samples; the noisy flag. The speed-up of each
optimization and every comparison of results are decided by perfsuite.stats (the one statistics module).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from perfsuite.errors import PerfsuiteInputError
from perfsuite.report import plots
from perfsuite.report.figures import (GroupKey, PRICES, USER_PRICE, by_group, cost_per_million, doc_prices,
                                      group_title, label, measurements, memory_mib, ordered_paths, price_label, slug,
                                      workload_figures)
from perfsuite.results import read_result, write_text_atomic
from perfsuite.stats import Comparison, compare_paired, min_units_paired
from perfsuite.tables import clock, fmt_ms, markdown_lines, table
from perfsuite.timing import Measurement

__all__ = ["RESULTS_FORMAT", "RESULTS_FORMAT_VERSION", "PRICES", "USER_PRICE", "cost_per_million", "load",
           "label", "measurements", "workload_figures", "speedup_ratio", "format_speedup", "render",
           "render_markdown", "text_summary", "mkldnn_note", "SPEEDUP_THRESHOLD", "cost_note", "readme_excerpt", "main"]

RESULTS_FORMAT = "perfsuite-results"
RESULTS_FORMAT_VERSION = 1

# ------------------------------------------------------------------------------------------------ loading
def load(path: "os.PathLike[str] | str") -> Dict[str, Any]:
    """Read a results folder (its results.json) or file; corrupt, foreign or newer files get a clear error."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
        if not p.exists():
            raise PerfsuiteInputError(f"{str(path)!r} is a folder without results.json; pass a 'perfsuite run' "
                                      "results folder or its results.json")
    doc = read_result(p, RESULTS_FORMAT, RESULTS_FORMAT_VERSION)
    for key, kind in (("env", dict), ("measurements", list)):
        if key not in doc:
            raise PerfsuiteInputError(f"{str(p)!r} is a {RESULTS_FORMAT} file without {key!r}: it is truncated or "
                                      "was not written by 'perfsuite run'")
        if not isinstance(doc[key], kind):
            raise PerfsuiteInputError(f"{str(p)!r}: {key!r} is {type(doc[key]).__name__}, expected a "
                                      f"{kind.__name__} (was the file edited by hand?)")
    try:
        measurements(doc)
    except (PerfsuiteInputError, TypeError, KeyError) as exc:
        raise PerfsuiteInputError(f"{str(p)!r} holds a malformed measurement: {exc}") from None
    doc["_source"] = str(p)
    return doc


def cost_note(doc: Dict[str, Any]) -> str:
    """What the cost figures are for, and why the seed's other instance prices are not applied."""
    prices = doc_prices(doc)
    others = ", ".join(f"{n} ${p:g}/h" for n, p in PRICES.items() if n not in prices)
    basis = ("Cost per 1M requests = price per hour / 3600 / long-run throughput x 1e6, where long-run throughput "
             "is batch / mean latency (a server pays for the mean, not the median).")
    if not prices:
        return (f"No cost is reported: this run named no instance (--instance) or price (--price-per-hour) for the "
                f"machine it measured. {basis} The seed's instance prices ({others}) apply only to throughput "
                "measured on those instances.")
    return (f"{basis} Priced at {', '.join(price_label(n, p) for n, p in prices.items())}, the machine measured. "
            f"The seed's other instance prices ({others}) need a run on that instance.")


def mkldnn_note(envs: Sequence[Dict[str, Any]]) -> Optional[str]:
    """The warning owed when a result's MXNet lacks MKLDNN (the 1.6.0 CPU wheel): comparisons then include a build
    change."""
    lacking = [e for e in envs if not (e.get("features") or {}).get("MKLDNN", False)]
    if not lacking:
        return None
    names = ", ".join(sorted({f"{e.get('mxnet_distribution')} {e.get('mxnet_dist_version')}" for e in lacking}))
    return (f"{names} is built without MKLDNN/oneDNN (the 1.6.0 CPU wheel is): its onednn and int8 paths cannot run, "
            "and a 1.6 -> 1.7 comparison also measures this build change (plain BLAS vs oneDNN kernels), not only "
            "MXNet's own changes.")


#: Speed-ups and run comparisons call a change only beyond this fraction (a 5 % threshold, as before).
SPEEDUP_THRESHOLD = 0.05


def speedup_ratio(rec: Dict[str, Any]) -> Comparison:
    """optimized / baseline time from samples taken in alternation in one process: each round is one pair and,
    lacking separate processes, one unit (perfsuite.stats.compare_paired). Pairs where either sample was
    disturbed by another process are left out while enough clean pairs remain for a verdict; otherwise all are
    kept and the comparison carries a note saying so."""
    opt = np.asarray(rec["optimized_samples_s"], dtype=float)
    base = np.asarray(rec["baseline_samples_s"], dtype=float)
    keep = ~(np.asarray(rec.get("optimized_contaminated", [False] * opt.size), dtype=bool)
             | np.asarray(rec.get("baseline_contaminated", [False] * base.size), dtype=bool))
    notes: Tuple[str, ...] = ()
    if keep.sum() >= min_units_paired(0.95):
        opt, base = opt[keep], base[keep]
    elif not keep.all():
        notes = (f"{int((~keep).sum())} of {keep.size} pairs were disturbed by other processes and are kept",)
    c = compare_paired(base, opt, confidence=0.95, threshold=SPEEDUP_THRESHOLD, unit="pair")
    return Comparison(**{**c.__dict__, "notes": notes})


def format_speedup(r: Comparison) -> str:
    """Speed-up as the seed shows it (baseline time / optimized time) with its interval and the verdict: a speed-up
    or slowdown only where it is shown, "no change beyond 5%" only where that is ruled out, else inconclusive."""
    s = 1 / r.ratio
    if not r.enough:
        return f"not enough data ({s:.2f}x on {r.n_units} pairs; a verdict needs >= {r.min_units})"
    text = f"{s:.2f}x [{1 / r.high:.2f}, {1 / r.low:.2f}], {r.n_units} pairs"
    note = f"; {r.notes[0]}" if r.notes else ""
    v = r.verdict
    if v == "faster":  # the optimized path is faster: the speed-up is shown
        return text + (f" ({note[2:]})" if note else "")
    if v == "slower":
        return f"{text} (slower{note})"
    if v == "no change":
        return f"{text} (no change beyond {r.threshold:.0%}{note})"
    return f"inconclusive ({text}{note})"


def _money(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    return f"${x:.3g}" if x < 100 else f"${x:,.0f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    return markdown_lines(header, rows)


def _fmt_s(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


# ------------------------------------------------------------------------------------------------ one result
def _env_rows(env: Dict[str, Any]) -> List[Tuple[str, str]]:
    feats = env.get("features") or {}
    on = ", ".join(k for k, v in feats.items() if v) or "-"
    flags = env.get("mxnet_flags") or {}
    return [
        ("MXNet", f"{env.get('mxnet_distribution')} {env.get('mxnet_dist_version')} (mx.__version__ "
                  f"{env.get('mxnet_version')})"),
        ("MKLDNN/oneDNN", "yes" if feats.get("MKLDNN") else "no"),
        ("CUDA build", "yes" if feats.get("CUDA") else "no"),
        ("build features on", on),
        ("OpenMP threads", str(env.get("omp_threads"))),
        ("CPU", f"{env.get('cpu_model')} ({env.get('cpu_count')} usable CPUs)"),
        ("GPUs visible", str(env.get("num_gpus"))),
        ("GluonNLP / NumPy / Python", f"{env.get('gluonnlp_version')} / {env.get('numpy_version')} / "
                                      f"{env.get('python_version')}"),
        ("platform", str(env.get("platform"))),
        ("MXNET_* flags set", ", ".join(f"{k}={v}" for k, v in flags.items()) or "(none)"),
    ]


def _parity_lines(parity: Optional[Dict[str, Any]]) -> List[str]:
    if parity is None:
        return ["Not run (`--no-parity`).", ""]
    out: List[str] = []
    ops = parity.get("ops")
    if ops:
        c = ops["counts"]
        out.append(f"Op level (CPU, quick grid): {c['pass']} passed, {c['fail']} failed, {c['error']} errors, "
                   f"{c['skip']} skipped.")
        out.append("")
        rows = [(r["path"], r["mode"], f"{r['ran']}/{r['skipped']}",
                 "-" if r["worst_ratio"] is None else f"{r['worst_ratio']:.3g}",
                 r["verdict"] + (f": {r['detail'][:160]}".replace("|", "/") if r["verdict"] != "PASS" and r["detail"]
                                 else ""))
                for r in ops["rows"] if r["verdict"] != "SKIP"]
        out += md_table(("op path", "mode", "run/skip", "worst err/bound", "verdict"), rows)
        skipped = [r for r in ops["rows"] if r["verdict"] == "SKIP"]
        if skipped:
            out.append(f"{len(skipped)} (path, mode) groups skipped on this build, e.g. {skipped[0]['path']} "
                       f"{skipped[0]['mode']}: {skipped[0]['detail'][:200]}")
            out.append("")
    model = parity.get("model")
    if model:
        c = model["counts"]
        out.append(f"Whole model ('small' BERT, batch {model.get('batch')} x seq {model.get('seq_len')}): "
                   f"{c['pass']} passed, {c['fail']} failed, {c['error']} errors, {c['skip']} skipped.")
        out.append("")
        out += md_table(("path", "task", "status", "worst err/bound or agreement", "detail"),
                         [(r["path"], r.get("task", "classification"), r["status"].upper(), r["figure"],
                           r["detail"][:200].replace("|", "/"))
                          for r in model["cases"]])
    return out


def render_markdown(doc: Dict[str, Any], plots: Sequence[str] = ()) -> str:
    """The report of one run: environment, timer overhead, parity, per-sequence-length tables, speed-ups."""
    env = doc["env"]
    cfg = doc.get("config") or {}
    lines = [f"# perfsuite run: {label(doc)}, profile {cfg.get('profile', '?')}", ""]
    status = doc.get("status", "?")
    if status != "complete":
        lines += [f"> **Status: {status}.** " + (f"The run stopped early ({doc.get('error', 'no reason recorded')}); "
                                                   if status == "interrupted" else "The run has not finished; ")
                  + "this report holds what was measured before that.", ""]
    lines += [f"Started {doc.get('started_utc', '?')}, finished {doc.get('finished_utc') or '-'}, took "
              f"{_fmt_s(doc.get('elapsed_s'))}. perfsuite {doc.get('perfsuite_version', '?')}. Results: "
              f"`results.json` (raw samples and metadata, format {RESULTS_FORMAT} v{RESULTS_FORMAT_VERSION}).", ""]
    note = mkldnn_note([env])
    if note:
        lines += [f"> **Note:** {note}", ""]

    lines += _setup_lines(doc)
    prices, peak = doc_prices(doc), doc.get("gemm_peak_gflops")
    for key, gms in by_group(measurements(doc)).items():
        lines += _group_lines(doc, key, gms, plots, peak, prices)
    lines += ["## Speed-up of each optimization", ""]
    lines += _speedup_lines(doc)

    skipped = doc.get("skipped") or []
    errors = doc.get("errors") or []
    if skipped or errors:
        lines += ["## Not measured", ""]
        lines += md_table(("workload", "why"),
                           [(s["id"], "skipped: " + s["reason"]) for s in skipped]
                           + [(e["id"], "ERROR: " + e["error"].replace("|", "/")[:300]) for e in errors])
    return "\n".join(lines).rstrip() + "\n"




def _setup_lines(doc: Dict[str, Any]) -> List[str]:
    """Environment, timing settings, timer overhead and GEMM peak, parity."""
    env = doc["env"]
    cfg = doc.get("config") or {}
    peak = doc.get("gemm_peak_gflops")
    lines: List[str] = []
    lines += ["## Environment", ""]
    lines += md_table(("", ""), _env_rows(env))
    if cfg.get("threads_note"):
        lines += [cfg["threads_note"], ""]
    timing = cfg.get("timing") or {}
    if timing:
        if "progress" in doc:  # one measurement pass (perfsuite.measure_pass)
            how = (f"Timing, in one pass: per batch size the paths of each optimization alternate in counterbalanced "
                   f"rounds, each after its first (binding) call and {timing.get('warmup')} warm-up call(s): at "
                   f"least {max(timing.get('rounds', 0), timing.get('min_repeat', 0))} rounds, more in pairs until "
                   f"every path has {timing.get('min_repeat')} clean samples and {timing.get('min_time_s')} s of "
                   "samples; the same samples give each path's latency and, paired by round, the speed-ups. A "
                   "workload of no speed-up pair is timed alone")
        else:
            how = (f"Timing: {timing.get('warmup')} warm-up call(s) after the first (binding) call, at least "
                   f"{timing.get('min_repeat')} clean samples and {timing.get('min_time_s')} s per workload, at most "
                   f"{timing.get('max_repeat')} samples or {timing.get('max_time_s')} s; speed-ups from "
                   f"{timing.get('rounds')} alternating rounds")
        lines += [how + ". Every sample ends with `mx.nd.waitall()`; a sample during which other processes used "
                  "more than a quarter of a core is marked contaminated and dropped from the statistics.", ""]

    lines += ["## Timer overhead and GEMM peak", ""]
    ov = doc.get("timer_overhead")
    if ov:
        lines += md_table(("loop body", "per call"), [
            ("bare `perf_counter()` loop", f"{ov['bare_loop_s'] * 1e6:.2f} us"),
            ("perfsuite timer (CPU and /proc/stat reads), empty body", f"{ov['timer_s'] * 1e6:.2f} us"),
            ("perfsuite timer + `mx.nd.waitall()`, empty body", f"{ov['timer_with_waitall_s'] * 1e6:.2f} us")])
    if peak:
        reps = timing.get("gemm_repeat", 5)
        runs = doc.get("gemm_peak_runs_gflops") or [peak]
        when = (f"best of {reps} calls, at the start and the end of the run: "
                f"{', '.join(f'{r:.1f}' for r in runs)} GFLOP/s" if len(runs) > 1 else f"best of {reps} calls")
        lines += [f"FP32 GEMM peak of this machine through MXNet ({doc.get('gemm_n', '?')}^3, the faster of `dot` and `FullyConnected`, {when}): "
                  f"**{peak:.1f} GFLOP/s**; the '% of peak' columns divide each workload's achieved GFLOP/s "
                  "(GEMM and attention FLOPs of one forward pass / median latency) by it.", ""]

    lines += ["## Parity", ""] + _parity_lines(doc.get("parity"))

    return lines


def _group_lines(doc: Dict[str, Any], key: GroupKey, gms: List[Measurement], plots: Sequence[str],
                 peak: Optional[float], prices: Dict[str, float]) -> List[str]:
    """One model, task and sequence length: plots, latency, throughput, cost, memory, every figure per workload."""
    lines: List[str] = []
    paths = ordered_paths(gms)
    batches = sorted({m.workload["batch"] for m in gms})
    fig = {(m.workload["path"], m.workload["batch"]): workload_figures(m, peak, prices) for m in gms}
    lines += [f"## {group_title(key)}", ""]
    for p in plots:
        if slug(key) in p:
            lines += [f"![{p}]({p})", ""]
    lines += ["### Latency (ms): median (IQR)", ""]
    lines += md_table(["batch"] + paths, [
        [b] + [f"{fmt_ms(fig[(p, b)]['median_ms'])} ({fmt_ms(fig[(p, b)]['iqr_ms'])})" if (p, b) in fig else "-"
               for p in paths] for b in batches])
    lines += ["### Throughput (sentences/s)", ""]
    lines += md_table(["batch"] + paths, [
        [b] + [f"{fig[(p, b)]['throughput']:.3g}" if (p, b) in fig else "-" for p in paths] for b in batches])
    lines += ["### Cost per 1M requests", "", cost_note(doc), ""]
    if prices:
        lines += md_table(["batch", "path", "long-run sent/s"] + [price_label(n, v) for n, v in prices.items()], [
            [b, p, f"{fig[(p, b)]['throughput_mean']:.3g}"] + [_money(fig[(p, b)]["cost"][n]) for n in prices]
            for b in batches for p in paths if (p, b) in fig])
    mem = memory_mib(doc)
    if mem is not None:
        probed = sorted({k[4] for k in mem if k[:3] == key})
        if probed:
            lines += ["### Memory: peak RSS (MiB) of a process that runs only this path", "",
                      "Each figure is the peak resident memory (VmHWM) of a fresh process that loaded the "
                      "weights, prepared this path alone (INT8: with its calibration on one 16 x 128 batch) and "
                      "ran it at this batch size: what a serving process of this path needs.", ""]
            lines += md_table(["path"] + [f"batch {b}" for b in probed], [
                [p] + [_mem_cell(mem.get(key + (p, b))) for b in probed] for p in paths])
        for p in paths:
            for b in batches:
                if (p, b) in fig:
                    entry = mem.get(key + (p, b))
                    fig[(p, b)]["peak_rss_mib"] = entry["mib"] if entry else None
        rss_col = "own-process peak RSS MiB"
        rss_text = ("Own-process peak RSS: the memory probe's figure above, where this batch size was probed "
                    "(--memory-batch), else '-'.")
    else:
        rss_col = "peak RSS MiB"
        rss_text = ("Peak RSS (a result of an earlier perfsuite): the timing process's peak resident memory "
                    "while this workload was timed, every model it had prepared before included.")
    lines += ["### Every figure per workload", ""]
    lines += md_table(
        ("path", "batch", "median ms", "IQR ms", "p90 ms", "p99 ms", "sent/s", "GFLOP/s", "% of GEMM peak",
         rss_col, "samples", "dropped", "noisy"),
        [(p, b, fmt_ms(f["median_ms"]), fmt_ms(f["iqr_ms"]), fmt_ms(f["p90_ms"]), fmt_ms(f["p99_ms"]),
          f"{f['throughput']:.3g}", f"{f['gflops']:.3g}",
          "-" if f["peak_fraction"] is None else f"{100 * f['peak_fraction']:.0f}%",
          "-" if f["peak_rss_mib"] is None else f"{f['peak_rss_mib']:.0f}", f["n"],
          f"{f['dropped']} (all!)" if f["dropped"] == f["n"] else f["dropped"], "yes" if f["noisy"] else "no")
         for p in paths for b in batches if (p, b) in fig for f in [fig[(p, b)]]])
    lines += ["Noisy: IQR above 10% of the median. Dropped: samples during which other processes took more "
              "than a quarter of a core (excluded from the statistics). " + rss_text, ""]
    tainted = [f"{p} batch {b}" for p in paths for b in batches
               if (p, b) in fig and fig[(p, b)]["dropped"] == fig[(p, b)]["n"]]
    if tainted:
        lines += [f"**Every sample of {', '.join(tainted)} was contaminated** by other processes: their figures "
                  "include that interference (the statistics fall back to all samples). Re-run on a quieter "
                  "machine before trusting them.", ""]
    over = sorted({p for (p, b), f in fig.items() if (f["peak_fraction"] or 0) > 1})
    if over:
        lines += [f"Above 100% of the measured GEMM peak ({', '.join(over)}): int8 runs 8-bit integer kernels, "
                  "counted here in FP32-equivalent operations; and on a shared machine the peak is "
                  "underestimated when another process held a core during all of its calls.", ""]

    return lines


def _mem_cell(entry: Optional[Dict[str, Any]]) -> str:
    if entry is None:
        return "-"
    return f"{entry['mib']:.0f}" if entry["mib"] is not None else entry["note"][:80].replace("|", "/")


def _int8_quality_lines(doc: Dict[str, Any]) -> List[str]:
    """What INT8's speed-up costs, beside it: the semantic-search task result (perfsuite.parity.int8_task)."""
    q = ((doc.get("parity") or {}).get("int8_quality")) or {}
    if not q:
        return []
    if q.get("skipped") or q.get("error"):
        return [f"INT8 quality was not measured: {q.get('skipped') or q.get('error')}", ""]
    m = q["metrics"]
    return [f"**What INT8 costs in quality** (MiniLM semantic search over {q['corpus']['eval']} sentences of "
            f"CPython's docs, {q['config'].get('name')}): nDCG@10 {m['ndcg@10']:.4f} of FP32's "
            f"({'meets' if q['passed'] else 'MISSES'} the 0.99 criterion), recall@10 {m['recall@10']:.3f}, "
            f"Spearman {m['spearman']:.3f}, cosine min {m['cosine_min']:.3f} (median {m['cosine_median']:.3f}).", ""]


def _speedup_lines(doc: Dict[str, Any]) -> List[str]:
    recs = doc.get("speedups") or []
    lines: List[str] = _int8_quality_lines(doc)
    if recs:
        lines += ["Speed-up = baseline time / optimized time, from the callables timed in alternation in one "
                  "process (each round in a seeded order, half of the pairs baseline first): the geometric mean "
                  "of the per-round ratios with a 95% Student t interval; a change is significant only when that "
                  "interval excludes 1 and the exact Wilcoxon signed-rank test agrees (p < 0.05), which needs at "
                  "least 6 rounds ('not enough data' below). Pairs disturbed by other processes are left out. "
                  "These are within-process figures; for two MXNet builds use `perfsuite gate`.", ""]
        by_group: Dict[GroupKey, List[Dict[str, Any]]] = {}
        for r in recs:
            by_group.setdefault((r["model"], r["task"], r["seq_len"]), []).append(r)
        for key, rs in by_group.items():
            labels = list(dict.fromkeys(r["label"] for r in rs))
            batches = sorted({r["batch"] for r in rs})
            cell = {(r["label"], r["batch"]): format_speedup(speedup_ratio(r)) for r in rs}
            lines += [f"### {group_title(key)}", ""]
            header = ["batch"] + [f"{lab} ({r['optimized']} / {r['baseline']})" for lab in labels
                                  for r in [next(x for x in rs if x["label"] == lab)]]
            lines += md_table(header, [[b] + [cell.get((lab, b), "-") for lab in labels] for b in batches])
    else:
        lines += ["No speed-up was measured (no optimization had both its paths selected and runnable).", ""]
    for s in doc.get("speedups_skipped") or []:
        lines.append(f"- {s['label']} ({s['optimized']} vs {s['baseline']}): not measured: {s['reason']}")
    return lines + [""]


def text_summary(doc: Dict[str, Any]) -> str:
    """Plain-text tables for the terminal: per sequence length, median latency, throughput and cost per batch
    size and path; then the speed-ups."""
    prices = doc_prices(doc)
    peak = doc.get("gemm_peak_gflops")
    out: List[str] = []
    shown = list(prices)
    for key, gms in by_group(measurements(doc)).items():
        out.append(f"{group_title(key)} ({label(doc)})")
        rows = [("path", "batch", "median ms", "IQR ms", "sent/s")
                + tuple(f"$/1M {price_label(n, prices[n])}" for n in shown)]
        for m in sorted(gms, key=lambda m: (ordered_paths(gms).index(m.workload["path"]), m.workload["batch"])):
            f = workload_figures(m, peak, prices)
            rows.append((m.workload["path"], str(m.workload["batch"]), fmt_ms(f["median_ms"]), fmt_ms(f["iqr_ms"]),
                         f"{f['throughput']:.3g}") + tuple(_money(f["cost"][n]) for n in shown))
        out += align_rows(rows) + [""]
        mem = memory_mib(doc)
        probed = sorted((k[3], k[4]) for k in (mem or {}) if k[:3] == key)
        if probed:
            out.append("peak RSS of a process running only that path: " + "; ".join(
                f"{p} b{b} {_mem_cell(mem[key + (p, b)])}" + (" MiB" if mem[key + (p, b)]["mib"] else "")
                for p, b in probed))
            out.append("")
    if not prices:
        out += [cost_note(doc), ""]
    recs = doc.get("speedups") or []
    if recs:
        out.append("speed-ups (baseline / optimized, alternating samples, 95% CI)")
        rows = [("optimization", "model/task/seq", "batch", "speed-up")]
        for r in recs:
            rows.append((r["label"], f"{r['model']}/{r['task']}/{r['seq_len']}", str(r["batch"]),
                         format_speedup(speedup_ratio(r))))
        out += align_rows(rows)
    return "\n".join(out).rstrip() + "\n"


def align_rows(rows: Sequence[Sequence[str]]) -> List[str]:
    """Terminal columns (the first row is the header), through the one table writer."""

    return [ln.rstrip() for ln in table(rows[0], rows[1:], "simple").splitlines()]


def render(doc: Dict[str, Any], out_dir: "os.PathLike[str] | str") -> Tuple[Path, List[str]]:
    """Write report.md and the PNG plots of one result into out_dir; returns (report path, plot names)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise PerfsuiteInputError(f"output folder {str(out_dir)!r} does not exist")
    plots = _plots().make_plots(doc, out_dir)
    text = render_markdown(doc, plots)
    missing = _plots().matplotlib_missing()
    if missing:
        text += f"\n> {missing}\n"
    return write_text_atomic(out_dir / "report.md", text), plots


def _plots():
    return plots


def readme_excerpt(doc: Dict[str, Any], command: str = "perfsuite run") -> str:
    """The README's "measured here" paragraph and table, from one quick-profile result: how long the run took, the
    machine and MXNet, hybridized and INT8 latency, the INT8 speed-up over oneDNN FP32 and memory per path at the
    probed batch sizes. `python -m perfsuite.report.markdown --readme RESULTS` prints it (README figures regenerate)."""
    env = doc.get("env") or {}
    ms = measurements(doc)
    fig = {(m.workload["path"], m.workload["batch"]): m for m in ms}
    spd = {r["batch"]: r for r in doc.get("speedups") or []
           if (r["optimized"], r["baseline"]) == ("int8", "onednn")}
    batches = sorted({b for _, b in fig})
    day = (doc.get("started_utc") or "")[:10]
    head = (f"Measured here on {day} ({label(doc)}, {env.get('cpu_model', '?')}, {env.get('omp_threads', '?')} "
            f"OpenMP threads; `{command}`, {doc.get('config', {}).get('profile', '?')} profile, took "
            f"{_clock(doc.get('elapsed_s'))} from start to last line; perfsuite {doc.get('perfsuite_version', '?')}):")
    rows = []
    for b in batches:
        h, i = fig.get(("hybridized", b)), fig.get(("int8", b))
        rows.append([b, f"{fmt_ms(h.median_s * 1e3)} ({fmt_ms(h.iqr_s * 1e3)})" if h else "-",
                     f"{h.throughput:.3g}" if h else "-", fmt_ms(i.median_s * 1e3) if i else "-",
                     format_speedup(speedup_ratio(spd[b])) if b in spd else "-"])
    lines = [head, ""] + md_table(["batch", "hybridized ms (IQR)", "sentences/s", "int8 ms",
                                   "INT8 speed-up vs oneDNN FP32 (95% CI)"], rows)
    mem = memory_mib(doc) or {}
    if mem:
        lines += ["Peak resident memory of a process that runs only one path (MiB): " + ", ".join(
            f"{k[3]} at batch {k[4]} {v['mib']:.0f}" if v["mib"] else f"{k[3]} at batch {k[4]} {v['note'][:60]}"
            for k, v in mem.items()) + ".", ""]
    return "\n".join(lines).rstrip() + "\n"


def _clock(seconds: Optional[float]) -> str:
    return "?" if seconds is None else f"{clock(seconds)} (min:s)"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m perfsuite.report.markdown --readme RESULTS`: print the README's measured paragraph from a saved run."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m perfsuite.report.markdown",
                                     description="Print the README's 'measured here' paragraph and table from a "
                                                 "saved 'perfsuite run' result (quick profile).")
    parser.add_argument("--readme", required=True, metavar="RESULTS", help="a results folder or its results.json")
    parser.add_argument("--command", default="perfsuite run", help="the command that produced it, as quoted")
    args = parser.parse_args(argv)
    try:
        print(readme_excerpt(load(args.readme), args.command), end="")
    except PerfsuiteInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
