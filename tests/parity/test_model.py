"""Whole-model parity: every deployment path of GluonNLP BERT against the independent float64 NumPy BERT."""

import functools

import numpy as np
import pytest

from perfsuite.model_parity import ModelCase, make_batch, model_weights, run_model_case
from perfsuite.models import minilm_available
from perfsuite.paths.model import MODEL_PATHS, prepare, skip_reason_path
from perfsuite.pytest_plugin import skip_unless_runnable
from perfsuite.weights import CONFIGS

CPU_PATHS = ["imperative", "hybridized", "exported", "naive_attention", "onednn", "graph_pass"]
GPU_PATHS = [p for p, s in MODEL_PATHS.items() if s.device == "gpu"]


@functools.lru_cache(maxsize=None)
def runner(model, path, calib_seed=None):
    """One prepared path per (model, path) for the whole session: building BERT is the slow part."""
    kwargs = {}
    if path == "graph_pass":
        from perfsuite.passes import build_pass_library

        kwargs = {"pass_library": str(build_pass_library()), "passes": ["perfsuite_identity_rewrite"]}
    if MODEL_PATHS[path].judged_by == "agreement":
        calib = ModelCase(model, "imperative", 16, 64, "text" if model == "minilm" else "random", seed=calib_seed or 0)
        kwargs["calib_batches"] = [make_batch(calib)]
    return prepare(path, CONFIGS[model], model_weights(model), **kwargs)


def _skip(model, path):
    skip_unless_runnable(skip_reason_path(path))
    if model == "minilm":
        skip_unless_runnable(minilm_available())
    if path == "graph_pass":
        from perfsuite.passes import skip_reason_passes

        skip_unless_runnable(skip_reason_passes())


def _check(case):
    _skip(case.model, case.path)
    result = run_model_case(case, runner=runner(case.model, case.path))
    assert result.passed, result.message
    return result


@pytest.mark.parity
@pytest.mark.parametrize("path", CPU_PATHS)
def test_small_model(path):
    _check(ModelCase("small", path, batch=4, seq_len=32, seed=1))


@pytest.mark.parity
@pytest.mark.parametrize("path", CPU_PATHS)
def test_minilm_real_weights_real_text(path):
    _check(ModelCase("minilm", path, batch=8, seq_len=48, inputs="text"))


@pytest.mark.parity
@pytest.mark.parametrize("path", ["exported", "onednn"])
def test_bert_base(path):
    _check(ModelCase("bert-base", path, batch=2, seq_len=128, seed=2))


@pytest.mark.parity
@pytest.mark.slow
@pytest.mark.parametrize("path", ["exported", "onednn"])
def test_bert_large(path):
    _check(ModelCase("bert-large", path, batch=1, seq_len=128, seed=3))


INT8_SHORTFALL = {
    "small": "MXNet 1.9.1 INT8 (quantize_net_v2 smart, channel-wise, naive calibration) flips 1 of 16 QA end "
             "positions (0.9375) on the small random model: below the 99 % agreement criterion",
    "minilm": "MXNet 1.9.1 INT8 (quantize_net_v2 smart, channel-wise, naive calibration) on real MiniLM keeps "
              "classification agreement 0.94, QA start/end 0.88/0.81, min embedding cosine 0.97: below the 99 % "
              "criterion (quantize_mode 'full' is worse: 0.56 / 0.44 / 0.52)",
}


@pytest.mark.parity
@pytest.mark.parametrize("model", [pytest.param(m, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=r))
                                   for m, r in INT8_SHORTFALL.items()])
def test_int8_agreement(model):
    _skip(model, "int8")
    case = ModelCase(model, "int8", batch=16, seq_len=64, inputs="text" if model == "minilm" else "random", seed=5)
    int8 = runner(model, "int8", calib_seed=4)
    # prepare() refused a graph without quantized nodes, so what is judged below really ran in INT8
    result = run_model_case(case, runner=int8)
    print(result.message)
    assert result.passed, result.message


def test_int8_agreement_catches_a_broken_model():
    """The agreement judge is not vacuous: an FP32 model with one dropped bias fails it."""
    from perfsuite.model_parity import agreement, reference_outputs, with_embedding

    case = ModelCase("small", "hybridized", batch=16, seq_len=64, seed=5)
    batch = make_batch(case)
    w = dict(model_weights("small"))
    w["pooler.bias"] = np.zeros_like(w["pooler.bias"])
    w["head.qa.bias"] = np.zeros_like(w["head.qa.bias"])
    broken = with_embedding(prepare("hybridized", CONFIGS["small"], w)(*batch), batch[2])
    metrics = agreement(broken, reference_outputs(CONFIGS["small"], model_weights("small"), batch), batch[2])
    from perfsuite.tolerance import INT8_AGREEMENT

    assert any(metrics[k] < v for k, v in INT8_AGREEMENT.items()), metrics


@pytest.mark.parity
@pytest.mark.gpu
@pytest.mark.parametrize("path", GPU_PATHS)
@pytest.mark.parametrize("model", ["small", "bert-base"])
def test_gpu_paths(model, path):
    _check(ModelCase(model, path, batch=4, seq_len=128, seed=6))


# ----------------------------------------------------------------------------------- batch/padding invariance
def _one_sentence_outputs(path, ids, types, valid):
    out = runner("small", path)(ids, types, valid)
    return {k: v for k, v in out.items()}


@pytest.mark.parity
@pytest.mark.parametrize("path", ["exported", "onednn"])
@pytest.mark.parametrize("batch_size,position,pad_to", [(1, 0, 20), (7, 3, 20), (32, 31, 64), (300, 150, 24)])
def test_batch_and_padding_invariance(path, batch_size, position, pad_to):
    """A sentence's outputs do not depend on its batch, its position in it, the batch size or the padding."""
    _skip("small", path)
    cfg = CONFIGS["small"]
    rng = np.random.default_rng(11)
    n_valid = 13
    sentence = rng.integers(1000, cfg.vocab_size, size=n_valid).astype(np.int32)
    alone = _one_sentence_outputs(path, sentence[None, :], np.zeros((1, n_valid), np.int32),
                                  np.array([n_valid], np.int32))
    ids = rng.integers(1000, cfg.vocab_size, size=(batch_size, pad_to)).astype(np.int32)
    valid = rng.integers(1, pad_to + 1, size=batch_size).astype(np.int32)
    ids[position, :n_valid], ids[position, n_valid:] = sentence, 0
    valid[position] = n_valid
    types = np.zeros_like(ids)
    batched = _one_sentence_outputs(path, ids, types, valid)
    from perfsuite.model_parity import model_bound, reference_outputs, with_embedding

    ref = reference_outputs(cfg, model_weights("small"), (sentence[None, :], np.zeros((1, n_valid), np.int32),
                                                          np.array([n_valid], np.int32)))
    twin = reference_outputs(cfg, model_weights("small"), (sentence[None, :], np.zeros((1, n_valid), np.int32),
                                                           np.array([n_valid], np.int32)), dtype="float32")
    bounds = model_bound(ref, twin, "float32")
    alone = with_embedding(alone, np.array([n_valid]))
    batched = with_embedding(batched, valid)
    from perfsuite.compare import compare

    for name in ("pooled", "classification", "embedding_mean"):
        c = compare(batched[name][position], alone[name][0], 2 * bounds[name][0], name=name,
                    context={"batch": batch_size, "position": position, "pad_to": pad_to})
        assert c.passed, c.message
    for name in ("sequence", "qa"):
        c = compare(batched[name][position, :n_valid], alone[name][0, :n_valid], 2 * bounds[name][0, :n_valid],
                    name=name, context={"batch": batch_size, "position": position, "pad_to": pad_to})
        assert c.passed, c.message
