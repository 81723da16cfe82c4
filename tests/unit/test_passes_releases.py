"""perfsuite's own graph-pass library on each MXNet release that supports custom passes: built against that
release's lib_api.h (1.8.0.post0: plus apache/mxnet 1.8.0's src/lib_api.cc, which no 1.8 wheel ships), loaded and
applied in a worker of a cached environment of that release, to the small model's classification graph. The
correct rewrite passes; dropping the bias fails; a crashing pass is an error naming the signal; a hanging one is
killed after its timeout.

The 1.8 case needs the file src/lib_api.cc of apache/mxnet at tag 1.8.0: $PERFSUITE_LIB_API_CC, or the copy in
../shared/vendor/ (beside this project) that CI has. Environments are built with uv from PyPI (about 8 s each,
cached); they need the network the first time.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perfsuite.passes.library import LIB_API_CC_ENV

ROOT = Path(__file__).resolve().parents[2]
VENDORED = ROOT.parent / "shared" / "vendor" / "mxnet-1.8.0" / "src" / "lib_api.cc"
GROUP = "small/graph_pass/classification"


def _lib_api_cc() -> str:
    given = os.environ.get(LIB_API_CC_ENV)
    if given:
        return given
    if VENDORED.is_file():
        return str(VENDORED)
    pytest.skip(f"MXNet 1.8.0.post0 needs apache/mxnet 1.8.0's src/lib_api.cc to build a pass library, and no 1.8 "
                f"wheel ships it: set {LIB_API_CC_ENV}=/path/to/mxnet-1.8.0/src/lib_api.cc (e.g. from `git clone "
                f"--branch 1.8.0 https://github.com/apache/mxnet`), or put it at {VENDORED}")


@pytest.fixture(scope="module")
def worker_for(tmp_path_factory):
    """A factory: (spec, extra env) -> a worker in a cached environment of that MXNet release."""
    from perfsuite.gate.venvs import ensure_environment, parse_spec, stage_perfsuite
    from perfsuite.gate.driver import WorkerProcess

    made = []

    def make(spec: str, env: dict) -> WorkerProcess:
        e = ensure_environment(parse_spec(spec))
        w = WorkerProcess(e.python, f"{spec} worker", pythonpath=str(stage_perfsuite()),
                          env={"OMP_NUM_THREADS": "1", **env})
        made.append(w)
        hello = w.request({"cmd": "hello"}, 300)
        assert hello["env"]["mxnet_dist_version"] == spec.split("==")[1]
        return w

    yield make
    for w in made:
        w.close()


def _case(w, passes=None, timeout=None):
    req = {"cmd": "parity", "ops": "none", "models": ["small"], "groups": [GROUP]}
    if passes:
        req["passes"] = passes
    if timeout:
        req["pass_timeout"] = timeout
    [case] = w.request(req, 1800)["cases"]
    return case


@pytest.mark.heavy  # environments (cached), a C++ build per release, the small model's graph
@pytest.mark.parametrize("spec", ["mxnet==1.7.0.post2", "mxnet==1.8.0.post0", "mxnet==1.9.1"])
def test_perfsuites_pass_library_on_every_release_with_custom_passes(spec, worker_for):
    env = {LIB_API_CC_ENV: _lib_api_cc()} if "1.8." in spec else {}
    w = worker_for(spec, env)
    right = _case(w)
    assert right["status"] == "pass", (right["status"], right.get("detail"), right)
    wrong = _case(w, ["perfsuite_drop_bias"])
    # (the status and detail first: pytest shortens the case's dict, and one full-suite run on 2026-12-04 saw
    #  'error' here on 1.7.0.post2, which did not recur alone or with this file, without showing why)
    assert wrong["status"] == "fail" and wrong["worst_ratio"] > 1, (wrong["status"], wrong.get("detail"), wrong)


@pytest.mark.heavy
def test_crashing_and_hanging_passes_on_18(worker_for):
    w = worker_for("mxnet==1.8.0.post0", {LIB_API_CC_ENV: _lib_api_cc()})
    crash = _case(w, ["perfsuite_crash"])
    assert crash["status"] == "error" and "SIGFPE" in crash["detail"], crash
    hang = _case(w, ["perfsuite_hang"], timeout=5)
    assert hang["status"] == "error" and "5" in hang["detail"], hang


def test_without_lib_api_cc_the_18_case_skips_with_the_command_that_fixes_it(monkeypatch):
    monkeypatch.delenv(LIB_API_CC_ENV, raising=False)
    monkeypatch.setattr(__import__(__name__), "VENDORED", Path("/nonexistent/lib_api.cc"))
    with pytest.raises(pytest.skip.Exception, match=f"set {LIB_API_CC_ENV}=/path/to/mxnet-1.8.0/src/lib_api.cc"):
        _lib_api_cc()
