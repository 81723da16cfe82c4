"""Whole-model BERT reference in NumPy: a float64 forward pass and its float32/float16 precision twins.

Independent by design: imports no MXNet, no GluonNLP and not :mod:`perfsuite.reference.ops` (the model math,
GELU's erfc included, is written here again), so a bug shared by an op reference and this one cannot hide.
It uses only the weight schema (:mod:`perfsuite.weights`) and the input checks (:mod:`perfsuite.validate`).

The model is GluonNLP 0.10's ``BERTModel`` (post-LN, ``use_pooler=True``, dropout off) plus two heads:
``x = LN((word[ids] + token_type[types]) + position[:L])``; per layer ``x = LN(x + Out(Attn(x)))``,
``x = LN(x + W2 gelu_erf(W1 x + b1) + b2)``; keys at positions ``>= valid_length`` get probability exactly 0;
padded query rows attend to the valid keys like every row. At the end GluonNLP's ``BERTEncoder`` applies
``SequenceMask`` (gluonnlp/model/bert.py), so the returned ``sequence`` is exactly 0 at padded positions and
``qa`` there equals the QA bias; ``pooled = tanh(Wp sequence[:, 0] + bp)``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from perfsuite.errors import PerfsuiteInputError
from perfsuite.validate import DTYPES, REFERENCE_DTYPES, check_array, check_dtype, check_shape
from perfsuite.weights import BertConfig, check_weights

__all__ = ["OUTPUTS", "erfc", "forward", "twin_error", "trace_points"]

OUTPUTS: Tuple[str, ...] = ("sequence", "pooled", "classification", "qa", "embedding_mean", "embedding_pooled")
"""Keys of the dict :func:`forward` returns (shapes in its docstring)."""

# ------------------------------------------------------------------------------------------------------------
# erfc, float64-accurate and vectorized (SciPy is not a dependency; math.erfc per element costs 5-8 s per
# BERT-base batch of 8 x 128). Taylor expansion around a grid a_k = k/N anchored on math.erfc(a_k), using
# d^n/dz^n erfc(z) = (-1)^n (2/sqrt(pi)) H_{n-1}(z) exp(-z^2) (physicists' Hermite polynomials):
#   erfc(a + t) = sum_n c_n(a) t^n, c_0 = erfc(a), c_n = -(2/sqrt(pi)) exp(-a^2) (-1)^(n-1) H_{n-1}(a) / n!.
# With |t| <= 1/(2N) and a <= _ZMAX the n-th term relative to erfc(a) is <= (2 a |t|)^n / n! ~ (0.0117)^n / n!,
# so 8 terms (n = 0..7) leave < 1e-17; measured within 2 ulp of an exact (mpmath, 40 digits) erfc;
# libm's math.erfc: 3 ulp.
# |z| > _ZMAX (and NaN) falls back to math.erfc elementwise: rare for GELU inputs (|x| > 8.5).
# ------------------------------------------------------------------------------------------------------------
_N = 512
_ZMAX = 6.0
_TERMS = 8
_CHUNK = 1 << 15  # elementwise work in cache-sized chunks: ~3x faster than whole-array passes


def _erfc_table() -> np.ndarray:
    """Taylor coefficients, shape (grid points, terms): one gather of a 64-byte row per element."""
    a = np.arange(int(_ZMAX * _N) + 1) / _N
    c = np.empty((_TERMS, a.size))
    c[0] = [math.erfc(v) for v in a]
    g = np.array([math.exp(-v * v) for v in a]) * (2.0 / math.sqrt(math.pi))
    h_prev, h = np.zeros_like(a), np.ones_like(a)  # H_{n-2}, H_{n-1}, starting at n = 1: H_{-1} unused, H_0 = 1
    fact = 1.0
    for n in range(1, _TERMS):
        fact *= n
        c[n] = -g * (-1.0) ** (n - 1) * h / fact
        h_prev, h = h, 2.0 * a * h - 2.0 * (n - 1) * h_prev
    return np.ascontiguousarray(c.T)


_C = _erfc_table()
_erfc_py = np.frompyfunc(math.erfc, 1, 1)


def _erfc_chunk(z: np.ndarray) -> np.ndarray:
    """erfc of a 1-D float64 chunk (see the comment above)."""
    az = np.abs(z)
    inside = az <= _ZMAX
    all_inside = bool(inside.all())
    zi = az if all_inside else np.where(inside, az, 0.0)
    scaled = zi * _N
    scaled += 0.5
    idx = scaled.astype(np.intp)  # round to the nearest grid point (zi >= 0)
    t = zi - idx * (1.0 / _N)  # exact: N is a power of two
    coef = np.take(_C, idx, axis=0)  # (chunk, terms); np.take is ~3x faster than fancy indexing here
    acc = coef[:, _TERMS - 1].copy()
    for n in range(_TERMS - 2, -1, -1):
        acc *= t
        acc += coef[:, n]
    if not all_inside:
        out = ~inside
        acc[out] = _erfc_py(az[out]).astype(np.float64)
    np.subtract(2.0, acc, out=acc, where=z < 0)  # erfc(-z) = 2 - erfc(z): in [1, 2], no cancellation
    return acc


def erfc(z: Any) -> np.ndarray:
    """Complementary error function in float64, elementwise, within a few ulp of math.erfc (fast, no SciPy)."""
    a = np.asarray(z, dtype=np.float64)
    flat = a.reshape(-1)
    out = np.empty_like(flat)
    for s in range(0, flat.size, _CHUNK):
        out[s : s + _CHUNK] = _erfc_chunk(flat[s : s + _CHUNK])
    return out.reshape(a.shape)


def _gelu64(x: np.ndarray) -> np.ndarray:
    """Exact GELU 0.5 x (1 + erf(x/sqrt 2)) = 0.5 x erfc(-x/sqrt 2) in float64 (erfc: no cancellation for x < 0)."""
    a = np.asarray(x, dtype=np.float64)
    flat = a.reshape(-1)
    out = np.empty_like(flat)
    for s in range(0, flat.size, _CHUNK):
        c = flat[s : s + _CHUNK]
        out[s : s + _CHUNK] = 0.5 * c * _erfc_chunk(-c / math.sqrt(2.0))
    return out.reshape(a.shape)


# ------------------------------------------------------------------------------------------------------------
# Input checks
# ------------------------------------------------------------------------------------------------------------


def _check_ints(name: str, arr: Any, shape: Tuple[int, ...] | None, ndim: int | None = None) -> np.ndarray:
    """An integer (not bool, not float) array of exactly ``shape`` (or ``ndim`` dimensions), as int64."""
    a = check_array(name, arr, ndim=ndim) if shape is None else check_shape(name, arr, shape)
    if a.dtype.kind not in "iu":
        raise PerfsuiteInputError(f"{name} has dtype {a.dtype}; allowed: an integer dtype (e.g. int32)")
    return a


def _check_range(name: str, a: np.ndarray, lo: int, hi: int, what: str) -> None:
    """Require lo <= a <= hi elementwise, naming the first offender's index and value."""
    bad = (a < lo) | (a > hi)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        n = int(np.count_nonzero(bad))
        more = f" ({n} out-of-range values in total)" if n > 1 else ""
        raise PerfsuiteInputError(f"{name}{list(idx)} = {int(a[idx])} is out of range; allowed: {what}{more}")


def _check_inputs(
    cfg: Any, weights: Any, token_ids: Any, token_types: Any, valid_length: Any
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate everything before any computation; return (ids, types, valid_length) as intp arrays."""
    if not isinstance(cfg, BertConfig):
        raise PerfsuiteInputError(f"cfg={cfg!r} is not allowed; allowed: a perfsuite.weights.BertConfig")
    if cfg.units <= 0 or cfg.heads <= 0 or cfg.units % cfg.heads:
        raise PerfsuiteInputError(
            f"config {cfg.name!r} has units={cfg.units}, heads={cfg.heads}; allowed: units a positive multiple of heads"
        )
    if not isinstance(weights, Mapping):
        raise PerfsuiteInputError(f"weights of type {type(weights).__name__} not allowed; allowed: a dict name -> array")
    check_weights(cfg, weights, heads=True)
    ids = _check_ints("token_ids", token_ids, None, ndim=2)
    batch, seq = ids.shape
    if batch < 1 or not 1 <= seq <= cfg.max_length:
        raise PerfsuiteInputError(
            f"token_ids has shape ({batch}, {seq}); allowed: (batch, seq_len) with batch >= 1 and "
            f"1 <= seq_len <= max_length={cfg.max_length} of config {cfg.name!r}"
        )
    types = _check_ints("token_types", token_types, (batch, seq))
    vl = _check_ints("valid_length", valid_length, (batch,))
    _check_range("token_ids", ids, 0, cfg.vocab_size - 1, f"0 <= token id < vocab_size={cfg.vocab_size}")
    _check_range("token_types", types, 0, cfg.type_vocab_size - 1,
                 f"0 <= token type < type_vocab_size={cfg.type_vocab_size}")
    _check_range("valid_length", vl, 1, seq, f"1 <= valid_length <= seq_len={seq}")
    return ids.astype(np.intp), types.astype(np.intp), vl.astype(np.intp)


# ------------------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------------------


def _forward(
    cfg: BertConfig, weights: Mapping[str, Any], ids: np.ndarray, types: np.ndarray, vl: np.ndarray, dtype: str,
    trace: Optional[Dict[str, np.ndarray]] = None,
) -> Dict[str, np.ndarray]:
    """The forward pass on validated inputs; every op's output (and every weight) is rounded to ``dtype``.

    ``trace``, when given, receives the intermediate values (B, L, ...) named by :data:`TRACE_POINTS`."""
    st = np.dtype(dtype)  # storage: what each op's output and each weight is rounded to
    ct = np.dtype(np.float64) if st == np.float64 else np.dtype(np.float32)  # compute: float32 for the twins

    def rnd(a: np.ndarray) -> np.ndarray:
        """Round to the storage dtype, continue computing in the compute dtype."""
        return a.astype(ct, copy=False) if st == ct else a.astype(st).astype(ct)

    def w(name: str) -> np.ndarray:
        return rnd(np.asarray(weights[name]))

    def dense(x: np.ndarray, name: str) -> np.ndarray:
        """FullyConnected(flatten=False): x W^T + b on the last axis, one rounding of the result."""
        weight = w(name + ".weight")
        y = x.reshape(-1, x.shape[-1]) @ weight.T
        y += w(name + ".bias")
        return rnd(y.reshape(x.shape[:-1] + (weight.shape[0],)))

    def layer_norm(x: np.ndarray, name: str) -> np.ndarray:
        """(x - mean) / sqrt(var + eps) * gamma + beta over units, population variance (MXNet LayerNorm)."""
        mean = x.mean(axis=-1, keepdims=True)
        centred = x - mean
        var = np.mean(centred * centred, axis=-1, keepdims=True)
        return rnd(centred / np.sqrt(var + cfg.layer_norm_eps) * w(name + ".gamma") + w(name + ".beta"))

    batch, seq = ids.shape
    heads, d = cfg.heads, cfg.head_dim
    valid = np.arange(seq)[None, :] < vl[:, None]  # (B, L)
    key_keep = valid[:, None, None, :]  # (B, 1, 1, L): masks keys only
    neg_inf = np.array(-np.inf, dtype=ct)

    def split(t: np.ndarray) -> np.ndarray:
        return t.reshape(batch, seq, heads, d).transpose(0, 2, 1, 3)  # (B, H, L, d)

    # Embeddings: gather rows first (never convert the whole table); GluonNLP adds word + type, then position.
    x = rnd(rnd(np.asarray(weights["embeddings.word"])[ids]) + rnd(np.asarray(weights["embeddings.token_type"])[types]))
    x = rnd(x + rnd(np.asarray(weights["embeddings.position"])[:seq])[None])
    x = layer_norm(x, "embeddings.ln")
    if trace is not None:
        trace["embeddings.ln"] = x

    for i in range(cfg.layers):
        p = f"layer{i}."
        q = split(dense(x, p + "attn.q")) / math.sqrt(d)  # MXNet's interleaved qk scales q, inside the op
        k = split(dense(x, p + "attn.k"))
        v = split(dense(x, p + "attn.v"))
        scores = rnd(np.matmul(q, k.transpose(0, 1, 3, 2)))  # (B, H, L, L)
        scores = np.where(key_keep, scores, neg_inf)
        scores -= scores.max(axis=-1, keepdims=True)  # max over valid keys (valid_length >= 1)
        e = np.exp(scores)  # exp(-inf) = 0: masked keys get probability exactly 0
        prob = rnd(e / e.sum(axis=-1, keepdims=True))
        ctx = rnd(np.matmul(prob, v)).transpose(0, 2, 1, 3).reshape(batch, seq, heads * d)
        x = layer_norm(rnd(dense(ctx, p + "attn.out") + x), p + "attn.ln")
        if trace is not None:
            trace[p + "attn.ln"] = x
        ffn1 = dense(x, p + "ffn.1")
        hidden = rnd(_gelu64(ffn1))  # computed in float64, rounded once
        x = layer_norm(rnd(dense(hidden, p + "ffn.2") + x), p + "ffn.ln")
        if trace is not None:
            trace[p + "ffn.1"], trace[p + "ffn.gelu"], trace[p + "ffn.ln"] = ffn1, hidden, x

    sequence = np.where(valid[:, :, None], x, np.zeros((), dtype=ct))  # GluonNLP BERTEncoder's SequenceMask
    pooled = rnd(np.tanh(dense(sequence[:, 0, :], "pooler")))
    counts = vl.astype(ct)[:, None]
    out = {
        "sequence": sequence,
        "pooled": pooled,
        "classification": dense(pooled, "head.classification"),
        "qa": dense(sequence, "head.qa"),
        "embedding_mean": rnd(sequence.sum(axis=1) / counts),  # padded rows are 0: the sum is over valid rows
        "embedding_pooled": pooled.copy(),
    }
    return {name: out[name].astype(st, copy=False) for name in OUTPUTS}


def forward(
    cfg: BertConfig,
    weights: Mapping[str, Any],
    token_ids: Any,
    token_types: Any,
    valid_length: Any,
    dtype: str = "float64",
    trace: Optional[Dict[str, np.ndarray]] = None,
) -> Dict[str, np.ndarray]:
    """BERT forward pass in NumPy (float64 reference, or a float32/float16 precision twin), outputs in ``dtype``.

    Inputs: ``token_ids``/``token_types`` integer (B, L), ``valid_length`` integer (B,), 1 <= valid_length <= L
    <= cfg.max_length; ``weights`` in the schema of :func:`perfsuite.weights.expected_shapes` (with heads).
    Returns :data:`OUTPUTS`: "sequence" (B, L, U), 0 at padded positions; "pooled" (B, U); "classification"
    (B, 2) = pooled Wc^T + bc; "qa" (B, L, 2) = sequence Wqa^T + bqa; "embedding_mean" (B, U), mean of sequence
    over the valid positions; "embedding_pooled" = pooled.
    ``dtype="float64"`` computes everything in float64. "float32"/"float16" compute every op in float32 and round
    each op's output, and every weight, to ``dtype`` (GELU and erfc in float64, then rounded): the natural
    rounding of a correct implementation in that precision, for :func:`twin_error`.
    Every input is validated (PerfsuiteInputError) before anything is computed.
    """
    st = check_dtype(dtype, REFERENCE_DTYPES)
    ids, types, vl = _check_inputs(cfg, weights, token_ids, token_types, valid_length)
    return _forward(cfg, weights, ids, types, vl, st, trace)


def trace_points(cfg: BertConfig) -> List[str]:
    """The intermediate values ``forward(..., trace=...)`` records, in the order the model computes them."""
    out = ["embeddings.ln"]
    for i in range(cfg.layers):
        out += [f"layer{i}.attn.ln", f"layer{i}.ffn.1", f"layer{i}.ffn.gelu", f"layer{i}.ffn.ln"]
    return out


def twin_error(
    cfg: BertConfig,
    weights: Mapping[str, Any],
    token_ids: Any,
    token_types: Any,
    valid_length: Any,
    dtype: str,
) -> Dict[str, np.ndarray]:
    """Per output, |forward(dtype) - forward(float64)| in float64: the natural rounding error of a correct model.

    A correct implementation computing in ``dtype`` ("float32" or "float16", float32 accumulation) errs by about
    this much, elementwise; whole-model tolerances are a multiple of it. Same inputs and checks as :func:`forward`.
    """
    st = check_dtype(dtype, DTYPES)
    ids, types, vl = _check_inputs(cfg, weights, token_ids, token_types, valid_length)
    ref = _forward(cfg, weights, ids, types, vl, "float64")
    twin = _forward(cfg, weights, ids, types, vl, st)
    return {name: np.abs(twin[name].astype(np.float64) - ref[name]) for name in OUTPUTS}

