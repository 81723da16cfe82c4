"""Whole-model parity: every deployment path of GluonNLP BERT against the independent float64 NumPy BERT."""

import functools

import numpy as np
import pytest

from perfsuite.model_parity import ModelCase, make_batch, model_weights, run_model_case
from perfsuite.models import minilm_available
from perfsuite.paths.model import MODEL_PATHS, prepare, skip_reason_path
from perfsuite.pytest_plugin import skip_unless_runnable
from perfsuite.weights import CONFIGS

from perfsuite.workloads import MODEL_PARITY_SHAPES  # noqa: E402  (the one whole-model parity grid)

# every CPU path judged by tolerance (INT8, judged by agreement, has its own test below)
CPU_PATHS = [p for p, s in MODEL_PATHS.items() if s.device == "cpu" and s.judged_by == "tolerance"]
GPU_PATHS = [p for p, s in MODEL_PATHS.items() if s.device == "gpu"]


TASKS = ["classification", "qa", "embedding"]


@functools.lru_cache(maxsize=None)
def runner(model, path, task="classification", calib_seed=None):
    """One prepared path per (model, path, task graph) for the whole session: building BERT is the slow part."""
    kwargs = {}
    if path == "graph_pass":
        from perfsuite.passes import build_pass_library

        kwargs = {"pass_library": str(build_pass_library()), "passes": ["perfsuite_identity_rewrite"]}
    if MODEL_PATHS[path].judged_by == "agreement":
        calib = ModelCase(model, "imperative", 16, 64, "text" if model == "minilm" else "random", seed=calib_seed or 0)
        kwargs["calib_batches"] = [make_batch(calib)]
    return prepare(path, CONFIGS[model], model_weights(model), task=task, **kwargs)


def _skip(model, path):
    skip_unless_runnable(skip_reason_path(path))
    if model == "minilm":
        skip_unless_runnable(minilm_available())
    if path == "graph_pass":
        from perfsuite.passes import skip_reason_passes

        skip_unless_runnable(skip_reason_passes())


def _check(case):
    _skip(case.model, case.path)
    result = run_model_case(case, runner=runner(case.model, case.path, case.task))
    assert result.passed, result.message
    return result


@pytest.mark.parity
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("path", CPU_PATHS)
def test_small_model(path, task):
    _check(ModelCase("small", path, *MODEL_PARITY_SHAPES["small"], seed=1, task=task))


# MiniLM is a sentence-embedding model: every path through its embedding graph; the classification and QA graphs
# (seeded random heads on real weights) through the exported and oneDNN paths, which cover the others' kernels
MINILM_CASES = [(p, "embedding") for p in CPU_PATHS] + [(p, t) for p in ("exported", "onednn")
                                                        for t in ("classification", "qa")]


@pytest.mark.parity
@pytest.mark.parametrize("path,task", MINILM_CASES)
def test_minilm_real_weights_real_text(path, task):
    _check(ModelCase("minilm", path, *MODEL_PARITY_SHAPES["minilm"], inputs="text", task=task))


@pytest.mark.parity
@pytest.mark.parametrize("path", ["exported", "onednn"])
def test_bert_base(path):
    _check(ModelCase("bert-base", path, *MODEL_PARITY_SHAPES["bert-base"], seed=2, task="classification"))


@pytest.mark.parity
@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("path", ["exported", "onednn"])
def test_bert_large(path, task):
    _check(ModelCase("bert-large", path, *MODEL_PARITY_SHAPES["bert-large"], seed=3, task=task))


INT8_SHORTFALL = {
    ("small", "qa"): "MXNet 1.9.1 INT8 (quantize_net_v2 smart, channel-wise, naive calibration) flips QA end "
                     "positions of the small random model's random QA head: below the 99 % agreement criterion",
    ("minilm", "classification"): "MXNet 1.9.1 INT8 on real MiniLM flips classification argmaxes of its seeded random "
                                  "head (agreement 0.94): below the 99 % agreement criterion",
    ("minilm", "qa"): "MXNet 1.9.1 INT8 on real MiniLM keeps QA start/end agreement 0.88/0.81 (random QA head): below "
                      "the 99 % agreement criterion",
    ("minilm", "embedding"): "MXNet 1.9.1 INT8 on real MiniLM keeps a minimum embedding cosine of 0.97: below the "
                             "0.99 criterion",
}


def _int8_params():
    for model in ("small", "minilm"):
        for task in TASKS:
            reason = INT8_SHORTFALL.get((model, task))
            marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
            yield pytest.param(model, task, marks=marks, id=f"{model}-{task}")


@pytest.mark.parity
@pytest.mark.parametrize("model,task", list(_int8_params()))
def test_int8_agreement(model, task):
    _skip(model, "int8")
    case = ModelCase(model, "int8", batch=16, seq_len=64, inputs="text" if model == "minilm" else "random", seed=5,
                     task=task)
    int8 = runner(model, "int8", task, calib_seed=4)
    # prepare() refused a graph without quantized nodes, so what is judged below really ran in INT8
    result = run_model_case(case, runner=int8)
    print(result.message)
    assert result.passed, result.message


@pytest.mark.parametrize("task", TASKS)
def test_int8_agreement_catches_a_broken_model(task):
    """The agreement judge is not vacuous: an FP32 model with a dropped bias fails it."""
    from perfsuite.model_parity import agreement, reference_outputs

    case = ModelCase("small", "hybridized", batch=16, seq_len=64, seed=5, task=task)
    batch = make_batch(case)
    w = dict(model_weights("small"))
    w["pooler.bias"] = np.zeros_like(w["pooler.bias"])
    w["head.qa.bias"] = np.zeros_like(w["head.qa.bias"])
    w["layer1.ffn.2.bias"] = np.zeros_like(w["layer1.ffn.2.bias"])
    broken = prepare("hybridized", CONFIGS["small"], w, task=task)(*batch)
    metrics = agreement(broken, reference_outputs(CONFIGS["small"], model_weights("small"), batch), batch[2])
    from perfsuite.tolerance import INT8_AGREEMENT

    assert metrics and any(metrics[k] < INT8_AGREEMENT[k] for k in metrics), metrics


@pytest.mark.parity
@pytest.mark.gpu
@pytest.mark.parametrize("path", GPU_PATHS)
@pytest.mark.parametrize("model", ["small", "bert-base"])
def test_gpu_paths(model, path):
    _check(ModelCase(model, path, batch=4, seq_len=128, seed=6))


# ----------------------------------------------------------------------------------- batch/padding invariance
@pytest.mark.parity
@pytest.mark.parametrize("path", ["exported", "onednn"])
@pytest.mark.parametrize("batch_size,position,pad_to", [(1, 0, 20), (7, 3, 20), (32, 31, 64), (300, 150, 24)])
def test_batch_and_padding_invariance(path, batch_size, position, pad_to):
    """A sentence's outputs do not depend on its batch, its position in it, the batch size or the padding."""
    _skip("small", path)
    from perfsuite.compare import compare
    from perfsuite.model_parity import model_bound, reference_outputs

    cfg = CONFIGS["small"]
    rng = np.random.default_rng(11)
    n_valid = 13
    sentence = rng.integers(1000, cfg.vocab_size, size=n_valid).astype(np.int32)
    one = (sentence[None, :], np.zeros((1, n_valid), np.int32), np.array([n_valid], np.int32))
    ids = rng.integers(1000, cfg.vocab_size, size=(batch_size, pad_to)).astype(np.int32)
    valid = rng.integers(1, pad_to + 1, size=batch_size).astype(np.int32)
    ids[position, :n_valid], ids[position, n_valid:] = sentence, 0
    valid[position] = n_valid
    types = np.zeros_like(ids)
    ref = reference_outputs(cfg, model_weights("small"), one)
    bounds = model_bound(ref, reference_outputs(cfg, model_weights("small"), one, dtype="float32"), "float32")
    context = {"batch": batch_size, "position": position, "pad_to": pad_to}
    for task in TASKS:
        alone = runner("small", path, task)(*one)
        batched = runner("small", path, task)(ids, types, valid)
        for name in alone:
            a, b = alone[name][0], batched[name][position]
            if a.ndim >= 1 and name in ("sequence", "qa"):
                a, b, bound = a[:n_valid], b[:n_valid], 2 * bounds[name][0, :n_valid]
            else:
                bound = 2 * bounds[name][0]
            c = compare(b, a, bound, name=f"{task}/{name}", context=context)
            assert c.passed, c.message
