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

Verdicts, the same for every comparison (a verdict has three outcomes and "not enough evidence" is never a pass):
"slower" (the lower confidence bound of the ratio exceeds 1, or 1 + ignore_below when asked), "faster"
(symmetrically), "no change" (the whole interval lies inside (1 / (1 + threshold), 1 + threshold): a change
beyond the threshold is ruled out), "inconclusive" (anything else: more data could go either way), and "not enough
data" when there are fewer units than the smallest number with which the exact test can reach p < 1 - confidence
at all (6 pairs at 95 %, 8 at 99 %; 4 runs per side at 95 %). Fixed-sample comparisons (the speed-up table, saved
runs) also need the exact rank test to agree before calling slower or faster. The threshold is a practical
margin for ruling a change *out*, never a reason to ignore one that is measured.

The upgrade gate looks at its data after every session, so a fixed-sample interval would be wrong there: each look
is another chance of a false alarm. `SequentialDesign` is the gate's group-sequential plan (Lan-DeMets
O'Brien-Fleming-type alpha spending over a planned maximum number of sessions, boundaries by the recursive
integration of Armitage, McPherson and Rowe, as in gsDesign), and `compare_sessions` turns the session figures
seen so far (their 10 %-trimmed mean, `trimmed_t`) into a Comparison whose bounds hold at every look: the
lower bound at (1 - confidence) / W per workload (Bonferroni over the W workloads: the family-wise false-alarm
rate of the gate), the upper bound, which
rules a slowdown beyond the threshold out, at 1 - confidence per workload (the gate is SAFE only when every
workload rules it out, an intersection-union test, so no correction over workloads is needed there).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from perfsuite.errors import PerfsuiteInputError

__all__ = ["Comparison", "compare_paired", "compare_runs", "min_units_paired", "min_units_runs",
           "percentile_summary", "VERDICTS", "log_ratios", "hodges_lehmann", "variance_components",
           "SequentialDesign", "compare_sessions", "sequential_decision", "obf_spending", "sequential_boundaries",
           "trimmed_t", "SESSION_TRIM"]

#: The verdicts a comparison can reach.
VERDICTS = ("slower", "faster", "no change", "inconclusive", "not enough data")


@dataclass(frozen=True)
class Comparison:
    """candidate / baseline time: estimate, confidence interval, test, how much data, and the verdict.

    ratio > 1 means the candidate takes longer. `n_units` independent units (processes, runs or pairs) carry
    `n_pairs` paired measurements (for unpaired comparisons, the runs' sample counts). [low, high] decides
    slower and faster; [margin_low, margin_high] (the same interval unless given, e.g. the gate's upper bound
    at its own level) decides whether a change beyond the threshold is ruled out.
    """

    ratio: float
    low: float
    high: float
    confidence: float
    threshold: float  # e.g. 0.02: "no change" needs the interval inside (1 / 1.02, 1.02)
    p_value: float
    n_units: int
    n_pairs: int
    min_units: int
    unit: str = "unit"  # what one unit is: "session", "run", "pair"
    notes: tuple = field(default_factory=tuple)
    ignore_below: float = 0.0  # slower only when the lower bound exceeds 1 + ignore_below (faster symmetrically)
    rank_test: bool = True  # slower and faster also need the exact rank test's p < 1 - confidence
    margin_low: Optional[float] = None
    margin_high: Optional[float] = None
    interval_label: str = ""  # how the interval was made, for describe(); default "at <confidence>"

    def __post_init__(self) -> None:
        if not (self.ratio > 0 and self.low > 0 and self.high > 0) and self.enough:
            raise PerfsuiteInputError(f"ratio and its interval must be > 0; got {self.ratio}, [{self.low}, {self.high}]")
        if not 0.5 < self.confidence < 1:
            raise PerfsuiteInputError(f"confidence {self.confidence!r}: allowed 0.5 < confidence < 1")
        if self.ignore_below < 0 or (self.ignore_below > 0 and self.ignore_below >= self.threshold):
            raise PerfsuiteInputError(f"ignore_below {self.ignore_below!r}: allowed 0 <= ignore_below < threshold "
                                      f"({self.threshold!r})")

    @property
    def enough(self) -> bool:
        """Are there enough units for the exact test to reach significance at all?"""
        return self.n_units >= self.min_units

    def _rank_agrees(self) -> bool:
        return not self.rank_test or self.p_value < 1.0 - self.confidence

    @property
    def significant(self) -> bool:
        """The interval excludes 1 (and, for fixed-sample comparisons, the exact rank test rejects)."""
        return self.enough and (self.low > 1.0 or self.high < 1.0) and self._rank_agrees()

    @property
    def slower(self) -> bool:
        """The lower bound exceeds 1 (+ ignore_below): the candidate is slower."""
        return self.enough and self.low > 1.0 + self.ignore_below and self._rank_agrees()

    @property
    def faster(self) -> bool:
        return self.enough and self.high < 1.0 / (1.0 + self.ignore_below) and self._rank_agrees()

    @property
    def _margin(self) -> Tuple[float, float]:
        return (self.low if self.margin_low is None else self.margin_low,
                self.high if self.margin_high is None else self.margin_high)

    @property
    def rules_out_slowdown(self) -> bool:
        """The upper bound is below 1 + threshold: a slowdown beyond the threshold is ruled out (the gate's SAFE)."""
        return self.enough and self._margin[1] < 1.0 + self.threshold

    @property
    def within_threshold(self) -> bool:
        """The whole interval lies inside (1 / (1 + t), 1 + t): any change is smaller than the threshold."""
        lo, hi = self._margin
        return self.enough and lo > 1.0 / (1.0 + self.threshold) and hi < 1.0 + self.threshold

    @property
    def verdict(self) -> str:
        if not self.enough:
            return "not enough data"
        if self.slower:
            return "slower"
        if self.faster:
            return "faster"
        if self.within_threshold:
            return "no change"
        return "inconclusive"

    @property
    def decided(self) -> bool:
        """Sampling more cannot change the verdict's meaning: slower, faster, or a change ruled out."""
        return self.verdict in ("slower", "faster", "no change")

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
        p = f", p={self.p_value:.2g}" if self.p_value == self.p_value else ""
        ci = f"{self.interval_text()} {self.interval_label or f'at {self.confidence:.0%}'}{p}, {data}"
        v = self.verdict
        if v == "slower":
            return f"{self.ratio:.3f}x slower {ci}"
        if v == "faster":
            return f"{1 / self.ratio:.3f}x faster {ci}"
        margin = "" if self.margin_high is None else f"; upper bound for the threshold {self._margin[1]:.3f}"
        if v == "no change":
            return f"no change beyond {self.threshold:.0%} ({self.ratio:.3f}x {ci}{margin})"
        if self.rules_out_slowdown:
            return (f"no slowdown beyond {self.threshold:.0%} ({self.ratio:.3f}x {ci}{margin}; a speed-up beyond "
                    "it is not ruled out)")
        return f"inconclusive ({self.ratio:.3f}x {ci}{margin}: a change beyond {self.threshold:.0%} is not ruled out)"


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


# ------------------------------------------------------------------------------ the gate's sequential statistics
def hodges_lehmann(x: Sequence[float]) -> float:
    """The Hodges-Lehmann estimate of location: the median of all Walsh averages (x_i + x_j) / 2, i <= j.

    A session's figure in the gate. Why not the median: at normal noise it uses only 64 % of the information
    (HL: 95.5 %), so a session would need 1.5x the pairs for the same precision. Why not the mean: one pair that a
    burst of another process hit moves it without bound (HL ignores up to 29 % of wild pairs)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
        raise PerfsuiteInputError(f"hodges_lehmann: need a non-empty 1-D sequence of finite numbers; got {a!r:.80}")
    i, j = np.triu_indices(a.size)
    return float(np.median((a[i] + a[j]) / 2.0))


def variance_components(lr: Sequence[float], units: Sequence[Any]) -> Dict[str, Any]:
    """Where the noise of paired log-ratios comes from: within a session (sd per pair, robust: 1.4826 x the pooled
    median absolute deviation from each session's figure) and between sessions (process-to-process: what the spread
    of the session figures leaves after the within-session part, sd_s^2 - (pi / 3) sd_w^2 / m for HL figures,
    floored at 0). Also the observed sd of the session figures, which the gate's interval uses."""
    a = np.asarray(lr, dtype=np.float64)
    labels = list(dict.fromkeys(units))
    u = np.asarray([labels.index(x) for x in units])
    groups = [a[u == i] for i in range(len(labels))]
    figs = np.array([hodges_lehmann(g) for g in groups])
    dev = np.concatenate([np.abs(g - f) for g, f in zip(groups, figs)]) if groups else np.array([])
    within = float(1.4826 * np.median(dev)) if dev.size else math.nan
    session_sd = float(np.std(figs, ddof=1)) if figs.size > 1 else math.nan
    per = np.array([g.size for g in groups], dtype=float)
    between = math.nan
    if figs.size > 1 and per.size and within == within:
        between = math.sqrt(max(0.0, session_sd ** 2 - float(np.mean(math.pi / 3 * within ** 2 / per))))
    return {"within_sd_per_pair": within, "between_sd": between, "session_sd": session_sd,
            "sessions": int(figs.size), "pairs": int(a.size), "session_figures": [float(f) for f in figs]}


def obf_spending(alpha: float, t: float) -> float:
    """Lan-DeMets O'Brien-Fleming-type spending: the share of the one-sided level `alpha` spent by information
    fraction t, 2 - 2 Phi(z_(1 - alpha / 2) / sqrt(t)). Spends almost nothing early (a few noisy sessions cannot
    decide) and nearly the whole level at the last look, so the final boundary is close to a fixed-sample test's."""
    from scipy import stats as st

    if t <= 0:
        return 0.0
    return float(min(alpha, 2.0 - 2.0 * st.norm.cdf(st.norm.isf(alpha / 2.0) / math.sqrt(min(1.0, t)))))


@functools.lru_cache(maxsize=64)
def sequential_boundaries(alpha: float, fractions: Tuple[float, ...], grid: int = 801) -> Tuple[float, ...]:
    """One-sided group-sequential boundaries (z scale) at looks with information fractions t_1 < ... < t_K:
    under no effect (a Brownian motion without drift), the chance of crossing at any look up to k is exactly
    obf_spending(alpha, t_k). Computed by recursive numerical integration of the density of the continuing paths
    (Armitage, McPherson and Rowe 1969; Jennison and Turnbull 2000, ch. 19). A look that may spend nothing gets
    an infinite boundary."""
    from scipy import stats as st
    from scipy.optimize import brentq

    if not 0 < alpha < 0.5:
        raise PerfsuiteInputError(f"alpha {alpha!r}: allowed 0 < alpha < 0.5")
    t = np.asarray(fractions, dtype=np.float64)
    if t.size == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] > 1 + 1e-12:
        raise PerfsuiteInputError(f"fractions {fractions!r}: need increasing information fractions in (0, 1]")
    out: List[float] = []
    w = dens = None
    prev_t = prev_a = 0.0
    for tk in t:
        spent = obf_spending(alpha, float(tk))
        target = spent - prev_a
        sd_k = math.sqrt(tk)
        if w is None:  # first look: W(t_1) ~ N(0, t_1)
            b = st.norm.isf(target) * sd_k if target > 0 else math.inf
            w = np.linspace(-10 * sd_k, min(b, 10 * sd_k), grid)
            dens = st.norm.pdf(w, 0.0, sd_k)
        else:
            step = math.sqrt(tk - prev_t)
            w_, d_ = w, dens

            def crossing(bound: float) -> float:
                return float(np.trapz(d_ * st.norm.sf((bound - w_) / step), w_))

            top = 40.0 * sd_k
            b = math.inf if target <= 0 or crossing(top) >= target else brentq(
                lambda x: crossing(x) - target, -10.0 * sd_k, top, xtol=1e-10)
            w2 = np.linspace(-10 * sd_k, min(b, 10 * sd_k), grid)
            kern = st.norm.pdf((w2[:, None] - w_[None, :]) / step) / step
            dens = np.trapz(kern * d_[None, :], w_, axis=1)
            w = w2
        out.append(b / sd_k)
        prev_t, prev_a = float(tk), spent
    return tuple(out)


@dataclass(frozen=True)
class SequentialDesign:
    """The gate's group-sequential plan: a look after every session from `first_look` on, at most `max_sessions`
    sessions (information fraction k / max_sessions), O'Brien-Fleming-type spending of each one-sided level.

    `confidence` is 1 - the family-wise false-alarm rate of the whole gate: each of W workloads' "slower" (and
    "faster") bound is at (1 - confidence) / W over all its looks together (Bonferroni). The bound that rules a
    slowdown beyond the threshold out is at 1 - confidence per workload over all looks. The variance is estimated
    from the sessions seen so far, so each nominal level becomes a Student t quantile (Jennison and Turnbull 2000,
    ch. 11: same nominal levels as with known variance), of the trimmed-mean t's degrees of freedom."""

    confidence: float = 0.99
    max_sessions: int = 20
    first_look: int = 4

    def __post_init__(self) -> None:
        if not 0.5 < self.confidence < 1:
            raise PerfsuiteInputError(f"confidence {self.confidence!r}: allowed 0.5 < confidence < 1")
        if not 2 <= self.first_look <= self.max_sessions:
            raise PerfsuiteInputError(f"need 2 <= first_look <= max_sessions; got {self.first_look}, "
                                      f"{self.max_sessions}")

    @property
    def looks(self) -> List[int]:
        return list(range(self.first_look, self.max_sessions + 1))

    def alpha_slower(self, workloads: int) -> float:
        if workloads < 1:
            raise PerfsuiteInputError(f"workloads {workloads!r}: need at least 1")
        return (1.0 - self.confidence) / workloads

    @property
    def alpha_safe(self) -> float:
        return 1.0 - self.confidence

    def nominal_levels(self, workloads: int) -> Dict[str, List[float]]:
        """The one-sided nominal level of each look, for the slower/faster bounds and for the threshold bound."""
        from scipy import stats as st

        fr = tuple(k / self.max_sessions for k in self.looks)
        return {"slower": [float(st.norm.sf(z)) for z in sequential_boundaries(self.alpha_slower(workloads), fr)],
                "threshold": [float(st.norm.sf(z)) for z in sequential_boundaries(self.alpha_safe, fr)]}

    def critical(self, sessions: int, workloads: int, df: Optional[int] = None) -> Tuple[float, float]:
        """(t quantile of the slower/faster bounds, t quantile of the threshold bound) at a look after `sessions`,
        with `df` degrees of freedom (default sessions - 1)."""
        if not self.first_look <= sessions <= self.max_sessions:
            raise PerfsuiteInputError(f"a look after {sessions} sessions: this design looks after "
                                      f"{self.first_look} to {self.max_sessions}")
        return _critical(self, sessions, workloads, sessions - 1 if df is None else df)

    def to_dict(self, workloads: int) -> Dict[str, Any]:
        return {"confidence": self.confidence, "max_sessions": self.max_sessions, "first_look": self.first_look,
                "spending": "Lan-DeMets O'Brien-Fleming type", "workloads": workloads,
                "alpha_slower_per_workload": self.alpha_slower(workloads), "alpha_threshold": self.alpha_safe,
                "nominal_levels": self.nominal_levels(workloads)}


@functools.lru_cache(maxsize=4096)
def _critical(design: SequentialDesign, sessions: int, workloads: int, df: int) -> Tuple[float, float]:
    from scipy import stats as st

    lv = design.nominal_levels(workloads)
    i = sessions - design.first_look
    return (float(st.t.isf(lv["slower"][i], df)) if lv["slower"][i] > 0 else math.inf,
            float(st.t.isf(lv["threshold"][i], df)) if lv["threshold"][i] > 0 else math.inf)


#: The share of session figures trimmed from each end before averaging them (the gate).
SESSION_TRIM = 0.1


def trimmed_t(figures: Sequence[float], trim: float = SESSION_TRIM) -> Tuple[float, float, int]:
    """(trimmed mean, its standard error, degrees of freedom): the one-sample trimmed-mean t of Tukey and McLaughlin
    (1963, as in Yuen 1974): g = floor(trim x n) values cut from each end, the standard error from the Winsorized
    variance, sqrt(s_w^2) / ((1 - 2g/n) sqrt(n)), with n - 2g - 1 degrees of freedom. With g = 0 it is the mean and
    Student's t. Why: one session in ten lands on an unlucky process layout (session figures of 5-6 % where the
    others sit within 1-2 %, seen in A/A gates here); such a session inflates the plain standard deviation, and
    with it every bound, by a factor of 2-3. Simulated through the gate's own rule (12 sessions, 8 workloads):
    with 15 % of sessions 5x noisier, A/A workloads ruled out 93 % instead of 81 % and a 2 % slowdown was called
    84 % instead of 63 %; with clean normal noise 96 % instead of 99 %."""
    f = np.sort(np.asarray(figures, dtype=np.float64))
    n = f.size
    g = int(math.floor(trim * n))
    if n - 2 * g < 2:
        raise PerfsuiteInputError(f"trimmed_t: {n} figures leave fewer than 2 after trimming {g} from each end")
    core = f[g:n - g]
    w = f.copy()
    if g:
        w[:g], w[n - g:] = f[g], f[n - g - 1]
    se = math.sqrt(float(np.var(w, ddof=1))) / ((1.0 - 2.0 * g / n) * math.sqrt(n))
    return float(np.mean(core)), se, n - 2 * g - 1


def sequential_decision(c: Comparison) -> Optional[str]:
    """The gate's rule at one look: "slower" (the lower bound exceeds 1, or 1 + ignore_below), "no slowdown" (the
    upper bound rules a slowdown beyond the threshold out), or None: go on sampling."""
    if c.slower:
        return "slower"
    if c.rules_out_slowdown:
        return "no slowdown"
    return None


def compare_sessions(figures: Sequence[float], design: SequentialDesign, workloads: int, *,
                     threshold: float = 0.02, ignore_below: float = 0.0, n_pairs: Optional[int] = None,
                     unit: str = "session", rank_p: bool = True) -> Comparison:
    """The gate's comparison of one workload after k sessions: `figures` are the sessions' log-ratio figures
    (Hodges-Lehmann of each session's clean pairs). Ratio = exp(10 %-trimmed mean, trimmed_t); the bounds are the
    design's nominal levels at this look as trimmed-mean t quantiles."""
    from scipy import stats as st

    _check_levels(design.confidence, threshold)
    if not 0 <= ignore_below < threshold:
        raise PerfsuiteInputError(f"ignore_below {ignore_below!r}: allowed 0 <= ignore_below < threshold "
                                  f"({threshold!r})")
    f = np.asarray(figures, dtype=np.float64)
    if f.ndim != 1 or not np.all(np.isfinite(f)):
        raise PerfsuiteInputError("figures: need a 1-D sequence of finite log-ratios")
    k = f.size
    pairs = k if n_pairs is None else n_pairs
    level = 1.0 - design.alpha_slower(workloads)
    if k < design.first_look:
        mean = float(np.mean(f)) if k else math.nan
        return Comparison(math.exp(mean) if k else math.nan, math.nan, math.nan, level, threshold, math.nan, k,
                          pairs, design.first_look, unit, ignore_below=ignore_below, rank_test=False)
    mean, se, df = trimmed_t(f)
    q_slow, q_safe = design.critical(k, workloads, df)

    def bound(q: float, sign: int) -> float:
        if not math.isfinite(q) and se > 0:
            return math.inf if sign > 0 else 0.0
        return math.exp(max(-700.0, min(700.0, mean + sign * q * se)))  # a bound beyond e^700 says nothing more

    if not rank_p:  # the exact signed-rank p over sessions is shown, never used by the decision
        p = math.nan
    elif np.all(f == f[0]):
        p = 0.0 if f[0] != 0 else 1.0
    else:
        p = float(st.wilcoxon(f).pvalue)
    label = f"(look {k} of at most {design.max_sessions}; {level:.2%} per workload)"
    return Comparison(math.exp(mean), max(bound(q_slow, -1), 1e-300), bound(q_slow, +1), level, threshold, p, k,
                      pairs, design.first_look, unit, ignore_below=ignore_below, rank_test=False,
                      margin_low=max(bound(q_safe, -1), 1e-300), margin_high=bound(q_safe, +1),
                      interval_label=label)


def percentile_summary(samples: Sequence[float]) -> dict:
    """median, IQR, p90, p99 of a sample of times (the one place percentiles are computed)."""
    a = _times("samples", samples)
    q1, med, q3, p90, p99 = np.percentile(a, [25, 50, 75, 90, 99])
    return {"median": float(med), "iqr": float(q3 - q1), "q1": float(q1), "q3": float(q3), "p90": float(p90),
            "p99": float(p99), "n": int(a.size)}
