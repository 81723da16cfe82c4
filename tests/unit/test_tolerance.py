"""The tolerance model: its derivations hold on real and emulated data, and its bounds are not vacuous."""

import json
import math
from importlib import resources

import numpy as np
import pytest

from perfsuite.errors import PerfsuiteInputError
from perfsuite.parity import tolerance as tl

U16 = tl.UNIT_ROUNDOFF["float16"]


def _h200_rows():
    text = resources.files("perfsuite").joinpath("data/fp16-gemm-error-h200.json").read_text()
    data = json.loads(text)
    assert data["u16"] == U16
    return data["rows"]


def _bound_in_u16(mode, k):
    """The FP16 GEMM bound of FullyConnected for (mode, K), in units of u16 * |A|.|B| (no bias rounding)."""
    t = tl.tolerance_for("interleaved_selfatt_valatt", mode)  # one rounding after the reduction, as cuBLAS
    return t.coefficient(k) / U16


def test_h200_measurements_inside_bounds():
    rows = _h200_rows()
    assert len(rows) == 180 and all(r["finite"] for r in rows)
    for r in rows:
        mode = "float16-true" if r["compute"] == "fp16_accum" else "float16"
        assert r["max_ratio_u16_mag"] <= _bound_in_u16(mode, r["K"]), r


def test_true_fp16_bound_is_not_vacuous_on_h200():
    """Worst measured case is within a small factor of the bound; K*u (the deterministic bound) would be ~100x."""
    rows = [r for r in _h200_rows() if r["compute"] == "fp16_accum"]
    slack = min(_bound_in_u16("float16-true", r["K"]) / r["max_ratio_u16_mag"] for r in rows)
    assert 1.0 < slack < 4.0  # 3.3x at K = 1024, all-positive inputs (see tolerance.py docstring)
    worst = max(rows, key=lambda r: r["max_ratio_u16_mag"])
    assert worst["K"] == 1024 and worst["dist"] == "positive"
    assert (1 + worst["K"]) / worst["max_ratio_u16_mag"] > 100  # the K*u bound's slack


def _emulated_ratio(k, dist, chunk, seed=0):
    rng = np.random.default_rng(seed)
    if dist == "bert_like":
        a, b = rng.standard_normal((16, k)), rng.standard_normal((k, 16)) * 0.02
    else:
        a, b = rng.random((16, k)), rng.random((k, 16))
    a16, b16 = a.astype(np.float16), b.astype(np.float16)
    exact = a16.astype(np.float64) @ b16.astype(np.float64)
    mag = np.abs(a16.astype(np.float64)) @ np.abs(b16.astype(np.float64))
    c = tl.emulate_fp16_gemm(a16, b16, chunk=chunk).astype(np.float64)
    return float(np.max(np.abs(c - exact) / (U16 * mag)))


@pytest.mark.parametrize("k", [64, 384, 1024, 4096])
@pytest.mark.parametrize("dist", ["bert_like", "positive"])
def test_tensor_core_emulation_inside_true_fp16_bound(k, dist):
    assert _emulated_ratio(k, dist, chunk=16) <= _bound_in_u16("float16-true", k)


@pytest.mark.parametrize("k", [1024, 4096])
def test_scalar_fp16_accumulation_exceeds_bound(k):
    """The bound separates a real accuracy loss: scalar FP16 accumulation stagnates on non-cancelling sums."""
    assert _emulated_ratio(k, "positive", chunk=1) > _bound_in_u16("float16-true", k)


def test_modes_have_distinct_entries_for_gemms():
    k = 768
    c32 = tl.tolerance_for("fully_connected", "float32").coefficient(k)
    c16 = tl.tolerance_for("fully_connected", "float16").coefficient(k)
    ct = tl.tolerance_for("fully_connected", "float16-true").coefficient(k)
    assert c32 < c16 < ct
    assert c32 == pytest.approx(2 * 2.0 ** -24 + tl.gamma(k, 2.0 ** -24))
    assert ct == pytest.approx((2 + math.sqrt(k)) * U16)


def test_every_entry_has_a_reason_and_known_mode():
    assert len(tl.TOLERANCES) >= 20
    for (path, mode), t in tl.TOLERANCES.items():
        assert t.path == path and t.mode == mode and mode in tl.MODES
        assert len(t.reason) > 40
        assert t.growth in ("deterministic", "probabilistic")


def test_gamma_is_infinite_past_one():
    assert tl.gamma(2 ** 11, U16) == math.inf
    assert tl.gamma(10, 2.0 ** -24) == pytest.approx(10 * 2.0 ** -24, rel=1e-6)


def test_unknown_path_and_mode_are_named():
    with pytest.raises(PerfsuiteInputError, match=r"unknown path 'nope'.*allowed: .*fully_connected"):
        tl.tolerance_for("nope", "float32")
    with pytest.raises(PerfsuiteInputError, match=r"'gelu_tanh' has no tolerance for mode 'float16-true'"):
        tl.tolerance_for("gelu_tanh", "float16-true")


def test_emulation_rejects_bad_shapes():
    with pytest.raises(PerfsuiteInputError, match=r"\(2, 3\) and \(4, 5\)"):
        tl.emulate_fp16_gemm(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(PerfsuiteInputError, match="chunk must be a positive integer; got 0"):
        tl.emulate_fp16_gemm(np.ones((2, 3)), np.ones((3, 5)), chunk=0)


def test_softmax_bound_covers_masked_zero_exactly():
    t = tl.tolerance_for("softmax_length", "float32")
    y = np.array([[0.5, 0.5, 0.0]])
    b = tl.softmax_bound(t, y, np.zeros_like(y), np.array([2]))
    assert b[0, 2] == 0.0 and b[0, 0] > 0  # a masked position must be exactly 0


def test_layer_norm_bound_scales_with_mean_square():
    """A large common offset (one-pass variance hazard) widens the bound; unit noise keeps it at ~K u."""
    t = tl.tolerance_for("layer_norm", "float32")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 768))
    g, b = np.ones(768), np.full(768, 0.1)
    tight = tl.layer_norm_bound(t, x, g, b, 1e-5).max()
    wide = tl.layer_norm_bound(t, x + 1000.0, g, b, 1e-5).max()
    assert tight < 1e-3 and wide > 100 * tight


@pytest.mark.parametrize("value,bad", [(0.90, False), (0.95, False), (0.8999, True), (0.2, True)])
def test_int8_floor_is_inclusive_and_named(value, bad):
    """The INT8 floor (embedding cosine >= 0.9) passes at the limit, fails just below it, and says which figure,
    its value and the floor; figures without a floor are ignored."""
    got = tl.int8_floor_violations({"embedding_cosine_min": value, "classification_flips": 1e9})
    assert got == ([f"embedding_cosine_min {value:.3f} < 0.9"] if bad else [])
    assert tl.int8_floor_violations({}) == []


def test_the_table_as_text_names_every_entry_of_a_path():
    text = tl.describe_table("layer_norm").splitlines()
    assert [ln.split()[:2] for ln in text] == [["layer_norm", m] for m in ("float16", "float16-unsafe", "float32")]
    assert all("roundings=5 :: " in ln for ln in text)
    assert len(tl.describe_table().splitlines()) == len(tl.TOLERANCES)


def test_softmax_bound_per_row_length_any_rank_and_input_dtype():
    """Each row's bound uses that row's valid length (length 0 counts as 1), masked positions get 0, the last axis
    is the softmax axis whatever the rank, and float16/int32 inputs give the float64/int64 bound."""
    tol = tl.tolerance_for("softmax_length", "float16")
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 1, size=(2, 3, 5))
    shifted = -rng.uniform(0, 4, size=(2, 3, 5))
    length = np.array([[1, 5, 0], [2, 3, 4]])
    b = tl.softmax_bound(tol, y, shifted, length)
    us = tl.UNIT_ROUNDOFF["float16"]
    for i, j in np.ndindex(2, 3):
        k = max(length[i, j], 1)
        want = y[i, j] * (tol.coefficient(k) + np.abs(shifted[i, j]) * us) + tol.floor(k)
        want[length[i, j]:] = 0.0
        assert np.array_equal(b[i, j], want), (i, j)
    y16, s16 = y.astype(np.float16), shifted.astype(np.float16)
    b16 = tl.softmax_bound(tol, y16, s16, length.astype(np.int32))
    assert b16.dtype == np.float64
    assert np.array_equal(b16, tl.softmax_bound(tol, y16.astype(np.float64), s16.astype(np.float64), length))


def _layer_norm_bound_by_hand(tol, row, gamma, beta, eps):
    """layer_norm_bound's docstring, term by term, for one row in plain Python floats."""
    us, ua = tl.UNIT_ROUNDOFF[tol.storage], tl.UNIT_ROUNDOFF[tol.accumulation]
    k = len(row)
    mu = math.fsum(row) / k
    d = [v - mu for v in row]
    var = math.fsum(v * v for v in d) / k
    rstd = 1 / math.sqrt(var + eps)
    dmu = tol.growth_factor(k) * ua * math.fsum(abs(v) for v in row) / k
    dvar = (tol.growth_factor(k + 2) * ua * math.fsum(v * v for v in row) / k
            + 2 * dmu * math.fsum(abs(v) for v in d) / k)
    rel = dvar / (2 * (var + eps)) + 2 * ua
    out = []
    for di, g, b in zip(d, gamma, beta):
        n = di * rstd
        dn = abs(n) * (ua + rel) + (dmu + ua * abs(di)) * rstd
        out.append(abs(g) * dn + tol.roundings * us * (abs(n * g) + abs(b)) + tol.extra * ua * abs(n * g + b)
                   + tol.floor(k))
    return out


@pytest.mark.parametrize("mode", ["float32", "float16"])
def test_layer_norm_bound_is_its_derivation_row_by_row(mode):
    """The bound equals the documented error model computed by hand, for rows of very different scale and offset
    in a 3-D batch (each row on its own: no statistic leaks across rows or axes), with float16 inputs too."""
    tol = tl.tolerance_for("layer_norm", mode)
    rng = np.random.default_rng(3)
    k = 6
    x = rng.standard_normal((2, 3, k)) * np.array([1e-2, 1.0, 30.0])[None, :, None] + np.array([0.0, 5.0])[:, None, None]
    gamma, beta = rng.uniform(0.5, 2.0, k) * np.array([1, -1, 1, -1, 1, 1]), rng.uniform(-1, 1, k)
    eps = 1e-3  # large enough to matter for the small rows
    got = tl.layer_norm_bound(tol, x, gamma, beta, eps)
    assert got.shape == x.shape and got.dtype == np.float64
    for i, j in np.ndindex(2, 3):
        want = _layer_norm_bound_by_hand(tol, list(x[i, j]), list(gamma), list(beta), eps)
        np.testing.assert_allclose(got[i, j], want, rtol=1e-12, atol=0, err_msg=f"row {(i, j)}")
    x16, g16, b16 = x.astype(np.float16), gamma.astype(np.float16), beta.astype(np.float16)
    np.testing.assert_array_equal(tl.layer_norm_bound(tol, x16, g16, b16, eps),
                                  tl.layer_norm_bound(tol, x16.astype(np.float64), g16.astype(np.float64),
                                                      b16.astype(np.float64), eps))


def test_gamma_where_ku_is_not_small():
    """gamma_K = K u / (1 - K u): at K u = 1/2 it is exactly 1 (the first-order K u would say 1/2)."""
    assert tl.gamma(1024, 2.0 ** -11) == 1.0
    assert tl.gamma(512, 2.0 ** -11) == pytest.approx(1 / 3, rel=1e-15)


def test_errors_list_exactly_the_allowed_modes_and_paths():
    with pytest.raises(PerfsuiteInputError, match=r"'layer_norm' has no tolerance for mode 'int8'; allowed modes: "
                                                  r"float16, float16-unsafe, float32$"):
        tl.tolerance_for("layer_norm", "int8")
    with pytest.raises(PerfsuiteInputError) as info:
        tl.tolerance_for("nope", "float32")
    assert str(info.value).endswith("allowed: " + ", ".join(sorted({p for p, _ in tl.TOLERANCES})))


def test_emulation_refuses_a_vector():
    with pytest.raises(PerfsuiteInputError, match=r"\(3,\) and \(3, 2\)"):
        tl.emulate_fp16_gemm(np.ones(3), np.ones((3, 2)))


def test_zero_reference_values_keep_a_positive_finite_bound():
    """Where |A|.|B| or GELU's input is exactly 0 the bound is the underflow floor: positive (a correct 0 passes)
    and finite (it would otherwise accept anything there)."""
    g = tl.gemm_bound(tl.tolerance_for("fully_connected", "float32"), np.zeros(3), 768)
    assert np.all(g > 0) and np.all(g < 1e-40)
    tol = tl.tolerance_for("gelu_erf", "float16")
    b = tl.gelu_bound(tol, np.zeros(2), np.zeros(2))
    assert np.all(b == tol.floor()) and np.all(b > 0)
