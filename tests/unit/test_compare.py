"""perfsuite.parity.check: the elementwise judge every parity check goes through."""

from __future__ import annotations

import numpy as np
import pytest

from perfsuite.parity.check import compare


def test_one_wrong_element_in_a_large_output_fails():
    rng = np.random.default_rng(0)
    expected = rng.standard_normal((64, 3072))
    actual = expected.copy()
    actual[17, 2049] += 1e-3  # one element of 196,608, far beyond its bound
    r = compare(actual, expected, 1e-6, name="y")
    assert not r.passed and r.worst_index == (17, 2049)
    assert r.mismatch_fraction == pytest.approx(1 / expected.size)
    assert "1/" in r.message or "0.00%" in r.message or "elements over their bound" in r.message


def test_worst_element_is_the_largest_error_over_bound_not_the_largest_error():
    expected = np.zeros(4)
    actual = np.array([1.0, 0.5, 0.0, 0.0])
    bound = np.array([10.0, 0.1, 1.0, 1.0])  # element 0: error 1 of 10 allowed; element 1: error 0.5 of 0.1
    r = compare(actual, expected, bound)
    assert r.worst_index == (1,) and r.worst_ratio == pytest.approx(5.0) and r.worst_error == pytest.approx(0.5)
    assert r.max_abs_error == pytest.approx(1.0)


def test_within_bound_passes_and_exact_equality_is_ratio_zero():
    e = np.linspace(-1, 1, 100)
    assert compare(e, e, 0.0).passed and compare(e, e, 0.0).worst_ratio == 0.0
    assert compare(e + 1e-9, e, 1e-8).passed
    assert not compare(e + 2e-8, e, 1e-8).passed


def test_nonfinite_where_the_reference_is_finite_fails():
    e = np.ones((2, 3))
    a = e.copy()
    a[1, 2] = np.inf
    r = compare(a, e, 1.0)
    assert not r.passed and r.nonfinite == 1 and r.worst_index == (1, 2)
    both_nan = compare(np.array([np.nan]), np.array([np.nan]), 0.0)
    assert both_nan.passed  # the reference decides semantics: NaN where NaN is expected


def test_shape_mismatch_fails():
    r = compare(np.ones((2, 3)), np.ones((3, 2)), 1.0)
    assert not r.passed and "shape mismatch" in r.message


def test_a_shape_mismatch_is_a_complete_failed_record():
    r = compare(np.ones((2, 3)), np.ones((3, 2)), 1.0, name="logits", context={"seed": 3})
    d = r.to_dict()
    assert d["name"] == "logits" and d["passed"] is False and d["shape"] == [3, 2] and d["worst_index"] is None
    assert r.worst_ratio == np.inf and r.mismatch_fraction == 1.0 and r.context == {"seed": 3}
    assert "logits" in r.message and "shape mismatch: actual (2, 3) vs expected (3, 2)" in r.message


def test_the_message_and_record_name_everything_needed_to_reproduce():
    r = compare(np.array([[1.0, 2.5]]), np.array([[1.0, 2.0]]), 0.1, name="qa", context={"model": "small", "seed": 7})
    d = r.to_dict()
    assert d["worst_index"] == [0, 1] and d["worst_actual"] == 2.5 and d["worst_expected"] == 2.0
    assert d["worst_error"] == 0.5 and d["worst_bound"] == 0.1 and d["worst_ratio"] == pytest.approx(5.0)
    assert d["context"] == {"model": "small", "seed": 7} and d["mismatch_fraction"] == 0.5
    for needle in ("qa", "worst element (0, 1)", "actual=2.5", "expected=2", "error/bound=5", "model=small",
                   "seed=7"):
        assert needle in r.message, (needle, r.message)


def test_assert_within_raises_with_the_explanation():
    from perfsuite.parity.check import ParityError, assert_within

    assert assert_within(np.ones(3), np.ones(3), 0.0).passed
    with pytest.raises(ParityError, match=r"worst element \(2,\)"):
        assert_within(np.array([1.0, 1.0, 3.0]), np.ones(3), 0.5)


def test_nan_where_the_reference_is_finite_fails_and_counts():
    # NaN minus a finite number is NaN, which the "both NaN" rule would otherwise forgive
    r = compare(np.array([1.0, np.nan, 3.0]), np.array([1.0, 2.0, 3.0]), 1e-3)
    assert not r.passed and r.nonfinite == 1 and r.worst_index == (1,)
    assert r.worst_error == np.inf and r.worst_ratio == np.inf and r.max_abs_error == 0.0
    all_bad = compare(np.array([np.nan, np.inf]), np.array([1.0, 2.0]), 1.0)
    assert all_bad.max_abs_error == np.inf and all_bad.nonfinite == 2 and all_bad.mismatch_fraction == 1.0
    nan_both = compare(np.array([np.nan, 1.5]), np.array([np.nan, 1.0]), 1.0)
    assert nan_both.passed and nan_both.max_abs_error == 0.5 and nan_both.worst_index == (1,)


def test_empty_outputs_pass_as_a_complete_record():
    from perfsuite.parity.check import CheckResult

    r = compare(np.zeros((0, 3)), np.zeros((0, 3)), 1.0, name="start_logits", context={"batch": 0})
    assert r == CheckResult("start_logits", True, (0, 3), None, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, {"batch": 0})
    one = compare(np.array([2.0]), np.array([1.0]), 0.5)  # one element is not "empty"
    assert not one.passed and one.worst_ratio == 2.0


def test_shape_mismatch_record_fields():
    from perfsuite.parity.check import CheckResult

    r = compare(np.ones(2), np.ones(3), 1.0, name="y", context={"k": 1})
    assert r == CheckResult("y", False, (3,), None, r.worst_actual, r.worst_expected, np.inf, 0.0, np.inf, np.inf,
                           1.0, 0, {"k": 1}, reason="shape mismatch: actual (2,) vs expected (3,)")
    assert np.isnan(r.worst_actual) and np.isnan(r.worst_expected)
    assert r.to_dict()["message"] == "FAIL y: shape mismatch: actual (2,) vs expected (3,) [k=1]"


def test_differences_are_taken_in_float64_whatever_the_inputs_dtype():
    # float32(1e8) - float32(1) is 1e8 in float32 arithmetic but 99,999,999 in float64: the bound sits between
    a, e = np.array([1e8], dtype=np.float32), np.array([1.0], dtype=np.float32)
    assert compare(a, e, 99_999_999.5).passed
    assert compare(a, e, 99_999_999.5).worst_error == 99_999_999.0


def test_a_zero_bound_with_an_error_is_an_infinite_ratio_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's divide-by-zero / invalid warnings must not leak to users
        r = compare(np.array([1.0, 0.0]), np.array([0.0, 0.0]), 0.0)
    assert not r.passed and r.worst_ratio == np.inf and r.worst_index == (0,)


def test_assert_within_raises_with_the_name_and_context_and_returns_a_pass():
    from perfsuite.parity.check import ParityError, assert_within

    x = np.ones(4)
    assert assert_within(x, x, np.zeros(4)).passed
    with pytest.raises(ParityError, match=r"^FAIL output: worst element \(2,\) .* \[seed=3, shape=N4\]$"):
        assert_within(np.array([1.0, 1.0, 2.0, 1.0]), x, np.zeros(4), context={"seed": 3, "shape": "N4"})
    with pytest.raises(ParityError, match=r"^FAIL softmax\[float16\]: "):
        assert_within(np.zeros(2), np.ones(2), np.zeros(2), name="softmax[float16]")


def test_an_unnamed_comparison_is_called_output():
    assert compare(np.ones(2), np.ones(2), np.zeros(2)).name == "output"
