"""BERT in plain MXNet Gluon with *naive* attention: separate Q, K, V projections, batch_dot, a mask built in
the graph, then softmax. The ablation baseline for GluonNLP's interleaved attention (same weights, same outputs).

Semantics follow GluonNLP 0.10's BERTModel: post-LN encoder, erf-GELU FFN, padded positions of the sequence
output zeroed (SequenceMask), pooled = tanh(Dense(sequence[:, 0])), task heads as in perfsuite.models.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from perfsuite.weights import HEAD_CLASSES, BertConfig, Weights, check_weights

__all__ = ["build_naive_bert"]


def _layer_class(cfg: BertConfig) -> Any:
    """One transformer layer with attention written out (batch_dot, masked softmax): the class, built here because
    MXNet is imported lazily."""
    from mxnet.gluon import HybridBlock, nn

    units, heads, d = cfg.units, cfg.heads, cfg.head_dim

    class _Layer(HybridBlock):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            with self.name_scope():
                self.q = nn.Dense(units, flatten=False, in_units=units)
                self.k = nn.Dense(units, flatten=False, in_units=units)
                self.v = nn.Dense(units, flatten=False, in_units=units)
                self.out = nn.Dense(units, flatten=False, in_units=units)
                self.ln1 = nn.LayerNorm(epsilon=cfg.layer_norm_eps, in_channels=units)
                self.ffn1 = nn.Dense(cfg.hidden, flatten=False, in_units=units)
                self.ffn2 = nn.Dense(units, flatten=False, in_units=cfg.hidden)
                self.ln2 = nn.LayerNorm(epsilon=cfg.layer_norm_eps, in_channels=units)

        def _split(self, F: Any, x: Any) -> Any:  # (B, L, U) -> (B*H, L, d)
            return F.reshape(F.transpose(F.reshape(x, shape=(0, 0, heads, -1)), axes=(0, 2, 1, 3)), shape=(-3, -2))

        def hybrid_forward(self, F: Any, x: Any, key_mask: Any) -> Any:  # noqa: N803
            q, k, v = self._split(F, self.q(x)), self._split(F, self.k(x)), self._split(F, self.v(x))
            scores = F.batch_dot(q, k, transpose_b=True) / math.sqrt(d)  # (B*H, L, L)
            mask = F.broadcast_like(key_mask, scores)  # (B*H, 1, L) -> (B*H, L, L)
            scores = F.where(mask, scores, F.ones_like(scores) * -1e4)
            att = F.softmax(scores, axis=-1) * mask  # masked keys get exactly 0
            ctx_ = F.batch_dot(att, v)  # (B*H, L, d)
            ctx_ = F.reshape(F.transpose(F.reshape(ctx_, shape=(-4, -1, heads, -2)), axes=(0, 2, 1, 3)),
                             shape=(0, 0, -1))
            x = self.ln1(x + self.out(ctx_))
            ffn = self.ffn2(F.LeakyReLU(self.ffn1(x), act_type="gelu"))
            return self.ln2(x + ffn)

    return _Layer


def build_naive_bert(cfg: BertConfig, weights: Weights, ctx: Any = None, dtype: str = "float32",
                     task: str = "classification") -> Any:
    """A HybridBlock (token_ids, token_types, valid_length) -> the task's output, as the deployed graph returns it:
    classification logits (B, 2), QA logits (B, L, 2), or the sequence output (B, L, U) for embedding."""
    import mxnet as mx
    from mxnet.gluon import HybridBlock, nn

    from perfsuite.models import check_task

    check_task(task)
    check_weights(cfg, weights, source="weights for the naive-attention BERT")
    ctx = ctx or mx.cpu()
    units, heads = cfg.units, cfg.heads

    _Layer = _layer_class(cfg)

    class NaiveBert(HybridBlock):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            with self.name_scope():
                self.word = nn.Embedding(cfg.vocab_size, units)
                self.position = nn.Embedding(cfg.max_length, units)
                self.token_type = nn.Embedding(cfg.type_vocab_size, units)
                self.ln = nn.LayerNorm(epsilon=cfg.layer_norm_eps, in_channels=units)
                self.layers = nn.HybridSequential()
                for _ in range(cfg.layers):
                    self.layers.add(_Layer())
                self.pooler = nn.Dense(units, flatten=False, in_units=units, activation="tanh")
                self.classifier = nn.Dense(HEAD_CLASSES, in_units=units)
                self.qa = nn.Dense(HEAD_CLASSES, flatten=False, in_units=units)

        def hybrid_forward(self, F: Any, token_ids: Any, token_types: Any, valid_length: Any) -> Any:  # noqa: N803
            steps = F.contrib.arange_like(token_ids, axis=1)  # (L,)
            x = self.word(token_ids) + self.token_type(token_types)
            x = F.broadcast_add(x, F.expand_dims(self.position(steps), axis=0))
            x = self.ln(x)
            valid = F.cast(valid_length, dtype="float32")
            key_mask = F.broadcast_lesser(F.reshape(F.cast(steps, dtype="float32"), shape=(1, -1)),
                                          F.reshape(valid, shape=(-1, 1)))  # (B, L)
            key_mask = F.expand_dims(F.reshape(F.repeat(F.expand_dims(key_mask, axis=1), repeats=heads, axis=1),
                                               shape=(-3, -2)), axis=1)  # (B*H, 1, L), batch-major like the heads
            key_mask = F.cast(key_mask, dtype=dtype)
            for layer in self.layers:
                x = layer(x, key_mask)
            seq = F.SequenceMask(x, sequence_length=valid, use_sequence_length=True, axis=1)
            if task == "embedding":
                return seq
            if task == "qa":
                return self.qa(seq)
            pooled = self.pooler(F.reshape(F.slice_axis(seq, axis=1, begin=0, end=1), shape=(0, -1)))
            return self.classifier(pooled)

    net = NaiveBert()
    net.initialize(ctx=ctx)
    if dtype != "float32":
        net.cast(dtype)
    _set(net, cfg, weights, ctx, dtype)
    return net


def _set(net: Any, cfg: BertConfig, w: Weights, ctx: Any, dtype: str) -> None:
    """Copy the structural weights into the naive network's parameters."""

    def put(param: Any, value: Any) -> None:
        param.set_data(_nd(value, ctx, dtype))

    put(net.word.weight, w["embeddings.word"])
    put(net.position.weight, w["embeddings.position"])
    put(net.token_type.weight, w["embeddings.token_type"])
    put(net.ln.gamma, w["embeddings.ln.gamma"])
    put(net.ln.beta, w["embeddings.ln.beta"])
    for i, layer in enumerate(net.layers):
        p = f"layer{i}."
        for name in ("q", "k", "v", "out"):
            put(getattr(layer, name).weight, w[p + f"attn.{name}.weight"])
            put(getattr(layer, name).bias, w[p + f"attn.{name}.bias"])
        put(layer.ln1.gamma, w[p + "attn.ln.gamma"])
        put(layer.ln1.beta, w[p + "attn.ln.beta"])
        put(layer.ffn1.weight, w[p + "ffn.1.weight"])
        put(layer.ffn1.bias, w[p + "ffn.1.bias"])
        put(layer.ffn2.weight, w[p + "ffn.2.weight"])
        put(layer.ffn2.bias, w[p + "ffn.2.bias"])
        put(layer.ln2.gamma, w[p + "ffn.ln.gamma"])
        put(layer.ln2.beta, w[p + "ffn.ln.beta"])
    put(net.pooler.weight, w["pooler.weight"])
    put(net.pooler.bias, w["pooler.bias"])
    put(net.classifier.weight, w["head.classification.weight"])
    put(net.classifier.bias, w["head.classification.bias"])
    put(net.qa.weight, w["head.qa.weight"])
    put(net.qa.bias, w["head.qa.bias"])


def _nd(value: Any, ctx: Any, dtype: Optional[str]) -> Any:
    import mxnet as mx

    return mx.nd.array(value, ctx=ctx, dtype=dtype)
