"""perfsuite explain and bisect: operator attribution from the profiler, the layer-by-layer trace of a whole-model
case (and a test of it: a reference that computes tanh-GELU is caught at the first GELU), the search over releases
with fake checks, and bad input. Real two-version runs (1.8.0.post0 vs 1.9.1) are in .ci/run, after the tests."""

from __future__ import annotations

import sys

import pytest

from perfsuite import cli
from perfsuite.errors import PerfsuiteInputError
from perfsuite.gate import explain as ex

HERE_PY = f"python:{sys.executable}"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")


def test_trace_of_a_correct_model_stays_within_every_bound():
    points = ex.trace_case("model:small-exported-embedding-b4-L32-random-s1")
    assert [p["point"] for p in points[:3]] == ["embeddings.ln", "layer0.attn.ln", "layer0.ffn.1"]
    assert len(points) == 1 + 4 * 2 and all(p["passed"] for p in points), points
    assert points[3]["node"] == "bertencoder0_transformer0_positionwiseffn0_gelu0_leakyrelu0_output"


def test_trace_finds_where_a_model_departs(monkeypatch):
    """The test of the tracer: judged against a reference that computes tanh-GELU (what MXNet 1.7.0.post2's
    oneDNN build does), the erf model departs at the first GELU, not before it."""
    import math

    import numpy as np

    import perfsuite.reference.bert as rb

    def tanh_gelu(x):
        x = np.asarray(x, dtype=np.float64)
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

    monkeypatch.setattr(rb, "_gelu64", tanh_gelu)
    points = ex.trace_case("model:small-exported-embedding-b4-L32-random-s1")
    first = next(p for p in points if not p["passed"])
    assert first["point"] == "layer0.ffn.gelu" and "gelu" in first["operator"].lower()
    assert all(p["passed"] for p in points[:3])


@pytest.mark.heavy  # two profiled workers; .ci/run also explains a real softmax slowdown between two releases
def test_explain_latency_attributes_time_to_operators(capsys):
    code = cli.main(["explain", "--baseline", HERE_PY, "--candidate", HERE_PY, "--allow-same", "--workload",
                     "op:softmax_mask", "--rounds", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "softmax" in out and "profiler's overhead" in out and "cover" in out and "share of change" in out


def test_explain_parity_of_an_op_case_names_the_op(capsys):
    code = cli.main(["explain", "--baseline", HERE_PY, "--candidate", HERE_PY, "--allow-same", "--parity",
                     "op:gelu_erf-float32-cpu-N64xC3072-bert-s0"])
    out = capsys.readouterr().out
    assert code == 0 and "the operator is gelu_erf" in out, out


def test_bisect_finds_the_boundary_with_every_release(monkeypatch):
    """Few releases: each is checked; the boundary is the last like --good and the next like --bad."""
    state = {"1.7.0.post2": True, "1.8.0": None, "1.8.0.post0": False, "1.9.0": False, "1.9.1": False}
    seen = []

    def fake_latency(envs, good, spec, target, threshold, budget, err):
        v = spec.split("==")[1]
        seen.append(v)
        return state[v], "fake"

    monkeypatch.setattr(ex, "_check_latency", fake_latency)
    doc = ex.bisect("mxnet==1.7.0.post2", "mxnet==1.9.1", "latency:op:softmax_fp16_safe", versions=list(state),
                    err=open("/dev/null", "w"))
    assert doc["strategy"] == "every release" and doc["boundary"] == ("1.7.0.post2", "1.8.0.post0")
    assert doc["first_change"] == "1.8.0.post0" and "1.8.0" in seen  # the uncheckable release was tried
    assert [r["good"] for r in doc["results"]] == [True, None, False, False, False]


def test_bisect_uses_binary_search_over_many_releases_and_walks_from_good_to_bad(monkeypatch):
    versions = [f"1.{i}.0" for i in range(1, 17)]  # 16 releases; the fix lands in 1.12.0
    checked = []

    def fake_parity(envs, spec, group):
        v = spec.split("==")[1]
        checked.append(v)
        return int(v.split(".")[1]) >= 12, "fake"

    monkeypatch.setattr(ex, "_check_parity", fake_parity)
    doc = ex.bisect("mxnet==1.16.0", "mxnet==1.1.0", "parity:layer_norm/float16", versions=versions,
                    err=open("/dev/null", "w"))
    assert doc["strategy"] == "binary search" and len(set(checked)) <= 7
    assert doc["boundary"] == ("1.12.0", "1.11.0") and doc["first_change"] == "1.12.0"


@pytest.mark.parametrize("argv,needle", [
    (["bisect", "--good", "mxnet", "--bad", "mxnet==1.9.1", "--check", "parity:x"], "names no version"),
    (["bisect", "--good", "mxnet==1.7.0.post2", "--bad", "mxnet-cu102==1.9.1", "--check", "parity:x"],
     "pinned requirements of one distribution"),
    (["bisect", "--good", "mxnet==1.7.0.post2", "--bad", "mxnet==1.9.1", "--check", "speed"], "--check 'speed'"),
    (["bisect", "--good", "mxnet==1.7.0.post2", "--bad", "mxnet==1.9.1", "--check", "latency:op:nope"],
     "unknown op benchmark 'nope'"),
    (["bisect", "--good", "mxnet==1.7.0.post2", "--bad", "mxnet==1.9.1", "--check", "latency:op:softmax_length",
      "--threshold", "2"], "--threshold 2.0"),
    (["bisect", "--good", "mxnet==1.7.0.post2", "--bad", "mxnet==1.9.1", "--check", "parity:x"],
     "no parity group 'x'"),
    (["explain", "--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1"], "exactly one of --workload"),
    (["explain", "--baseline", "mxnet==1.9.1", "--candidate", "mxnet==1.9.1", "--workload", "op:softmax_mask"],
     "pass --allow-same"),
    (["explain", "--baseline", HERE_PY, "--candidate", HERE_PY, "--allow-same", "--parity", "model:nonsense"],
     "is not a whole-model case id"),
])
def test_bad_input_exits_2(argv, needle, capsys):
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_model_case_ids_round_trip():
    from perfsuite.parity.model import ModelCase

    for case in (ModelCase("bert-base", "exported", 2, 128, seed=2, task="qa"),
                 ModelCase("minilm", "graph_pass", 8, 48, "text", task="embedding")):
        assert ex.parse_model_case_id(f"model:{case.id}") == case
    with pytest.raises(PerfsuiteInputError):
        ex.parse_model_case_id("model:small-exported")
