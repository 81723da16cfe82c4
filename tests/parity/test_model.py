"""Whole-model parity: every deployment path of GluonNLP BERT against the independent float64 NumPy BERT."""

import functools

import numpy as np
import pytest

from perfsuite.models import minilm_available
from perfsuite.parity.model import ModelCase, make_batch, model_weights, run_model_case
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


# every path through every task graph; the graph-pass path (a child process per graph, about 3 s) through one
SMALL_CASES = [(p, t) for p in CPU_PATHS for t in TASKS if p != "graph_pass" or t == "classification"]


@pytest.mark.parity
@pytest.mark.parametrize("path,task", SMALL_CASES)
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
@pytest.mark.heavy
@pytest.mark.parametrize("path", ["exported", "onednn", "onnxruntime"])
def test_bert_base(path):
    _check(ModelCase("bert-base", path, *MODEL_PARITY_SHAPES["bert-base"], seed=2, task="classification"))


@pytest.mark.parity
@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("path", ["exported", "onednn"])
def test_bert_large(path, task):
    _check(ModelCase("bert-large", path, *MODEL_PARITY_SHAPES["bert-large"], seed=3, task=task))


# ----------------------------------------------------------------------------------------------------- INT8
@pytest.mark.parity
@pytest.mark.heavy
def test_int8_keeps_99_percent_of_fp32_semantic_search_quality():
    """MLPerf's rule on a task MiniLM's users run: semantic search over 1,500 sentences of CPython's docs,
    nDCG@10 of the INT8 ranking >= 0.99 of FP32's (measured 0.992 on MXNet 1.9.1 with the default recipe)."""
    _skip("minilm", "int8")
    from perfsuite.parity.model import int8_calibration

    case = ModelCase("minilm", "int8", *MODEL_PARITY_SHAPES["minilm"], inputs="text", task="embedding")
    int8 = prepare("int8", case.cfg, model_weights("minilm"), task="embedding", calib_batches=[int8_calibration(case)])
    result = run_model_case(case, runner=int8)
    print(result.message)
    assert result.passed, result.message
    m = result.metrics
    assert m["recall@10"] > 0.7 and m["spearman"] > 0.9 and m["cosine_min"] > 0.9, m  # floors of the agreement


@pytest.mark.parity
@pytest.mark.heavy
def test_int8_task_fails_for_a_damaged_layer():
    """The task judge is not vacuous: INT8 of a model with one weight tensor's scale off by 2x fails it."""
    _skip("minilm", "int8")
    from perfsuite.parity.model import int8_calibration, int8_task_result

    case = ModelCase("minilm", "int8", *MODEL_PARITY_SHAPES["minilm"], inputs="text", task="embedding")
    w = dict(model_weights("minilm"))
    w["layer3.ffn.2.weight"] = w["layer3.ffn.2.weight"] * 2
    damaged = prepare("int8", case.cfg, w, task="embedding", calib_batches=[int8_calibration(case)])
    result = int8_task_result(damaged, n_eval=300)  # the collapse is large: 300 of the 1,500 sentences show it
    assert not result.passed and result.metrics["ndcg@10"] < 0.99, result.message


@pytest.mark.parity
@pytest.mark.parametrize("model,task", [("small", "classification"), ("small", "qa"), ("small", "embedding"),
                                        ("minilm", "classification"), ("minilm", "qa")])
def test_int8_without_a_task_reports_figures(model, task):
    """Random heads (and random weights) have no quality to keep: INT8 reports figures (argmax flips, flips among
    confident inputs, minimum embedding cosine), with only the embedding-cosine floor as a check."""
    _skip(model, "int8")
    case = ModelCase(model, "int8", batch=16, seq_len=64, inputs="text" if model == "minilm" else "random", seed=5,
                     task=task)
    result = run_model_case(case)
    print(result.message)
    assert result.metrics and all(np.isfinite(v) for v in result.metrics.values()), result.metrics
    want = {"classification": "classification_flips", "qa": "qa_end_confident_flips",
            "embedding": "embedding_cosine_min"}[task]
    assert want in result.metrics and "not a quality criterion" in result.message
    assert result.passed, result.message


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
    from perfsuite.parity.check import compare
    from perfsuite.parity.model import model_bound, reference_outputs

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
