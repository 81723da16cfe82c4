"""Comparing saved results (`perfsuite report A B ...`): sides of replicated runs, the machines' sameness,
per-workload ratios with perfsuite.stats.compare_runs (each run one unit), comparison.md and its plots."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from perfsuite.errors import PerfsuiteInputError
from perfsuite.report.figures import GroupKey, group_title, label, measurements, slug
from perfsuite.report.markdown import (SPEEDUP_THRESHOLD, align_rows, format_speedup, md_table, mkldnn_note,
                                       speedup_ratio)
from perfsuite.report.plots import comparison_plots
from perfsuite.results import write_text_atomic
from perfsuite.stats import Comparison, compare_runs
from perfsuite.tables import fmt_ms
from perfsuite.timing import Measurement

__all__ = ["ComparisonRow", "check_comparable", "sides", "comparison_rows", "render_comparison",
           "default_compare_dir", "MACHINE_KEYS", "DISTURBED_FRACTION"]


@dataclass(frozen=True)
class ComparisonRow:
    """One workload across the compared sides: each side's median over its runs' medians (None when no run of
    that side has the workload) and each side's comparison with the baseline side."""

    workload: Tuple[str, str, str, int, int]  # model, path, task, batch, seq_len
    medians_s: Tuple[Optional[float], ...]
    ratios: Tuple[Optional[Comparison], ...]  # None for the baseline itself or where a side lacks the workload
    disturbed: Tuple[bool, ...] = ()  # per side: most of its samples were disturbed by other processes


def _wkey(m: Measurement) -> Tuple[str, str, str, int, int]:
    w = m.workload
    return (w["model"], w["path"], w["task"], w["batch"], w["seq_len"])


#: What makes two results comparable: the same kind of machine and threads (hardware is never mixed silently).
MACHINE_KEYS = ("cpu_model", "cpu_count", "omp_threads", "platform")


def check_comparable(docs: Sequence[Dict[str, Any]], allow_different_machines: bool = False) -> List[str]:
    """Refuse results from different machines (listing what differs) unless allowed; returns the differences."""
    diffs = []
    first = docs[0]["env"]
    for d in docs[1:]:
        for k in MACHINE_KEYS:
            if d["env"].get(k) != first.get(k):
                diffs.append(f"{k}: {first.get(k)!r} ({docs[0].get('_source')}) vs {d['env'].get(k)!r} "
                             f"({d.get('_source')})")
    if diffs and not allow_different_machines:
        raise PerfsuiteInputError("the results come from different machines, so a comparison would measure the "
                                  "machines, not MXNet: " + "; ".join(diffs)
                                  + " (pass --allow-different-machines to compare anyway)")
    return diffs


#: A side whose samples are mostly marked disturbed by other processes is flagged, not silently compared.
DISTURBED_FRACTION = 0.5


def sides(docs: Sequence[Dict[str, Any]]) -> List[List[int]]:
    """Which results form one side of a comparison: results of the same MXNet build are replicated runs of one
    side when at least two builds are present; otherwise every result is its own side."""
    labels = [label(d) for d in docs]
    if len(set(labels)) < 2:
        return [[i] for i in range(len(docs))]
    order = list(dict.fromkeys(labels))
    return [[i for i, lab in enumerate(labels) if lab == o] for o in order]


def comparison_rows(docs: Sequence[Dict[str, Any]], baseline: int = 0) -> List[ComparisonRow]:
    """Per workload and side: the median of its runs' medians and its comparison with the baseline's side.

    Separate runs cannot be paired: each run is one unit (perfsuite.stats.compare_runs), so two single runs
    give a point estimate and 'not enough data', never a verdict drawn from samples of one process each."""
    if not 0 <= baseline < len(docs):
        raise PerfsuiteInputError(f"baseline {baseline + 1}: allowed 1 to {len(docs)} (a position among the results)")
    groups = sides(docs)
    base_side = next(j for j, g in enumerate(groups) if baseline in g)
    per = [{_wkey(m): m for m in measurements(d)} for d in docs]
    keys = list(dict.fromkeys(k for p in per for k in p))
    rows = []
    for k in keys:
        runs = [[per[i][k] for i in g if k in per[i]] for g in groups]
        meds = [float(np.median([m.median_s for m in r])) if r else None for r in runs]
        ratios: List[Optional[Comparison]] = []
        for j, r in enumerate(runs):
            if j == base_side or not r or not runs[base_side]:
                ratios.append(None)
            else:
                ratios.append(compare_runs([m.clean for m in runs[base_side]], [m.clean for m in r],
                                           threshold=SPEEDUP_THRESHOLD))
        disturbed = tuple(bool(r) and sum(m.dropped for m in r) > DISTURBED_FRACTION * sum(len(m.samples_s) for m in r)
                          for r in runs)
        rows.append(ComparisonRow(k, tuple(meds), tuple(ratios), disturbed))
    return rows


def _labels(docs: Sequence[Dict[str, Any]]) -> List[str]:
    labels = [label(d) for d in docs]
    return [f"{lab} (#{i + 1})" if labels.count(lab) > 1 else lab for i, lab in enumerate(labels)]


def render_comparison(docs: Sequence[Dict[str, Any]], out_dir: "os.PathLike[str] | str",
                      baseline: int = 0) -> Tuple[Path, List[str], str]:
    """Side-by-side comparison of several results (e.g. two MXNet versions): comparison.md, compare_*.png;
    returns (report path, plot names, a plain-text table for the terminal)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise PerfsuiteInputError(f"output folder {str(out_dir)!r} does not exist")
    rows = comparison_rows(docs, baseline)
    labels = _labels(docs)
    groups = sides(docs)
    side_labels = [labels[g[0]] if len(g) == 1 else f"{label(docs[g[0]])} ({len(g)} runs)" for g in groups]
    base_side = next(j for j, g in enumerate(groups) if baseline in g)
    base_label = side_labels[base_side]

    plots = comparison_plots(docs, labels, out_dir)

    lines = [f"# perfsuite comparison: {' vs '.join(side_labels)}", "",
             f"Baseline: **{base_label}**. Ratio = median time / baseline median time (> 1 slower). Results measured "
             "at different times cannot be paired, so each run is one unit: the ratio of the sides' mean log "
             "medians with Welch's 95% interval: slower or faster when the interval excludes 1 and the exact "
             "Mann-Whitney test agrees (p < 0.05), 'no change' only when the whole interval lies within 5%, "
             "otherwise inconclusive. A verdict needs at least "
             "4 runs per side (results of the same MXNet build are one side's replicated runs); with fewer the "
             "table says 'not enough data'. To compare two MXNet builds, `perfsuite gate` measures them in "
             "alternation in one job, which a comparison of saved runs cannot do.", ""]
    note = mkldnn_note([d["env"] for d in docs])
    if note:
        lines += [f"> **Note:** {note}", ""]
    machine_diffs = check_comparable(docs, allow_different_machines=True)
    if machine_diffs:
        lines += ["> **Warning: different machines.** " + "; ".join(machine_diffs) + ". The ratios below mix the "
                  "machines' differences with MXNet's.", ""]
    bad = [r for r in rows if any(r.disturbed)]
    if bad:
        lines += [f"> **Warning:** on {len(bad)} workload(s) most samples of a side were disturbed by other processes "
                  "(marked ⚠ below); their ratios are not trustworthy. Measure again on a quiet machine.", ""]
    lines += _results_lines(docs, labels)
    others = [j for j in range(len(groups)) if j != base_side]
    header = (["path", "batch"] + [f"{lab} median ms" for lab in side_labels]
              + [f"{side_labels[j]} / {base_label}" for j in others] + [f"verdict {side_labels[j]}" for j in others])
    text_rows = [("workload",) + tuple(f"{lab} ms" for lab in side_labels)
                 + tuple(f"ratio {side_labels[j]}" for j in others)]
    by_group: Dict[GroupKey, List[ComparisonRow]] = {}
    for r in rows:
        model, path, task, batch, seq = r.workload
        by_group.setdefault((model, task, seq), []).append(r)
    for key, rs in by_group.items():
        lines += [f"## {group_title(key)}", ""]
        for p in plots:
            if slug(key) in p:
                lines += [f"![{p}]({p})", ""]
        table = []
        for r in rs:
            meds = [fmt_ms(m * 1e3) if m is not None else "-" for m in r.medians_s]
            ratio_cells = [_ratio_cell(r.ratios[j]) for j in others]
            verdicts = [(r.ratios[j].describe() if r.ratios[j] else "-")
                        + (" ⚠ mostly disturbed samples" if r.disturbed and (r.disturbed[j] or r.disturbed[base_side])
                           else "") for j in others]
            table.append([r.workload[1], r.workload[3]] + meds + ratio_cells + verdicts)
            text_rows.append((f"{r.workload[0]}/{r.workload[1]}/{r.workload[2]}/b{r.workload[3]}/L{r.workload[4]}",)
                             + tuple(meds) + tuple(f"{c} {r.ratios[j].verdict}" if r.ratios[j] else "-"
                                                   for c, j in zip(ratio_cells, others)))
        lines += md_table(header, table)
    lines += _speedup_lines(docs, labels)
    report = write_text_atomic(out_dir / "comparison.md", "\n".join(lines).rstrip() + "\n")
    return report, plots, "\n".join(align_rows(text_rows)) + "\n"


def _results_lines(docs: Sequence[Dict[str, Any]], labels: Sequence[str]) -> List[str]:
    """The results compared: version, status, parity, profile, threads, oneDNN, CPU, GEMM peak, file."""
    return ["## Results compared", ""] + md_table(
        ("", "result", "status", "parity", "profile", "OpenMP threads", "MKLDNN", "CPU", "GEMM peak GFLOP/s", "file"),
        [(lab, f"mx.__version__ {d['env'].get('mxnet_version')}", d.get("status"), _parity_cell(d),
          (d.get("config") or {}).get("profile"), d["env"].get("omp_threads"),
          "yes" if (d["env"].get("features") or {}).get("MKLDNN") else "no", d["env"].get("cpu_model"),
          f"{d['gemm_peak_gflops']:.1f}" if d.get("gemm_peak_gflops") else "-", d.get("_source", "-"))
         for lab, d in zip(labels, docs)])


def _speedup_lines(docs: Sequence[Dict[str, Any]], labels: Sequence[str]) -> List[str]:
    """Each result's speed-ups side by side (none when no result has any)."""
    if not any(d.get("speedups") for d in docs):
        return []
    cells: Dict[Tuple[str, str, str, int, int], List[str]] = {}
    for j, d in enumerate(docs):
        for s in d.get("speedups") or []:
            k = (s["label"], s["model"], s["task"], s["seq_len"], s["batch"])
            cells.setdefault(k, ["-"] * len(docs))[j] = format_speedup(speedup_ratio(s))
    return (["## Speed-ups per result", "",
             "Each result's speed-ups (baseline / optimized time from alternating samples, 95% CI).", ""]
            + md_table(["optimization", "model/task/seq", "batch"] + list(labels),
                       [[k[0], f"{k[1]}/{k[2]}/{k[3]}", k[4]] + v for k, v in cells.items()]))


def _ratio_cell(c: Optional[Comparison]) -> str:
    if c is None:
        return "-"
    if c.low != c.low:  # one run on a side: no interval
        return f"{c.ratio:.3f}"
    return f"{c.ratio:.3f} {c.interval_text()}"


def _parity_cell(doc: Dict[str, Any]) -> str:
    """'ops 67/77 passed, model 1/4 passed' (ran cases only), or 'not run'."""
    par = doc.get("parity")
    if not par:
        return "not run"
    parts = []
    for key, name in (("ops", "ops"), ("model", "model")):
        c = (par.get(key) or {}).get("counts")
        if c:
            parts.append(f"{name} {c['pass']}/{c['pass'] + c['fail'] + c['error']} passed")
    return ", ".join(parts) or "not run"



def default_compare_dir(root: "os.PathLike[str] | str" = "results") -> Path:
    """results/compare-<timestamp>/ (not created)."""
    return Path(root) / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
