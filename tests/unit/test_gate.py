"""The upgrade gate: bad input refused before any work, parity matching, the verdict and exit codes, the worker
protocol (crash, hang, errors), and small real gates run end to end with this interpreter on both sides
(`python:` specs, so no environment is built): an A/A gate finds no change, an injected 20 % slowdown fails it.

Building real environments of two MXNet versions is what `.ci/run` does after the tests (it needs the network).
"""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from perfsuite import cli
from perfsuite.bench import skip_reason_op
from perfsuite.env import skip_reason_gpu
from perfsuite.errors import PerfsuiteInputError
from perfsuite.gate import gate, options, summary, verdict
from perfsuite.gate.driver import WorkerError, WorkerProcess
from perfsuite.gate.plan import MIN_PAIRS, MIN_PAIRS_OP
from perfsuite.gate.venvs import parse_spec, with_exporter
from perfsuite.workloads import GATE_PROFILES, GateProfile, Target

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
    import zipfile

    whl = tmp_path / "mxnet-1.9.1-py3-none-manylinux2014_x86_64.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("mxnet/__init__.py", "")
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
    import zipfile

    other = tmp_path / "numpy-1.0-py3-none-any.whl"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("numpy/__init__.py", "")
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
    kinds = {d["id"]: d["kind"] for d in verdict.diff_parity(base, cand)}
    assert kinds == {"a": "both pass", "b": "regression", "c": "fix", "d": "pre-existing",
                     "e": "skipped on baseline only", "f": "skipped on candidate only", "g": "both skip",
                     "h": "pre-existing", "i": "skipped on candidate only", "j": "skipped on baseline only"}


def _doc(parity=None, targets=None, threshold=0.02):
    return {"config": {"threshold": threshold, "confidence": 0.99, "strict": False, "profile": "t",
                       "profile_doc": "test", "inject_slowdown": 0.0},
            "parity": parity, "latency": None if targets is None else {"targets": targets, "sessions": [],
                                                                         "stopped_because": "test"},
            "environments": {"baseline": {"label": "A"}, "candidate": {"label": "B"}}, "perfsuite_version": "x",
            "status": "complete", "elapsed_s": 1.0}


def _target(outcome, ratio=1.0):
    verdict = {"no slowdown": "no change", "disturbed": "inconclusive"}.get(outcome, outcome)
    return {"skip": {"baseline": None, "candidate": None}, "error": None, "outcome": outcome, "injected": False,
            "comparison": {"ratio": ratio, "low": ratio * 0.99, "high": ratio * 1.01, "threshold_bound": ratio * 1.005,
                           "p_value": 0.01, "sessions": 8, "pairs": 64, "min_sessions": 4, "verdict": verdict,
                           "within_threshold": outcome == "no slowdown", "describe": verdict,
                           "baseline_median_s": 0.01, "candidate_median_s": 0.01 * ratio, "disturbed_share": 0.3,
                           "noise": {"within_sd_per_pair": 0.03, "between_sd": 0.005},
                           "needs": {"why": "about 30 sessions"} if outcome == "inconclusive" else None}}


@pytest.mark.parametrize("counts,outcomes,strict,code", [
    ({"regression": 0, "pre-existing": 2}, ["no slowdown"], False, 0),
    ({"regression": 0, "pre-existing": 2}, ["no slowdown"], True, 1),
    ({"regression": 1}, ["no slowdown"], False, 1),
    ({"fix": 3, "skipped on candidate only": 1}, ["faster", "no slowdown"], False, 0),
    ({"skipped on candidate only": 1}, ["no slowdown"], True, 1),
    ({}, ["slower", "no slowdown"], False, 1),
    ({}, ["slower", "inconclusive"], False, 1),  # a slowdown shown stands, whatever else is undecided
    ({}, ["not enough data", "no slowdown"], False, 3),
    ({}, ["inconclusive", "no slowdown"], False, 3),  # not ruled out: never SAFE
    ({}, ["disturbed", "no slowdown"], False, 3),
    ({"regression": 1}, ["not enough data"], False, 1),
    ({}, [], False, 3),  # nothing could be timed on both sides: no slowdown is ruled out
])
def test_verdict_and_exit_code(counts, outcomes, strict, code):
    doc = _doc(parity={"counts": counts, "cases": [], "seconds": 1.0},
               targets={f"op:t{i}": _target(v, 1.1 if v == "slower" else 1.0) for i, v in enumerate(outcomes)})
    v = verdict.decide(doc, strict=strict)
    assert v["exit_code"] == code
    assert v["word"] == {0: "SAFE", 1: "NOT SAFE", 2: "ERROR", 3: "UNDECIDED"}[code]
    if "inconclusive" in outcomes and code == 3:
        assert any("op:t0: a slowdown beyond 2% is not ruled out" in r and "about 30 sessions" in r
                   for r in v["reasons"])


def test_outputs_say_the_verdict_first_and_parse(tmp_path):
    cases = verdict.diff_parity([_case("op:x", "pass", 0.5), _case("model:y", "fail", 3.0)],
                             [_case("op:x", "fail", 7.0), _case("model:y", "fail", 2.0)])
    doc = _doc(parity={"counts": {"regression": 1, "pre-existing": 1}, "cases": cases, "seconds": 2.0},
               targets={"op:fast": _target("no slowdown"), "op:slow": _target("slower", 1.08),
                        "op:gpu": {"skip": {"baseline": "needs CUDA", "candidate": "needs CUDA"}, "error": None}})
    doc["verdict"] = verdict.decide(doc)
    summary.write_outputs(doc, tmp_path, str(tmp_path / "extra.xml"))
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
        light = w.request({"cmd": "hello", "light": True}, 120)  # a session's workers: up, nothing read
        assert light["pid"] == w.pid and "env" not in light and "freeze" not in light
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


def test_environments_and_the_staged_perfsuite_are_compiled_to_bytecode_once(tmp_path, monkeypatch):
    """Every session starts fresh workers: without bytecode each one compiled MXNet's and perfsuite's sources again
    (PYTHONDONTWRITEBYTECODE=1 or uv's default). A python: interpreter's own packages are never written to."""
    from perfsuite.gate.venvs import Environment, compile_bytecode

    site = tmp_path / "env" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "mod.py").write_text("X = 1\n")
    (site / "py2_only.py").write_text("print 'no'\n")  # a file that does not compile: skipped, no error
    staged = tmp_path / "staged"
    (staged / "perfsuite").mkdir(parents=True)
    (staged / "perfsuite" / "a.py").write_text("Y = 2\n")
    env = Environment(parse_spec("mxnet==1.9.1"), sys.executable, str(tmp_path / "env"), "k", False, 0.0)
    assert compile_bytecode(env, str(staged)) >= 0
    assert list((site / "pkg" / "__pycache__").glob("mod.*.pyc"))
    assert list((staged / "perfsuite" / "__pycache__").glob("a.*.pyc"))
    import subprocess

    seen = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: seen.append(cmd) or real_run(cmd, **kw))
    compile_bytecode(Environment(parse_spec(f"python:{sys.executable}"), sys.executable, None, None, False, 0.0),
                     str(staged))
    assert seen and seen[-1][-1] == str(staged / "perfsuite") and not any("site-packages" in a for a in seen[-1])


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
                           parity_ops="quick", parity_models=(), time_budget_s=150.0, session_s=0.4, max_sessions=16)


@pytest.fixture
def test_profile(monkeypatch, tmp_path):
    monkeypatch.setitem(GATE_PROFILES, TEST_PROFILE.name, TEST_PROFILE)
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    # one thread per worker, the gate's default on 2 cores: with two, every core is the timed side's and anything
    # else on the machine (the driver, pytest) disturbs a pair (33 % of pairs here once, above the 25 % limit)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return TEST_PROFILE


def _gate(tmp_path, name, *extra):
    out = tmp_path / name
    code = cli.main(["gate", "--baseline", HERE_PY, "--candidate", HERE_PY, "--allow-same", "--profile", "unit-test",
                     "--out", str(out), "--junit-xml", str(tmp_path / f"{name}.xml"), *extra])
    return code, json.loads((out / "gate.json").read_text()), out


@pytest.mark.heavy  # ~1-2 min: ruling a 2 % slowdown out takes several sessions of fresh worker processes
def test_aa_gate_never_calls_the_same_build_slower(test_profile, tmp_path, capsys):
    code, doc, out = _gate(tmp_path, "aa")
    printed = capsys.readouterr()
    fc = doc["latency"]["targets"]["op:fc_float32"]
    # SAFE when the noise allows ruling 2 % out within the budget, else UNDECIDED; never NOT SAFE (false alarms are
    # held below 1 % per gate, far below in practice: the resampled rate is in the README)
    assert code in (0, 3), printed.out
    assert fc["outcome"] in ("no slowdown", "inconclusive") and fc["comparison"]["sessions"] >= 4
    assert (code == 0) == (fc["outcome"] == "no slowdown")
    assert doc["verdict"]["word"] == {0: "SAFE", 3: "UNDECIDED"}[code]
    assert doc["parity"]["counts"]["regression"] == 0 and doc["parity"]["counts"]["both pass"] > 0
    gpu_missing = skip_reason_op("fc_float16")
    if gpu_missing:  # float16 GEMMs run only on CUDA builds: both sides skip with the reason, and it is shown
        assert doc["latency"]["targets"]["op:fc_float16"]["skip"] == {"baseline": gpu_missing,
                                                                      "candidate": gpu_missing}
        assert "op:fc_float16" in (out / "summary.md").read_text().split("Workloads not compared")[1]
    pairs = [p for p in fc["pairs"] if not p["disturbed"]]
    firsts = [p["first"] for p in pairs]
    assert firsts.count("baseline") == firsts.count("candidate")  # counterbalanced
    assert len(fc["figures"]) == fc["comparison"]["sessions"] == len({p["session"] for p in pairs})
    assert doc["environments"]["baseline"]["freeze"] and doc["environments"]["candidate"]["env"]
    assert (out / "summary.md").read_text().startswith("# MXNet upgrade gate:")
    assert ("SAFE" in printed.out or "UNDECIDED" in printed.out) and "[gate " in printed.err  # stdout, stderr


@pytest.mark.heavy  # ~20 s: six sessions or more of fresh worker processes
def test_injected_slowdown_fails_the_gate(test_profile, tmp_path, capsys):
    code, doc, out = _gate(tmp_path, "slow", "--inject-slowdown", "0.2", "--no-parity")
    t = doc["latency"]["targets"]["op:fc_float32"]
    c = t["comparison"]
    assert code == 1 and t["outcome"] == "slower" and c["verdict"] == "slower" and 1.1 < c["ratio"] < 1.35
    assert c["low"] > 1.0 and t["injected"]
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


# ------------------------------------------------------------------------------------------------ the decision
def _gates(rng, n_gates, workloads, design, effect=0.0, sd=0.01, tails=None):
    """Simulated gates through the gate's own decision code (verdict.replay: verdict.look after every session)."""
    outcomes = []
    for _ in range(n_gates):
        per = []
        for w in range(workloads):
            n = design.max_sessions
            if tails == "mix":  # 15 % of sessions on an unlucky layout, 5x noisier (as seen in A/A gates here)
                noise = np.where(rng.random(n) < 0.15, rng.normal(0, 5 * sd, n), rng.normal(0, sd, n))
            else:
                noise = rng.standard_t(tails, n) * sd if tails else rng.normal(0, sd, n)
            per.append(verdict.replay(list((effect if w == 0 else 0.0) + noise), design, workloads, 0.02)[0])
        outcomes.append(per)
    return outcomes


def test_the_sequential_false_alarm_rate_stays_at_its_level():
    """Identical sides, looked at after every session up to the planned maximum: the share of gates that call any
    workload slower stays at or below 1 - confidence (normal and heavy-tailed session figures; 4 standard errors of
    the simulation). The old rule (a fixed-sample 95 % interval at every look from the 9th session) went over it."""
    from perfsuite.stats import SequentialDesign

    rng = np.random.default_rng(20261203)
    for design, n, tails in ((SequentialDesign(0.90, 16, 4), 1500, None), (SequentialDesign(0.90, 16, 4), 1500, 3),
                             (SequentialDesign(0.90, 12, 4), 1500, "mix"), (SequentialDesign(0.99, 20, 4), 1500, None)):
        gates = _gates(rng, n, 4, design, tails=tails)
        rate = np.mean([any(o == "slower" for o in g) for g in gates])
        alpha = 1 - design.confidence
        assert rate <= alpha + 4 * math.sqrt(alpha * (1 - alpha) / n), (design, tails, rate)
    # the same data under a naive rule: a 95 % t interval at every look from session 4, no correction
    from scipy import stats as st

    naive = 0
    for _ in range(400):
        f = rng.normal(0, 0.01, 16)
        naive += any(f[:k].mean() - st.t.isf(0.025, k - 1) * f[:k].std(ddof=1) / math.sqrt(k) > 0 for k in range(4, 17))
    assert naive / 400 > 0.05  # why every look must be counted


def test_a_true_two_percent_slowdown_with_tight_data_is_not_safe():
    from perfsuite.stats import SequentialDesign

    rng = np.random.default_rng(3)
    design = SequentialDesign(0.99, 20, 4)
    gates = _gates(rng, 200, 8, design, effect=math.log(1.02), sd=0.004)
    assert np.mean([g[0] == "slower" for g in gates]) >= 0.95
    assert not any(g[0] == "no slowdown" for g in gates)  # never SAFE about the slowed workload
    assert np.mean([all(o == "no slowdown" for o in g[1:]) for g in gates]) > 0.9  # the others are ruled out
    doc = _doc(parity={"counts": {}, "cases": [], "seconds": 1.0},
               targets={"op:slowed": _target("slower", 1.02), "op:other": _target("no slowdown")})
    assert verdict.decide(doc)["word"] == "NOT SAFE"


class _FakeWorker:
    """Scripted times: the candidate's pairs are `ratio` slower; the pairs listed in `disturbed` (by attempt) are
    disturbed and 5x slower on the candidate side, so they would move any estimate that let them in."""

    def __init__(self, side, ratio, disturbed):
        self.side, self.ratio, self.disturbed, self.attempt = side, ratio, disturbed, 0
        self.sent, self.order, self.paused = [], [], False

    def send(self, req):
        self.sent.append(req)

    def receive(self, timeout, what=""):
        req = self.sent[-1]
        if req["cmd"] == "prepare":
            return {"ok": True, "skip": None, "prepare_s": 0.1, "call_s": 0.06}
        return {"ok": True}

    def request(self, req, timeout):
        assert not self.paused, "a paused worker was asked to time"
        self.order.append(self.side)
        k = len(self.order)
        bad = self.side == "candidate" and (k in self.disturbed)
        wall = 0.06 * (self.ratio if self.side == "candidate" else 1.0) * (5.0 if bad else 1.0)
        return {"wall_s": wall, "contaminated": bad, "others_cpu_s": 0.0}

    def pause(self):
        self.paused = True

    def resume(self):
        self.paused = False


def test_disturbed_pairs_are_measured_again_and_never_enter_the_estimate(tmp_path, monkeypatch):
    monkeypatch.setitem(GATE_PROFILES, TEST_PROFILE.name, TEST_PROFILE)
    g = gate._Gate(options.GateOptions(baseline=HERE_PY, candidate=HERE_PY, allow_same=True, profile="unit-test",
                                       out=str(tmp_path / "o")), open(os.devnull, "w"))
    t = gate.TargetState("op:fc_float32")
    warm = max(gate.WARMUP_BLOCKS, gate.OP_VARIANTS)  # the candidate's first requests are its warm-up blocks
    ws = {"baseline": _FakeWorker("baseline", 1.0, set()),
          "candidate": _FakeWorker("candidate", 1.03, {warm + 2, warm + 3, warm + 7})}
    g._measure_target(0, t, ws)
    m = t.pairs_per_session
    clean = [p for p in t.pairs if not p["disturbed"]]
    assert len(clean) == m and len(t.pairs) == m + 3  # three disturbed pairs, each measured again
    assert t.figures == [pytest.approx(math.log(1.03))]  # the 5x disturbed times did not move the figure
    firsts = [p["first"] for p in clean]
    assert firsts.count("baseline") == firsts.count("candidate")  # still half AB, half BA
    # a redo repeats the disturbed pair's order
    for i, p in enumerate(t.pairs[:-1]):
        if p["disturbed"]:
            assert t.pairs[i + 1]["first"] == p["first"]
    assert t.disturbed_share == pytest.approx(3 / (m + 3))
    assert not ws["baseline"].paused or not ws["candidate"].paused


# ------------------------------------------------------------------------------------------------ planning, calibration
def _gate_object(tmp_path, monkeypatch, profile=None):
    monkeypatch.setitem(GATE_PROFILES, TEST_PROFILE.name, profile or TEST_PROFILE)
    return gate._Gate(options.GateOptions(baseline=HERE_PY, candidate=HERE_PY, allow_same=True, profile="unit-test",
                                          out=str(tmp_path / "o")), open(os.devnull, "w"))


def _state_with_sessions(tid, sessions, pairs, within, between, call_s=0.3, seed=0):
    from perfsuite.stats import hodges_lehmann

    rng = np.random.default_rng(seed)
    t = gate.TargetState(tid)
    t.calls, t.pairs_per_session = 1, pairs
    for s in range(sessions):
        shift = rng.normal(0, between)
        lr = shift + rng.normal(0, within, pairs)
        for x in lr:
            t.pairs.append({"session": s, "first": "baseline", "baseline_s": call_s, "candidate_s": call_s * math.exp(x),
                            "disturbed": False})
        t.figures.append(hodges_lehmann(lr))
        t.figure_sessions.append(s)
        t.overhead_s.append(5.0)
        t.session_s.append(5.0 + pairs * 2 * call_s)
    return t


def test_pairs_are_planned_from_the_variance_components(tmp_path, monkeypatch):
    """The plan follows the measured components: pair noise dominating -> more pairs; process noise dominating ->
    the fewest pairs allowed (16 for models, BERT-base included; 8 for ops); beyond reach -> the cost-optimal split, said so."""
    import perfsuite.stats as pstats

    g = _gate_object(tmp_path, monkeypatch)
    g.compared = 4
    components = {}
    monkeypatch.setattr(pstats, "variance_components", lambda lr, units: dict(components))

    def plan(tid, within, between, pairs=16, call_s=0.01):
        components.update(within_sd_per_pair=within, between_sd=between)
        t = _state_with_sessions(tid, 8, pairs, within=0.01, between=0.0, call_s=call_s)
        g._replan(t, 8)
        return t

    noisy = plan("model:small/hybridized/classification/b8/L64", within=0.08, between=0.0)
    assert noisy.pairs_per_session > 16 and noisy.plan_history[-1]["why"] == "variance components"
    assert noisy.plan_history[-1]["planned_sessions"] <= g.design.max_sessions
    assert plan("model:small/onednn/classification/b8/L64", within=0.01, between=0.004, pairs=40).pairs_per_session \
        == MIN_PAIRS  # never below 16 for a model
    assert plan("op:fc_float32", within=0.01, between=0.004, call_s=0.05).pairs_per_session == MIN_PAIRS_OP
    hopeless = plan("op:softmax_length", within=0.05, between=0.2, call_s=0.05)
    # beyond reach: the pairs of the cost-optimal split (sessions are what is short), here the fewest allowed
    assert hopeless.pairs_per_session == MIN_PAIRS_OP and "no look ahead" in hopeless.plan_history[-1]["why"]
    assert "cost-optimal" in hopeless.plan_history[-1]["why"]
    # ... and with the pairs' noise large against the sessions', more: round(sqrt(5 s / 0.1 s x pi/3 x 0.5^2 / 0.2^2))
    wide = plan("op:softmax_length", within=0.5, between=0.2, call_s=0.05)
    assert wide.pairs_per_session == 18 and "cost-optimal" in wide.plan_history[-1]["why"]
    # more within-session noise never asks for fewer pairs
    ms = [plan("model:small/int8/classification/b8/L64", within=w, between=0.0).pairs_per_session
          for w in (0.02, 0.04, 0.06, 0.08)]
    assert ms == sorted(ms)


def test_an_undecided_workload_says_what_deciding_it_would_take(tmp_path, monkeypatch):
    g = _gate_object(tmp_path, monkeypatch)
    g.compared = 1
    t = _state_with_sessions("op:fc_float32", 6, 16, within=0.01, between=0.02, call_s=0.05, seed=4)
    needs = g._needs(t, g._comparison(t))
    assert needs["sessions"] > len(t.figures) and needs["seconds"] > 0  # more sessions than it had
    more = needs["sessions"] - len(t.figures)
    assert f"about {needs['sessions']} sessions in all, {more} more" in needs["why"] and "session sd" in needs["why"]
    noisier = _state_with_sessions("op:fc_float32", 6, 16, within=0.01, between=0.06, call_s=0.05, seed=4)
    assert g._needs(noisier, g._comparison(noisier))["sessions"] > needs["sessions"]
    t.figures = [math.log(1.05)] * 5 + [math.log(1.04)]
    assert "beyond the threshold" in g._needs(t, g._comparison(t))["why"]


def test_calibration_pools_aa_sessions_and_resamples_them_through_the_gates_decision():
    from perfsuite.gate import calibration as gc
    from perfsuite.stats import SequentialDesign

    rng = np.random.default_rng(9)
    runs = []
    for i in range(12):
        injected = "op:a" if i % 2 else None
        targets = {tid: {"outcome": "no slowdown", "injected": tid == injected, "figures": list(
            rng.normal(0.02 if tid == injected else 0.0, 0.01, 8)), "noise": {"within_sd_per_pair": 0.03,
                                                                             "between_sd": 0.005, "pairs": 128,
                                                                             "sessions": 8}}
                   for tid in ("op:a", "op:b")}
        if injected:
            targets["op:a"]["outcome"] = "slower"
        runs.append({"condition": "2% into op:a" if injected else "A/A", "inject": 0.02 if injected else 0.0,
                     "exit_code": 1 if injected else 0, "elapsed_s": 100.0, "sessions": 8, "targets": targets})
    pooled = gc.pool(runs)
    assert len(pooled["op:b"]) == 12 * 8 and len(pooled["op:a"]) == 6 * 8  # injected sessions never pooled
    s = gc.summarize(runs)
    assert s["conditions"]["2% into op:a"]["injected_caught"]["k"] == 6
    assert s["conditions"]["A/A"]["safe"]["k"] == 6 and s["real_false_alarms"]["k"] == 0
    r = gc.resample(pooled, SequentialDesign(0.99, 12, 4), 300, 0.02, seed=1)
    assert r["gates"] == 300 and r["false_alarms"]["k"] <= 6 and r["safe"]["rate"] > 0.5
    assert set(r["per_workload"]) == {"op:a", "op:b"}
    # single ops follow the gate's own design for them (24 sessions in quick): more of them get decided
    wide = {"op:a": list(rng.normal(0.0, 0.02, 200))}
    r12 = gc.resample(wide, SequentialDesign(0.99, 12, 4), 200, 0.02, seed=2)
    r24 = gc.resample(wide, SequentialDesign(0.99, 12, 4), 200, 0.02, seed=2, op_design=SequentialDesign(0.99, 24, 4))
    assert r24["per_workload"]["op:a"]["undecided"] < r12["per_workload"]["op:a"]["undecided"]
    assert "Resampled A/A gates (300" in gc.render({"spec": "x", "profile": "p", "runs": runs, "summary": s,
                                                    "resampled": r})
    assert gc.parse_inject("0.02@random-op") == (0.02, "random-op")
    with pytest.raises(PerfsuiteInputError, match="expected FRACTION@WORKLOAD"):
        gc.parse_inject("2%")
    assert [c["condition"] for c in gc.plan(2, [(0.02, "x")], 1)] == ["A/A", "0.02 into x", "A/A"]


def test_the_noise_needs_table_agrees_with_the_gates_own_decisions():
    """The planning figure (noncentral t at the last look) against the real decision code: normal session figures
    with sd 1 %, a 2 % slowdown, the design planned for the sessions the table asks for, replayed look by look."""
    from perfsuite.gate import calibration as gc
    from perfsuite.gate.verdict import replay
    from perfsuite.stats import SequentialDesign

    sd, effect = 0.01, 0.02
    needs = gc.noise_needs({"w": {"session_sd": sd, "session_s": 3.0}}, workloads=8, effect=effect)["targets"]["w"]
    k = needs["catch_sessions"]
    assert 4 < k < 40 and needs["catch_s"] == 3.0 * k
    assert gc.session_power(sd, k - 1, effect, 8)["catch"] < 0.9 <= gc.session_power(sd, k, effect, 8)["catch"]
    design = SequentialDesign(0.99, k, 4)
    rng = np.random.default_rng(3)
    caught = sum(replay(list(rng.normal(math.log1p(effect), sd, k)), design, 8, 0.02)[0] == "slower"
                 for _ in range(200))
    assert 0.8 * 200 <= caught  # the trimmed mean's loss against the earlier looks' gain: near the planned 90 %
    far = gc.session_power(sd, k, effect, 8)
    assert gc.session_power(sd * 2, k, effect, 8)["catch"] < far["catch"]  # more noise, less power
    assert gc.session_power(sd, k, effect * 2, 8)["catch"] > far["catch"]
    # with no slowdown, the chance to rule one out: replayed, near what the table says for its sessions
    k0 = needs["rule_out_sessions"]
    ruled = sum(replay(list(rng.normal(0.0, sd, k0)), SequentialDesign(0.99, k0, 4), 8, 0.02)[0] == "no slowdown"
                for _ in range(200))
    assert 0.8 * 200 <= ruled
    hopeless = gc.noise_needs({"w": {"session_sd": 0.2, "session_s": 3.0}}, workloads=8, most=30)["targets"]["w"]
    assert hopeless["catch_sessions"] is None and hopeless["catch_s"] is None


def test_a_resumed_calibration_sets_the_interrupted_gates_folder_aside(tmp_path):
    from perfsuite.gate import calibration as gc

    (tmp_path / "007-slow").mkdir()
    (tmp_path / "007-slow" / "gate.json").write_text("{}")
    (tmp_path / "007-slow.progress.log").write_text("session 1")
    gc._set_aside_interrupted(tmp_path, "007-slow")
    assert not (tmp_path / "007-slow").exists() and (tmp_path / "007-slow.interrupted-1" / "gate.json").exists()
    assert (tmp_path / "007-slow.progress.log.interrupted-1").read_text() == "session 1"
    (tmp_path / "007-slow").mkdir()  # interrupted twice: nothing is overwritten
    gc._set_aside_interrupted(tmp_path, "007-slow")
    assert (tmp_path / "007-slow.interrupted-2").is_dir() and (tmp_path / "007-slow.interrupted-1").is_dir()
    gc._set_aside_interrupted(tmp_path, "008-aa")  # nothing there: nothing happens


@pytest.mark.heavy  # ~1 min: a standalone process and two gate sessions per round
def test_gate_speed_times_both_sides_of_every_round(tmp_path):
    """The benchmark behind the README's "does the gate time what users run": every round has a standalone and a
    gate median (a budget that ended the gate before its first session once made it crash)."""
    out = tmp_path / "speed.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "perfsuite.studies.gate_speed", "--workload", "op:softmax_fp16_safe",
                        "--rounds", "2", "--json", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert len(doc["rounds"]) == 2 and all(r["gate"]["pairs"] > 0 and r["standalone"]["median_s"] > 0
                                           for r in doc["rounds"])
    assert "gate / standalone on op:softmax_fp16_safe" in p.stdout and 0.5 < doc["ratio"] < 2



@pytest.mark.heavy  # ~20 s: two rounds of fresh worker pairs per design
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the duet design needs two CPUs this process may use")
def test_duet_check_times_both_designs_and_keeps_every_pair(tmp_path):
    """The benchmark behind the README's "why not a duet design": both designs, every round, every pair kept, and
    a --json file that exists is not overwritten without --force (exit 2, before any work)."""
    out = tmp_path / "duet.json"
    cmd = [sys.executable, "-m", "perfsuite.studies.duet_check", "--targets", "op:fc_float32", "--rounds", "2",
           "--pairs", "4", "--json", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads(out.read_text())
    rounds = doc["log_ratios"]["op:fc_float32"]
    assert set(rounds) == {"sequential", "duet"} and all(len(r) == 2 and all(len(x) == 4 for x in r)
                                                         for r in rounds.values())
    assert "sequential" in p.stdout and "duet" in p.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--json" in again.stderr and "exists" in again.stderr

def test_a_clear_speed_up_keeps_being_timed_until_faster_is_decided(tmp_path, monkeypatch):
    """1.7.0.post2 -> 1.9.1 once stopped BERT-base at "no slowdown" 0.855x without reporting it faster: a workload
    decided "no slowdown" whose estimate is a speed-up beyond the threshold goes on (its decision stands) until its
    interval excludes 1; an estimate near 1 stops at once."""
    g = _gate_object(tmp_path, monkeypatch)
    g.compared = 2
    design = g.design_for(gate.TargetState("model:x"))
    figs = list(np.log(0.86) + np.random.default_rng(0).normal(0, 0.05, design.max_sessions))
    t = gate.TargetState("model:x")
    for k in range(1, len(figs) + 1):
        t.figures = figs[:k]
        g._evaluate([t], k)
        if t.decided_after is not None:
            break
    decided = t.decided_after
    assert t.outcome == "no slowdown" and t.chasing_faster
    assert verdict.outcome(t, g._comparison(t)) == "no slowdown"  # not yet "faster"
    for k in range(decided + 1, len(figs) + 1):
        t.figures = figs[:k]
        g._evaluate([t], k)
        if not t.chasing_faster:
            break
    assert t.decided_after == decided and t.outcome == "no slowdown"  # the sequential decision stands
    assert verdict.outcome(t, g._comparison(t)) == "faster"
    # an A/A workload decided "no slowdown" is not chased
    same = gate.TargetState("model:y")
    figs = list(np.random.default_rng(1).normal(0, 0.002, design.max_sessions))
    for k in range(1, len(figs) + 1):
        same.figures = figs[:k]
        g._evaluate([same], k)
        if same.decided_after is not None:
            break
    assert same.outcome == "no slowdown" and not same.chasing_faster


def test_virtual_gates_run_the_gates_own_planner_and_decision(tmp_path):
    """The study's gates are wired to the real decision: with almost no noise an A/A gate is SAFE and a 2 %
    slowdown is caught; with noise far beyond the threshold nothing is decided; the cap bounds every plan."""
    from perfsuite.gate import plan
    from perfsuite.studies import virtual_gate as vg

    quiet = {"op:x": vg.Component(0.002, 0.0005, 0.05, 0.1, 0.5), "model:m": vg.Component(0.002, 0.0005, 0.1, 0.2, 1.0)}
    rng = np.random.default_rng(0)
    assert vg.virtual_gate(rng, quiet)["word"] == "SAFE"
    hit = vg.virtual_gate(rng, quiet, inject="op:x")
    assert hit["word"] == "NOT SAFE" and hit["caught"]
    loud = {"op:x": vg.Component(0.3, 0.2, 0.05, 0.1, 0.5)}
    assert vg.virtual_gate(rng, loud, budget_s=120.0)["word"] == "UNDECIDED"
    seen = []
    real = plan.replan

    def spy(t, *a, **kw):
        real(t, *a, **kw)
        seen.append(t.pairs_per_session)

    import unittest.mock as um

    with um.patch.object(plan, "replan", spy):
        vg.virtual_gate(rng, {"op:x": vg.Component(0.2, 0.0, 0.05, 0.1, 0.5)}, cap=20, budget_s=60.0)
    assert seen and max(seen) <= 20
    rows = vg.conditions(quiet, 3, cap=24, budget_s=120.0)
    assert [r["condition"] for r in rows] == ["A/A", "2 % into random-op"] and rows[0]["safe"] == 1.0
    # from a calibration folder's gate.json files
    g = tmp_path / "000-aa"
    g.mkdir()
    (g / "gate.json").write_text(json.dumps({"latency": {"targets": {"op:x": {
        "calls": 2, "overhead_s": [1.0, 3.0], "injected": False, "call_s": {"baseline": 0.05},
        "comparison": {"baseline_median_s": 0.02, "noise": {"within_sd_per_pair": 0.05, "between_sd": 0.01}}}}}}))
    assert vg.components(str(tmp_path)) == {"op:x": vg.Component(0.05, 0.01, 0.02, 0.05, 2.0)}
    with pytest.raises(PerfsuiteInputError, match="no gate.json"):
        vg.components(str(tmp_path / "empty"))
    assert vg.main(["--calibration", str(tmp_path), "--gates", "2", "--caps", "8"]) == 2  # below MIN_PAIRS
