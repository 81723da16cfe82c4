"""perfsuite.reference.bert: the whole-model NumPy BERT against a naive loop version, properties, twins, checks.

The naive forward below is written from the model definition (perfsuite.reference.bert's docstring, GluonNLP 0.10
BERTModel) with Python loops over sentences, tokens, heads and output features, exactly rounded dot products
(math.fsum) and libm's erfc: it shares no code with the vectorized reference.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
from typing import Dict, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import perfsuite.reference
from perfsuite.errors import PerfsuiteInputError
from perfsuite.reference import bert
from perfsuite.reference.bert import OUTPUTS, erfc, forward, twin_error
from perfsuite.weights import BertConfig, CONFIGS, random_weights

# Tolerances of this file, each with its reason.
# float64 reference vs naive float64 loops: different summation orders (BLAS blocks vs exactly rounded fsum) differ
# by ~1e-16 relative per op; through 2 layers of LayerNorm-normalized activations (|x| <= ~10) measured <= 2e-15.
# (A real bug, e.g. GELU's tanh form, is >= 1e-4; the float32 twin's error is ~1e-7.)
ATOL_F64_LOOP = 1e-13
# Same model, same float64 math, different batch/sequence blocking in BLAS: a few ulps of the outputs.
ATOL_BLOCKING = 1e-13
# erfc vs libm's math.erfc: both are within 2-3 ulp of the exact value (measured against mpmath at 40 digits).
ERFC_MAX_ULPS = 6
# float32 twin vs float64, max error / max |output|: float32's u = 6e-8 grown through the layers, measured 2e-7..3e-7
# on small and 2e-6..6e-6 on bert-base (12 layers). The lower bound proves the twin really rounds; the upper one
# that it is the same function (a real bug is >= 1e-4).
F32_REL = (1e-8, 5e-5)
# ...and it is more than the rounding of the float64 result to float32 (measured 4x..200x): every op rounds.
TWIN_OVER_FINAL_ROUNDING = 2.0
# float16 twin (u = 4.9e-4): measured ~1e-3 relative on small, 2e-3..1e-2 on bert-base.
F16_REL = (1e-5, 5e-2)

PROPERTY_SETTINGS = settings(deadline=None, max_examples=30)

SMALL = CONFIGS["small"]
# A config small enough for hypothesis to run the naive loops on every example (vocab and max_length tiny too).
TINY = BertConfig("tiny", layers=2, units=8, hidden=16, heads=2, vocab_size=40, max_length=9, type_vocab_size=3,
                  layer_norm_eps=1e-5)


@functools.lru_cache(maxsize=None)
def weights_of(cfg: BertConfig, seed: int = 0) -> Dict[str, np.ndarray]:
    """Seeded random weights, every parameter non-zero (cached: hypothesis calls this per example)."""
    return random_weights(cfg, seed=seed)


def make_batch(cfg: BertConfig, batch: int, seq: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random ids/types (int32), padded with [PAD] = 0 after valid_length; sentence 0 is full, the last has 1 token."""
    r = np.random.default_rng(seed)
    ids = r.integers(1, cfg.vocab_size, (batch, seq)).astype(np.int32)
    types = r.integers(0, cfg.type_vocab_size, (batch, seq)).astype(np.int32)
    vl = r.integers(1, seq + 1, batch).astype(np.int32)
    vl[0] = seq
    vl[-1] = 1 if batch > 1 else vl[-1]
    pad = np.arange(seq)[None, :] >= vl[:, None]
    ids[pad] = 0
    types[pad] = 0
    return ids, types, vl


# ------------------------------------------------------------------------------------------------------------
# Naive forward: loops + math.fsum + math.erfc, independent of perfsuite.reference.bert
# ------------------------------------------------------------------------------------------------------------


def naive_forward(cfg: BertConfig, weights, ids, types, vl) -> Dict[str, np.ndarray]:
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    batch, seq = np.shape(ids)
    units, heads = cfg.units, cfg.heads
    d = units // heads

    def linear(vec, name):
        mat, bias = w[name + ".weight"], w[name + ".bias"]
        return np.array([math.fsum(mat[o] * vec) + bias[o] for o in range(mat.shape[0])])

    def norm(vec, name):
        n = len(vec)
        mean = math.fsum(vec) / n
        var = math.fsum((vec - mean) ** 2) / n
        return (vec - mean) / math.sqrt(var + cfg.layer_norm_eps) * w[name + ".gamma"] + w[name + ".beta"]

    def gelu(v):
        return np.array([0.5 * x * math.erfc(-x / math.sqrt(2.0)) for x in v])

    sequence = np.zeros((batch, seq, units))
    pooled = np.zeros((batch, units))
    for b in range(batch):
        n_valid = int(vl[b])
        xs = []
        for i in range(seq):
            e = w["embeddings.word"][ids[b][i]] + w["embeddings.token_type"][types[b][i]] + w["embeddings.position"][i]
            xs.append(norm(e, "embeddings.ln"))
        for layer in range(cfg.layers):
            p = f"layer{layer}."
            qs = [linear(x, p + "attn.q") for x in xs]
            ks = [linear(x, p + "attn.k") for x in xs]
            vs = [linear(x, p + "attn.v") for x in xs]
            new = []
            for i in range(seq):  # every query row, padded ones too: they attend to the valid keys
                ctx = np.zeros(units)
                for h in range(heads):
                    sl = slice(h * d, (h + 1) * d)
                    scores = [math.fsum(qs[i][sl] * ks[j][sl]) / math.sqrt(d) for j in range(n_valid)]
                    top = max(scores)
                    ex = [math.exp(s - top) for s in scores]
                    total = math.fsum(ex)
                    for c in range(d):
                        ctx[h * d + c] = math.fsum(ex[j] / total * vs[j][h * d + c] for j in range(n_valid))
                a = norm(xs[i] + linear(ctx, p + "attn.out"), p + "attn.ln")
                f = linear(gelu(linear(a, p + "ffn.1")), p + "ffn.2")
                new.append(norm(a + f, p + "ffn.ln"))
            xs = new
        for i in range(n_valid):  # GluonNLP's SequenceMask: padded rows of the output are 0
            sequence[b, i] = xs[i]
        pooled[b] = np.tanh(linear(sequence[b, 0], "pooler"))
    cls = np.array([linear(pooled[b], "head.classification") for b in range(batch)])
    qa = np.array([[linear(sequence[b, i], "head.qa") for i in range(seq)] for b in range(batch)])
    mean = np.array([sum(sequence[b, i] for i in range(int(vl[b]))) / int(vl[b]) for b in range(batch)])
    return {"sequence": sequence, "pooled": pooled, "classification": cls, "qa": qa,
            "embedding_mean": mean, "embedding_pooled": pooled}


def assert_outputs_close(got, want, atol, names=OUTPUTS):
    for name in names:
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=atol, err_msg=name)


# ------------------------------------------------------------------------------------------------------------
# Against the naive loops
# ------------------------------------------------------------------------------------------------------------


def test_small_matches_naive_loops():
    ids, types, vl = make_batch(SMALL, 3, 7, seed=1)
    vl[1] = 4
    w = weights_of(SMALL)
    got = forward(SMALL, w, ids, types, vl)
    want = naive_forward(SMALL, w, ids, types, vl)
    assert set(got) == set(OUTPUTS)
    assert_outputs_close(got, want, ATOL_F64_LOOP)
    # not vacuous: the outputs are O(1) and differ between sentences
    assert np.abs(got["sequence"]).max() > 0.5
    assert not np.allclose(got["pooled"][0], got["pooled"][1])


def test_small_matches_naive_loops_other_seed_and_types():
    cfg = SMALL
    w = weights_of(cfg, seed=5)
    ids, types, vl = make_batch(cfg, 2, 5, seed=9)
    types[:] = np.array([[0, 1, 1, 0, 1]])[:, : ids.shape[1]]
    assert_outputs_close(forward(cfg, w, ids, types, vl), naive_forward(cfg, w, ids, types, vl), ATOL_F64_LOOP)


def test_outputs_have_documented_shapes_dtype_and_semantics():
    ids, types, vl = make_batch(SMALL, 4, 9, seed=2)
    w = weights_of(SMALL)
    out = forward(SMALL, w, ids, types, vl)
    b, seq, u = 4, 9, SMALL.units
    shapes = {"sequence": (b, seq, u), "pooled": (b, u), "classification": (b, 2), "qa": (b, seq, 2),
              "embedding_mean": (b, u), "embedding_pooled": (b, u)}
    for name, shape in shapes.items():
        assert out[name].shape == shape, name
        assert out[name].dtype == np.float64, name
        assert np.all(np.isfinite(out[name])), name
    pad = np.arange(seq)[None, :] >= vl[:, None]
    assert np.all(out["sequence"][pad] == 0.0)  # GluonNLP's SequenceMask
    assert np.all(out["qa"][pad] == w["head.qa.bias"].astype(np.float64))
    assert np.all(out["sequence"][~pad] != 0.0)
    np.testing.assert_array_equal(out["embedding_pooled"], out["pooled"])
    np.testing.assert_allclose(out["classification"],
                               out["pooled"] @ w["head.classification.weight"].T.astype(np.float64)
                               + w["head.classification.bias"], rtol=0, atol=ATOL_BLOCKING)
    means = np.stack([out["sequence"][i, : vl[i]].mean(axis=0) for i in range(b)])
    np.testing.assert_allclose(out["embedding_mean"], means, rtol=0, atol=ATOL_BLOCKING)


# ------------------------------------------------------------------------------------------------------------
# Masking, batch and padding invariance
# ------------------------------------------------------------------------------------------------------------


def test_padded_tokens_change_nothing():
    """Masked keys get probability exactly 0 and padded output rows are zeroed: the outputs are bit-identical."""
    ids, types, vl = make_batch(SMALL, 3, 8, seed=3)
    vl[:] = [8, 5, 2]
    w = weights_of(SMALL)
    base = forward(SMALL, w, ids, types, vl)
    r = np.random.default_rng(4)
    ids2, types2 = ids.copy(), types.copy()
    pad = np.arange(8)[None, :] >= vl[:, None]
    ids2[pad] = r.integers(1, SMALL.vocab_size, int(pad.sum()))
    types2[pad] = 1
    other = forward(SMALL, w, ids2, types2, vl)
    for name in OUTPUTS:
        np.testing.assert_array_equal(other[name], base[name], err_msg=name)
    # ...while a change at a valid position does change the outputs (the test can fail)
    ids2[1, 4] = (ids2[1, 4] % (SMALL.vocab_size - 1)) + 1
    changed = forward(SMALL, w, ids2, types2, vl)
    assert np.abs(changed["pooled"][1] - base["pooled"][1]).max() > 1e-6


def test_batch_invariance():
    """A sentence's outputs do not depend on the other sentences of its batch, nor on its place in it."""
    ids, types, vl = make_batch(SMALL, 4, 6, seed=5)
    w = weights_of(SMALL)
    full = forward(SMALL, w, ids, types, vl)
    for i in range(4):
        one = forward(SMALL, w, ids[i : i + 1], types[i : i + 1], vl[i : i + 1])
        assert_outputs_close({k: v[0] for k, v in one.items()}, {k: v[i] for k, v in full.items()}, ATOL_BLOCKING)
    perm = np.array([2, 0, 3, 1])
    shuffled = forward(SMALL, w, ids[perm], types[perm], vl[perm])
    assert_outputs_close(shuffled, {k: v[perm] for k, v in full.items()}, ATOL_BLOCKING)


def test_padding_length_invariance():
    """Extra padding positions change nothing at the valid positions."""
    ids, types, vl = make_batch(SMALL, 2, 5, seed=6)
    w = weights_of(SMALL)
    short = forward(SMALL, w, ids, types, vl)
    pad = np.zeros((2, 4), dtype=np.int32)
    long = forward(SMALL, w, np.concatenate([ids, pad], 1), np.concatenate([types, pad], 1), vl)
    assert_outputs_close({k: long[k][:, :5] for k in ("sequence", "qa")}, short, ATOL_BLOCKING, ("sequence", "qa"))
    assert np.all(long["sequence"][:, 5:] == 0.0)
    assert_outputs_close(long, short, ATOL_BLOCKING, ("pooled", "classification", "embedding_mean"))


# ------------------------------------------------------------------------------------------------------------
# Precision twins
# ------------------------------------------------------------------------------------------------------------


def _rel(err: Dict[str, np.ndarray], ref: Dict[str, np.ndarray]) -> Dict[str, float]:
    return {k: float(err[k].max() / np.abs(ref[k]).max()) for k in OUTPUTS}


@pytest.mark.parametrize("cfg_name, batch, seq", [("small", 4, 16), ("bert-base", 2, 24)])
def test_float32_twin_is_about_1e_minus_6_relative(cfg_name, batch, seq):
    cfg = CONFIGS[cfg_name]
    w = weights_of(cfg)
    ids, types, vl = make_batch(cfg, batch, seq, seed=7)
    ref = forward(cfg, w, ids, types, vl)
    twin = forward(cfg, w, ids, types, vl, dtype="float32")
    assert all(twin[k].dtype == np.float32 for k in OUTPUTS)
    err = twin_error(cfg, w, ids, types, vl, "float32")
    for name in OUTPUTS:
        assert err[name].dtype == np.float64 and err[name].shape == ref[name].shape
        np.testing.assert_array_equal(err[name], np.abs(twin[name].astype(np.float64) - ref[name]))
    for name, rel in _rel(err, ref).items():
        assert F32_REL[0] < rel < F32_REL[1], (name, rel)
        final_rounding = np.abs(ref[name].astype(np.float32).astype(np.float64) - ref[name]).max()
        assert err[name].max() > TWIN_OVER_FINAL_ROUNDING * final_rounding, name
    pad = np.arange(seq)[None, :] >= vl[:, None]
    assert np.all(err["sequence"][pad] == 0.0)  # zeroed rows are exact in every precision


def test_float16_twin_rounds_to_float16():
    w = weights_of(SMALL)
    ids, types, vl = make_batch(SMALL, 3, 10, seed=8)
    ref = forward(SMALL, w, ids, types, vl)
    twin = forward(SMALL, w, ids, types, vl, dtype=np.float16)
    assert all(twin[k].dtype == np.float16 for k in OUTPUTS)
    err = twin_error(SMALL, w, ids, types, vl, "float16")
    rel16 = _rel(err, ref)
    rel32 = _rel(twin_error(SMALL, w, ids, types, vl, "float32"), ref)
    for name in OUTPUTS:
        assert F16_REL[0] < rel16[name] < F16_REL[1], (name, rel16[name])
        assert rel16[name] > 100 * rel32[name], name  # u16 / u32 = 8192


def test_twin_error_refuses_float64_and_unknown_dtypes():
    ids, types, vl = make_batch(SMALL, 1, 3)
    for dtype in ("float64", "bfloat16", "int8", None):
        with pytest.raises(PerfsuiteInputError, match="dtype"):
            twin_error(SMALL, weights_of(SMALL), ids, types, vl, dtype)
    for dtype in ("bfloat16", "int32", None):
        with pytest.raises(PerfsuiteInputError, match="dtype"):
            forward(SMALL, weights_of(SMALL), ids, types, vl, dtype)


# ------------------------------------------------------------------------------------------------------------
# erfc (GELU's), float64-accurate
# ------------------------------------------------------------------------------------------------------------


def test_erfc_matches_libm_within_a_few_ulps():
    r = np.random.default_rng(10)
    z = np.concatenate([r.uniform(-7, 7, 20000), r.uniform(-30, 30, 2000), np.linspace(-6.5, 6.5, 5201),
                        [0.0, -0.0, 6.0, -6.0, 6.0 + 1e-15, 1e-300, -1e-300, 26.0, 27.5, -27.5]])
    got = erfc(z)
    want = np.array([math.erfc(v) for v in z])
    nonzero = want != 0
    ulps = np.abs(got[nonzero] - want[nonzero]) / np.spacing(np.abs(want[nonzero]))
    assert ulps.max() <= ERFC_MAX_ULPS, (ulps.max(), z[nonzero][np.argmax(ulps)])
    np.testing.assert_array_equal(got[~nonzero], 0.0)
    out = erfc(np.array([[np.inf, -np.inf], [np.nan, 0.0]]))
    assert out.shape == (2, 2) and out[0, 0] == 0.0 and out[0, 1] == 2.0 and np.isnan(out[1, 0]) and out[1, 1] == 1.0


# ------------------------------------------------------------------------------------------------------------
# Hypothesis properties on small shapes (TINY config: the naive loops are cheap)
# ------------------------------------------------------------------------------------------------------------


@st.composite
def batches(draw, cfg: BertConfig = TINY):
    batch = draw(st.integers(1, 3))
    seq = draw(st.integers(1, cfg.max_length))
    ints = lambda hi: st.lists(st.integers(0, hi), min_size=batch * seq, max_size=batch * seq)  # noqa: E731
    ids = np.array(draw(ints(cfg.vocab_size - 1)), dtype=np.int32).reshape(batch, seq)
    types = np.array(draw(ints(cfg.type_vocab_size - 1)), dtype=np.int32).reshape(batch, seq)
    vl = np.array(draw(st.lists(st.integers(1, seq), min_size=batch, max_size=batch)), dtype=np.int32)
    seed = draw(st.integers(0, 3))
    return ids, types, vl, seed


@PROPERTY_SETTINGS
@given(batches())
def test_property_matches_naive_loops(data):
    ids, types, vl, seed = data
    w = weights_of(TINY, seed)
    assert_outputs_close(forward(TINY, w, ids, types, vl), naive_forward(TINY, w, ids, types, vl), ATOL_F64_LOOP)


@PROPERTY_SETTINGS
@given(batches(), st.integers(0, 2**31 - 1))
def test_property_padding_content_is_invisible(data, seed):
    ids, types, vl, wseed = data
    w = weights_of(TINY, wseed)
    r = np.random.default_rng(seed)
    pad = np.arange(ids.shape[1])[None, :] >= vl[:, None]
    ids2, types2 = ids.copy(), types.copy()
    ids2[pad] = r.integers(0, TINY.vocab_size, int(pad.sum()))
    types2[pad] = r.integers(0, TINY.type_vocab_size, int(pad.sum()))
    a, b = forward(TINY, w, ids, types, vl), forward(TINY, w, ids2, types2, vl)
    for name in OUTPUTS:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@PROPERTY_SETTINGS
@given(batches())
def test_property_invariants(data):
    ids, types, vl, seed = data
    w = weights_of(TINY, seed)
    out = forward(TINY, w, ids, types, vl)
    pad = np.arange(ids.shape[1])[None, :] >= vl[:, None]
    assert all(np.all(np.isfinite(out[k])) for k in OUTPUTS)
    assert np.all(np.abs(out["pooled"]) <= 1.0)
    assert np.all(out["sequence"][pad] == 0.0)
    np.testing.assert_array_equal(out["embedding_pooled"], out["pooled"])
    # each valid row is LayerNorm-ed: (row - beta) / gamma has mean ~0 and variance ~1 (eps makes it slightly < 1)
    g, beta = w[f"layer{TINY.layers - 1}.ffn.ln.gamma"], w[f"layer{TINY.layers - 1}.ffn.ln.beta"]
    z = (out["sequence"][~pad] - beta) / g
    np.testing.assert_allclose(z.mean(axis=-1), 0.0, atol=1e-9)
    assert np.all(np.abs(z.var(axis=-1) - 1.0) < 1e-3)
    # batch invariance: each sentence alone
    for i in range(ids.shape[0]):
        one = forward(TINY, w, ids[i : i + 1], types[i : i + 1], vl[i : i + 1])
        assert_outputs_close({k: v[0] for k, v in one.items()}, {k: v[i] for k, v in out.items()}, ATOL_BLOCKING)


@PROPERTY_SETTINGS
@given(batches())
def test_property_float32_twin_is_close_and_not_identical(data):
    ids, types, vl, seed = data
    w = weights_of(TINY, seed)
    ref = forward(TINY, w, ids, types, vl)
    err = twin_error(TINY, w, ids, types, vl, "float32")
    scale = max(float(np.abs(ref["sequence"]).max()), 1.0)
    assert err["sequence"].max() < 1e-5 * scale
    assert err["sequence"].max() > 0.0  # float32 rounding is visible somewhere in a 2-layer model


# ------------------------------------------------------------------------------------------------------------
# Input validation: PerfsuiteInputError naming the value and what is allowed, before any computation
# ------------------------------------------------------------------------------------------------------------


def _good():
    ids, types, vl = make_batch(TINY, 2, 4, seed=11)
    return {"cfg": TINY, "weights": weights_of(TINY), "token_ids": ids, "token_types": types, "valid_length": vl}


def _bad_weights():
    w = dict(weights_of(TINY))
    del w["layer1.attn.k.bias"]
    return w


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("token_ids", np.zeros((2, 4), np.float32), r"token_ids has dtype float32; allowed: an integer dtype"),
        ("token_ids", np.zeros((2, 4), bool), r"token_ids has dtype bool"),
        ("token_ids", np.zeros(4, np.int32), r"token_ids has shape \(4,\) \(1-D\); allowed: a 2-D array"),
        ("token_ids", np.zeros((0, 4), np.int32), r"shape \(0, 4\); allowed: \(batch, seq_len\) with batch >= 1"),
        ("token_ids", np.zeros((2, 10), np.int32), r"seq_len <= max_length=9 of config 'tiny'"),
        ("token_ids", np.array([[1, 2, 40, 3], [1, 2, 3, 4]], np.int32),
         r"token_ids\[0, 2\] = 40 is out of range; allowed: 0 <= token id < vocab_size=40"),
        ("token_ids", np.array([[1, 2, 3, 4], [1, -1, 3, 4]], np.int64), r"token_ids\[1, 1\] = -1 is out of range"),
        ("token_ids", [["a", "b"]], r"token_ids has dtype <U1"),
        ("token_types", np.zeros((2, 5), np.int32), r"token_types has shape \(2, 5\); allowed: shape \(2, 4\)"),
        ("token_types", np.full((2, 4), 3, np.int32),
         r"token_types\[0, 0\] = 3 is out of range; allowed: 0 <= token type < type_vocab_size=3"),
        ("token_types", np.zeros((2, 4), np.float64), r"token_types has dtype float64"),
        ("valid_length", np.array([4, 0], np.int32),
         r"valid_length\[1\] = 0 is out of range; allowed: 1 <= valid_length <= seq_len=4"),
        ("valid_length", np.array([5, 4], np.int32), r"valid_length\[0\] = 5 is out of range"),
        ("valid_length", np.array([4.0, 2.0]), r"valid_length has dtype float64; allowed: an integer dtype"),
        ("valid_length", np.array([4, 2, 1], np.int32), r"valid_length has shape \(3,\); allowed: shape \(2,\)"),
        ("weights", "bad", r"weights of type str not allowed"),
        ("cfg", "small", r"cfg='small' is not allowed; allowed: a perfsuite.weights.BertConfig"),
        ("cfg", BertConfig("odd", layers=1, units=9, hidden=4, heads=2), r"units=9, heads=2"),
    ],
)
def test_bad_inputs_are_refused(field, value, message):
    kwargs = _good()
    kwargs[field] = value
    with pytest.raises(PerfsuiteInputError, match=message):
        forward(**kwargs)
    with pytest.raises(PerfsuiteInputError, match=message):
        twin_error(dtype="float32", **kwargs)


def test_bad_weights_are_refused_with_names():
    kwargs = _good()
    kwargs["weights"] = _bad_weights()
    with pytest.raises(PerfsuiteInputError, match=r"missing 1: layer1\.attn\.k\.bias"):
        forward(**kwargs)
    w = dict(weights_of(TINY))
    w["pooler.bias"] = np.full_like(w["pooler.bias"], np.nan)
    kwargs["weights"] = w
    with pytest.raises(PerfsuiteInputError, match=r"NaN/inf in pooler\.bias"):
        forward(**kwargs)


def test_uint_and_int64_inputs_are_accepted():
    kwargs = _good()
    a = forward(**kwargs)
    kwargs.update(token_ids=kwargs["token_ids"].astype(np.uint16), token_types=kwargs["token_types"].astype(np.int64),
                  valid_length=kwargs["valid_length"].astype(np.uint8))
    b = forward(**kwargs)
    for name in OUTPUTS:
        np.testing.assert_array_equal(a[name], b[name])


# ------------------------------------------------------------------------------------------------------------
# Independence and exports
# ------------------------------------------------------------------------------------------------------------


def test_reference_bert_imports_neither_mxnet_gluonnlp_nor_the_op_references():
    tree = ast.parse(inspect.getsource(bert))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not any(m.split(".")[0] in ("mxnet", "gluonnlp", "scipy") for m in imported), imported
    assert "perfsuite.reference.ops" not in imported and "perfsuite.reference" not in imported, imported


def test_package_exports_forward_and_keeps_op_references():
    assert perfsuite.reference.forward is forward
    for name in ("softmax", "layer_norm", "gelu_erf", "gelu_tanh", "fully_connected", "selfatt_qk", "selfatt_valatt",
                 "encdec_qk", "encdec_valatt", "ZERO_LENGTH_MODES", "forward"):
        assert name in perfsuite.reference.__all__ and hasattr(perfsuite.reference, name)
