"""Statistics for comparing timings: ratio of medians with a bootstrap confidence interval, and a verdict that
calls a change only when it is both significant (the interval excludes 1) and larger than a threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from perfsuite.errors import PerfsuiteInputError

__all__ = ["Ratio", "ratio_of_medians", "percentile_summary"]


@dataclass(frozen=True)
class Ratio:
    """candidate / baseline median time, with a confidence interval and the verdict at a threshold."""

    ratio: float
    low: float
    high: float
    confidence: float
    threshold: float  # e.g. 0.05: changes under 5 % are not called

    @property
    def significant(self) -> bool:
        return self.low > 1.0 or self.high < 1.0

    @property
    def verdict(self) -> str:
        """'slower', 'faster' or 'same' (not significant, or within the threshold)."""
        if self.significant and self.low > 1.0 + self.threshold:
            return "slower"
        if self.significant and self.high < 1.0 / (1.0 + self.threshold):
            return "faster"
        return "same"

    def describe(self) -> str:
        ci = f"[{self.low:.3f}, {self.high:.3f}] at {self.confidence:.0%}"
        if self.verdict == "slower":
            return f"{self.ratio:.2f}x slower {ci}"
        if self.verdict == "faster":
            return f"{1 / self.ratio:.2f}x faster {ci}"
        if self.significant:
            return f"not clearly beyond {self.threshold:.0%} ({self.ratio:.3f}x, {ci})"
        return f"not significant ({self.ratio:.3f}x, {ci})"


def _check(name: str, x: Sequence[float]) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise PerfsuiteInputError(f"{name}: need a non-empty 1-D sequence of times; got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise PerfsuiteInputError(f"{name}: times must be finite and > 0")
    return a


def ratio_of_medians(candidate: Sequence[float], baseline: Sequence[float], confidence: float = 0.95,
                     threshold: float = 0.05, n_boot: int = 4000, seed: Optional[int] = 0,
                     paired: bool = False) -> Ratio:
    """median(candidate) / median(baseline) with a percentile-bootstrap interval.

    paired=True (samples taken in alternation, A B A B ...) resamples pairs together, which cancels drift that
    hits both alike; otherwise the two samples are resampled independently.
    """
    c, b = _check("candidate", candidate), _check("baseline", baseline)
    if not 0.5 < confidence < 1:
        raise PerfsuiteInputError(f"confidence {confidence!r}: allowed 0.5 < confidence < 1")
    if threshold < 0:
        raise PerfsuiteInputError(f"threshold {threshold!r}: must be >= 0")
    rng = np.random.default_rng(seed)
    if paired:
        if c.size != b.size:
            raise PerfsuiteInputError(f"paired samples need equal counts; got {c.size} and {b.size}")
        idx = rng.integers(0, c.size, size=(n_boot, c.size))
        boots = np.median(c[idx], axis=1) / np.median(b[idx], axis=1)
    else:
        boots = (np.median(c[rng.integers(0, c.size, size=(n_boot, c.size))], axis=1)
                 / np.median(b[rng.integers(0, b.size, size=(n_boot, b.size))], axis=1))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    return Ratio(float(np.median(c) / np.median(b)), float(low), float(high), confidence, threshold)


def percentile_summary(samples: Sequence[float]) -> dict:
    """median, IQR, p90, p99 of a sample of times."""
    a = _check("samples", samples)
    q1, med, q3, p90, p99 = np.percentile(a, [25, 50, 75, 90, 99])
    return {"median": float(med), "iqr": float(q3 - q1), "p90": float(p90), "p99": float(p99), "n": int(a.size)}
