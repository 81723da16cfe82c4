"""The data a report is drawn from, shared by the Markdown report (perfsuite.report.markdown), its plots (perfsuite.report.plots)
and comparisons of several results (perfsuite.report.comparison): a result's measurements and label, the price table and
the cost per 1M requests, each workload's figures, and the (model, task, sequence length) groups of a report."""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from perfsuite.timing import Measurement

__all__ = ["PRICES", "USER_PRICE", "GroupKey", "cost_per_million", "measurements", "label", "doc_prices",
           "price_label", "workload_figures", "memory_mib", "by_group", "group_title", "slug", "ordered_paths"]

#: The seed's on-demand instance prices, $ per hour (the one price table). A price describes the cost of a run only
#: on that instance: `perfsuite run --instance NAME` says the machine measured is one; other prices need a run there.
PRICES: Dict[str, float] = {"g4dn.xlarge": 0.526, "c5.xlarge": 0.17, "c5.24xlarge": 4.08, "m5.xlarge": 0.192}
#: The key under which a run stores the user's --price-per-hour (the price of the machine measured).
USER_PRICE = "your price"

GroupKey = Tuple[str, str, int]  # (model, task, seq_len)


def cost_per_million(price_per_hour: float, throughput: float) -> float:
    """Dollars per 1M requests (one sentence each) at `throughput` sentences/s: price / 3600 / throughput * 1e6."""
    if not throughput > 0:
        return math.inf
    return price_per_hour / 3600.0 / throughput * 1e6


def measurements(doc: Dict[str, Any]) -> List[Measurement]:
    """The run's measurements as Measurement objects (raw samples; statistics are computed on demand)."""
    return [Measurement.from_dict(d) for d in doc.get("measurements", [])]


def label(doc: Dict[str, Any]) -> str:
    """'mxnet 1.9.1': the MXNet distribution and version a result was measured on."""
    env = doc.get("env") or {}
    return f"{env.get('mxnet_distribution', 'mxnet')} {env.get('mxnet_dist_version', '?')}"


def doc_prices(doc: Dict[str, Any]) -> Dict[str, float]:
    """The prices that describe the machine measured (--instance, --price-per-hour): possibly none."""
    return dict(doc.get("prices") or {})


def price_label(name: str, price: float) -> str:
    return f"{name} (${price:g}/h)"


def workload_figures(m: Measurement, peak_gflops: Optional[float], prices: Dict[str, float]) -> Dict[str, Any]:
    """Every per-workload figure of the report, computed from the raw samples."""
    clean = m.clean
    q1, q3 = np.percentile(clean, [25, 75])
    thr = m.throughput
    return {
        "median_ms": m.median_s * 1e3, "q1_ms": float(q1) * 1e3, "q3_ms": float(q3) * 1e3, "iqr_ms": m.iqr_s * 1e3,
        "p90_ms": m.percentile_s(90) * 1e3, "p99_ms": m.percentile_s(99) * 1e3, "throughput": thr,
        "throughput_mean": m.throughput_mean,
        "cost": {name: cost_per_million(price, m.throughput_mean) for name, price in prices.items()},
        "gflops": m.gflops, "peak_fraction": (m.gflops / peak_gflops) if peak_gflops else None,
        "peak_rss_mib": (m.peak_rss_bytes / 2 ** 20) if m.peak_rss_bytes else None,
        "n": len(m.samples_s), "dropped": m.dropped, "noisy": m.noisy,
    }


def memory_mib(doc: Dict[str, Any]) -> Optional[Dict[Tuple[Any, ...], Dict[str, Any]]]:
    """The memory probes of a run by (model, task, seq_len, path, batch): {"mib": peak RSS in MiB or None, "note":
    why not}; None for results of a perfsuite without probes (their per-workload peak RSS was the timing process's)."""
    if "memory" not in doc:
        return None
    out: Dict[Tuple[Any, ...], Dict[str, Any]] = {}
    for r in doc.get("memory") or []:
        w = r["workload"]
        peak = r.get("peak_rss_bytes")
        out[(w["model"], w["task"], w["seq_len"], w["path"], w["batch"])] = {
            "mib": peak / 2 ** 20 if peak else None,
            "note": "" if peak else ("skipped: " + str(r["skip"]) if r.get("skip") else "error: " + str(r.get("error")))}
    return out


def by_group(ms: Iterable[Measurement]) -> Dict[GroupKey, List[Measurement]]:
    out: Dict[GroupKey, List[Measurement]] = {}
    for m in ms:
        w = m.workload
        out.setdefault((w["model"], w["task"], w["seq_len"]), []).append(m)
    return out


def group_title(key: GroupKey) -> str:
    model, task, seq = key
    return f"{model}, {task}, sequence length {seq}"


def slug(key: GroupKey) -> str:
    model, task, seq = key
    return f"{model}_{task}_L{seq}"


def ordered_paths(ms: Iterable[Measurement]) -> List[str]:
    return list(dict.fromkeys(m.workload["path"] for m in ms))
