"""The upgrade gate: bad input refused before any work, parity matching, the verdict and exit codes, the worker
protocol (crash, hang, errors), and small real gates run end to end with this interpreter on both sides
(`python:` specs, so no environment is built): an A/A gate finds no change, an injected 20 % slowdown fails it.

Building real environments of two MXNet versions is what `.ci/run` does after the tests (it needs the network).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import xml.etree.ElementTree as ET

import pytest

from perfsuite import cli, gate, gate_report
from perfsuite.bench import skip_reason_op
from perfsuite.env import skip_reason_gpu
from perfsuite.envs import parse_spec, with_exporter
from perfsuite.errors import PerfsuiteInputError
from perfsuite.workloads import GATE_PROFILES, GateProfile, Target
from perfsuite.worker import WorkerError, WorkerProcess

HERE_PY = f"python:{sys.executable}"


# ------------------------------------------------------------------------------------------------ specs
@pytest.mark.parametrize("text,kind,label", [
    ("mxnet==1.9.1", "requirement", "mxnet==1.9.1"),
    ("mxnet==1.8.0.post0", "requirement", "mxnet==1.8.0.post0"),
    ("MXNet-CU102==1.7.0", "requirement", "mxnet-cu102==1.7.0"),
    (HERE_PY, "python", HERE_PY),
])
def test_specs(text, kind, label):
    s = parse_spec(text)
    assert s.kind == kind and s.label == label


def test_wheel_spec(tmp_path):
    whl = tmp_path / "mxnet-1.9.1-py3-none-manylinux2014_x86_64.whl"
    whl.write_bytes(b"PK")
    s = parse_spec(str(whl))
    assert s.kind == "wheel" and s.dist == "mxnet" and s.label == whl.name


def _script(tmp_path, name, body):
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return p


@pytest.fixture
def bad_paths(tmp_path):
    notexec = tmp_path / "python-notexec"
    notexec.write_text("")
    other = tmp_path / "numpy-1.0-py3-none-any.whl"
    other.write_bytes(b"PK")
    afile = tmp_path / "afile"
    afile.write_text("x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "old.json").write_text("{}")
    return {"notexec": notexec, "other_wheel": other, "afile": afile, "full": full,
            "not_python": _script(tmp_path, "notpython", "exit 3"),
            "no_mxnet": _script(tmp_path, "nomx", 'if [ "$1" = "-c" ]; then echo "3 11 False"; fi')}


BAD = [
    (["--baseline", "mxnet==1.9.1", "--candidate", "mxnet==1.9.1"], "same (mxnet==1.9.1)"),
    (["--baseline", "mxnet==1.9.1", "--candidate", "numpy==1.23.5"], "installs numpy, not an MXNet distribution"),
    (["--baseline", "mxnet", "--candidate", "mxnet==1.9.1"], "names no version"),
    (["--baseline", "mxnet===", "--candidate", "mxnet==1.9.1"], "is not a valid requirement"),
    (["--baseline", "", "--candidate", "mxnet==1.9.1"], "is empty"),
    (["--baseline", "./missing.whl", "--candidate", "mxnet==1.9.1"], "does not exist"),
    (["--baseline", "{other_wheel}", "--candidate", "mxnet==1.9.1"], "a wheel of numpy, not of an MXNet"),
    (["--baseline", "python:/nonexistent/python", "--candidate", "mxnet==1.9.1"], "does not exist or is not a file"),
    (["--baseline", "python:{notexec}", "--candidate", "mxnet==1.9.1"], "is not executable"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--threshold", "0"], "--threshold 0.0"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--threshold", "1"], "--threshold 1.0"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--threshold", "-0.1"], "allowed 0 < threshold"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--confidence", "1.5"], "--confidence 1.5"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--profile", "huge"], "unknown profile 'huge'"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--time-budget", "-5"], "--time-budget -5"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--installer", "conda"], "--installer 'conda'"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--out", "{afile}"], "is a file"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--out", "{full}"], "already holds files"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--junit-xml", "{full}"], "is a folder"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--junit-xml", "/nonexistent/x.xml"],
     "does not exist"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--no-parity", "--no-latency"],
     "nothing to check"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--inject-slowdown", "-1"],
     "--inject-slowdown -1.0"),
]


@pytest.mark.parametrize("argv,needle", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_input_exits_2_before_any_work(argv, needle, bad_paths, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    argv = [a.format(**bad_paths) for a in argv]
    assert cli.main(["gate", *argv]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert needle in err and err.startswith("perfsuite: error: ")
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()  # nothing was written


@pytest.mark.parametrize("script,needle", [("not_python", "is not a Python interpreter"), ("no_mxnet", "has no MXNet")])
def test_interpreters_that_cannot_serve_are_refused(script, needle, bad_paths, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["gate", "--baseline", f"python:{bad_paths[script]}", "--candidate", HERE_PY]) == cli.EXIT_USAGE
    assert needle in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ parity matching
def _case(cid, status, ratio=None):
    return {"id": cid, "group": "g", "status": status, "detail": "" if status == "pass" else "why",
            "worst_ratio": ratio}


def test_parity_cases_are_matched_and_classified():
    base = [_case("a", "pass"), _case("b", "pass"), _case("c", "fail"), _case("d", "fail"), _case("e", "skip"),
            _case("f", "pass"), _case("g", "skip"), _case("h", "error"), _case("i", "pass")]
    cand = [_case("a", "pass"), _case("b", "fail"), _case("c", "pass"), _case("d", "error"), _case("e", "pass"),
            _case("f", "skip"), _case("g", "skip"), _case("h", "fail"), _case("j", "pass")]
    kinds = {d["id"]: d["kind"] for d in gate.diff_parity(base, cand)}
    assert kinds == {"a": "both pass", "b": "regression", "c": "fix", "d": "pre-existing",
                     "e": "skipped on baseline only", "f": "skipped on candidate only", "g": "both skip",
                     "h": "pre-existing", "i": "skipped on candidate only", "j": "skipped on baseline only"}


def _doc(parity=None, targets=None, threshold=0.02):
    return {"config": {"threshold": threshold, "confidence": 0.95, "strict": False, "profile": "t",
                       "profile_doc": "test", "inject_slowdown": 0.0},
            "parity": parity, "latency": None if targets is None else {"targets": targets, "sessions": [],
                                                                         "stopped_because": "test"},
            "environments": {"baseline": {"label": "A"}, "candidate": {"label": "B"}}, "perfsuite_version": "x",
            "status": "complete", "elapsed_s": 1.0}


def _target(verdict, ratio=1.0, within=True):
    return {"skip": {"baseline": None, "candidate": None}, "error": None,
            "comparison": {"ratio": ratio, "low": ratio * 0.99, "high": ratio * 1.01, "p_value": 0.01, "sessions": 8,
                           "pairs": 64, "min_sessions": 6, "verdict": verdict, "within_threshold": within,
                           "describe": verdict, "baseline_median_s": 0.01, "candidate_median_s": 0.01 * ratio}}


@pytest.mark.parametrize("counts,verdicts,strict,code", [
    ({"regression": 0, "pre-existing": 2}, ["no change"], False, 0),
    ({"regression": 0, "pre-existing": 2}, ["no change"], True, 1),
    ({"regression": 1}, ["no change"], False, 1),
    ({"fix": 3, "skipped on candidate only": 1}, ["faster", "no change"], False, 0),
    ({"skipped on candidate only": 1}, ["no change"], True, 1),
    ({}, ["slower", "no change"], False, 1),
    ({}, ["not enough data", "no change"], False, 2),
    ({"regression": 1}, ["not enough data"], False, 2),
])
def test_verdict_and_exit_code(counts, verdicts, strict, code):
    doc = _doc(parity={"counts": counts, "cases": [], "seconds": 1.0},
               targets={f"op:t{i}": _target(v, 1.1 if v == "slower" else 1.0) for i, v in enumerate(verdicts)})
    v = gate.decide(doc, strict=strict)
    assert v["exit_code"] == code
    assert v["word"] == {0: "SAFE", 1: "NOT SAFE", 2: "UNDECIDED"}[code]


def test_outputs_say_the_verdict_first_and_parse(tmp_path):
    cases = gate.diff_parity([_case("op:x", "pass", 0.5), _case("model:y", "fail", 3.0)],
                             [_case("op:x", "fail", 7.0), _case("model:y", "fail", 2.0)])
    doc = _doc(parity={"counts": {"regression": 1, "pre-existing": 1}, "cases": cases, "seconds": 2.0},
               targets={"op:fast": _target("no change"), "op:slow": _target("slower", 1.08),
                        "op:gpu": {"skip": {"baseline": "needs CUDA", "candidate": "needs CUDA"}, "error": None}})
    doc["verdict"] = gate.decide(doc)
    gate_report.write_outputs(doc, tmp_path, str(tmp_path / "extra.xml"))
    md = (tmp_path / "summary.md").read_text()
    assert md.startswith("# MXNet upgrade gate: A → B: **NOT SAFE** (exit 1)")
    assert md.index("## Parity") < md.index("## Latency") < md.index("## Environments")
    assert "| regression" in md and "err/bound 7" in md and "op:gpu" in md and "both: needs CUDA" in md
    root = ET.parse(tmp_path / "junit.xml").getroot()
    fails = {tc.get("name") for tc in root.iter("testcase") if tc.find("failure") is not None}
    assert fails == {"op:x", "op:slow"}
    skipped = {tc.get("name") for tc in root.iter("testcase") if tc.find("skipped") is not None}
    assert skipped == {"model:y", "op:gpu"}
    assert (tmp_path / "extra.xml").read_text() == (tmp_path / "junit.xml").read_text()
    # every slower workload and parity regression gets the command that says which operator
    assert "perfsuite explain --baseline 'A' --candidate 'B' --workload 'op:slow'" in md
    assert "perfsuite explain --baseline 'A' --candidate 'B' --parity 'op:x'" in md


# ------------------------------------------------------------------------------------------------ worker protocol
def test_worker_answers_and_survives_bad_requests():
    w = WorkerProcess(sys.executable, "test worker")
    try:
        hello = w.request({"cmd": "hello"}, 120)
        assert hello["env"]["mxnet_dist_version"] and any(x.lower().startswith("mxnet==") for x in hello["freeze"])
        with pytest.raises(PerfsuiteInputError, match="unknown request 'dance'"):
            w.request({"cmd": "dance"}, 30)
        with pytest.raises(PerfsuiteInputError, match="was not prepared"):
            w.request({"cmd": "time", "target": "op:softmax_length"}, 30)
        with pytest.raises(PerfsuiteInputError, match="unknown op benchmark 'nope'"):
            w.request({"cmd": "prepare", "target": "op:nope"}, 30)
        r = w.request({"cmd": "prepare", "target": "op:fc_float16"}, 60)
        assert r["skip"] == skip_reason_op("fc_float16")  # the exact reason on CPU builds, None on a GPU host
        if skip_reason_gpu():
            assert r["skip"].endswith(skip_reason_gpu())
        r = w.request({"cmd": "prepare", "target": "op:softmax_mask"}, 120)
        assert r["skip"] is None and r["call_s"] > 0
        t = w.request({"cmd": "time", "target": "op:softmax_mask", "calls": 2}, 60)
        assert t["wall_s"] > 0 and isinstance(t["contaminated"], bool)
    finally:
        w.close()
    assert w.proc.returncode == 0


def test_worker_crash_and_hang_become_clear_errors(tmp_path):
    crash = _script(tmp_path, "crash", "read line; kill -SEGV $$")
    w = WorkerProcess(str(crash), "crashing worker")
    with pytest.raises(WorkerError, match=r"crashing worker: crashed during 'hello' \(SIGSEGV\)"):
        w.request({"cmd": "hello"}, 30)
    w.kill()
    hang = _script(tmp_path, "hang", "sleep 60")
    w = WorkerProcess(str(hang), "hanging worker")
    with pytest.raises(WorkerError, match="hanging worker: no reply to 'hello' within 1 s .hung; the worker was killed"):
        w.request({"cmd": "hello"}, 1)
    assert w.proc.poll() is not None
    talk = _script(tmp_path, "talk", "read line; echo 'not json'")
    w = WorkerProcess(str(talk), "chatty worker")
    with pytest.raises(WorkerError, match="broke the protocol"):
        w.request({"cmd": "hello"}, 30)
    w.kill()


# ------------------------------------------------------------------------------------------------ real gates
TEST_PROFILE = GateProfile("unit-test", "one low-noise op; op parity quick", ("op:fc_float32", "op:fc_float16"),
                           parity_ops="quick", parity_models=(), time_budget_s=120.0, session_s=0.4)


@pytest.fixture
def test_profile(monkeypatch, tmp_path):
    monkeypatch.setitem(GATE_PROFILES, TEST_PROFILE.name, TEST_PROFILE)
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    return TEST_PROFILE


def _gate(tmp_path, name, *extra):
    out = tmp_path / name
    code = cli.main(["gate", "--baseline", HERE_PY, "--candidate", HERE_PY, "--allow-same", "--profile", "unit-test",
                     "--out", str(out), "--junit-xml", str(tmp_path / f"{name}.xml"), *extra])
    return code, json.loads((out / "gate.json").read_text()), out


@pytest.mark.heavy  # ~45 s: 'no change' needs a dozen sessions of fresh worker processes
def test_aa_gate_finds_no_change(test_profile, tmp_path, capsys):
    code, doc, out = _gate(tmp_path, "aa")
    printed = capsys.readouterr()
    fc = doc["latency"]["targets"]["op:fc_float32"]
    assert code == 0, printed.out
    assert fc["comparison"]["verdict"] == "no change" and fc["comparison"]["sessions"] >= 6
    assert doc["parity"]["counts"]["regression"] == 0 and doc["parity"]["counts"]["both pass"] > 0
    gpu_missing = skip_reason_op("fc_float16")
    if gpu_missing:  # float16 GEMMs run only on CUDA builds: both sides skip with the reason, and it is shown
        assert doc["latency"]["targets"]["op:fc_float16"]["skip"] == {"baseline": gpu_missing,
                                                                      "candidate": gpu_missing}
        assert "op:fc_float16" in (out / "summary.md").read_text().split("Workloads not compared")[1]
    pairs = fc["pairs"]
    firsts = [p["first"] for p in pairs]
    assert firsts.count("baseline") == firsts.count("candidate")  # counterbalanced
    assert len({p["session"] for p in pairs}) == fc["comparison"]["sessions"]
    assert doc["environments"]["baseline"]["freeze"] and doc["environments"]["candidate"]["env"]
    assert (out / "summary.md").read_text().startswith("# MXNet upgrade gate:")
    assert "SAFE" in printed.out and "[gate " in printed.err  # verdict on stdout, progress on stderr


@pytest.mark.heavy  # ~20 s: six sessions or more of fresh worker processes
def test_injected_slowdown_fails_the_gate(test_profile, tmp_path, capsys):
    code, doc, out = _gate(tmp_path, "slow", "--inject-slowdown", "0.2", "--no-parity")
    c = doc["latency"]["targets"]["op:fc_float32"]["comparison"]
    assert code == 1 and c["verdict"] == "slower" and 1.1 < c["ratio"] < 1.35
    assert "Testing the gate" in (out / "summary.md").read_text()
    junit = ET.parse(tmp_path / "slow.xml").getroot()
    assert any(tc.get("name") == "op:fc_float32" and tc.find("failure") is not None for tc in junit.iter("testcase"))


def test_a_worker_that_dies_mid_gate_ends_it_with_exit_2_and_keeps_the_results(test_profile, tmp_path, capsys,
                                                                              monkeypatch):
    real_time = WorkerProcess.request

    def dying(self, req, timeout):
        if req.get("cmd") == "time" and "candidate" in self.name and req.get("inject") is not None:
            os.kill(self.pid, 9)
        return real_time(self, req, timeout)

    monkeypatch.setattr(WorkerProcess, "request", dying)
    out = tmp_path / "dies"
    code = cli.main(["gate", "--baseline", HERE_PY, "--candidate", HERE_PY, "--allow-same", "--profile", "unit-test",
                     "--out", str(out), "--no-parity"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and "crashed" in err and "SIGKILL" in err and str(out / "gate.json") in err
    doc = json.loads((out / "gate.json").read_text())
    assert doc["status"] == "error" and doc["verdict"]["exit_code"] == 2 and "SIGKILL" in doc["errors"][0]
    assert ET.parse(out / "junit.xml").getroot().find(".//error") is not None


def test_every_gate_profile_names_valid_targets():
    for p in GATE_PROFILES.values():
        assert all(Target(t).kind in ("op", "model") for t in p.targets)
        assert p.parity_ops in ("all", "quick", "none")
    with pytest.raises(PerfsuiteInputError, match="must start with 'op:' or 'model:'"):
        Target("bert")
    with pytest.raises(PerfsuiteInputError, match="expected model:MODEL/PATH/TASK/bBATCH/LSEQ"):
        Target("model:bert-base/hybridized")


# ------------------------------------------------------------------------------------------------ ONNX Runtime candidate
def test_onnxruntime_is_a_candidate_only_and_gets_an_mxnet_that_can_export(tmp_path):
    cand = parse_spec("onnxruntime==1.22.1", "--candidate", allow_runtime=True)
    assert cand.runtime == "onnxruntime" and cand.dist == "onnxruntime"
    with pytest.raises(PerfsuiteInputError, match="ONNX Runtime can only be the candidate"):
        parse_spec("onnxruntime==1.22.1", "--baseline")
    with pytest.raises(PerfsuiteInputError, match="names no version; pin one, e.g. onnxruntime==1.22.1"):
        parse_spec("onnxruntime", "--candidate", allow_runtime=True)
    # the baseline's MXNet exports when it can (>= 1.9.0); 1.8 and older cannot export BERT: the default then
    assert with_exporter(cand, parse_spec("mxnet==1.9.0")).extra == ("mxnet==1.9.0", "onnx==1.17.0")
    assert with_exporter(cand, parse_spec("mxnet==1.8.0.post0")).exporter == "mxnet==1.9.1"
    assert with_exporter(cand, parse_spec(HERE_PY)).exporter == "mxnet==1.9.1"
    assert with_exporter(cand, parse_spec("mxnet==1.7.0.post2"), "mxnet==1.9.0").exporter == "mxnet==1.9.0"
    with pytest.raises(PerfsuiteInputError, match="--exporter 'mxnet==1.8.0.post0': exporting BERT to ONNX needs"):
        with_exporter(cand, parse_spec("mxnet==1.9.1"), "mxnet==1.8.0.post0")
    with pytest.raises(PerfsuiteInputError, match="--exporter 'python:.*installed into the candidate's environment"):
        with_exporter(cand, parse_spec("mxnet==1.9.1"), HERE_PY)
    mx = parse_spec("mxnet==1.9.1")
    assert with_exporter(mx, mx) is mx  # an MXNet candidate is left alone


@pytest.mark.parametrize("argv,needle", [
    (["--baseline", "onnxruntime==1.22.1", "--candidate", "mxnet==1.9.1"], "ONNX Runtime can only be the candidate"),
    (["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1", "--exporter", "mxnet==1.9.1"],
     "--exporter 'mxnet==1.9.1' applies only to an ONNX Runtime candidate"),
])
def test_bad_onnxruntime_gates_exit_2_before_any_work(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["gate", *argv]) == cli.EXIT_USAGE
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "results").exists()


def test_onnxruntime_targets_have_counterparts():
    from perfsuite.paths.model import MODEL_PATHS, ORT_COUNTERPARTS, ONNX_PATHS

    assert set(ORT_COUNTERPARTS.values()) == set(ONNX_PATHS)
    assert all(MODEL_PATHS[m].device == MODEL_PATHS[o].device for m, o in ORT_COUNTERPARTS.items())
    for p in GATE_PROFILES.values():
        ts = p.target_list("onnxruntime")
        assert ts and all(t.kind == "model" and t.parts()[2].path in ORT_COUNTERPARTS for t in ts)


def test_worker_runs_the_onnxruntime_counterpart_under_the_mxnet_name():
    """The candidate side of a migration gate: the worker runs ORT and reports under the baseline's MXNet names."""
    from perfsuite.paths.model import ORT_COUNTERPARTS, skip_reason_path

    reason = skip_reason_path("onnxruntime")
    if reason:
        pytest.skip(reason)
    w = WorkerProcess(sys.executable, "ORT worker")
    try:
        hello = w.request({"cmd": "hello", "runtime": "onnxruntime"}, 120)
        assert hello["onnx"]["onnxruntime"] and hello["onnx"]["onnx"]
        target = "model:small/exported/classification/b2/L16"
        r = w.request({"cmd": "prepare", "target": target, "path_map": ORT_COUNTERPARTS}, 300)
        assert r["skip"] is None and r["ran"] == "onnxruntime" and r["call_s"] > 0
        assert w.request({"cmd": "time", "target": target, "calls": 2}, 60)["wall_s"] > 0
        r = w.request({"cmd": "prepare", "target": "model:small/onednn/classification/b2/L16",
                       "path_map": ORT_COUNTERPARTS}, 60)
        assert r["skip"].startswith("MXNet path onednn has no ONNX Runtime counterpart")
        r = w.request({"cmd": "prepare", "target": target}, 300)  # no map: the MXNet path itself
        assert r["ran"] == "exported"
        par = w.request({"cmd": "parity", "ops": "none", "models": ["small"], "groups": ["small/exported/qa"],
                         "path_map": ORT_COUNTERPARTS}, 600)
        [case] = par["cases"]
        assert case["id"] == "model:small-exported-qa-b4-L64-random-s0" and case["ran_path"] == "onnxruntime"
        assert case["status"] == "pass" and "small-onnxruntime-qa" in case["detail"]
    finally:
        w.close()
