"""perfsuite.stats: the one statistics module. Verdict edges, the minimum data for a verdict, the unit of the
statistic (processes, not iterations), interval coverage and false alarms over many seeds, input errors.

Synthetic samples only (seeded): the statistics are checked, not this machine's speed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from perfsuite.errors import PerfsuiteInputError
from perfsuite.stats import (Comparison, SequentialDesign, compare_paired, compare_runs, compare_sessions,
                             hodges_lehmann, log_ratios, min_units_paired, min_units_runs, obf_spending,
                             percentile_summary, sequential_boundaries, trimmed_t, variance_components)


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def sessions(rng, n_sessions, pairs, ratio=1.0, between=0.01, within=0.03, drift=0.0):
    """Paired times: per session a layout effect on the candidate (sd `between`), per pair noise (sd `within`)
    and a drift shared by both members of a pair."""
    base, cand, units = [], [], []
    for s in range(n_sessions):
        effect = rng.normal(0, between)
        for _ in range(pairs):
            shared = 0.1 * math.exp(rng.normal(0, drift)) if drift else 0.1
            base.append(shared * math.exp(rng.normal(0, within)))
            cand.append(shared * ratio * math.exp(effect + rng.normal(0, within)))
            units.append(s)
    return np.array(base), np.array(cand), units


def test_minimum_units_are_where_the_exact_tests_can_reject():
    # signed rank: p_min = 2 / 2^n ; Mann-Whitney with n per side: p_min = 2 / C(2n, n)
    assert min_units_paired(0.95) == 6 and 2 / 2 ** 5 >= 0.05 > 2 / 2 ** 6
    assert min_units_paired(0.99) == 8 and 2 / 2 ** 7 >= 0.01 > 2 / 2 ** 8
    assert min_units_runs(0.95) == 4 and 2 / math.comb(6, 3) >= 0.05 > 2 / math.comb(8, 4)


def test_clearly_slower_with_sessions(rng):
    b, c, u = sessions(rng, 8, 6, ratio=1.20)
    r = compare_paired(b, c, u, threshold=0.02, unit="session")
    assert r.verdict == "slower" and r.significant and r.decided
    assert r.n_units == 8 and r.n_pairs == 48 and r.unit == "session"
    assert 1.02 < r.low <= r.ratio <= r.high < 1.5 and r.p_value < 0.05
    assert r.describe().startswith(f"{r.ratio:.3f}x slower [") and "8 sessions, 48 pairs" in r.describe()


def test_clearly_faster_is_symmetric(rng):
    b, c, u = sessions(rng, 8, 6, ratio=1 / 1.20)
    r = compare_paired(b, c, u, threshold=0.02, unit="session")
    assert r.verdict == "faster" and r.high < 1 / 1.02
    assert r.describe().startswith(f"{1 / r.ratio:.3f}x faster [")


def test_identical_systems_are_no_change(rng):
    b, c, u = sessions(rng, 10, 6, ratio=1.0, between=0.002, within=0.01)
    r = compare_paired(b, c, u, unit="session")
    assert r.verdict == "no change" and not r.significant and r.low < 1.0 < r.high
    assert r.within_threshold and r.decided  # a 2 % change is ruled out: sampling can stop
    assert r.describe().startswith("no change beyond 2% (")


def test_estimate_is_geometric_mean_of_unit_medians():
    base = np.ones(12)
    cand = np.array([1.1, 1.1, 9.0, 1.2, 1.2, 1.2, 1.3, 1.3, 0.1, 1.0, 1.0, 1.0])
    units = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]  # one wild pair in units 0 and 2 does not move their medians
    r = compare_paired(base, cand, units)
    assert r.ratio == pytest.approx(math.exp(np.mean(np.log([1.1, 1.2, 1.3, 1.0]))))
    assert r.n_units == 4 and r.n_pairs == 12


def test_significant_needs_both_the_interval_and_the_rank_test():
    # every pair exactly 3 % slower: the interval collapses and the rank test rejects
    base = np.linspace(1.0, 1.1, 12)
    r = compare_paired(base, base * 1.03, threshold=0.02)
    assert r.significant and r.low == pytest.approx(1.03) and r.verdict == "slower"
    # one unit far slower, the others a hair faster: the t interval may exclude 1 but the rank test does not
    lr = np.array([-0.001] * 7 + [0.5])
    r = compare_paired(np.ones(8), np.exp(lr), threshold=0.02)
    assert r.p_value > 0.05 and not r.significant and r.verdict == "inconclusive" and not r.rules_out_slowdown


@pytest.mark.parametrize("ratio,threshold,ignore_below,verdict", [
    (1.03, 0.02, 0.0, "slower"),
    (1.015, 0.02, 0.0, "slower"),  # measured slower: the threshold never hides a slowdown that is shown
    (1.002, 0.02, 0.0, "slower"),
    (1.0 / 1.03, 0.02, 0.0, "faster"),
    (0.998, 0.02, 0.0, "faster"),
    (1.015, 0.03, 0.02, "no change"),  # below --ignore-below, and a change beyond 3 % is ruled out
    (1.021, 0.03, 0.02, "slower"),
    (0.9805, 0.03, 0.02, "no change"),  # 'faster' needs the bound below 1 / 1.02 = 0.98039, not 1 - 0.02
    (0.9803, 0.03, 0.02, "faster"),
])
def test_verdict_edges(ratio, threshold, ignore_below, verdict):
    base = np.linspace(1.0, 1.3, 10)
    r = compare_paired(base, base * ratio, threshold=threshold)  # every pair exactly at the ratio: a point interval
    r = Comparison(**{**r.__dict__, "ignore_below": ignore_below})
    assert r.significant and r.verdict == verdict
    if verdict == "no change":
        assert r.describe().startswith(f"no change beyond {threshold:.0%}")


def test_an_interval_that_straddles_the_threshold_is_inconclusive_never_a_pass():
    """[0.95, 1.12]: no slowdown shown, none beyond 2 % ruled out. The old rule called this 'no change'."""
    for low, high in ((0.95, 1.12), (0.99, 1.0201), (1.0 - 1e-9, 1.5), (0.7, 1.03)):
        c = Comparison((low * high) ** 0.5, low, high, 0.95, 0.02, 0.2, 10, 100, 6)
        assert c.verdict == "inconclusive" and not c.rules_out_slowdown and not c.decided
        assert c.describe().startswith("inconclusive (") and "not ruled out" in c.describe()
    ok = Comparison(0.9, 0.8, 1.0199, 0.95, 0.02, 0.2, 10, 100, 6)  # possibly much faster, not slower beyond 2 %
    assert ok.rules_out_slowdown and ok.verdict == "inconclusive" and "no slowdown beyond 2%" in ok.describe()


def test_slower_is_judged_on_the_estimate_and_the_interval():
    # estimate beyond 2 % but the interval reaches below 1: not significant, so no verdict
    rng = np.random.default_rng(3)
    lr = 0.03 + rng.normal(0, 0.06, 8)
    lr -= lr.mean() - 0.03
    r = compare_paired(np.ones(8), np.exp(lr), threshold=0.02)
    assert r.ratio == pytest.approx(math.exp(0.03)) and r.low < 1.0 and r.verdict == "inconclusive"


def test_not_enough_data_below_the_minimum():
    base = np.linspace(1.0, 1.1, 5)
    r = compare_paired(base, base * 1.5)  # 5 pairs, 50 % slower, perfectly consistent
    assert r.verdict == "not enough data" and not r.significant and not r.decided
    assert "needs >= 6 pairs" in r.describe()
    assert compare_paired(np.append(base, 1.2), np.append(base, 1.2) * 1.5).verdict == "slower"
    r = compare_paired(np.linspace(1, 2, 8), np.linspace(1, 2, 8) * 1.5, confidence=0.99)
    assert r.min_units == 8 and r.verdict == "slower"
    one = compare_paired([1.0, 1.0, 1.0], [2.0, 2.0, 2.0], units=["s", "s", "s"])
    assert one.n_units == 1 and one.verdict == "not enough data" and one.ratio == pytest.approx(2.0)


def test_interval_coverage_and_false_alarms_over_many_seeds():
    """Per-session layout effects: the 95 % interval on session units covers the true ratio about 95 % of the
    time and calls an identical system slower in at most ~2.5 %; pooling the pairs as if independent would not."""
    rng = np.random.default_rng(7)
    covered, slower_units, sig_pooled, n = 0, 0, 0, 400
    for _ in range(n):
        b, c, u = sessions(rng, 8, 8, ratio=1.0, between=0.03, within=0.02)
        r = compare_paired(b, c, u, threshold=0.0)
        covered += r.low <= 1.0 <= r.high
        slower_units += r.verdict == "slower"
        sig_pooled += compare_paired(b, c, threshold=0.0).significant
    assert 0.92 <= covered / n <= 0.98
    assert slower_units / n <= 0.045
    assert sig_pooled / n > 0.3  # iterations as units: the layout effect looks like a difference


def test_paired_cancels_drift_that_runs_cannot(rng):
    b, c, u = sessions(rng, 8, 4, ratio=1.10, between=0.005, within=0.005, drift=0.4)
    assert compare_paired(b, c, u).verdict == "slower"
    runs = compare_runs([b[:16], b[16:]], [c[:16], c[16:]])
    assert runs.verdict == "not enough data" and runs.min_units == 4


def test_compare_runs(rng):
    base = [0.1 * rng.lognormal(0, 0.01, 7) for _ in range(5)]
    cand = [0.11 * rng.lognormal(0, 0.01, 7) for _ in range(5)]
    r = compare_runs(base, cand)
    assert r.unit == "run" and r.n_units == 5 and r.n_pairs == 70
    assert r.verdict == "slower" and r.ratio == pytest.approx(1.1, rel=0.02)
    single = compare_runs(base[:1], cand[:1])
    assert single.verdict == "not enough data" and single.low != single.low  # no interval from one run each
    assert compare_runs(base, [0.1 * rng.lognormal(0, 0.01, 7) for _ in range(5)]).verdict == "no change"


@pytest.mark.parametrize("kw,needle", [
    ({"confidence": 1.2}, "confidence 1.2"),
    ({"confidence": 0.3}, "confidence 0.3"),
    ({"threshold": -0.1}, "threshold -0.1"),
    ({"threshold": 1.5}, "threshold 1.5"),
])
def test_bad_levels(kw, needle):
    with pytest.raises(PerfsuiteInputError, match=needle):
        compare_paired([1.0] * 6, [1.0] * 6, **kw)


def test_bad_samples():
    with pytest.raises(PerfsuiteInputError, match="equal counts"):
        log_ratios([1.0, 2.0], [1.0])
    with pytest.raises(PerfsuiteInputError, match="finite and > 0"):
        compare_paired([1.0, -1.0], [1.0, 1.0])
    with pytest.raises(PerfsuiteInputError, match="non-empty"):
        compare_paired([], [])
    with pytest.raises(PerfsuiteInputError, match="one label per pair"):
        compare_paired([1.0, 1.0], [1.0, 1.0], units=[0])
    with pytest.raises(PerfsuiteInputError, match="at least one run"):
        compare_runs([], [[1.0]])


def test_comparison_rejects_impossible_values():
    with pytest.raises(PerfsuiteInputError, match="must be > 0"):
        Comparison(-1.0, 0.5, 1.5, 0.95, 0.02, 0.01, 10, 10, 6)


def test_percentile_summary():
    x = np.arange(1, 101, dtype=float)
    s = percentile_summary(x)
    assert s["median"] == pytest.approx(50.5) and s["iqr"] == pytest.approx(49.5) and s["n"] == 100
    assert s["p90"] == pytest.approx(np.percentile(x, 90)) and s["p99"] == pytest.approx(np.percentile(x, 99))
    with pytest.raises(PerfsuiteInputError):
        percentile_summary([1.0, -2.0])


# ------------------------------------------------------------------------------ exact against scipy (independent)
def test_paired_interval_and_p_value_are_the_textbook_ones():
    """The unit-level t interval and the Wilcoxon p-value are exactly scipy's ttest_1samp interval and wilcoxon."""
    from scipy import stats as st

    rng = np.random.default_rng(11)
    base = rng.uniform(0.9, 1.1, 9)
    cand = base * np.exp(rng.normal(0.02, 0.03, 9))
    r = compare_paired(base, cand, confidence=0.9)
    lr = np.log(cand / base)
    ci = st.ttest_1samp(lr, 0.0).confidence_interval(confidence_level=0.9)
    assert (r.low, r.high) == pytest.approx((math.exp(ci.low), math.exp(ci.high)), rel=1e-12)
    assert r.p_value == pytest.approx(st.wilcoxon(lr).pvalue, rel=1e-12)
    assert r.ratio == pytest.approx(math.exp(lr.mean()), rel=1e-12) and r.n_units == r.n_pairs == 9


def test_runs_interval_and_p_value_are_welch_and_mann_whitney():
    from scipy import stats as st

    rng = np.random.default_rng(12)
    base = [rng.lognormal(0, 0.01, 5) * 0.10 for _ in range(5)]
    cand = [rng.lognormal(0, 0.02, 5) * 0.11 for _ in range(6)]
    r = compare_runs(base, cand, confidence=0.9)
    lb = np.log([np.median(x) for x in base])
    lc = np.log([np.median(x) for x in cand])
    ci = st.ttest_ind(lc, lb, equal_var=False).confidence_interval(confidence_level=0.9)
    assert (r.low, r.high) == pytest.approx((math.exp(ci.low), math.exp(ci.high)), rel=1e-10)
    assert r.p_value == pytest.approx(st.mannwhitneyu(lc, lb, alternative="two-sided").pvalue, rel=1e-12)
    assert r.n_units == 5 and r.n_pairs == 55


def test_two_units_give_an_interval_one_does_not():
    two = compare_paired([1.0, 1.0, 1.0, 1.0], [1.1, 1.2, 1.3, 1.4], units=[0, 0, 1, 1])
    assert two.n_units == 2 and two.low == two.low and two.low < two.ratio < two.high  # an interval from 2 units
    one = compare_runs([[1.0, 1.1]], [[1.2, 1.3], [1.2, 1.25]])
    assert one.low != one.low and one.p_value != one.p_value and one.threshold == 0.05 and one.unit == "run"
    r = compare_paired([1.0], [2.0])
    assert r.n_units == 1 and r.p_value != r.p_value and r.threshold == 0.02 and r.unit == "pair"


def test_units_that_agree_exactly():
    same = compare_paired(np.ones(8), np.ones(8) * 1.05)  # every unit exactly 5 % slower
    assert same.p_value == 0.0 and same.verdict == "slower"
    none = compare_paired(np.ones(8), np.ones(8))  # no change at all
    assert none.p_value == 1.0 and none.verdict == "no change" and none.within_threshold and none.rules_out_slowdown


def test_errors_name_the_argument():
    with pytest.raises(PerfsuiteInputError, match="^baseline: times must be finite and > 0"):
        compare_paired([1.0, -1.0], [1.0, 1.0])
    with pytest.raises(PerfsuiteInputError, match="^candidate: times must be finite and > 0"):
        compare_paired([1.0, 1.0], [1.0, float("nan")])
    with pytest.raises(PerfsuiteInputError, match="^baseline run: times must be finite"):
        compare_runs([[1.0, -1.0]], [[1.0]])
    with pytest.raises(PerfsuiteInputError, match="^candidate run: need a non-empty"):
        compare_runs([[1.0]], [[]])
    with pytest.raises(PerfsuiteInputError, match="^samples: times must be finite"):
        percentile_summary([0.0])
    with pytest.raises(PerfsuiteInputError, match="paired samples need equal counts; got 2 baseline and 1 candidate"):
        log_ratios([1.0, 2.0], [1.0])
    with pytest.raises(PerfsuiteInputError, match="^compare_runs: need at least one run on each side$"):
        compare_runs([[1.0]], [])


def test_describe_counts_units_and_pairs():
    r = compare_paired(np.ones(12), np.ones(12) * 1.1, units=[i // 2 for i in range(12)], unit="session")
    assert "6 sessions, 12 pairs" in r.describe()
    one = compare_paired([1.0], [1.5], unit="session")
    assert one.describe() == "not enough data (1.500x on 1 session; a verdict needs >= 6 sessions)"
    assert percentile_summary([1.0, 2.0, 3.0, 4.0]) == {
        "median": 2.5, "iqr": 1.5, "q1": 1.75, "q3": 3.25, "p90": pytest.approx(3.7), "p99": pytest.approx(3.97),
        "n": 4}


def test_level_and_size_boundaries():
    # p must fall *below* alpha: at alpha = 2 / 2^5 exactly (a binary fraction) five units are not enough
    assert min_units_paired(1 - 2 / 2 ** 5) == 6
    for bad in (0.5, 1.0):
        with pytest.raises(PerfsuiteInputError, match=f"confidence {bad!r}: allowed 0.5 < confidence < 1"):
            compare_paired([1.0] * 6, [1.0] * 6, confidence=bad)
    # two runs a side are the fewest with a Welch interval
    two = compare_runs([[1.0], [1.1]], [[1.2], [1.25]])
    assert two.low == two.low and two.low < two.ratio < two.high and two.n_pairs == 4
    # runs that agree exactly inside each side: a zero-width interval at the ratio
    flat = compare_runs([[1.0], [1.0], [1.0]], [[2.0], [2.0], [2.0]])
    assert flat.low == pytest.approx(2.0) and flat.high == pytest.approx(2.0) and flat.ratio == pytest.approx(2.0)


@pytest.mark.parametrize("kw,needle", [
    ({"confidence": 0.5}, "confidence 0.5: allowed 0.5 < confidence < 1"),
    ({"confidence": 1.0}, "confidence 1.0: allowed 0.5 < confidence < 1"),
    ({"threshold": 1.0}, "threshold 1.0: allowed 0 <= threshold < 1"),
    ({"threshold": -0.01}, "threshold -0.01: allowed 0 <= threshold < 1"),
])
def test_levels_at_their_limits_are_refused(kw, needle):
    x = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02]
    for fn in (compare_paired, compare_runs):
        with pytest.raises(PerfsuiteInputError, match=needle):
            fn(x, x, **kw)


# ------------------------------------------------------------------------------ the gate's sequential statistics
def test_obf_boundaries_are_the_published_ones():
    """Lan-DeMets O'Brien-Fleming spending, 5 equally spaced looks, one-sided 0.025: gsDesign's (and Jennison and
    Turnbull's) z boundaries 4.877, 3.357, 2.680, 2.290, 2.031."""
    z = sequential_boundaries(0.025, (0.2, 0.4, 0.6, 0.8, 1.0))
    assert z == pytest.approx((4.8769, 3.3569, 2.6803, 2.2898, 2.0310), abs=2e-4)
    assert obf_spending(0.025, 1.0) == pytest.approx(0.025) and obf_spending(0.025, 0.0) == 0.0
    # one look at the end is the fixed-sample test
    from scipy.stats import norm
    assert sequential_boundaries(0.01, (1.0,))[0] == pytest.approx(norm.isf(0.01))


def test_boundaries_spend_exactly_their_level_by_monte_carlo():
    """A Brownian motion without drift, looked at 12 times at uneven fractions, crosses the boundaries with the
    total probability alpha (50,000 seeded paths, 4 standard errors)."""
    rng = np.random.default_rng(5)
    fr = np.array([4, 5, 6, 8, 10, 11, 12, 14, 16, 17, 19, 20]) / 20
    z = np.array(sequential_boundaries(0.05, tuple(fr)))
    steps = rng.normal(0, 1, (50000, fr.size)) * np.sqrt(np.diff(np.concatenate([[0], fr])))
    w = np.cumsum(steps, axis=1)
    crossed = np.mean(np.any(w / np.sqrt(fr) > z, axis=1))
    assert abs(crossed - 0.05) < 4 * math.sqrt(0.05 * 0.95 / 50000)


def test_hodges_lehmann_is_the_median_of_walsh_averages_and_ignores_wild_pairs():
    x = np.array([0.01, -0.02, 0.03, 0.0, 0.5])
    walsh = [(x[i] + x[j]) / 2 for i in range(5) for j in range(i, 5)]
    assert hodges_lehmann(x) == pytest.approx(np.median(walsh))
    rng = np.random.default_rng(1)
    clean = rng.normal(0.02, 0.03, 40)
    wild = np.concatenate([clean, [3.0, 2.5, -4.0]])  # three pairs a burst of another process hit
    assert abs(hodges_lehmann(wild) - hodges_lehmann(clean)) < 0.01 < abs(np.mean(wild) - np.mean(clean))
    with pytest.raises(PerfsuiteInputError, match="hodges_lehmann"):
        hodges_lehmann([])


def test_variance_components_recover_within_and_between():
    rng = np.random.default_rng(2)
    lr, units = [], []
    for s in range(60):
        shift = rng.normal(0, 0.01)
        lr += list(shift + rng.normal(0, 0.04, 32))
        units += [s] * 32
    vc = variance_components(lr, units)
    assert vc["within_sd_per_pair"] == pytest.approx(0.04, rel=0.05)
    assert vc["between_sd"] == pytest.approx(0.01, rel=0.3)
    assert vc["sessions"] == 60 and vc["pairs"] == 60 * 32 and len(vc["session_figures"]) == 60


def _design(**kw):
    return SequentialDesign(**{"confidence": 0.99, "max_sessions": 20, "first_look": 4, **kw})


def test_compare_sessions_bounds_are_the_designs_at_this_look():
    from scipy import stats as st

    d = _design()
    f = np.random.default_rng(3).normal(0.01, 0.01, 12)
    c = compare_sessions(f, d, 8)
    m, se, df = trimmed_t(f)
    assert df == 12 - 2 * 1 - 1  # 10 % of 12: one figure cut from each end
    q_slow, q_safe = d.critical(12, 8, df)
    assert c.ratio == pytest.approx(math.exp(m))
    assert c.low == pytest.approx(math.exp(m - q_slow * se)) and c.high == pytest.approx(math.exp(m + q_slow * se))
    assert c.margin_high == pytest.approx(math.exp(m + q_safe * se)) and q_safe < q_slow
    lv = d.nominal_levels(8)
    assert q_slow == pytest.approx(st.t.isf(lv["slower"][12 - 4], df))
    # each look below the whole level; the last far above a Bonferroni split over the 17 looks (correlated looks)
    assert max(lv["slower"]) < 0.01 / 8 and lv["slower"][-1] > 0.01 / 8 / 17 * 5
    assert c.n_units == 12 and c.unit == "session" and c.confidence == pytest.approx(1 - 0.01 / 8)
    assert compare_sessions(f[:3], d, 8).verdict == "not enough data"
    with pytest.raises(PerfsuiteInputError, match="this design looks after 4 to 20"):
        compare_sessions(np.zeros(21), d, 8)


def test_trimmed_t_is_tukey_mclaughlin_and_shrugs_off_one_wild_session():
    from scipy import stats as st

    f = np.array([0.01, -0.004, 0.002, 0.0, 0.003, -0.001, 0.005, 0.001, -0.002, 0.06, 0.004, -0.003])
    m, se, df = trimmed_t(f)
    s = np.sort(f)
    assert m == pytest.approx(st.trim_mean(f, 0.1)) and m == pytest.approx(np.mean(s[1:-1])) and df == 9
    w = s.copy()
    w[0], w[-1] = s[1], s[-2]
    assert se == pytest.approx(np.std(w, ddof=1) / (0.8333333333333334 * math.sqrt(12)))
    # the plain standard error is three times larger: one wild session widens every bound that much
    assert np.std(f, ddof=1) / math.sqrt(12) > 2.5 * se
    few = np.array([0.01, 0.02, 0.0, 0.01])
    assert trimmed_t(few) == pytest.approx((few.mean(), few.std(ddof=1) / 2, 3))  # g = 0: Student's t
