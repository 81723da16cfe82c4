"""Every timing comparison perfsuite makes, decided in one place: the upgrade gate, `perfsuite run`'s speed-up
table and `perfsuite report A B` all call this module.

The unit of a statistic is what varies independently, never one iteration:

- a *unit* is a process (a gate session: one fresh worker per side), a run (one results file), or, when two
  callables alternate inside one process and nothing better exists, one alternated pair;
- iterations inside a unit share its memory layout, its neighbours on the machine and its drift, so they are
  summarized into one number per unit first (the median of the unit's paired log-ratios), and only the units
  enter the test. Pooling iterations as independent samples is what made pyperf flag identical code
  (psf/pyperf#106); unpaired methods on cloud machines "found" 38 % differences between identical systems
  (Abedi & Brecht, ICPE'17).

Paired comparisons (`compare_paired`): the ratio is exp(mean of the units' log-ratios) with a Student t interval
on those unit log-ratios, and the exact Wilcoxon signed-rank test (scipy.stats.wilcoxon) on the same numbers.
A change is *significant* only when both say so, as Chromium Pinpoint requires (p < alpha and an interval that
excludes 0): the t interval is the interval we report; Wilcoxon, distribution-free, keeps one wild unit (a
session another process disturbed) from making a mean look significant. Why not a Hodges-Lehmann interval: scipy
has none, and the t interval on per-unit medians is exact for normal unit effects and robust enough once each
unit is itself a median. Why not a bootstrap over pairs: with the few units a gate can afford (6-20) percentile
bootstraps under-cover, and over pairs they ignore the between-process variance.

Unpaired comparisons (`compare_runs`, separate runs measured at different times): each run's median is one
unit; Welch's t interval on the log medians and the exact Mann-Whitney U test (scipy.stats.mannwhitneyu).

Verdicts: "slower" (significant and the estimate beyond the threshold), "faster" (significant and below
1 / (1 + threshold)), "no change" (otherwise), and "not enough data" when there are fewer units than the
smallest number with which the exact test can reach p < 1 - confidence at all (6 pairs at 95 %, 8 at 99 %;
4 runs per side at 95 %): below that a verdict would be decided by the interval alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from perfsuite.errors import PerfsuiteInputError

__all__ = ["Comparison", "compare_paired", "compare_runs", "min_units_paired", "min_units_runs",
           "percentile_summary", "VERDICTS", "log_ratios"]

#: The verdicts a comparison can reach.
VERDICTS = ("slower", "faster", "no change", "not enough data")


@dataclass(frozen=True)
class Comparison:
    """candidate / baseline time: estimate, confidence interval, test, how much data, and the verdict.

    ratio > 1 means the candidate takes longer. `n_units` independent units (processes, runs or pairs) carry
    `n_pairs` paired measurements (for unpaired comparisons, the runs' sample counts).
    """

    ratio: float
    low: float
    high: float
    confidence: float
    threshold: float  # e.g. 0.02: a change is called only beyond 2 %
    p_value: float
    n_units: int
    n_pairs: int
    min_units: int
    unit: str = "unit"  # what one unit is: "session", "run", "pair"
    notes: tuple = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not (self.ratio > 0 and self.low > 0 and self.high > 0) and self.enough:
            raise PerfsuiteInputError(f"ratio and its interval must be > 0; got {self.ratio}, [{self.low}, {self.high}]")
        if not 0.5 < self.confidence < 1:
            raise PerfsuiteInputError(f"confidence {self.confidence!r}: allowed 0.5 < confidence < 1")

    @property
    def enough(self) -> bool:
        """Are there enough units for the exact test to reach significance at all?"""
        return self.n_units >= self.min_units

    @property
    def significant(self) -> bool:
        """The interval excludes 1 AND the exact rank test rejects at 1 - confidence."""
        return (self.enough and (self.low > 1.0 or self.high < 1.0)
                and self.p_value < 1.0 - self.confidence)

    @property
    def verdict(self) -> str:
        if not self.enough:
            return "not enough data"
        if self.significant and self.ratio > 1.0 + self.threshold:
            return "slower"
        if self.significant and self.ratio < 1.0 / (1.0 + self.threshold):
            return "faster"
        return "no change"

    @property
    def within_threshold(self) -> bool:
        """The whole interval lies inside (1 / (1 + t), 1 + t): any change is smaller than the threshold."""
        return self.enough and self.low > 1.0 / (1.0 + self.threshold) and self.high < 1.0 + self.threshold

    @property
    def decided(self) -> bool:
        """Sampling more cannot change the verdict's meaning: slower, faster, or a change ruled out."""
        return self.verdict in ("slower", "faster") or self.within_threshold

    def interval_text(self) -> str:
        return f"[{self.low:.3f}, {self.high:.3f}]"

    def describe(self) -> str:
        """One line: '1.23x slower [1.15, 1.31] (p=0.002, 8 sessions, 96 pairs)' and the like."""
        data = f"{self.n_units} {self.unit}{'s' if self.n_units != 1 else ''}"
        if self.n_pairs != self.n_units:
            data += f", {self.n_pairs} pairs"
        if not self.enough:
            est = f"{self.ratio:.3f}x" if self.ratio == self.ratio else "-"
            return f"not enough data ({est} on {data}; a verdict needs >= {self.min_units} {self.unit}s)"
        ci = f"{self.interval_text()} at {self.confidence:.0%}, p={self.p_value:.2g}, {data}"
        v = self.verdict
        if v == "slower":
            return f"{self.ratio:.3f}x slower {ci}"
        if v == "faster":
            return f"{1 / self.ratio:.3f}x faster {ci}"
        if self.significant:
            return f"no change beyond {self.threshold:.0%} ({self.ratio:.3f}x {ci}: significant but within the threshold)"
        return f"no significant change ({self.ratio:.3f}x {ci})"


def _times(name: str, x: Sequence[float]) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise PerfsuiteInputError(f"{name}: need a non-empty 1-D sequence of times; got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise PerfsuiteInputError(f"{name}: times must be finite and > 0")
    return a


def _check_levels(confidence: float, threshold: float) -> None:
    if not (isinstance(confidence, (int, float)) and 0.5 < confidence < 1):
        raise PerfsuiteInputError(f"confidence {confidence!r}: allowed 0.5 < confidence < 1")
    if not (isinstance(threshold, (int, float)) and 0 <= threshold < 1):
        raise PerfsuiteInputError(f"threshold {threshold!r}: allowed 0 <= threshold < 1")


def min_units_paired(confidence: float) -> int:
    """Smallest n for which the exact two-sided signed-rank test can give p < 1 - confidence (p_min = 2 / 2^n)."""
    alpha = 1.0 - confidence
    n = 1
    while 2.0 / 2 ** n >= alpha:
        n += 1
    return n


def min_units_runs(confidence: float) -> int:
    """Smallest n per side for which the exact two-sided Mann-Whitney test can give p < 1 - confidence
    (p_min = 2 / C(2n, n) with n runs on each side)."""
    alpha = 1.0 - confidence
    n = 1
    while 2.0 / math.comb(2 * n, n) >= alpha:
        n += 1
    return n


def log_ratios(baseline: Sequence[float], candidate: Sequence[float]) -> np.ndarray:
    """log(candidate / baseline) per pair."""
    b, c = _times("baseline", baseline), _times("candidate", candidate)
    if b.size != c.size:
        raise PerfsuiteInputError(f"paired samples need equal counts; got {b.size} baseline and {c.size} candidate")
    return np.log(c) - np.log(b)


def compare_paired(baseline: Sequence[float], candidate: Sequence[float], units: Optional[Sequence] = None, *,
                   confidence: float = 0.95, threshold: float = 0.02, unit: str = "pair") -> Comparison:
    """Compare paired times (pair i = baseline[i] and candidate[i], measured back to back).

    `units[i]` names the unit pair i belongs to (a session id); the pairs of a unit are summarized by the
    median of their log-ratios before the test. Without `units` every pair is its own unit.
    """
    from scipy import stats as st

    _check_levels(confidence, threshold)
    lr = log_ratios(baseline, candidate)
    if units is None:
        per_unit = lr
    else:
        if len(units) != lr.size:
            raise PerfsuiteInputError(f"units: need one label per pair ({lr.size}); got {len(units)}")
        labels = list(dict.fromkeys(units))
        u = np.asarray([labels.index(x) for x in units])
        per_unit = np.array([np.median(lr[u == i]) for i in range(len(labels))])
    n = per_unit.size
    need = min_units_paired(confidence)
    mean = float(np.mean(per_unit))
    if n < 2:
        return Comparison(math.exp(mean), math.nan, math.nan, confidence, threshold, math.nan, n, lr.size, need, unit)
    sd = float(np.std(per_unit, ddof=1))
    half = float(st.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    if np.all(per_unit == per_unit[0]):
        p = 0.0 if per_unit[0] != 0 else 1.0  # every unit agrees exactly: no rank test is needed (or possible)
    else:
        p = float(st.wilcoxon(per_unit).pvalue) if np.any(per_unit != 0) else 1.0
    return Comparison(math.exp(mean), math.exp(mean - half), math.exp(mean + half), confidence, threshold, p, n,
                      lr.size, need, unit)


def compare_runs(baseline_runs: Sequence[Sequence[float]], candidate_runs: Sequence[Sequence[float]], *,
                 confidence: float = 0.95, threshold: float = 0.05) -> Comparison:
    """Compare separate runs (each a list of sample times, measured at different times): each run's median is
    one unit; Welch's t interval on the log medians, the exact Mann-Whitney U test for significance."""
    from scipy import stats as st

    _check_levels(confidence, threshold)
    if not baseline_runs or not candidate_runs:
        raise PerfsuiteInputError("compare_runs: need at least one run on each side")
    b = np.log([np.median(_times("baseline run", r)) for r in baseline_runs])
    c = np.log([np.median(_times("candidate run", r)) for r in candidate_runs])
    need = min_units_runs(confidence)
    n_units = min(b.size, c.size)
    n_samples = int(sum(len(r) for r in baseline_runs) + sum(len(r) for r in candidate_runs))
    diff = float(np.mean(c) - np.mean(b))
    if b.size < 2 or c.size < 2:
        return Comparison(math.exp(diff), math.nan, math.nan, confidence, threshold, math.nan, n_units, n_samples,
                          need, "run")
    vb, vc = np.var(b, ddof=1) / b.size, np.var(c, ddof=1) / c.size
    se = math.sqrt(vb + vc)
    if se == 0:
        half, df = 0.0, 1.0
    else:
        df = (vb + vc) ** 2 / (vb ** 2 / (b.size - 1) + vc ** 2 / (c.size - 1))
        half = float(st.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(st.mannwhitneyu(c, b, alternative="two-sided").pvalue)
    return Comparison(math.exp(diff), math.exp(diff - half), math.exp(diff + half), confidence, threshold, p,
                      n_units, n_samples, need, "run")


def percentile_summary(samples: Sequence[float]) -> dict:
    """median, IQR, p90, p99 of a sample of times (the one place percentiles are computed)."""
    a = _times("samples", samples)
    q1, med, q3, p90, p99 = np.percentile(a, [25, 50, 75, 90, 99])
    return {"median": float(med), "iqr": float(q3 - q1), "q1": float(q1), "q3": float(q3), "p90": float(p90),
            "p99": float(p99), "n": int(a.size)}
