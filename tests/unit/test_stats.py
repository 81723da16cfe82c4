"""perfsuite.stats: ratio of medians with a bootstrap interval, verdicts, paired vs unpaired, input errors.

Synthetic samples only (seeded): the statistics are checked, not this machine's speed.
"""

from __future__ import annotations

import numpy as np
import pytest

from perfsuite.errors import PerfsuiteInputError
from perfsuite.stats import Ratio, percentile_summary, ratio_of_medians


def lognormal(rng, n, median, sigma=0.05):
    return median * rng.lognormal(0.0, sigma, n)


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def test_clearly_slower(rng):
    base, cand = lognormal(rng, 30, 0.100), lognormal(rng, 30, 0.150)
    r = ratio_of_medians(cand, base)
    assert r.verdict == "slower" and r.significant
    assert r.ratio == pytest.approx(np.median(cand) / np.median(base))
    assert 1.05 < r.low <= r.ratio <= r.high < 2.0
    assert r.describe().startswith(f"{r.ratio:.2f}x slower [")


def test_clearly_faster(rng):
    base, cand = lognormal(rng, 30, 0.150), lognormal(rng, 30, 0.100)
    r = ratio_of_medians(cand, base)
    assert r.verdict == "faster" and r.high < 1 / 1.05
    assert r.describe().startswith(f"{1 / r.ratio:.2f}x faster [")


def test_same_distribution_is_not_significant(rng):
    base, cand = lognormal(rng, 30, 0.1), lognormal(rng, 30, 0.1)
    r = ratio_of_medians(cand, base)
    assert r.verdict == "same" and r.low < 1.0 < r.high and not r.significant
    assert r.describe().startswith("not significant (")


def test_significant_but_below_threshold_is_same():
    base = np.linspace(1.0, 1.1, 40)
    r = ratio_of_medians(base * 1.02, base, paired=True)  # exactly 2 % slower in every pair
    assert r.significant and r.low == pytest.approx(1.02) and r.high == pytest.approx(1.02)
    assert r.verdict == "same"  # 2 % < the 5 % threshold
    assert r.describe().startswith("not clearly beyond 5% (1.020x")
    assert ratio_of_medians(base * 1.02, base, paired=True, threshold=0.01).verdict == "slower"


def test_paired_cancels_drift_that_unpaired_cannot(rng):
    # alternating A B A B on a machine whose speed drifts by 3x: each pair shares the drift
    drift = rng.uniform(1.0, 3.0, 20)
    base = drift * rng.lognormal(0, 0.01, 20)
    cand = 1.10 * drift * rng.lognormal(0, 0.01, 20)
    paired, unpaired = ratio_of_medians(cand, base, paired=True), ratio_of_medians(cand, base, paired=False)
    assert paired.ratio == unpaired.ratio  # same point estimate ...
    assert paired.verdict == "slower"  # ... but only pairing sees the 10 % through the drift
    assert unpaired.verdict == "same"
    assert (paired.high - paired.low) < 0.25 * (unpaired.high - unpaired.low)


def test_seeded_and_confidence_widens_interval(rng):
    base, cand = lognormal(rng, 15, 0.1, 0.2), lognormal(rng, 15, 0.12, 0.2)
    assert ratio_of_medians(cand, base, seed=3) == ratio_of_medians(cand, base, seed=3)
    narrow, wide = ratio_of_medians(cand, base, confidence=0.8), ratio_of_medians(cand, base, confidence=0.99)
    assert wide.low <= narrow.low and wide.high >= narrow.high
    assert isinstance(narrow, Ratio) and narrow.confidence == 0.8


@pytest.mark.parametrize("cand,base,kw,needle", [
    ([], [1.0], {}, "candidate: need a non-empty 1-D sequence of times; got shape (0,)"),
    ([1.0], [[1.0, 2.0]], {}, "baseline: need a non-empty 1-D sequence of times; got shape (1, 2)"),
    ([1.0, float("nan")], [1.0], {}, "candidate: times must be finite and > 0"),
    ([1.0, float("inf")], [1.0], {}, "candidate: times must be finite and > 0"),
    ([1.0], [0.0, 1.0], {}, "baseline: times must be finite and > 0"),
    ([1.0], [-1.0], {}, "baseline: times must be finite and > 0"),
    ([1.0], [1.0], {"confidence": 0.5}, "confidence 0.5: allowed 0.5 < confidence < 1"),
    ([1.0], [1.0], {"confidence": 1.0}, "confidence 1.0: allowed 0.5 < confidence < 1"),
    ([1.0], [1.0], {"threshold": -0.1}, "threshold -0.1: must be >= 0"),
    ([1.0, 2.0], [1.0], {"paired": True}, "paired samples need equal counts; got 2 and 1"),
])
def test_bad_input_errors(cand, base, kw, needle):
    with pytest.raises(PerfsuiteInputError) as err:
        ratio_of_medians(cand, base, **kw)
    assert needle in str(err.value)


def test_percentile_summary():
    x = np.arange(1.0, 101.0)
    s = percentile_summary(x)
    assert s["median"] == 50.5 and s["n"] == 100
    assert s["iqr"] == pytest.approx(np.percentile(x, 75) - np.percentile(x, 25))
    assert s["p90"] == pytest.approx(90.1) and s["p99"] == pytest.approx(99.01)
    with pytest.raises(PerfsuiteInputError, match="samples: times must be finite and > 0"):
        percentile_summary([1.0, -2.0])
