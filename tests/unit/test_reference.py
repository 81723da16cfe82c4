"""perfsuite.reference: float64 references against naive loop implementations, properties, and MXNet's layout.

The naive implementations below are written from the op contracts (docs/facts.md, notes/interfaces.md) with
explicit Python loops and slicing, sharing no code with perfsuite.reference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from perfsuite.reference import (
    encdec_qk,
    encdec_valatt,
    fully_connected,
    gelu_erf,
    gelu_tanh,
    layer_norm,
    selfatt_qk,
    selfatt_valatt,
    softmax,
)

# Tolerances of this file, each with its reason (perfsuite.parity.tolerance is for the paths under test).
# float64 reference vs float64 naive loop: both round differently in the last bits of sums of <= 64 terms.
RTOL_F64_LOOP = 1e-12
ATOL_F64_LOOP = 1e-12
# MXNet float32 vs reference on the same float32 inputs, relative to the magnitude bound (reference on |inputs|):
# short reductions (d <= 8, L <= 7) in float32 err by a few units of 2**-24 ~ 6e-8; 1e-5 pins the layout, not rounding.
RTOL_MXNET_F32 = 1e-5
# MXNet float32 softmax of a full row vs float64 reference: a few float32 ulps.
RTOL_MXNET_SOFTMAX = 1e-5
# Hypothesis property checks in float64 (shifts up to 1e3, values up to 1e3): rounding only.
RTOL_PROPERTY = 1e-9
ATOL_PROPERTY = 1e-9
# GELU: |erf form - tanh form| is at most ~4.7e-4 on [-5, 5] (measured 4.73e-4 on a 2e5-point grid).
GELU_FORMS_MAX_DIFF = 1e-3

PROPERTY_SETTINGS = settings(deadline=None, max_examples=60)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------------------------------
# Naive implementations (loops + slicing), independent of perfsuite.reference.
# ------------------------------------------------------------------------------------------------------------


def naive_softmax(x: np.ndarray, length: np.ndarray | None) -> np.ndarray:
    rows = x.reshape(-1, x.shape[-1])
    lens = np.full(rows.shape[0], x.shape[-1]) if length is None else np.asarray(length).reshape(-1)
    out = np.zeros(rows.shape)
    for r in range(rows.shape[0]):
        n = int(lens[r])
        if n == 0:
            continue
        m = max(float(rows[r, j]) for j in range(n))
        e = [math.exp(float(rows[r, j]) - m) for j in range(n)]
        s = math.fsum(e)
        for j in range(n):
            out[r, j] = e[j] / s
    return out.reshape(x.shape)


def _qkv_block(qkv: np.ndarray, i: int, b: int, h: int, which: int, d: int) -> np.ndarray:
    """Per head h, qkv[i, b, h*3d:(h+1)*3d] is [q | k | v]; which = 0, 1, 2."""
    start = h * 3 * d + which * d
    return qkv[i, b, start : start + d]


def _kv_block(kv: np.ndarray, j: int, b: int, h: int, which: int, d: int) -> np.ndarray:
    """Per head h, kv[j, b, h*2d:(h+1)*2d] is [k | v]; which = 0, 1."""
    start = h * 2 * d + which * d
    return kv[j, b, start : start + d]


def naive_selfatt_qk(qkv: np.ndarray, heads: int) -> np.ndarray:
    seq, batch, width = qkv.shape
    d = width // (3 * heads)
    out = np.zeros((batch * heads, seq, seq))
    for b in range(batch):
        for h in range(heads):
            for i in range(seq):
                q = _qkv_block(qkv, i, b, h, 0, d)
                for j in range(seq):
                    k = _qkv_block(qkv, j, b, h, 1, d)
                    out[b * heads + h, i, j] = math.fsum(float(q[c]) * float(k[c]) for c in range(d)) / math.sqrt(d)
    return out


def naive_selfatt_valatt(qkv: np.ndarray, att: np.ndarray, heads: int) -> np.ndarray:
    seq, batch, width = qkv.shape
    d = width // (3 * heads)
    out = np.zeros((seq, batch, heads * d))
    for b in range(batch):
        for h in range(heads):
            for i in range(seq):
                for c in range(d):
                    terms = [
                        float(att[b * heads + h, i, j]) * float(_qkv_block(qkv, j, b, h, 2, d)[c]) for j in range(seq)
                    ]
                    out[i, b, h * d + c] = math.fsum(terms)
    return out


def naive_encdec_qk(q: np.ndarray, kv: np.ndarray, heads: int) -> np.ndarray:
    len_q, batch, width = q.shape
    len_k = kv.shape[0]
    d = width // heads
    out = np.zeros((batch * heads, len_q, len_k))
    for b in range(batch):
        for h in range(heads):
            for i in range(len_q):
                qv = q[i, b, h * d : (h + 1) * d]
                for j in range(len_k):
                    k = _kv_block(kv, j, b, h, 0, d)
                    out[b * heads + h, i, j] = math.fsum(float(qv[c]) * float(k[c]) for c in range(d)) / math.sqrt(d)
    return out


def naive_encdec_valatt(kv: np.ndarray, att: np.ndarray, heads: int) -> np.ndarray:
    len_k, batch, width = kv.shape
    d = width // (2 * heads)
    len_q = att.shape[1]
    out = np.zeros((len_q, batch, heads * d))
    for b in range(batch):
        for h in range(heads):
            for i in range(len_q):
                for c in range(d):
                    terms = [
                        float(att[b * heads + h, i, j]) * float(_kv_block(kv, j, b, h, 1, d)[c]) for j in range(len_k)
                    ]
                    out[i, b, h * d + c] = math.fsum(terms)
    return out


def naive_layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    rows = x.reshape(-1, x.shape[-1])
    out = np.zeros(rows.shape)
    n = rows.shape[1]
    for r in range(rows.shape[0]):
        vals = [float(t) for t in rows[r]]
        mean = math.fsum(vals) / n
        var = math.fsum((t - mean) ** 2 for t in vals) / n
        for c in range(n):
            out[r, c] = (vals[c] - mean) / math.sqrt(var + eps) * float(gamma[c]) + float(beta[c])
    return out.reshape(x.shape)


def naive_fully_connected(x2d: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    n, k = x2d.shape
    m = weight.shape[0]
    out = np.zeros((n, m))
    for r in range(n):
        for o in range(m):
            s = math.fsum(float(x2d[r, c]) * float(weight[o, c]) for c in range(k))
            out[r, o] = s + (float(bias[o]) if bias is not None else 0.0)
    return out


def close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == np.float64
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL_F64_LOOP, atol=ATOL_F64_LOOP)


# ------------------------------------------------------------------------------------------------------------
# References vs naive loops
# ------------------------------------------------------------------------------------------------------------

ATT_SHAPES = [(1, 1, 1, 1), (4, 2, 3, 5), (6, 3, 2, 8), (3, 1, 4, 1)]  # (seq, batch, heads, head_dim)


@pytest.mark.parametrize("seq, batch, heads, d", ATT_SHAPES)
def test_selfatt_vs_naive(seq: int, batch: int, heads: int, d: int) -> None:
    g = rng(seq * 100 + heads)
    qkv = g.standard_normal((seq, batch, heads * 3 * d))
    att = g.random((batch * heads, seq, seq))
    close(selfatt_qk(qkv, heads), naive_selfatt_qk(qkv, heads))
    close(selfatt_valatt(qkv, att, heads), naive_selfatt_valatt(qkv, att, heads))


@pytest.mark.parametrize("len_q, len_k, batch, heads, d", [(1, 1, 1, 1, 1), (3, 5, 2, 2, 4), (6, 2, 1, 3, 2)])
def test_encdec_vs_naive(len_q: int, len_k: int, batch: int, heads: int, d: int) -> None:
    g = rng(len_q * 10 + len_k)
    q = g.standard_normal((len_q, batch, heads * d))
    kv = g.standard_normal((len_k, batch, heads * 2 * d))
    att = g.random((batch * heads, len_q, len_k))
    close(encdec_qk(q, kv, heads), naive_encdec_qk(q, kv, heads))
    close(encdec_valatt(kv, att, heads), naive_encdec_valatt(kv, att, heads))


def test_selfatt_full_attention_chain_matches_naive() -> None:
    """qk -> masked softmax -> valatt, as BERT runs it, against the loop versions end to end."""
    g = rng(7)
    seq, batch, heads, d = 5, 2, 3, 4
    qkv = g.standard_normal((seq, batch, heads * 3 * d))
    length = np.repeat(np.array([5, 2]), heads)[:, None].repeat(seq, axis=1).astype(np.int32)  # (B*H, L)
    att = softmax(selfatt_qk(qkv, heads), length)
    att_naive = naive_softmax(naive_selfatt_qk(qkv, heads), length)
    close(att, att_naive)
    close(selfatt_valatt(qkv, att, heads), naive_selfatt_valatt(qkv, att_naive, heads))


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 3, 4)])
def test_softmax_vs_naive(shape: tuple[int, ...]) -> None:
    g = rng(len(shape))
    x = g.standard_normal(shape) * 10
    length = g.integers(0, shape[-1] + 1, size=shape[:-1])
    close(softmax(x, length), naive_softmax(x, length))
    close(softmax(x), naive_softmax(x, None))


@pytest.mark.parametrize("shape, eps", [((1, 1), 1e-5), ((4, 7), 1e-5), ((2, 3, 16), 1e-12), ((5,), 1e-3)])
def test_layer_norm_vs_naive(shape: tuple[int, ...], eps: float) -> None:
    g = rng(shape[-1])
    x = g.standard_normal(shape) * 3 + 1
    gamma = g.standard_normal(shape[-1])
    beta = g.standard_normal(shape[-1])
    close(layer_norm(x, gamma, beta, eps=eps), naive_layer_norm(x, gamma, beta, eps))


def test_layer_norm_other_axis_equals_moved_last_axis() -> None:
    g = rng(3)
    x = g.standard_normal((4, 6, 5))
    gamma, beta = g.standard_normal(6), g.standard_normal(6)
    expected = np.moveaxis(layer_norm(np.moveaxis(x, 1, -1), gamma, beta), -1, 1)
    close(layer_norm(x, gamma, beta, axis=1), expected)
    close(layer_norm(x, gamma, beta, axis=-2), expected)


@pytest.mark.parametrize(
    "shape, flatten", [((3, 4), True), ((3, 2, 4), True), ((3, 2, 4), False), ((5,), True), ((4,), False)]
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_fully_connected_vs_naive(shape: tuple[int, ...], flatten: bool, with_bias: bool) -> None:
    g = rng(sum(shape))
    x = g.standard_normal(shape)
    in_units = int(np.prod(shape[1:])) if flatten else shape[-1]  # 1-D x with flatten=True is (n, 1), as in MXNet
    w = g.standard_normal((6, in_units))
    bias = g.standard_normal(6) if with_bias else None
    out = fully_connected(x, w, bias, flatten=flatten)
    if flatten:
        expected = naive_fully_connected(x.reshape(shape[0], in_units), w, bias)
    else:
        expected = naive_fully_connected(x.reshape(-1, in_units), w, bias).reshape(shape[:-1] + (6,))
    close(out, expected)


def test_reference_converts_any_float_dtype_to_float64() -> None:
    x16 = np.array([[0.1, -2.0, 3.0]], dtype=np.float16)
    out = softmax(x16)
    assert out.dtype == np.float64
    close(out, naive_softmax(x16.astype(np.float64), None))
    assert gelu_erf(np.float32(1.0)).dtype == np.float64
    assert selfatt_qk(np.ones((2, 1, 6), dtype=np.float32), 2).dtype == np.float64


# ------------------------------------------------------------------------------------------------------------
# Softmax edge cases and properties
# ------------------------------------------------------------------------------------------------------------


def test_softmax_length_edge_cases() -> None:
    x = np.array([[3.0, -1.0, 2.0, 0.5]] * 3)
    out = softmax(x, np.array([0, 1, 4]))
    assert out[0].tolist() == [0.0, 0.0, 0.0, 0.0]  # length 0: zeros (MXNet's behaviour)
    assert not np.signbit(out[0]).any()
    assert out[1].tolist() == [1.0, 0.0, 0.0, 0.0]  # length 1: exactly one-hot at position 0
    np.testing.assert_array_equal(out[2], softmax(x[2]))  # length == seq: the plain softmax


def test_softmax_zero_length_modes() -> None:
    x = np.array([[1.0, 2.0], [1.0, 2.0]])
    nan_rows = softmax(x, np.array([0, 2]), zero_length="nan")
    assert np.isnan(nan_rows[0]).all()
    np.testing.assert_array_equal(nan_rows[1], softmax(x[1]))


def test_softmax_zero_width_axis() -> None:
    assert softmax(np.zeros((2, 0)), np.array([0, 0])).shape == (2, 0)


def test_softmax_is_stable_for_large_inputs() -> None:
    out = softmax(np.array([1e300, 1e300 - 1e285, -1e300]), np.int64(2))
    assert np.isfinite(out).all()
    close(out, np.array([1.0, 0.0, 0.0]))


def _rows_and_lengths(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1e3, 1e3, allow_nan=False)))
    length = draw(hnp.arrays(np.int32, shape[:-1], elements=st.integers(0, shape[-1])))
    return x, length


rows_and_lengths = st.composite(_rows_and_lengths)


@PROPERTY_SETTINGS
@given(rows_and_lengths())
def test_softmax_rows_sum_to_one_and_are_zero_beyond(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, length = data
    out = softmax(x, length)
    valid = np.arange(x.shape[-1]) < length[..., None]
    assert (out[~valid] == 0.0).all()
    assert (out[valid] >= 0.0).all() and (out <= 1.0).all()
    sums = out.sum(axis=-1)
    np.testing.assert_allclose(sums[length > 0], 1.0, rtol=0, atol=1e-12)
    assert (sums[length == 0] == 0.0).all()
    assert (out[..., 0][length == 1] == 1.0).all()


@PROPERTY_SETTINGS
@given(rows_and_lengths(), st.data())
def test_softmax_invariant_to_per_row_constant(data: tuple[np.ndarray, np.ndarray], draw: st.DataObject) -> None:
    x, length = data
    shift = draw.draw(hnp.arrays(np.float64, x.shape[:-1] + (1,), elements=st.floats(-1e3, 1e3, allow_nan=False)))
    np.testing.assert_allclose(softmax(x + shift, length), softmax(x, length), rtol=RTOL_PROPERTY, atol=ATOL_PROPERTY)


@PROPERTY_SETTINGS
@given(rows_and_lengths())
def test_softmax_ignores_masked_values(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, length = data
    y = np.where(np.arange(x.shape[-1]) < length[..., None], x, 12345.0)
    np.testing.assert_array_equal(softmax(y, length), softmax(x, length))


# ------------------------------------------------------------------------------------------------------------
# Layer norm, GELU, fully connected properties
# ------------------------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=8),
        elements=st.floats(-1e3, 1e3, allow_nan=False),
    ),
    st.sampled_from([1e-12, 1e-5, 1e-2]),
)
def test_layer_norm_standardizes(x: np.ndarray, eps: float) -> None:
    """gamma=1, beta=0: each row has mean 0 and variance var/(var+eps), up to float64 rounding of the centring.

    Centring x - mean(x) errs by ~n * 2**-52 * max|x| per element; dividing by sqrt(var + eps) amplifies that
    (a constant row of 293.28 with eps=1e-12 has |mean(out)| ~ 6e-8), so the bound scales with it.
    """
    n = x.shape[-1]
    out = layer_norm(x, np.ones(n), np.zeros(n), eps=eps)
    var_in = x.var(axis=-1)
    centring = 8 * n * np.finfo(np.float64).eps * np.abs(x).max(axis=-1) / np.sqrt(var_in + eps)
    expected_var = var_in / (var_in + eps)
    assert (np.abs(out.mean(axis=-1)) <= centring + ATOL_PROPERTY).all()
    err_var = np.abs(out.var(axis=-1) - expected_var)
    assert (err_var <= RTOL_PROPERTY * expected_var + 4 * centring + centring**2 + ATOL_PROPERTY).all()


def test_layer_norm_gamma_beta_affine() -> None:
    g = rng(11)
    x = g.standard_normal((3, 8))
    gamma, beta = g.standard_normal(8), g.standard_normal(8)
    base = layer_norm(x, np.ones(8), np.zeros(8))
    close(layer_norm(x, gamma, beta), base * gamma + beta)


def test_gelu_known_values() -> None:
    assert float(gelu_erf(1.0)) == pytest.approx(0.8413447460685429, rel=1e-15)
    assert float(gelu_erf(-1.0)) == pytest.approx(-0.15865525393145707, rel=1e-15)
    assert float(gelu_erf(0.0)) == 0.0
    assert float(gelu_tanh(0.0)) == 0.0
    # x * Phi(x) for x << 0 without the cancellation of 1 + erf: -5 * 0.5 * erfc(5/sqrt2)
    assert float(gelu_erf(-5.0)) == pytest.approx(-5 * 0.5 * math.erfc(5 / math.sqrt(2)), rel=1e-14)


def test_gelu_erf_vs_naive_math_erf() -> None:
    x = np.linspace(-3, 6, 1001)
    naive = np.array([0.5 * t * (1.0 + math.erf(t / math.sqrt(2.0))) for t in x])
    close(gelu_erf(x), naive)
    assert gelu_erf(x.reshape(7, 11, 13)).shape == (7, 11, 13)


def test_gelu_forms_differ_little_on_dense_grid() -> None:
    x = np.linspace(-5, 5, 200001)
    diff = np.abs(gelu_erf(x) - gelu_tanh(x))
    assert diff.max() < GELU_FORMS_MAX_DIFF
    assert diff.max() > 1e-5  # they are different functions: a test that passed with one for both would be wrong


@PROPERTY_SETTINGS
@given(hnp.arrays(np.float64, st.integers(1, 50), elements=st.floats(-5, 5, allow_nan=False)))
def test_gelu_forms_differ_little(x: np.ndarray) -> None:
    assert np.abs(gelu_erf(x) - gelu_tanh(x)).max() < GELU_FORMS_MAX_DIFF


@PROPERTY_SETTINGS
@given(
    st.integers(1, 4),
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4),
    st.integers(1, 5),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_fully_connected_flatten_semantics(
    n: int, rest: tuple[int, ...], hidden: int, flatten: bool, seed: int
) -> None:
    g = rng(seed)
    x = g.standard_normal((n,) + rest)
    in_units = int(np.prod(rest)) if flatten else x.shape[-1]
    w = g.standard_normal((hidden, in_units))
    b = g.standard_normal(hidden)
    out = fully_connected(x, w, b, flatten=flatten)
    if flatten:
        assert out.shape == (n, hidden)
        np.testing.assert_allclose(out, x.reshape(n, -1) @ w.T + b, rtol=RTOL_F64_LOOP, atol=ATOL_F64_LOOP)
    else:
        assert out.shape == x.shape[:-1] + (hidden,)
        expected = np.tensordot(x, w, axes=([-1], [1])) + b
        np.testing.assert_allclose(out, expected, rtol=RTOL_F64_LOOP, atol=ATOL_F64_LOOP)


def test_magnitude_bound_by_abs_inputs() -> None:
    """Calling a reference on |inputs| bounds |output| elementwise (the tolerances rely on it)."""
    g = rng(5)
    qkv = g.standard_normal((4, 2, 2 * 3 * 3))
    assert (np.abs(selfatt_qk(qkv, 2)) <= selfatt_qk(np.abs(qkv), 2) + 1e-15).all()
    x, w = g.standard_normal((3, 4)), g.standard_normal((5, 4))
    assert (np.abs(fully_connected(x, w)) <= fully_connected(np.abs(x), np.abs(w)) + 1e-15).all()


# ------------------------------------------------------------------------------------------------------------
# Cross-check against MXNet: pins the interleaved layout and the masked-softmax edge cases
# ------------------------------------------------------------------------------------------------------------


def _mx():
    return pytest.importorskip("mxnet")


def _assert_within_magnitude(actual: np.ndarray, expected: np.ndarray, magnitude: np.ndarray, rtol: float) -> None:
    """|actual - expected| <= rtol * magnitude elementwise; on failure name the worst element."""
    assert actual.shape == expected.shape
    err = np.abs(actual.astype(np.float64) - expected)
    bound = rtol * magnitude + np.finfo(np.float32).tiny
    ratio = err / bound
    worst = np.unravel_index(np.argmax(ratio), ratio.shape)
    assert ratio[worst] <= 1.0, (
        f"worst element {tuple(int(i) for i in worst)}: mxnet {actual[worst]!r} vs reference {expected[worst]!r}, "
        f"|diff| {err[worst]:.3g} > bound {bound[worst]:.3g} (rtol {rtol} x magnitude {magnitude[worst]:.3g})"
    )


@pytest.mark.parametrize("seq, batch, heads, d", [(3, 2, 2, 4), (5, 1, 3, 2), (7, 2, 1, 8)])
def test_interleaved_selfatt_matches_mxnet(seq: int, batch: int, heads: int, d: int) -> None:
    mx = _mx()
    g = rng(seq + 31 * heads)
    qkv = g.standard_normal((seq, batch, heads * 3 * d)).astype(np.float32)
    att = g.random((batch * heads, seq, seq)).astype(np.float32)
    mx_qk = mx.nd.contrib.interleaved_matmul_selfatt_qk(mx.nd.array(qkv, dtype="float32"), heads=heads)
    mx_val = mx.nd.contrib.interleaved_matmul_selfatt_valatt(
        mx.nd.array(qkv, dtype="float32"), mx.nd.array(att, dtype="float32"), heads=heads
    )
    mx.nd.waitall()
    _assert_within_magnitude(mx_qk.asnumpy(), selfatt_qk(qkv, heads), selfatt_qk(np.abs(qkv), heads), RTOL_MXNET_F32)
    _assert_within_magnitude(
        mx_val.asnumpy(), selfatt_valatt(qkv, att, heads), selfatt_valatt(np.abs(qkv), att, heads), RTOL_MXNET_F32
    )
    if heads > 1:  # a plausible wrong layout ([all q | all k | all v]) must disagree: the test pins the layout
        wrong = qkv.reshape(seq, batch, 3, heads, d).transpose(0, 1, 3, 2, 4).reshape(qkv.shape)
        assert not np.allclose(mx_qk.asnumpy(), selfatt_qk(wrong, heads), rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("len_q, len_k, batch, heads, d", [(3, 4, 2, 2, 4), (1, 6, 1, 3, 2), (5, 2, 2, 1, 8)])
def test_interleaved_encdec_matches_mxnet(len_q: int, len_k: int, batch: int, heads: int, d: int) -> None:
    mx = _mx()
    g = rng(len_q + 7 * len_k)
    q = g.standard_normal((len_q, batch, heads * d)).astype(np.float32)
    kv = g.standard_normal((len_k, batch, heads * 2 * d)).astype(np.float32)
    att = g.random((batch * heads, len_q, len_k)).astype(np.float32)
    mx_qk = mx.nd.contrib.interleaved_matmul_encdec_qk(mx.nd.array(q), mx.nd.array(kv), heads=heads)
    mx_val = mx.nd.contrib.interleaved_matmul_encdec_valatt(mx.nd.array(kv), mx.nd.array(att), heads=heads)
    mx.nd.waitall()
    _assert_within_magnitude(
        mx_qk.asnumpy(), encdec_qk(q, kv, heads), encdec_qk(np.abs(q), np.abs(kv), heads), RTOL_MXNET_F32
    )
    _assert_within_magnitude(
        mx_val.asnumpy(), encdec_valatt(kv, att, heads), encdec_valatt(np.abs(kv), att, heads), RTOL_MXNET_F32
    )
    if heads > 1:
        wrong = kv.reshape(len_k, batch, 2, heads, d).transpose(0, 1, 3, 2, 4).reshape(kv.shape)
        assert not np.allclose(mx_qk.asnumpy(), encdec_qk(q, wrong, heads), rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("length_dtype", ["int32", "int64"])
def test_mxnet_softmax_length_edge_cases_match_reference(length_dtype: str) -> None:
    """MXNet softmax(use_length=True): length 0 -> +0.0 row, length 1 -> exact one-hot, length == seq -> softmax."""
    mx = _mx()
    x = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [5.0, -1.0, 0.5, 2.0], [5.0, -1.0, 0.5, 2.0]], np.float32)
    length = np.array([0, 1, 4, 2])
    out = mx.nd.softmax(
        mx.nd.array(x), length=mx.nd.array(length, dtype=length_dtype), use_length=True, axis=-1
    ).asnumpy()
    mx.nd.waitall()
    ref = softmax(x, length)
    assert out[0].tolist() == [0.0, 0.0, 0.0, 0.0] and not np.signbit(out[0]).any()
    assert out[1].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert (out[3, 2:] == 0.0).all()
    np.testing.assert_array_equal(out[:2], ref[:2])  # the reference's default (zero_length="zeros") is MXNet's
    np.testing.assert_allclose(out[2:], ref[2:], rtol=RTOL_MXNET_SOFTMAX, atol=0)
