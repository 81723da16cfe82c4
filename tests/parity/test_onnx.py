"""The ONNX Runtime paths (perfsuite/paths/onnx.py): the deployed task graph exported with MXNet's own ONNX exporter
(mx.onnx.export_model, opset pinned) and served by onnxruntime.InferenceSession, judged against the independent
float64 NumPy BERT exactly like the FP32 MXNet paths (run_model_case, the float32 precision twin's bound); the
whole-model grid itself (small, MiniLM, BERT-base) is tests/parity/test_model.py's.

Tests of the tests: one corrupted initializer in the ONNX model (a zeroed bias, a weight scaled by 1.001) must fail
the same comparison. Every test that needs onnx/onnxruntime skips with the install command when they are missing.
"""

import functools
import subprocess
import sys

import numpy as np
import pytest

from perfsuite.env import parse_version
from perfsuite.errors import PerfsuiteInputError
from perfsuite.models import minilm_available
from perfsuite.parity.model import ModelCase, make_batch, model_weights, run_model_case
from perfsuite.paths import onnx as ox
from perfsuite.paths.model import MODEL_PATHS, ONNX_PATHS, prepare, skip_reason_path
from perfsuite.pytest_plugin import skip_unless_runnable
from perfsuite.weights import CONFIGS
from perfsuite.workloads import MODEL_PARITY_SHAPES

SMALL = MODEL_PARITY_SHAPES["small"]


def _skip(path="onnxruntime", model="small"):
    skip_unless_runnable(ox.skip_reason_onnx(path) or skip_reason_path(path))
    if model == "minilm":
        skip_unless_runnable(minilm_available())


@functools.lru_cache(maxsize=None)
def runner(model, task="classification", path="onnxruntime"):
    """One exported model and session per (model, task graph, path) for the session: the export is the slow part
    (MXNet's exporter writes every weight through Python lists: about 10-25 s for BERT-base on 2 cores)."""
    return prepare(path, CONFIGS[model], model_weights(model), task=task)


def _check(case):
    _skip(case.path, case.model)
    result = run_model_case(case, runner=runner(case.model, case.task, case.path))
    assert result.passed, result.message
    return result


def test_the_paths_are_registered():
    assert set(ox.PROVIDERS) == set(ONNX_PATHS) and set(ONNX_PATHS) <= set(MODEL_PATHS)
    assert MODEL_PATHS["onnxruntime"].judged_by == "tolerance" and MODEL_PATHS["onnxruntime"].device == "cpu"
    assert MODEL_PATHS["onnxruntime_int8"].judged_by == "agreement"
    assert MODEL_PATHS["gpu_onnxruntime"].device == "gpu"


# Whole-model parity of the onnxruntime path on the small model (every task graph), MiniLM and BERT-base is in the one
# whole-model grid, tests/parity/test_model.py (its CPU_PATHS include onnxruntime); here: what is ONNX-specific.


@pytest.mark.parity
def test_one_export_serves_every_batch_and_sequence_length():
    """The batch and sequence dimensions are exported free (dynamic=True): the session built from a (2, 8) trace
    runs other shapes, padding included, within the bound."""
    for batch, seq_len, seed in ((1, 5, 3), (7, 33, 4)):
        _check(ModelCase("small", "onnxruntime", batch, seq_len, seed=seed, task="qa"))


def test_the_runner_records_export_and_session():
    _skip()
    import onnx

    from perfsuite.env import detect_omp_threads

    before = (onnx.defs.onnx_opset_version(), dict(onnx.checker.DEFAULT_CONTEXT.opset_imports))
    r = prepare("onnxruntime", CONFIGS["small"], model_weights("small"), task="classification")
    exp, sess = r.info["export"], r.info["session"]
    assert exp["exporter"] == "mx.onnx.export_model" and exp["opset"] == ox.ONNX_OPSET == 13
    assert exp["graph_inputs"] == ["data0", "data1", "data2"] and exp["dynamic_shapes"]
    assert exp["initializers_in_graph_inputs"] > 0  # MXNet's exporter lists the weights as graph inputs too ...
    served = onnx.load(r.info["onnx_file"])
    assert [(o.domain, o.version) for o in served.opset_import] == [("", 13)]
    assert len(served.graph.node) == exp["onnx_nodes"]
    assert [i.name for i in served.graph.input] == ["data0", "data1", "data2"]  # ... which the served model does not
    assert r.info["served_model"]["initializers_removed_from_graph_inputs"] == exp["initializers_in_graph_inputs"]
    # only the served model stays in the workdir
    assert sorted(r.info["removed_intermediates"]) == ["bert-0000.params", "bert-symbol.json", "bert.onnx"]
    assert sess["providers"] == ["CPUExecutionProvider"] and sess["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert r.info["ort_intra_op_threads"] == sess["intra_op_num_threads"] == detect_omp_threads()
    assert r.info["ort_inter_op_threads"] == 1
    # the pin is scoped: onnx's own default opset and checker context are back
    assert (onnx.defs.onnx_opset_version(), dict(onnx.checker.DEFAULT_CONTEXT.opset_imports)) == before


def test_threads_follow_perfsuite_ort_threads(monkeypatch):
    _skip()
    monkeypatch.setenv("PERFSUITE_ORT_THREADS", "1")
    so, info = ox.session_options()
    assert so.intra_op_num_threads == 1 and info["intra_op_threads_from"] == "PERFSUITE_ORT_THREADS"
    monkeypatch.setenv("PERFSUITE_ORT_THREADS", "zero")
    with pytest.raises(PerfsuiteInputError, match="PERFSUITE_ORT_THREADS='zero': must be a positive integer"):
        ox.session_options()


# ------------------------------------------------------------------------------------------- tests of the tests
def _scaled(name, factor):
    def transform(model):
        from onnx import numpy_helper

        init = next(i for i in model.graph.initializer if i.name == name)  # StopIteration: the name moved
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(factor), name))

    transform.__doc__ = f"initializer {name} scaled by {factor}"
    return transform


FAULTS = {
    "zeroed bias": _scaled("bertencoder0_transformer1_positionwiseffn0_ffn_2_bias", 0.0),
    "weight x 1.001": _scaled("bertencoder0_transformer0_positionwiseffn0_ffn_1_weight", 1.001),
    "attention query weight x 1.001": _scaled("bertencoder0_transformer1_dotproductselfattentioncell0_query_weight",
                                              1.001),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_corrupted_onnx_initializer_fails(fault):
    """The exported model with one initializer corrupted before the session is created fails the comparison the
    same case passes uncorrupted (test_small_model[classification])."""
    _skip()
    case = ModelCase("small", "onnxruntime", *SMALL, seed=1, task="classification")
    onnx_file = runner("small", "classification").info["onnx_file"]
    bad = ox.runner_from_onnx("onnxruntime", onnx_file, "classification", transform=FAULTS[fault])
    assert bad.info["transformed"].startswith("initializer ")
    result = run_model_case(case, runner=bad)
    assert not result.passed, "the corrupted initializer went unnoticed:\n" + result.message
    assert "error/bound=" in result.message
    assert run_model_case(case, runner=runner("small", "classification")).passed  # the fault, not the case


# ------------------------------------------------------------------------------------------- timing and INT8
def test_timed_callable_and_measure_record_ort_threads():
    _skip()
    from perfsuite import bench
    from perfsuite.workloads import Workload

    w = Workload("small", "onnxruntime", "classification", 2, 32)
    assert bench.skip_reason_workload(w) is None
    fn, r = bench.timed(w)
    out = fn()
    assert isinstance(out, list) and out[0].shape == (2, 2) and out[0].dtype == np.float32
    m = bench.measure(w, warmup=0, min_repeat=2, max_repeat=2, min_time_s=0.0, max_time_s=5.0)
    assert len(m.samples_s) == 2 and all(s > 0 for s in m.samples_s)
    assert m.meta["path_info"]["ort_intra_op_threads"] == r.info["ort_intra_op_threads"] >= 1
    assert m.meta["path_info"]["session"]["providers"] == ["CPUExecutionProvider"]


@pytest.mark.parity
def test_ort_int8_quantizes_and_keeps_the_int8_floor():
    """ONNX Runtime's own INT8 (quantize_dynamic): integer ops in the graph, and the agreement figures of a graph
    without a trained head within perfsuite's INT8 floor (embedding cosine >= 0.9)."""
    _skip("onnxruntime_int8")
    case = ModelCase("small", "onnxruntime_int8", batch=16, seq_len=64, seed=5, task="embedding")
    result = run_model_case(case, runner=runner("small", "embedding", "onnxruntime_int8"))
    assert result.passed, result.message
    assert result.info["quantized_nodes"].get("MatMulInteger", 0) > 0
    assert result.info["int8_config"] == ox.ORT_INT8_DEFAULT


@pytest.mark.slow
@pytest.mark.parity
def test_ort_int8_keeps_99_percent_of_fp32_semantic_search_quality():
    """MiniLM through ORT INT8, judged on perfsuite.parity.int8_task like MXNet's INT8 (nDCG@10 >= 0.99 vs FP32)."""
    _skip("onnxruntime_int8", "minilm")
    from perfsuite.parity.model import int8_task_result

    res = int8_task_result(runner("minilm", "embedding", "onnxruntime_int8"))
    assert res.passed, res.message


# ------------------------------------------------------------------------------------------- skips and hazards
def test_without_onnxruntime_the_reason_names_the_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name in ("onnx", "onnxruntime") else real(name, *a, **k))
    reason = ox.skip_reason_onnx("onnxruntime")
    assert reason.startswith("needs onnx and onnxruntime for the onnxruntime path: pip install '.[onnx]'")
    assert "onnx==1.17.0" in reason and "onnxruntime==1.22.1" in reason
    with pytest.raises(PerfsuiteInputError, match=r"cannot run here: needs onnx and onnxruntime"):
        prepare("onnxruntime", CONFIGS["small"], model_weights("small"), task="classification")


def test_perfsuite_imports_and_skips_without_onnx():
    """With onnx and onnxruntime unimportable, perfsuite imports, registers the paths and gives the install command
    as the reason (no module-level import of either; MXNet 1.9.1 itself imports onnx when it is installed)."""
    code = ("import sys; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None\n"
            "import perfsuite.paths.model, perfsuite.paths.onnx as ox, perfsuite.parity.model, perfsuite.bench\n"
            "assert 'onnxruntime' in perfsuite.paths.model.MODEL_PATHS\n"
            "print(ox.skip_reason_onnx('onnxruntime'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == f"needs onnx and onnxruntime for the onnxruntime path: {ox.INSTALL}"


@pytest.mark.parity
@pytest.mark.gpu
def test_gpu_onnxruntime():
    _skip("gpu_onnxruntime")
    _check(ModelCase("small", "gpu_onnxruntime", batch=4, seq_len=128, seed=6))


def test_gpu_skip_reason_names_the_providers_found():
    _skip()
    import onnxruntime as ort

    reason = ox.skip_reason_onnx("gpu_onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert reason is None
    else:
        assert reason.startswith("needs onnxruntime-gpu with the CUDAExecutionProvider; found providers "
                                 f"{ort.get_available_providers()}")


@pytest.mark.parity
def test_unpinned_mxnet_export_fails_with_onnx_1_13_and_newer(tmp_path):
    """Why perfsuite pins the opset: MXNet 1.9.1's mx.onnx.export_model exports and validates at the installed onnx
    package's newest opset; from onnx 1.13 (opset 18, the oldest onnx with Python 3.11 wheels) its LayerNorm
    translation (ReduceMean with an axes attribute, opset 13) fails MXNet's own check_graph."""
    _skip()
    import mxnet as mx
    import onnx

    if parse_version(onnx.__version__) < (1, 13, 0, 0):
        pytest.skip(f"onnx {onnx.__version__} exports at opset {onnx.defs.onnx_opset_version()} <= 17: the unpinned "
                    "export works there")
    from perfsuite.models import build_gluonnlp_bert

    block = build_gluonnlp_bert(CONFIGS["small"], model_weights("small"), task="classification")
    block.hybridize(static_alloc=True, static_shape=True)
    block(*[mx.nd.ones(s) for s in ((2, 8), (2, 8), (2,))])
    block.export(str(tmp_path / "bert"), epoch=0)  # deploy.py's export: what export_model converts
    with pytest.raises(Exception, match="Unrecognized attribute: axes for operator ReduceMean"):
        mx.onnx.export_model(str(tmp_path / "bert-symbol.json"), str(tmp_path / "bert-0000.params"),
                             in_shapes=[(2, 8), (2, 8), (2,)], in_types=[np.float32] * 3,
                             onnx_file_path=str(tmp_path / "unpinned.onnx"))


def test_the_gate_cache_reuses_an_export_only_for_the_same_weights(tmp_path, monkeypatch):
    """The gate's ORT workers keep each served model (perfsuite.paths.onnx.CACHE_ENV): a later worker skips the
    export and computes the same outputs; changed weights (or task, or path) are a different entry."""
    _skip()
    monkeypatch.setenv(ox.CACHE_ENV, str(tmp_path / "cache"))
    case = ModelCase("small", "onnxruntime", 2, 16, seed=4, task="qa")
    w = model_weights("small")
    first = prepare("onnxruntime", case.cfg, w, task="qa")
    second = prepare("onnxruntime", case.cfg, w, task="qa")
    assert "stored" in first.info["onnx_cache"] and "reused" in second.info["onnx_cache"]
    batch = make_batch(case)
    for name, value in first(*batch).items():
        np.testing.assert_array_equal(second(*batch)[name], value)
    changed = dict(w)
    name = sorted(changed)[3]
    changed[name] = changed[name] * np.float32(1.001)
    third = prepare("onnxruntime", case.cfg, changed, task="qa")
    assert "stored" in third.info["onnx_cache"]
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == 2
    assert ox.onnx_cache_key("onnxruntime", case.cfg, w, "qa", None) != ox.onnx_cache_key(
        "onnxruntime", case.cfg, w, "embedding", None)
