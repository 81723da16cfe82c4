"""NumPy float64 references for the ops BERT inference runs in MXNet (no MXNet import, by design).

Every function validates all its inputs first (finite, shapes, lengths; :mod:`perfsuite.validate`) and only
then computes, in float64, whatever the input dtype. None clips or rescales, so calling a reference on
``np.abs`` of the inputs gives the magnitude bound used by the tolerances (e.g.
``selfatt_qk(np.abs(qkv), heads)`` is ``|q|.|k|/sqrt(d)`` elementwise).

Interleaved attention layout (MXNet >= 1.6 ``contrib.interleaved_matmul_*``): ``qkv`` is
(seq_len, batch, heads*3*d) and, per head h, ``qkv[..., h*3d:(h+1)*3d]`` is ``[q_h | k_h | v_h]``;
``kv`` is (seq_len, batch, heads*2*d) with ``[k_h | v_h]`` per head. Attention scores are laid out
(batch*heads, len_q, len_k) with row ``b*heads + h``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from perfsuite.errors import PerfsuiteInputError
from perfsuite.validate import (check_array, check_att, check_choice, check_finite, check_kv, check_lengths,
                                check_positive_float, check_q, check_qkv, check_shape)

__all__ = [
    "ZERO_LENGTH_MODES",
    "encdec_qk",
    "encdec_valatt",
    "fully_connected",
    "gelu_erf",
    "gelu_tanh",
    "layer_norm",
    "selfatt_qk",
    "selfatt_valatt",
    "softmax",
]

ZERO_LENGTH_MODES: tuple[str, ...] = ("zeros", "nan", "error")
"""What ``softmax`` returns for a row of length 0; "zeros" is what MXNet 1.9.1 returns."""

# GELU uses erfc: 1 + erf(x/sqrt2) == erfc(-x/sqrt2), without the cancellation of 1 + erf for x << 0
# (at x = -5, 1 + erf loses ~6 digits; erfc keeps full float64 relative accuracy).
try:  # vectorized when SciPy is present; it is optional
    from scipy.special import erfc as _erfc  # type: ignore[import-not-found]
except ImportError:  # math.erfc is float64-accurate (C libm); np.vectorize makes it elementwise
    _erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _f64(name: str, x: Any) -> np.ndarray:
    """Validate ``x`` (numeric, finite) and return it as a float64 array."""
    return np.asarray(check_finite(name, x), dtype=np.float64)


def softmax(x: Any, length: Any = None, axis: int = -1, zero_length: str = "zeros") -> np.ndarray:
    """Softmax over the last axis, masked to the first ``length[...]`` positions of each row (MXNet use_length).

    ``length`` is an integer array of shape ``x.shape[:-1]`` (None: every row is full). Positions
    ``j >= length`` get exactly 0.0. Edge cases, matching MXNet 1.9.1 ``softmax(..., use_length=True)``:
    length == seq_len is the plain softmax; length 1 is one-hot at position 0 (exactly 1.0 there);
    length 0 gives, by ``zero_length``: "zeros" (default, what MXNet returns: a row of +0.0),
    "nan" (a row of NaN), or "error" (PerfsuiteInputError, i.e. lengths must be >= 1).
    Numerically stable: subtracts each row's maximum over its valid positions.
    Only the last axis is supported (``axis=-1`` or ``x.ndim - 1``): that is the only one BERT masks.
    """
    check_choice("zero_length mode", zero_length, ZERO_LENGTH_MODES)
    a = _f64("x", x)
    if a.ndim == 0 or not isinstance(axis, int) or isinstance(axis, bool) or axis not in (-1, a.ndim - 1):
        raise PerfsuiteInputError(
            f"softmax axis={axis!r} on x of shape {a.shape} is not supported; allowed: axis=-1 (the last axis)"
        )
    seq = a.shape[-1]
    if length is None:
        valid = np.ones(a.shape, dtype=bool)
        lens = np.full(a.shape[:-1], seq, dtype=np.int64)
    else:
        lens = check_lengths(length, a.shape[:-1], seq, min_length=1 if zero_length == "error" else 0)
        valid = np.arange(seq) < lens[..., None]
    row_max = np.max(np.where(valid, a, -np.inf), axis=-1, keepdims=True) if seq else np.zeros(a.shape[:-1] + (1,))
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)  # empty rows: -inf -> 0, no inf - inf
    e = np.where(valid, np.exp(np.where(valid, a - row_max, 0.0)), 0.0)
    total = np.sum(e, axis=-1, keepdims=True)
    out = e / np.where(total > 0, total, 1.0)  # empty rows: 0/1 = +0.0
    if zero_length == "nan":
        out[lens == 0] = np.nan
    return out


def _heads_split(a: np.ndarray, heads: int, blocks: int) -> np.ndarray:
    """(L, B, heads*blocks*d) -> (L, B, heads, blocks, d): block 0 is q (or k), 1 is k (or v), 2 is v."""
    seq, batch, width = a.shape
    return a.reshape(seq, batch, heads, blocks, width // (heads * blocks))


def selfatt_qk(qkv: Any, heads: int) -> np.ndarray:
    """Self-attention scores (batch*heads, L, L): out[b*H+h, i, j] = sum_c q[i,b,h,c]/sqrt(d) * k[j,b,h,c].

    ``qkv`` is (L, batch, heads*3*d) with per-head blocks [q_h | k_h | v_h] (MXNet interleaved_matmul_selfatt_qk).
    """
    d = check_qkv(qkv, heads)
    a = _f64("qkv", qkv)
    seq, batch, _ = a.shape
    r = _heads_split(a, heads, 3)
    q, k = r[:, :, :, 0, :] / math.sqrt(d), r[:, :, :, 1, :]
    return np.einsum("ibhc,jbhc->bhij", q, k).reshape(batch * heads, seq, seq)


def selfatt_valatt(qkv: Any, att: Any, heads: int) -> np.ndarray:
    """Attention-weighted values (L, batch, heads*d): out[i, b, h*d+c] = sum_j att[b*H+h, i, j] * v[j,b,h,c].

    ``att`` is (batch*heads, L, L); ``qkv`` as in :func:`selfatt_qk` (MXNet interleaved_matmul_selfatt_valatt).
    """
    d = check_qkv(qkv, heads)
    seq, batch = np.shape(qkv)[:2]
    check_att(att, (batch * heads, seq, seq))
    a = _f64("qkv", qkv)
    w = _f64("att", att)
    v = _heads_split(a, heads, 3)[:, :, :, 2, :]
    out = np.einsum("bhij,jbhc->ibhc", w.reshape(batch, heads, seq, seq), v)
    return out.reshape(seq, batch, heads * d)


def encdec_qk(q: Any, kv: Any, heads: int) -> np.ndarray:
    """Encoder-decoder scores (batch*heads, Lq, Lk): q (Lq, B, H*d) scaled by 1/sqrt(d), kv (Lk, B, H*2*d) [k_h|v_h].

    out[b*H+h, i, j] = sum_c q[i,b,h,c]/sqrt(d) * k[j,b,h,c] (MXNet interleaved_matmul_encdec_qk).
    """
    d = check_q(q, heads)
    check_kv(kv, heads, batch=np.shape(q)[1], head_dim=d)
    qa = _f64("q", q)
    kva = _f64("kv", kv)
    len_q, batch, _ = qa.shape
    len_k = kva.shape[0]
    qh = _heads_split(qa, heads, 1)[:, :, :, 0, :] / math.sqrt(d)
    kh = _heads_split(kva, heads, 2)[:, :, :, 0, :]
    return np.einsum("ibhc,jbhc->bhij", qh, kh).reshape(batch * heads, len_q, len_k)


def encdec_valatt(kv: Any, att: Any, heads: int) -> np.ndarray:
    """Encoder-decoder weighted values (Lq, batch, heads*d): out[i, b, h*d+c] = sum_j att[b*H+h, i, j] * v[j,b,h,c].

    ``kv`` is (Lk, batch, heads*2*d) with per-head [k_h | v_h]; ``att`` is (batch*heads, Lq, Lk)
    (MXNet interleaved_matmul_encdec_valatt).
    """
    d = check_kv(kv, heads)
    len_k, batch = np.shape(kv)[:2]
    check_att(att, (batch * heads, None, len_k))
    kva = _f64("kv", kv)
    w = _f64("att", att)
    len_q = w.shape[1]
    v = _heads_split(kva, heads, 2)[:, :, :, 1, :]
    out = np.einsum("bhij,jbhc->ibhc", w.reshape(batch, heads, len_q, len_k), v)
    return out.reshape(len_q, batch, heads * d)


def layer_norm(x: Any, gamma: Any, beta: Any, eps: float = 1e-5, axis: int = -1) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) * gamma + beta along ``axis``, population variance (MXNet LayerNorm).

    ``gamma`` and ``beta`` are 1-D of length ``x.shape[axis]``; ``eps`` must be > 0 (MXNet's default is 1e-5,
    BERT's GluonNLP blocks use 1e-12).
    """
    xa = check_array("x", x)
    if xa.ndim == 0:
        raise PerfsuiteInputError("x has shape () (0-D); allowed: an array with at least 1 dimension")
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not -xa.ndim <= axis < xa.ndim:
        raise PerfsuiteInputError(
            f"layer_norm axis={axis!r} on x of shape {xa.shape} is not allowed; "
            f"allowed: an integer in [-{xa.ndim}, {xa.ndim - 1}]"
        )
    axis = int(axis)
    units = xa.shape[axis]
    check_shape("gamma", gamma, (units,))
    check_shape("beta", beta, (units,))
    e = check_positive_float("eps", eps)
    a = _f64("x", x)
    g = _f64("gamma", gamma)
    b = _f64("beta", beta)
    bshape = [1] * a.ndim
    bshape[axis] = units
    mean = np.mean(a, axis=axis, keepdims=True)
    centred = a - mean
    var = np.mean(centred * centred, axis=axis, keepdims=True)
    return centred / np.sqrt(var + e) * g.reshape(bshape) + b.reshape(bshape)


def gelu_erf(x: Any) -> np.ndarray:
    """Exact GELU 0.5 x (1 + erf(x / sqrt(2))) (MXNet LeakyReLU act_type='gelu'), float64-accurate for all x.

    Computed as 0.5 x erfc(-x / sqrt(2)), the same function without cancellation for negative x.
    """
    a = _f64("x", x)
    return 0.5 * a * _erfc(-a / math.sqrt(2.0))


def gelu_tanh(x: Any) -> np.ndarray:
    """Tanh-approximated GELU 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (as in the original BERT code)."""
    a = _f64("x", x)
    return 0.5 * a * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (a + 0.044715 * a**3)))


def fully_connected(x: Any, weight: Any, bias: Any = None, flatten: bool = True) -> np.ndarray:
    """MXNet FullyConnected: x @ weight.T + bias with weight (num_hidden, in_units).

    flatten=True reshapes x to (x.shape[0], -1) first (a 1-D x becomes (n, 1), as in MXNet) and returns
    (x.shape[0], num_hidden); flatten=False applies to the last axis and returns x.shape[:-1] + (num_hidden,).
    """
    if not isinstance(flatten, (bool, np.bool_)):
        raise PerfsuiteInputError(f"flatten={flatten!r} is not allowed; flatten must be True or False")
    xa = check_array("x", x)
    if xa.ndim == 0:
        raise PerfsuiteInputError("x has shape () (0-D); allowed: an array with at least 1 dimension")
    w_arr = check_array("weight", weight, ndim=2)
    num_hidden = w_arr.shape[0]
    in_units = int(np.prod(xa.shape[1:], dtype=np.int64)) if flatten else xa.shape[-1]
    how = "prod(x.shape[1:]) (flatten=True)" if flatten else "x.shape[-1] (flatten=False)"
    if w_arr.shape[1] != in_units:
        raise PerfsuiteInputError(
            f"weight has shape {w_arr.shape} for x of shape {xa.shape}; allowed: weight shape "
            f"(num_hidden, {in_units}), in_units = {how}"
        )
    if bias is not None:
        check_shape("bias", bias, (num_hidden,))
    a = _f64("x", x)
    w = _f64("weight", weight)
    b = _f64("bias", bias) if bias is not None else None
    a2 = a.reshape(a.shape[0], in_units) if flatten else a
    out = a2 @ w.T
    return out + b if b is not None else out
