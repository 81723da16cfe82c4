"""Exit codes CI can trust: every command refuses bad input with exit 2 and one line naming the value, before any
work (no environment built, no output written, within seconds), never a traceback, never exit 0 or 1 (which CI
reads as success or as a finding such as NOT SAFE). One row per defect found by trying about 250 bad inputs.

Each row runs `perfsuite` in a fresh process (as CI does) with HOME and PERFSUITE_CACHE_DIR in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_report import _doc, _save  # noqa: E402  (a valid results file)

PY = f"python:{sys.executable}"
GOOD = ["--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1"]
BISECT = ["bisect", "--good", "mxnet==1.7.0.post2", "--bad", "mxnet==1.9.1"]
EXPLAIN = ["explain", "--baseline", "mxnet==1.8.0.post0", "--candidate", "mxnet==1.9.1"]

# (id, argv, words the message must contain); {tmp} is the test's folder, {afile} an existing file,
# {res} a valid results folder, {res_copy} a copy of it under another name, {xml} an existing file named .xml
ROWS = [
    ("gate seed -1", ["gate", *GOOD, "--seed", "-1"], ["--seed -1", "allowed"]),
    ("gate abbreviation", ["gate", *GOOD, "--no-parit"], ["unrecognized arguments: --no-parit"]),
    ("gate budget tiny", ["gate", *GOOD, "--time-budget", "1e-9"], ["--time-budget 1e-09", "allowed >= 10"]),
    ("gate threads huge", ["gate", *GOOD, "--threads", "100000"], ["--threads 100000", "allowed 1 to"]),
    ("gate range spec", ["gate", "--baseline", "mxnet>=1.6", "--candidate", "mxnet==1.9.1"],
     ["--baseline 'mxnet>=1.6'", "pin exactly one version with =="]),
    ("gate != spec", ["gate", "--baseline", "mxnet!=1.9.1", "--candidate", "mxnet==1.9.1"], ["pin exactly one"]),
    ("gate wildcard", ["gate", "--baseline", "mxnet==1.9.*", "--candidate", "mxnet==1.9.1"], ["pin exactly one"]),
    ("gate ort range", ["gate", "--baseline", "mxnet==1.9.1", "--candidate", "onnxruntime>=1.0"],
     ["--candidate 'onnxruntime>=1.0'", "pin exactly one"]),
    ("gate not mxnet", ["gate", "--baseline", "mxnetfoo==1.0", "--candidate", "mxnet==1.9.1"],
     ["installs mxnetfoo, not an MXNet distribution"]),
    ("gate impossible", ["gate", "--baseline", "mxnet==1.9.1,<1.9", "--candidate", "mxnet==1.9.1"],
     ["pin exactly one"]),
    ("gate marker", ["gate", "--baseline", "mxnet==1.9.1; python_version < '3'", "--candidate", "mxnet==1.8.0.post0"],
     ["markers, extras and URLs are not supported"]),
    ("gate exporter wildcard", ["gate", "--baseline", "mxnet==1.9.1", "--candidate", "onnxruntime==1.22.1",
                                "--exporter", "mxnet==1.9.*"], ["--exporter 'mxnet==1.9.*'", "pin exactly one"]),
    ("gate same release", ["gate", "--baseline", "mxnet==1.9.1.0", "--candidate", "mxnet==1.9.1"],
     ["are the same", "--allow-same"]),
    ("gate empty wheel", ["gate", "--baseline", "{tmp}/mxnet-1.9.1-py3-none-manylinux2014_x86_64.whl",
                          "--candidate", "mxnet==1.9.1"], ["is not a wheel (not a zip archive)"]),
    ("gate wheel folder", ["gate", "--baseline", "{tmp}/dir.whl", "--candidate", "mxnet==1.9.1"],
     ["is a folder, not a wheel file"]),
    ("gate junit exists", ["gate", *GOOD, "--junit-xml", "{xml}"], ["--junit-xml", "already exists", "--force"]),
    ("gate junit under a file", ["gate", *GOOD, "--junit-xml", "{afile}/j.xml"], ["is a file, not a folder"]),
    ("gate force alone", ["gate", *GOOD, "--force"], ["--force applies to --junit-xml"]),
    ("gate out empty", ["gate", *GOOD, "--out", ""], ["--out '' is empty"]),
    ("gate no-latency options", ["gate", *GOOD, "--no-latency", "--threshold", "0.05"],
     ["--threshold", "--no-latency turns off"]),
    ("gate no-latency seed", ["gate", *GOOD, "--no-latency", "--seed", "3"], ["--seed", "--no-latency"]),
    ("gate inject target alone", ["gate", *GOOD, "--inject-target", "op:softmax_length"],
     ["--inject-target applies only with --inject-slowdown"]),
    ("gate inject unknown", ["gate", *GOOD, "--inject-slowdown", "0.1", "--inject-target", "op:nope"],
     ["--inject-target 'op:nope' is not a workload of profile 'quick'"]),
    ("gate ignore-below", ["gate", *GOOD, "--ignore-below", "0.05"], ["--ignore-below 0.05", "< --threshold"]),
    ("gate cache is a file", ["gate", *GOOD], ["PERFSUITE_CACHE_DIR", "is under a file"]),
    ("bisect range", ["bisect", "--good", "mxnet>=1.7", "--bad", "mxnet==1.9.1", "--check", "parity:layer_norm"],
     ["--good 'mxnet>=1.7'", "pin exactly one"]),
    ("bisect wildcard", ["bisect", "--good", "mxnet==1.7.*", "--bad", "mxnet==1.9.1", "--check", "parity:layer_norm"],
     ["pin exactly one"]),
    ("bisect ===", ["bisect", "--good", "mxnet===1.7.0.post2", "--bad", "mxnet==1.9.1", "--check",
                    "parity:layer_norm"], ["pin exactly one"]),
    ("bisect versions abc", [*BISECT, "--check", "parity:layer_norm", "--versions", "abc"],
     ["--versions: 'abc' is not a version"]),
    ("bisect versions empty", [*BISECT, "--check", "parity:layer_norm", "--versions", ""], ["--versions names no"]),
    ("bisect versions comma", [*BISECT, "--check", "parity:layer_norm", "--versions", ","], ["--versions names no"]),
    ("bisect versions outside", [*BISECT, "--check", "parity:layer_norm", "--versions", "2.0.0,0.1"],
     ["not between --good"]),
    ("bisect same", ["bisect", "--good", "mxnet==1.9.1", "--bad", "mxnet==1.9.1", "--check", "parity:layer_norm"],
     ["the same release"]),
    ("bisect installer", [*BISECT, "--check", "latency:op:softmax_length", "--installer", "bogus", "--versions",
                          "1.8.0.post0"], ["--installer 'bogus'"]),
    ("bisect group", [*BISECT, "--check", "parity:no_such_group"], ["no parity group 'no_such_group'"]),
    ("bisect budget", [*BISECT, "--check", "latency:op:softmax_length", "--budget", "-5"], ["--time-budget -5.0"]),
    ("bisect budget nan", [*BISECT, "--check", "latency:op:softmax_length", "--time-budget", "nan"],
     ["--time-budget nan"]),
    ("bisect parity threshold", [*BISECT, "--check", "parity:layer_norm", "--threshold", "0.1"],
     ["apply to latency checks"]),
    ("bisect json exists", [*BISECT, "--check", "parity:layer_norm", "--json", "{afile}"],
     ["--json", "already exists", "--force"]),
    ("explain parity garbage", [*EXPLAIN, "--parity", "garbage"], ["--parity 'garbage'"]),
    ("explain parity unknown op", [*EXPLAIN, "--parity", "op:nope"], ["not an op case of perfsuite's grid"]),
    ("explain candidate not python", ["explain", "--baseline", "mxnet==1.8.0.post0", "--candidate",
                                      "python:{tmp}/notpython", "--workload", "op:softmax_length"],
     ["--candidate 'python:", "is not a Python interpreter"]),
    ("explain installer", [*EXPLAIN, "--workload", "op:softmax_length", "--installer", "bogus"],
     ["--installer 'bogus'"]),
    ("explain rounds", [*EXPLAIN, "--workload", "op:softmax_length", "--rounds", "1000000000"],
     ["--rounds 1000000000", "allowed 2 to 1000"]),
    ("explain json exists", [*EXPLAIN, "--workload", "op:softmax_length", "--json", "{afile}"],
     ["already exists", "--force"]),
    ("report duplicate file", ["report", "{res}", "{res}"], ["are the same file"]),
    ("report duplicate run", ["report", "{res}", "{res_copy}"], ["the same run"]),
    ("report many duplicates", ["report", "{res}", "{res}", "{res}", "{res}"], ["are the same file"]),
    ("report one and machines", ["report", "{res}", "--allow-different-machines"],
     ["--allow-different-machines applies to a comparison"]),
    ("run batch huge", ["run", "--batch-size", "1000000"], ["--batch-size 1000000: allowed 1 to 4096"]),
    ("parity force alone", ["parity", "--force"], ["--force applies to --json"]),
    ("parity pass-timeout without model", ["parity", "--pass-timeout", "-5"], ["--pass-timeout"]),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exit")
    (tmp / "afile").write_text("x")
    (tmp / "j.xml").write_text("<old/>")
    (tmp / "mxnet-1.9.1-py3-none-manylinux2014_x86_64.whl").write_bytes(b"")
    (tmp / "dir.whl").mkdir()
    np_ = tmp / "notpython"
    np_.write_text("#!/bin/sh\nexit 3\n")
    np_.chmod(0o755)
    res = _save(tmp, "res", _doc())
    copy = tmp / "res-copy"
    shutil.copytree(res, copy)
    return {"tmp": str(tmp), "afile": str(tmp / "afile"), "xml": str(tmp / "j.xml"), "res": str(res),
            "res_copy": str(copy)}


@pytest.mark.parametrize("argv,words", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_exits_2_at_once_without_traceback_or_work(argv, words, files, tmp_path):
    argv = [a.format(**files) for a in argv]
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), PERFSUITE_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("XDG_CACHE_HOME", None)
    if "gate cache is a file" in " ".join(argv) or argv == ["gate", *GOOD]:
        env["PERFSUITE_CACHE_DIR"] = files["afile"]
    before = sorted(os.listdir(files["tmp"]))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "perfsuite", *argv], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=120)
    took = time.perf_counter() - t0
    assert p.returncode == 2, (p.returncode, p.stdout[-500:], p.stderr[-800:])
    assert "Traceback" not in p.stderr, p.stderr[-1500:]
    for w in words:
        assert w in p.stderr, (w, p.stderr[-800:])
    assert took < 15, took  # checked before any work (a fresh interpreter included; no environment is built)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "results").exists()
    assert sorted(os.listdir(files["tmp"])) == before  # nothing written beside the inputs
