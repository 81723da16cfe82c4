"""The PNG plots of perfsuite's reports (Matplotlib on the Agg canvas: no display, no pyplot state): latency and
throughput per batch size and path, cost per 1M requests, and the comparison of several results."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from perfsuite.report.figures import (group_title, by_group, label, measurements, ordered_paths, price_label, doc_prices, slug,
                               workload_figures)

__all__ = ["make_plots", "comparison_plots"]

def _figure(ncols: int, nrows: int = 1, width: float = 6.0, height: float = 4.2) -> Any:
    """A Matplotlib figure on the Agg canvas (no pyplot, no display, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _batch_axis(ax: Any, batches: Sequence[int]) -> None:
    from matplotlib.ticker import FixedLocator, NullLocator

    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(list(batches)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(b) for b in batches])
    ax.set_xlabel("batch size (sentences per forward pass, log scale)")
    ax.grid(True, which="major", alpha=0.3)


def _log_y(ax: Any, money: bool = False) -> None:
    """Log-scale y with plain tick labels at 1, 2, 5 x 10^k (no 10^k notation)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    lo, hi = ax.dataLim.y0, ax.dataLim.y1
    narrow = lo > 0 and hi / lo < 8  # less than a decade: more labelled ticks
    subs = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0) if narrow else (1.0, 2.0, 5.0)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: (f"${v:g}" if money else f"{v:g}")))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _shared_legend(fig: Any, ax: Any, title: str) -> None:
    """One legend for the whole figure, below the panels (never over the data), then a tight layout."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, title=title, loc="lower center", ncol=min(len(labels), 6), fontsize=9,
               title_fontsize=9, frameon=False)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, min(0.25, 0.5 / height), 1, 1))


_STYLES = ("o-", "s-", "^-", "D-", "v-", "P-", "X-", "*-", "h-")


def matplotlib_missing() -> Optional[str]:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return "matplotlib is not installed (pip install matplotlib): the report has tables but no plots"
    return None


def make_plots(doc: Dict[str, Any], out_dir: "os.PathLike[str] | str") -> List[str]:
    """latency_<model>_<task>_L<seq>.png (median latency with IQR bars and throughput vs batch size, one line per
    path) and cost_<...>.png (cost per 1M requests vs batch size, one panel per instance price). Returns the
    file names written."""
    if matplotlib_missing():
        return []
    out_dir = Path(out_dir)
    prices = doc_prices(doc)
    peak = doc.get("gemm_peak_gflops")
    env = doc["env"]
    written: List[str] = []
    for key, gms in by_group(measurements(doc)).items():
        paths = ordered_paths(gms)
        batches = sorted({m.workload["batch"] for m in gms})
        figs = {(m.workload["path"], m.workload["batch"]): workload_figures(m, peak, prices) for m in gms}
        sub = f"{label(doc)}, {env.get('omp_threads')} OpenMP threads, {env.get('cpu_model')}"

        fig = _figure(2)
        ax_l, ax_t = fig.subplots(1, 2)
        for i, p in enumerate(paths):
            bs = [b for b in batches if (p, b) in figs]
            med = np.array([figs[(p, b)]["median_ms"] for b in bs])
            lo = med - np.array([figs[(p, b)]["q1_ms"] for b in bs])
            hi = np.array([figs[(p, b)]["q3_ms"] for b in bs]) - med
            ax_l.errorbar(bs, med, yerr=[lo, hi], fmt=_STYLES[i % len(_STYLES)], capsize=3, label=p)
            ax_t.plot(bs, [figs[(p, b)]["throughput"] for b in bs], _STYLES[i % len(_STYLES)], label=p)
        _log_y(ax_l)
        ax_l.set_ylabel("median latency per batch (ms, log scale)")
        ax_l.set_title("Latency (error bars: interquartile range)")
        ax_t.set_ylabel("throughput (sentences/s)")
        ax_t.set_ylim(bottom=0)
        ax_t.set_title("Throughput at the median latency")
        for ax in (ax_l, ax_t):
            _batch_axis(ax, batches)
        fig.suptitle(f"{group_title(key)}\n{sub}", fontsize=11)
        _shared_legend(fig, ax_l, "path")
        name = f"latency_{slug(key)}.png"
        fig.savefig(out_dir / name)
        written.append(name)

        if not prices:  # no price describes the machine measured: no cost plot
            continue
        ncols = 2 if len(prices) in (2, 4) else min(3, len(prices))
        nrows = math.ceil(len(prices) / ncols)
        fig = _figure(ncols, nrows, width=4.6, height=3.8)
        axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
        for j, (ax, (pname, price)) in enumerate(zip(axes, prices.items())):
            for i, p in enumerate(paths):
                bs = [b for b in batches if (p, b) in figs]
                ax.plot(bs, [figs[(p, b)]["cost"][pname] for b in bs], _STYLES[i % len(_STYLES)], label=p)
            _log_y(ax, money=True)
            ax.set_ylabel("cost per 1M requests (log scale)")
            ax.set_title(price_label(pname, price), fontsize=10)
            _batch_axis(ax, batches)
            ax.xaxis.label.set_size(8)
        for ax in axes[len(prices):]:
            ax.set_visible(False)
        fig.suptitle(f"Cost per 1M requests at this machine's throughput: {group_title(key)}\n{sub}",
                     fontsize=11)
        _shared_legend(fig, axes[0], "path")
        name = f"cost_{slug(key)}.png"
        fig.savefig(out_dir / name)
        written.append(name)
    return written



def comparison_plots(docs: Sequence[Dict[str, Any]], labels: Sequence[str], out_dir: Path) -> List[str]:
    if matplotlib_missing():
        return []
    per = [by_group(measurements(d)) for d in docs]
    keys = list(dict.fromkeys(k for p in per for k in p))
    written = []
    for key in keys:
        paths = list(dict.fromkeys(pth for p in per for pth in ordered_paths(p.get(key, []))))
        batches = sorted({m.workload["batch"] for p in per for m in p.get(key, [])})
        ncols = min(2, len(paths))
        nrows = math.ceil(len(paths) / ncols)
        fig = _figure(ncols, nrows, width=5.4, height=4.0)
        axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
        for ax, pth in zip(axes, paths):
            for i, (lab, p) in enumerate(zip(labels, per)):
                ms = sorted((m for m in p.get(key, []) if m.workload["path"] == pth), key=lambda m: m.workload["batch"])
                if not ms:
                    continue
                bs = [m.workload["batch"] for m in ms]
                med = np.array([m.median_s * 1e3 for m in ms])
                q = np.array([np.percentile(m.clean, [25, 75]) * 1e3 for m in ms])
                ax.errorbar(bs, med, yerr=[med - q[:, 0], q[:, 1] - med], fmt=_STYLES[i % len(_STYLES)],
                            capsize=3, label=lab)
            _log_y(ax)
            ax.set_ylabel("median latency per batch (ms, log scale)")
            ax.set_title(f"path {pth}", fontsize=10)
            _batch_axis(ax, batches)
            ax.xaxis.label.set_size(8)
        for ax in axes[len(paths):]:
            ax.set_visible(False)
        fig.suptitle(f"Latency by MXNet version (error bars: IQR): {group_title(key)}", fontsize=11)
        _shared_legend(fig, axes[0], "MXNet")
        name = f"compare_{slug(key)}.png"
        fig.savefig(out_dir / name)
        written.append(name)
    return written
