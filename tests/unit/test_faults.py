"""Tests of the tests: deliberately broken kernels go through the same comparison and must fail it.

Each fault is a function with the path's signature, wrapping the real MXNet op (or a NumPy emulation) and
breaking one thing. The correct implementation passes the same case, so a failure is due to the fault alone.
"""

import math
import re

import numpy as np
import pytest

from perfsuite.parity import tolerance as tl
from perfsuite.parity.ops import ParityCase, make_inputs, run_case
from perfsuite.paths import ops

SA = (("L", 128), ("B", 2), ("H", 12), ("d", 64))


def _fp16(a):
    return np.asarray(a).astype(np.float16).astype(np.float32)


def _swap_heads_qk(qkv, heads):
    out = ops.selfatt_qk(qkv, heads)
    b = qkv.shape[1]
    o = out.reshape(b, heads, *out.shape[1:]).copy()
    o[:, [0, 1]] = o[:, [1, 0]]
    return o.reshape(out.shape)


def _swap_heads_valatt(qkv, att, heads):
    out = ops.selfatt_valatt(qkv, att, heads)
    d = out.shape[-1] // heads
    o = out.copy()
    o[..., :d], o[..., d:2 * d] = out[..., d:2 * d], out[..., :d]
    return o


def _qk_scaled_by_1_over_d(qkv, heads):
    d = qkv.shape[-1] // (3 * heads)
    return ops.selfatt_qk(qkv, heads) * math.sqrt(d) / d  # 1/d instead of 1/sqrt(d)


def _qk_swapped_q_and_k(qkv, heads):
    """Mis-ordered interleaved weight: each head's block read as [k | q | v] instead of [q | k | v]."""
    L, B, W = qkv.shape
    d = W // (3 * heads)
    blocks = qkv.reshape(L, B, heads, 3, d)[:, :, :, [1, 0, 2], :]
    return ops.selfatt_qk(np.ascontiguousarray(blocks.reshape(L, B, W)), heads)


FAULTS = [
    pytest.param(ParityCase("softmax_length", "float32", (("rows", 48), ("L", 128), ("length", "random"))),
                 lambda x, length: ops.softmax(x, None), id="softmax-dropped-length-mask"),
    pytest.param(ParityCase("softmax_length", "float16", (("rows", 48), ("L", 128), ("length", "random"))),
                 lambda x, length: ops.softmax(x, np.maximum(length - 1, 1)), id="softmax-fp16-off-by-one-length"),
    pytest.param(ParityCase("interleaved_selfatt_qk", "float32", SA), _qk_scaled_by_1_over_d,
                 id="qk-scaled-1-over-d"),
    pytest.param(ParityCase("interleaved_selfatt_qk", "float32", SA), _swap_heads_qk, id="qk-two-heads-swapped"),
    pytest.param(ParityCase("interleaved_selfatt_qk", "float32", SA), _qk_swapped_q_and_k,
                 id="qk-misordered-interleaved-qkv"),
    pytest.param(ParityCase("interleaved_selfatt_valatt", "float32", SA), _swap_heads_valatt,
                 id="valatt-two-heads-swapped"),
    pytest.param(ParityCase("fully_connected", "float32", (("B", 8), ("K", 768), ("N", 2304))),
                 lambda x, weight, bias: ops.fully_connected(x, weight, None), id="fc-dropped-bias"),
    pytest.param(ParityCase("layer_norm", "float32", (("N", 64), ("C", 768)), dist="unit"),
                 lambda x, gamma, beta, eps: ops.layer_norm(x, gamma, beta, eps=eps * 1e3),
                 id="layernorm-eps-times-1e3"),
    pytest.param(ParityCase("layer_norm", "float16", (("N", 64), ("C", 768)), dist="unit"),
                 lambda x, gamma, beta, eps: ops.layer_norm(x, gamma, beta, eps=eps * 1e3),
                 id="layernorm-fp16-eps-times-1e3"),
    pytest.param(ParityCase("layer_norm", "float32", (("N", 64), ("C", 768))),
                 lambda x, gamma, beta, eps: ops.layer_norm(x, gamma, np.zeros_like(beta), eps=eps),
                 id="layernorm-dropped-beta"),
    pytest.param(ParityCase("bias_gelu", "float32", (("N", 64), ("C", 3072))),
                 lambda x, bias: ops.gelu_erf(x), id="bias-gelu-dropped-bias"),
    pytest.param(ParityCase("gelu_erf", "float32", (("N", 64), ("C", 3072))),
                 lambda x: ops.gelu_tanh(x), id="gelu-tanh-where-erf-expected"),
    # precision loss: a float16 round trip of the inputs (a kernel that silently computes in half precision)
    pytest.param(ParityCase("fully_connected", "float32", (("B", 1), ("K", 7), ("N", 3))),
                 lambda x, weight, bias: ops.fully_connected(_fp16(x), _fp16(weight), bias),
                 id="fc-inputs-rounded-to-float16"),
    pytest.param(ParityCase("interleaved_selfatt_qk", "float32", (("L", 9), ("B", 2), ("H", 3), ("d", 5))),
                 lambda qkv, heads: ops.selfatt_qk(_fp16(qkv), heads), id="qk-inputs-rounded-to-float16"),
    pytest.param(ParityCase("gelu_erf", "float32", (("N", 64), ("C", 3072))),
                 lambda x: _fp16(ops.gelu_erf(x)), id="gelu-output-rounded-to-float16"),
    # FP16 accumulation beyond the bound: a scalar FP16 FMA chain (one rounding per term) on non-cancelling
    # inputs, judged with the true-FP16 tolerance; the tensor-core-like emulation passes the same case below.
    pytest.param(ParityCase("fully_connected", "float16-true", (("B", 8), ("K", 4096), ("N", 64)), dist="positive"),
                 lambda x, weight, bias: (tl.emulate_fp16_gemm(x, weight.T, chunk=1).astype(np.float64)
                                          + bias).astype(np.float16),
                 id="fc-fp16-scalar-accumulation-beyond-bound"),
]


@pytest.mark.parametrize("case,broken", FAULTS)
def test_comparison_catches_fault(case, broken):
    result = run_case(case, impl=broken)
    assert not result.passed, f"the fault went unnoticed: {result.message}"
    msg = result.message
    # the message names the worst element, both values, the error/bound ratio, the mismatch fraction, the seed
    assert re.search(r"worst element \(\d+(, \d+)*\)", msg), msg
    for needle in ("actual=", "expected=", "error/bound=", "elements over their bound", f"seed={case.seed}"):
        assert needle in msg, msg


# The correct implementation passes each case above (CPU cases through MXNet; the true-FP16 case through the
# tensor-core-like emulation, since CPU MXNet has no FP16 GEMM): the faults alone make the difference.
@pytest.mark.parametrize("case", [p.values[0] for p in FAULTS if p.values[0].mode != "float16-true"],
                         ids=[p.id for p in FAULTS if p.values[0].mode != "float16-true"])
def test_same_case_passes_unbroken(case):
    result = run_case(case)
    assert result.passed, result.message


def test_fp16_tensor_core_emulation_passes_true_fp16_case():
    case = FAULTS[-1].values[0]
    emulated = lambda x, weight, bias: (tl.emulate_fp16_gemm(x, weight.T, chunk=16).astype(np.float64)  # noqa: E731
                                        + bias).astype(np.float16)
    result = run_case(case, impl=emulated)
    assert result.passed, result.message


def test_nonfinite_output_fails_with_count():
    case = ParityCase("gelu_erf", "float32", (("N", 4), ("C", 8)))

    def nan_at_one(x):
        y = ops.gelu_erf(x)
        y[2, 3] = np.nan
        return y

    result = run_case(case, impl=nan_at_one)
    assert not result.passed
    assert result.nonfinite == 1 and result.worst_index == (2, 3), result.message


def test_shape_mismatch_fails_clearly():
    case = ParityCase("gelu_erf", "float32", (("N", 4), ("C", 8)))
    result = run_case(case, impl=lambda x: ops.gelu_erf(x)[:, :7])
    assert not result.passed and "shape mismatch" in result.message


def test_inputs_are_seeded_and_nonzero():
    case = ParityCase("fully_connected", "float32", (("B", 2), ("K", 16), ("N", 8)), seed=7)
    a, b = make_inputs(case), make_inputs(case)
    assert all(np.array_equal(a[k], b[k]) for k in ("x", "weight", "bias"))
    assert np.all(np.abs(a["bias"]) > 0)
    ln = make_inputs(ParityCase("layer_norm", "float32", (("N", 2), ("C", 16))))
    assert np.all(np.abs(ln["beta"]) > 0) and np.all(np.abs(ln["gamma"]) > 0)


def test_safe_accumulation_flag_changes_fp16_softmax():
    """MXNET_SAFE_ACCUMULATION is read at call time: FP32 accumulation must be measurably more accurate."""
    shape = (("rows", 48), ("L", 384), ("length", "full"))
    safe = run_case(ParityCase("softmax_length", "float16", shape))
    unsafe = run_case(ParityCase("softmax_length", "float16-unsafe", shape))
    assert safe.passed and unsafe.passed, (safe.message, unsafe.message)
    assert unsafe.max_abs_error > 2 * safe.max_abs_error, (safe.message, unsafe.message)


# ----------------------------------------------------------------------------------------------- bounds not loose
def _k_of(case):
    d = case.dims
    if case.path == "fully_connected":
        return d["K"]
    if case.path.endswith("_qk"):
        return d["d"]
    return d.get("L", d.get("Lk"))


@pytest.mark.parametrize("path", ["fully_connected", "interleaved_selfatt_qk", "interleaved_selfatt_valatt"])
def test_fp32_gemm_bound_is_not_loose(path):
    """Correct FP32 GEMMs use a visible part of their bound. Derivation of the floor: the largest of many output
    roundings reaches about u/2 of its value, and for the grid's tiny-K cases (K <= 9) the value is within a small
    factor of |A|.|B|, so some element has error/bound >= 1 / (4 (roundings + K)) when the bound is
    (roundings + gamma_K/u) u |A|.|B|. A bound 10x too loose puts every case under its floor."""
    from perfsuite.parity import ops as parity

    cases = [c for c in parity.default_cases(devices=["cpu"]) if c.path == path and c.mode == "float32"
             and _k_of(c) <= 9 and c.dims.get("L", 2) > 1]
    assert cases
    tol = tl.tolerance_for(path, "float32")
    ratios = {c.id: (run_case(c).worst_ratio, 1 / (4 * (tol.roundings + _k_of(c)))) for c in cases}
    assert max(r / floor for r, floor in ratios.values()) >= 1.0, ratios


def test_gelu_bound_is_not_loose():
    """Correct erf-GELU uses at least 1/16 of its bound on BERT-scale inputs: the bound allows the output's own
    roundings plus a few ulps of erf, and over 196,608 elements one reaches u/4 of its value."""
    result = run_case(ParityCase("gelu_erf", "float32", (("N", 64), ("C", 3072))))
    assert result.passed and result.worst_ratio >= 1 / 16, result.message



@pytest.mark.parametrize("path,mode", [("layer_norm", "float32"), ("layer_norm", "float16"),
                                       ("softmax_length", "float32"), ("softmax_length", "float16")])
def test_normalization_bounds_are_not_loose(path, mode):
    """Correct LayerNorm and softmax kernels use a visible part of their bound somewhere in the grid. Derivation of
    the floor: where the reduction is short (C = 5, or a row's valid length of a few) the bound is dominated by
    the output's own roundings, (roundings u_s + extra u_a) |y|, and over the grid's thousands of outputs the
    largest actual error reaches about u_s/2 |y| (the final rounding alone): a worst error/bound of at least
    1 / (2 (roundings + extra u_a/u_s)), i.e. 1/12 and 1/4 for softmax (float32, float16), 1/18 and 1/10 for
    LayerNorm. Measured on MXNet 1.9.1: softmax 0.44 and 0.785, LayerNorm 0.156 and 0.55. A bound 10x too loose
    puts every case under its floor."""
    from perfsuite.parity import ops as parity

    tol = tl.tolerance_for(path, mode)
    floor = 0.5 / (tol.roundings + tol.extra * tl.UNIT_ROUNDOFF[tol.accumulation] / tl.UNIT_ROUNDOFF[tol.storage])
    cases = [c for c in parity.default_cases(devices=["cpu"]) if c.path == path and c.mode == mode]
    assert cases
    results = [run_case(c) for c in cases]
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    assert max(r.worst_ratio for r in results) >= floor, (floor, {c.id: r.worst_ratio for c, r in zip(cases, results)})


@pytest.mark.parametrize("case,broken", [
    pytest.param(ParityCase("layer_norm", "float32", (("N", 64), ("C", 768)), dist="unit"),
                 lambda x, gamma, beta, eps: ops.layer_norm(x.astype(np.float16).astype(x.dtype), gamma, beta, eps=eps),
                 id="layer_norm-fp32-inputs-through-float16"),
    pytest.param(ParityCase("softmax_length", "float32", (("rows", 48), ("L", 128), ("length", "random"))),
                 lambda x, length: ops.softmax(x.astype(np.float16).astype(x.dtype), length),
                 id="softmax-fp32-logits-through-float16"),
])
def test_precision_loss_fails_the_normalization_bounds(case, broken):
    """A float16 round-trip hidden inside an FP32 kernel (a subtle fault, not a gross one: the output is right to
    3 digits) fails; measured err/bound 7.2 (LayerNorm, unit rows) and 2.3e3 (softmax)."""
    result = run_case(case, impl=broken)
    assert not result.passed and result.worst_ratio > 2, result.message
