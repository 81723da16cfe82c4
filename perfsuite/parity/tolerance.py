"""The one tolerance table of perfsuite: an error bound per (path, precision mode), each derived and explained.

A bound is elementwise and *magnitude-relative*: for a GEMM-like path C = A . B the allowed error of C[i, j]
is coefficient(K) * (|A| . |B|)[i, j], never a fraction of |C| alone (cancellation would fail a correct kernel)
and never one global atol (a loose atol hides a wrong kernel wherever values are small). The float64 reference
is computed from the *same* rounded inputs the path sees, so input rounding is not part of any bound.

Notation: u is the unit roundoff (float32: 2^-24, float16: 2^-11); K is the reduction length.

* Deterministic growth, gamma_K = K u / (1 - K u) (Higham, Accuracy and Stability, 3.1): holds for any
  summation order. Used for FP32 accumulation: cheap to afford (K = 3072 gives 1.8e-4 of |A|.|B|) and still
  hundreds of times below any real fault (a dropped bias, a swapped head, a 1/d scale are O(1) errors).
  FP32 accumulation of FP16 products on tensor cores is not exact FP32 (alignment truncation): the H200
  measurements exceed u16 + sqrt(K) u32 at K = 8192 (1.035 u16), and stay inside u16 + gamma_K(u32).
* Probabilistic growth, lambda sqrt(K) u (Higham & Mary 2019): used for true FP16 accumulation
  (MXNET_FC_TRUE_FP16=1), where gamma_K(u16) is vacuous (K = 1024 allows 50 % error). With lambda = 1 the
  bound (1 + sqrt(K)) u16 |A|.|B| covers every one of the 180 cuBLAS measurements on an H200 (worst case
  9.91 u16 at K = 1024, all-positive inputs: the bound 33 is 3.3x looser; 24x looser at K = 16384, where
  cuBLAS splits the reduction) and the NumPy emulation of tensor-core accumulation (`emulate_fp16_gemm`,
  chunks of 16 exact products added into an FP16 accumulator). It is not vacuous: scalar FP16 accumulation
  of non-cancelling inputs (`chunk=1`) exceeds it from K = 384 on (39 u16 at K = 1024, 187 at K = 4096).

Paths here are op-level (issue 2); whole-model entries are added beside them, never inside a test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Dict, Optional, Tuple

import numpy as np

from perfsuite.errors import PerfsuiteInputError

__all__ = [
    "describe_table",
    "UNIT_ROUNDOFF",
    "Mode",
    "MODES",
    "Tolerance",
    "TOLERANCES",
    "tolerance_for",
    "gamma",
    "gemm_bound",
    "softmax_bound",
    "layer_norm_bound",
    "gelu_bound",
    "emulate_fp16_gemm",
    "ModelTolerance",
    "MODEL_TOLERANCES",
    "GRAPH_PASS_VS_BASE",
    "INT8_FLOORS",
    "int8_floor_violations",
]

UNIT_ROUNDOFF: Dict[str, float] = {"float64": 2.0 ** -53, "float32": 2.0 ** -24, "float16": 2.0 ** -11}
# Smallest positive subnormal: with gradual underflow every rounding is fl(x) = x (1 + d) + e, |d| <= u,
# |e| <= TINY / 2 (Higham 2.1). Small outputs (softmax tails, products of small attention weights) round to
# 0 or to the nearest subnormal, an absolute error no relative bound can express.
TINY: Dict[str, float] = {"float64": 2.0 ** -1074, "float32": 2.0 ** -149, "float16": 2.0 ** -24}


@dataclass(frozen=True)
class Mode:
    """A precision mode: the dtype arrays are stored in, the dtype reductions accumulate in, the flags that select it."""

    name: str
    storage: str
    accumulation: str
    flags: Tuple[Tuple[str, str], ...]
    gpu_only: bool
    doc: str

    @property
    def flag_dict(self) -> Dict[str, str]:
        return dict(self.flags)


MODES: Dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("float32", "float32", "float32", (), False, "FP32 storage and accumulation"),
        Mode(
            "float16",
            "float16",
            "float32",
            (("MXNET_SAFE_ACCUMULATION", "1"), ("MXNET_FC_TRUE_FP16", "0")),
            False,
            "FP16 storage, FP32 accumulation: MXNet's default for FP16 GEMMs; softmax/LayerNorm need "
            "MXNET_SAFE_ACCUMULATION=1 for it (the seed's setting)",
        ),
        Mode(
            "float16-unsafe",
            "float16",
            "float16",
            (("MXNET_SAFE_ACCUMULATION", "0"),),
            False,
            "FP16 storage and FP16 accumulation in softmax/LayerNorm (MXNET_SAFE_ACCUMULATION=0)",
        ),
        Mode(
            "float16-true",
            "float16",
            "float16",
            (("MXNET_FC_TRUE_FP16", "1"), ("MXNET_SAFE_ACCUMULATION", "1")),
            True,
            "true FP16: cuBLAS accumulates GEMMs (FullyConnected, interleaved attention) in FP16 "
            "(MXNET_FC_TRUE_FP16=1, MXNet >= 1.7, GPU only)",
        ),
    )
}


def gamma(k: int, u: float) -> float:
    """Deterministic error growth of a K-term reduction: gamma_K = K u / (1 - K u)."""
    if k * u >= 1.0:
        return math.inf
    return k * u / (1.0 - k * u)


@dataclass(frozen=True)
class Tolerance:
    """One entry of the table: how a path's error grows, in a precision mode, and why.

    coefficient(K) = roundings * u_storage + growth(K) * u_accumulation is the allowed error per unit of
    magnitude (|A|.|B| for GEMMs; the op's own magnitude for the others, see the *_bound functions).
    """

    path: str
    mode: str
    growth: str  # "deterministic" (gamma_K) or "probabilistic" (lam * sqrt(K))
    roundings: int  # roundings in storage precision after the reduction (scaling, bias add, output)
    reason: str
    lam: float = 1.0
    extra: float = 0.0  # a named per-op constant (e.g. ulps of exp/erf in the accumulation type)

    @property
    def storage(self) -> str:
        return MODES[self.mode].storage

    @property
    def accumulation(self) -> str:
        return MODES[self.mode].accumulation

    def growth_factor(self, k: int) -> float:
        """Error growth of the reduction, in units of u_accumulation."""
        u = UNIT_ROUNDOFF[self.accumulation]
        if self.growth == "deterministic":
            return gamma(k, u) / u
        return self.lam * math.sqrt(k)

    def coefficient(self, k: int) -> float:
        """Allowed error per unit magnitude for reduction length k."""
        us, ua = UNIT_ROUNDOFF[self.storage], UNIT_ROUNDOFF[self.accumulation]
        return self.roundings * us + (self.growth_factor(k) + self.extra) * ua

    def floor(self, k: int = 1) -> float:
        """Absolute underflow allowance: each storage rounding and each of the k accumulation steps may add TINY/2."""
        return (self.roundings + 1) * TINY[self.storage] + k * TINY[self.accumulation]


def _gemm(path: str, roundings: int, what: str) -> Dict[Tuple[str, str], Tolerance]:
    return {
        (path, "float32"): Tolerance(
            path, "float32", "deterministic", roundings,
            f"{what}: FP32 accumulation, any summation order: gamma_K(u32); {roundings} FP32 rounding(s) after it",
        ),
        (path, "float16"): Tolerance(
            path, "float16", "deterministic", roundings,
            f"{what}: FP16 inputs, FP32 accumulation (cuBLAS pseudo-FP16): gamma_K(u32) + {roundings} FP16 "
            "rounding(s); covers the H200 tensor-core measurements (max 1.035 u16 vs bound >= 1 + K/2^13)",
        ),
        (path, "float16-true"): Tolerance(
            path, "float16-true", "probabilistic", roundings,
            f"{what}: true FP16 accumulation: (rounding(s) + sqrt(K)) u16; 3.3x looser than the worst H200 "
            "measurement (K=1024, positive inputs), not vacuous: scalar FP16 accumulation exceeds it",
        ),
    }


TOLERANCES: Dict[Tuple[str, str], Tolerance] = {}
# FullyConnected: y = x W^T + b; K = in_units. Roundings: the product, then the bias add.
TOLERANCES.update(_gemm("fully_connected", 2, "FullyConnected"))
# interleaved QK: (q / sqrt(d)) . k^T, K = head_dim. Roundings: the scaled q, the output.
TOLERANCES.update(_gemm("interleaved_selfatt_qk", 2, "interleaved Q.K^T"))
TOLERANCES.update(_gemm("interleaved_encdec_qk", 2, "interleaved enc-dec Q.K^T"))
# interleaved value attention: att . V, K = key length. Rounding: the output.
TOLERANCES.update(_gemm("interleaved_selfatt_valatt", 1, "interleaved att.V"))
TOLERANCES.update(_gemm("interleaved_encdec_valatt", 1, "interleaved enc-dec att.V"))
TOLERANCES.update(
    {
        ("softmax_length", "float32"): Tolerance(
            "softmax_length", "float32", "deterministic", 2,
            "softmax: exp in FP32 (<= 4 ulp), denominator a K-term FP32 sum (gamma_K), the division and the "
            "output rounding; plus |x - max| u_storage from rounding the shifted logit (see softmax_bound)",
            extra=4.0,
        ),
        ("softmax_length", "float16"): Tolerance(
            "softmax_length", "float16", "deterministic", 2,
            "FP16 softmax with MXNET_SAFE_ACCUMULATION=1: exp and sum in FP32 (gamma_K(u32) + 4 ulp), "
            "shifted logit and output rounded to FP16",
            extra=4.0,
        ),
        ("softmax_length", "float16-unsafe"): Tolerance(
            "softmax_length", "float16-unsafe", "deterministic", 2,
            "FP16 softmax with MXNET_SAFE_ACCUMULATION=0: the denominator is summed in FP16 term by term, "
            "positive terms: no cancellation to randomize the error, so only the worst case gamma_K(u16) is "
            "a guarantee (19 % at K=384). This entry is an honest statement that the unsafe path has no "
            "useful bound; perfsuite reports its measured error next to the safe one",
            extra=4.0,
        ),
        ("layer_norm", "float32"): Tolerance(
            "layer_norm", "float32", "deterministic", 5,
            "LayerNorm: mean and variance are K-term FP32 sums (gamma_K, valid for one- and two-pass "
            "variance since it is taken relative to mean(x^2)); then 5 roundings in storage precision: "
            "x - mean, the std, the division, the gamma product, the beta add (MXNet's general CPU path "
            "composes broadcast ops, each rounded)",
            extra=4.0,
        ),
        ("layer_norm", "float16"): Tolerance(
            "layer_norm", "float16", "deterministic", 5,
            "FP16 LayerNorm with MXNET_SAFE_ACCUMULATION=1: statistics in FP32, then x - mean, the std, the "
            "division, the gamma product and the beta add each rounded to FP16 (5 roundings; measured 2.6 u16)",
            extra=4.0,
        ),
        ("layer_norm", "float16-unsafe"): Tolerance(
            "layer_norm", "float16-unsafe", "deterministic", 5,
            "FP16 LayerNorm with MXNET_SAFE_ACCUMULATION=0: statistics may be summed in FP16 (worst case "
            "gamma_K(u16)); sum of squares overflows FP16 (65504) for activations in the hundreds",
            extra=4.0,
        ),
        ("gelu_erf", "float32"): Tolerance(
            "gelu_erf", "float32", "deterministic", 1,
            "erf-GELU (LeakyReLU act_type='gelu'): evaluated in FP32 (erf and 3 flops: <= 8 ulp of |x| since "
            "|gelu'| <= 1.13), one output rounding",
            extra=8.0,
        ),
        ("gelu_erf", "float16"): Tolerance(
            "gelu_erf", "float16", "deterministic", 1,
            "FP16 erf-GELU: evaluated in FP32 inside the kernel (<= 8 u32 of |x|), one FP16 output rounding",
            extra=8.0,
        ),
        ("bias_gelu", "float32"): Tolerance(
            "bias_gelu", "float32", "deterministic", 3,
            "bias add then erf-GELU in a hybridized (on GPU: pointwise-fused) graph: the add's rounding "
            "(u |x + b|, amplified by |gelu'| <= 1.13, counted as 2) plus the GELU entry",
            extra=8.0,
        ),
        ("bias_gelu", "float16"): Tolerance(
            "bias_gelu", "float16", "deterministic", 3,
            "FP16 bias add then erf-GELU, hybridized or fused: 2 FP16 roundings for the add, 1 for the output, "
            "GELU evaluated in FP32",
            extra=8.0,
        ),
        ("gelu_tanh", "float32"): Tolerance(
            "gelu_tanh", "float32", "deterministic", 9,
            "tanh-GELU as GluonNLP composes it from 9 elementwise ops, each rounded in storage precision; the "
            "sensitivity of y to the tanh argument is at most 0.5|x| * 0.45, so each rounding costs <= u|x|",
        ),
        ("gelu_tanh", "float16"): Tolerance(
            "gelu_tanh", "float16", "deterministic", 9,
            "FP16 tanh-GELU: 9 elementwise ops each rounded to FP16 (<= 9 u16 |x|)",
        ),
    }
)


def tolerance_for(path: str, mode: str) -> Tolerance:
    """The table entry for (path, mode); a clear error for anything the table does not hold."""
    try:
        return TOLERANCES[(path, mode)]
    except KeyError:
        paths = sorted({p for p, _ in TOLERANCES})
        if path not in paths:
            raise PerfsuiteInputError(f"unknown path {path!r}; allowed: {', '.join(paths)}") from None
        modes = sorted(m for p, m in TOLERANCES if p == path)
        raise PerfsuiteInputError(
            f"path {path!r} has no tolerance for mode {mode!r}; allowed modes: {', '.join(modes)}"
        ) from None


# --------------------------------------------------------------------------------------------------
# Op error models: each returns an elementwise bound array with the shape of the op's output.
# The magnitudes come from the float64 reference, evaluated on |inputs| for the GEMMs.


def gemm_bound(tol: Tolerance, magnitude: np.ndarray, k: int) -> np.ndarray:
    """|C - C_ref| <= coefficient(K) * (|A|.|B| [+ |bias|]) + floor(K), elementwise."""
    return tol.coefficient(k) * np.asarray(magnitude, dtype=np.float64) + tol.floor(k)


def softmax_bound(tol: Tolerance, y_ref: np.ndarray, shifted: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Softmax error model: |dy_i| <= y_i * (coefficient(K_row) + |x_i - max| * u_storage).

    y_i = e_i / S with e_i = exp(x_i - max). The shifted logit x_i - max is rounded in storage precision
    (relative error u_s, so e_i changes by a factor exp(u_s |x_i - max|)); exp itself costs a few ulp of the
    accumulation type; S is a K-term sum of positive terms (relative error gamma_K); the division and the output
    rounding cost one storage ulp each. K_row is the row's valid length. Masked positions must be exactly 0.
    """
    us = UNIT_ROUNDOFF[tol.storage]
    y_ref = np.asarray(y_ref, dtype=np.float64)
    k_row = np.maximum(np.asarray(length, dtype=np.int64), 1)
    coeff = np.vectorize(tol.coefficient, otypes=[np.float64])(k_row)[..., None]
    floor = np.vectorize(tol.floor, otypes=[np.float64])(k_row)[..., None]
    valid = np.arange(y_ref.shape[-1]) < np.asarray(length)[..., None]  # masked positions must be exactly 0
    return np.where(valid, y_ref * (coeff + np.abs(shifted) * us) + floor, 0.0)


def layer_norm_bound(
    tol: Tolerance, x: np.ndarray, gamma_: np.ndarray, beta: np.ndarray, eps: float
) -> np.ndarray:
    """LayerNorm error model over the last axis (length K), first order in u.

    mean: |d mu| <= gamma_K(u_a) mean|x|; variance (one- or two-pass): |d var| <= gamma_{K+2}(u_a) mean(x^2)
    + 2 |d mu| mean|x - mu|; rstd = 1/sqrt(var + eps): relative error <= |d var| / (2 (var + eps)) + 2 u_a;
    n_i = (x_i - mu) rstd: |d n_i| <= |n_i| (u_a + rel rstd) + (|d mu| + u_a |x_i - mu|) rstd;
    y_i = n_i g_i + b_i: |d y_i| <= |g_i| |d n_i| + roundings u_s (|n_i g_i| + |b_i|) + extra u_a |y_i|.
    """
    us, ua = UNIT_ROUNDOFF[tol.storage], UNIT_ROUNDOFF[tol.accumulation]
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(gamma_, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    k = x.shape[-1]
    gk = tol.growth_factor(k) * ua
    gk2 = tol.growth_factor(k + 2) * ua
    mu = x.mean(axis=-1, keepdims=True)
    d = x - mu
    var = (d * d).mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    n = d * rstd
    dmu = gk * np.abs(x).mean(axis=-1, keepdims=True)
    dvar = gk2 * (x * x).mean(axis=-1, keepdims=True) + 2.0 * dmu * np.abs(d).mean(axis=-1, keepdims=True)
    rel_rstd = dvar / (2.0 * (var + eps)) + 2.0 * ua
    dn = np.abs(n) * (ua + rel_rstd) + (dmu + ua * np.abs(d)) * rstd
    y = n * g + b
    return (np.abs(g) * dn + tol.roundings * us * (np.abs(n * g) + np.abs(b)) + tol.extra * ua * np.abs(y)
            + tol.floor(k))


def gelu_bound(tol: Tolerance, x: np.ndarray, y_ref: np.ndarray) -> np.ndarray:
    """GELU error model: roundings * u_s * |x| + extra * u_a * |x| + u_s |y| (|gelu'| <= 1.13 keeps errors ~|x|)."""
    us, ua = UNIT_ROUNDOFF[tol.storage], UNIT_ROUNDOFF[tol.accumulation]
    ax = np.abs(np.asarray(x, dtype=np.float64))
    return (tol.roundings * us * ax + tol.extra * ua * ax + us * np.abs(np.asarray(y_ref, dtype=np.float64))
            + tol.floor())


def emulate_fp16_gemm(a16: np.ndarray, b16: np.ndarray, chunk: int = 16) -> np.ndarray:
    """NumPy emulation of a true-FP16 GEMM (C = A @ B, FP16 accumulator), float16 result.

    Products of FP16 numbers are exact in FP32 (2 x 11 significand bits). A tensor-core MMA adds `chunk` (16)
    of them at higher precision and rounds into the FP16 accumulator once per chunk; chunk=1 is a scalar FP16
    FMA chain (one rounding per term), the worst ordering for non-cancelling inputs.
    """
    if chunk < 1:
        raise PerfsuiteInputError(f"chunk must be a positive integer; got {chunk!r}")
    a = np.asarray(a16, dtype=np.float16).astype(np.float32)
    b = np.asarray(b16, dtype=np.float16).astype(np.float32)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise PerfsuiteInputError(f"need A (M, K) and B (K, N); got {a.shape} and {b.shape}")
    acc = np.zeros((a.shape[0], b.shape[1]), dtype=np.float16)
    for s in range(0, a.shape[1], chunk):
        part = a[:, s : s + chunk].astype(np.float64) @ b[s : s + chunk, :].astype(np.float64)
        acc = (acc.astype(np.float64) + part).astype(np.float16)
    return acc


def describe_table(path: Optional[str] = None) -> str:
    """The table as text, for `perfsuite parity --tolerances` and the README."""
    rows = [f"{p:28s} {m:15s} {t.growth:13s} roundings={t.roundings} :: {t.reason}"
            for (p, m), t in sorted(TOLERANCES.items()) if path is None or p == path]
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------------
# Whole model. An analytic bound through 12-24 layers of GEMMs, softmax, LayerNorm and GELU would be either
# vacuous or wrong. Instead the reference is run twice: in float64, and as a *precision twin* that computes
# every op in float32 and rounds every op's output to the path's dtype (perfsuite.reference.bert). The twin is
# a correct implementation in that precision, so |twin - float64| is the size of the rounding error a correct
# path makes on *this* model and *these* inputs (it grows with depth and with the conditioning of the weights
# by itself). A path passes when, for every output and sentence, its error is within `factor` times the twin's
# largest error on that sentence, plus `floor_ulps` ulps of the output's largest value (for outputs the twin
# happens to reproduce exactly). factor = 16: MXNet sums in other orders (blocked GEMMs, fused kernels, FP32
# erf approximations), which changes the error's realization but not its size; real faults (a dropped bias or
# mask, a misordered QKV weight, a wrong pass) are 1e3-1e6 times the twin error.


@dataclass(frozen=True)
class ModelTolerance:
    """Whole-model bound: factor x (precision twin's error) + floor_ulps x u x max|output|, per sentence."""

    dtype: str
    factor: float
    floor_ulps: float
    reason: str


MODEL_TOLERANCES: Dict[str, ModelTolerance] = {
    "float32": ModelTolerance("float32", 16.0, 8.0,
                              "FP32 paths vs the float32 twin; see the block comment above"),
    "float16": ModelTolerance("float16", 16.0, 8.0,
                              "FP16 GPU paths vs the float16-storage twin (FP32 compute, every op output rounded "
                              "to FP16); true-FP16 accumulation adds at most sqrt(K) u16 per GEMM (the op-level "
                              "entry), within the factor for BERT-like inputs"),
}

# A custom graph pass must not change what the model computes: the passed model is compared with the *unpassed*
# exported model of the same MXNet, which runs the same kernels except where the pass rewrote the graph. A correct
# rewrite (a bias split off a FullyConnected into a broadcast_add) changes at most the rounding of the rewritten
# nodes (one or two ulps of their outputs), which propagates through the later layers like any rounding error and
# stays a fraction of a whole correct float32 implementation's error (the twin's); factor 2 leaves room for that
# and is still 8x tighter than the reference bound, which must also cover MXNet's own kernels.
GRAPH_PASS_VS_BASE = ModelTolerance("float32", 2.0, 8.0,
                                    "graph pass vs the unpassed exported model: both run MXNet's kernels; only the "
                                    "rewritten nodes' rounding may differ")

# INT8 is not an approximation of FP32 to within rounding: it is judged by what users observe, MLPerf-style (the
# quantized model must keep >= 99 % of the FP32 model's quality on a task: perfsuite.parity.int8_task, semantic search
# with real MiniLM weights on real text, nDCG@10 >= 0.99). Where no task exists (seeded random heads, random
# weights) INT8 is described by figures (perfsuite.parity.int8_task.head_figures: argmax flips, flips among confident
# inputs) that are not a quality criterion: random heads put many inputs near ties. One floor catches INT8 that
# broke outright where an embedding is returned: measured on MXNet 1.9.1 a working INT8 keeps the minimum
# embedding cosine at 0.95-0.99 (small random model, real MiniLM), while INT8 that lost its calibration
# (quantize_mode 'full' on MiniLM) falls to 0.19.
INT8_FLOORS: Dict[str, float] = {
    "embedding_cosine_min": 0.90,  # at least: the worst sentence's INT8 embedding within 26 degrees of FP32's
}


def int8_floor_violations(figures: Dict[str, float]) -> List[str]:
    """Which INT8 figures are below their floor ('embedding_cosine_min 0.710 < 0.9'); every floor is a minimum,
    and figures without one (argmax flips of random heads) are reported, never judged."""
    return [f"{k} {figures[k]:.3f} < {limit}" for k, limit in INT8_FLOORS.items()
            if k in figures and figures[k] < limit]
