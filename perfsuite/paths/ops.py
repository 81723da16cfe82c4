"""MXNet implementations of the op-level optimized paths, each with the signature of its NumPy reference.

Every function takes NumPy arrays already rounded to the storage dtype (the same values the reference gets),
runs the MXNet operator on `ctx` in that dtype and returns a NumPy array. `.asnumpy()` blocks until the engine
has finished, so an operator's error surfaces here, inside the call, not in a later one.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

__all__ = [
    "fully_connected",
    "selfatt_qk",
    "selfatt_valatt",
    "encdec_qk",
    "encdec_valatt",
    "softmax",
    "layer_norm",
    "gelu_erf",
    "gelu_tanh",
    "bias_gelu_hybrid",
    "default_context",
]


def _mx():
    import mxnet as mx

    return mx


def default_context() -> Any:
    """mx.cpu(); GPU paths pass mx.gpu(i) explicitly."""
    return _mx().cpu()


def _nd(a: np.ndarray, ctx: Any, dtype: Optional[str] = None) -> Any:
    a = np.asarray(a)
    return _mx().nd.array(a, ctx=ctx, dtype=dtype or a.dtype.name)


def fully_connected(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, flatten: bool = True,
                    ctx: Any = None) -> np.ndarray:
    """mx.nd.FullyConnected: x W^T + b (weight (num_hidden, in_units))."""
    ctx = ctx or default_context()
    mx = _mx()
    args = [_nd(x, ctx), _nd(weight, ctx)]
    if bias is not None:
        args.append(_nd(bias, ctx))
    out = mx.nd.FullyConnected(*args, num_hidden=int(weight.shape[0]), no_bias=bias is None, flatten=flatten)
    return out.asnumpy()


def selfatt_qk(qkv: np.ndarray, heads: int, ctx: Any = None) -> np.ndarray:
    """contrib.interleaved_matmul_selfatt_qk: (L, B, H*3*d) -> (B*H, L, L)."""
    ctx = ctx or default_context()
    return _mx().nd.contrib.interleaved_matmul_selfatt_qk(_nd(qkv, ctx), heads=int(heads)).asnumpy()


def selfatt_valatt(qkv: np.ndarray, att: np.ndarray, heads: int, ctx: Any = None) -> np.ndarray:
    """contrib.interleaved_matmul_selfatt_valatt: (L, B, H*3*d), (B*H, L, L) -> (L, B, H*d)."""
    ctx = ctx or default_context()
    return _mx().nd.contrib.interleaved_matmul_selfatt_valatt(
        _nd(qkv, ctx), _nd(att, ctx), heads=int(heads)).asnumpy()


def encdec_qk(q: np.ndarray, kv: np.ndarray, heads: int, ctx: Any = None) -> np.ndarray:
    """contrib.interleaved_matmul_encdec_qk: (Lq, B, H*d), (Lk, B, H*2*d) -> (B*H, Lq, Lk)."""
    ctx = ctx or default_context()
    return _mx().nd.contrib.interleaved_matmul_encdec_qk(_nd(q, ctx), _nd(kv, ctx), heads=int(heads)).asnumpy()


def encdec_valatt(kv: np.ndarray, att: np.ndarray, heads: int, ctx: Any = None) -> np.ndarray:
    """contrib.interleaved_matmul_encdec_valatt: (Lk, B, H*2*d), (B*H, Lq, Lk) -> (Lq, B, H*d)."""
    ctx = ctx or default_context()
    return _mx().nd.contrib.interleaved_matmul_encdec_valatt(
        _nd(kv, ctx), _nd(att, ctx), heads=int(heads)).asnumpy()


def softmax(x: np.ndarray, length: Optional[np.ndarray] = None, axis: int = -1, ctx: Any = None) -> np.ndarray:
    """softmax(x, length=, use_length=True): the mask applied inside the operator (lengths as int32)."""
    ctx = ctx or default_context()
    mx = _mx()
    if length is None:
        return mx.nd.softmax(_nd(x, ctx), axis=axis).asnumpy()
    return mx.nd.softmax(_nd(x, ctx), length=_nd(length, ctx, "int32"), use_length=True, axis=axis).asnumpy()


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5, axis: int = -1,
               ctx: Any = None) -> np.ndarray:
    """mx.nd.LayerNorm over `axis`."""
    ctx = ctx or default_context()
    return _mx().nd.LayerNorm(_nd(x, ctx), _nd(gamma, ctx), _nd(beta, ctx), axis=axis, eps=eps).asnumpy()


def gelu_erf(x: np.ndarray, ctx: Any = None) -> np.ndarray:
    """GluonNLP's exact GELU: LeakyReLU(act_type='gelu')."""
    ctx = ctx or default_context()
    return _mx().nd.LeakyReLU(_nd(x, ctx), act_type="gelu").asnumpy()


def gelu_tanh(x: np.ndarray, ctx: Any = None) -> np.ndarray:
    """GluonNLP's own tanh-approximate GELU block (gluonnlp.model.GELU(approximate=True)), run imperatively."""
    ctx = ctx or default_context()
    from gluonnlp.model import GELU

    return GELU(approximate=True)(_nd(x, ctx)).asnumpy()


def bias_gelu_hybrid(x: np.ndarray, bias: np.ndarray, ctx: Any = None) -> np.ndarray:
    """gelu_erf(x + bias) as a hybridized graph: the pattern the seed's graph pass hands to pointwise fusion.

    The block is built and bound inside the caller's flag context, so MXNET_USE_FUSION (read when a graph is
    bound) takes effect; on CPU builds fusion does not exist and this checks the plain hybridized graph.
    """
    ctx = ctx or default_context()
    from mxnet.gluon import HybridBlock

    class _BiasGelu(HybridBlock):
        def hybrid_forward(self, F, data, b):  # noqa: N803 - MXNet's convention
            return F.LeakyReLU(F.broadcast_add(data, b), act_type="gelu")

    block = _BiasGelu()
    block.hybridize(static_alloc=True, static_shape=True)
    return block(_nd(x, ctx), _nd(np.asarray(bias).reshape(1, -1), ctx)).asnumpy()
