"""perfsuite's pytest plugin: markers, hypothesis profiles, the environment header, skip helpers and `--benchmark`.

Loaded with `-p perfsuite.pytest_plugin` (pyproject's addopts), so it is active before options are parsed.

`pytest --benchmark`: pytest has no such flag and pytest-benchmark adds none (its options all start with
`--benchmark-`), so this plugin defines it. The benchmarks in tests/bench use pytest-benchmark's `benchmark`
fixture; this plugin decides whether that fixture times or just runs:

* with `--benchmark`, benchmarks are timed by pytest-benchmark and every pytest-benchmark option keeps working
  (`--benchmark-json`, `--benchmark-save`, `--benchmark-autosave`, `--benchmark-compare`, `--benchmark-group-by`,
  `--benchmark-min-rounds`, `--benchmark-max-time`, `--benchmark-columns`, `--benchmark-sort`, ...);
* without it, the plugin sets pytest-benchmark's `--benchmark-disable` before pytest-benchmark reads it, so every
  benchmark body runs exactly once, untimed: a smoke test (CI proves each benchmark works, in seconds);
* pytest-benchmark options that only make sense for timed runs imply `--benchmark`: `--benchmark-enable`,
  `--benchmark-only`, `--benchmark-json`, `--benchmark-save`, `--benchmark-autosave`, `--benchmark-save-data`,
  `--benchmark-compare`, `--benchmark-compare-fail`, `--benchmark-histogram`, `--benchmark-csv`,
  `--benchmark-cprofile` (asking for a JSON file or a comparison and silently getting a smoke run would be
  worse). Options that only tune timing (`--benchmark-min-rounds`, `--benchmark-max-time`,
  `--benchmark-group-by`, `--benchmark-sort`, ...) do not: without `--benchmark` they are accepted and have
  nothing to tune;
* `--benchmark` together with `--benchmark-disable` is a usage error (they contradict each other).

The report header says which mode is in effect (read back from pytest-benchmark's session, so that its own
automatic disabling, e.g. under xdist, is reported truthfully). Tests ask `benchmarks_timed(config)`, which also
decides the workloads: the 'quick' grid when timed, the 'smoke' one otherwise. The `latency` marker (not
`benchmark`: pytest-benchmark owns that name) selects every benchmark: `pytest -m latency`.
"""

from __future__ import annotations

import os
from typing import List, Optional

import pytest
from perfsuite.env import collect_env

__all__ = ["skip_unless_runnable", "benchmarks_timed", "benchmark_mode"]

MARKERS = {
    "gpu": "needs a CUDA build of MXNet and a visible GPU; skipped with the exact reason elsewhere",
    "parity": "numerical parity of an MXNet path against the float64 NumPy reference",
    "slow": "minutes on a 2-core machine (BERT-large, asv's BERT-base classes): run only when asked (`-m slow`)",
    "heavy": "an end-to-end check at full size, over 10 s each (a whole A/A gate, the 1,500-sentence INT8 task, "
             "BERT-base parity and exports): in CI and the README's test command (`-m 'not slow'`), left out of "
             "the default `pytest` so that it stays under 3 minutes",
    "dashboard": "opens the published asv dashboard (.asv/html) in headless Chromium; skipped with the reason "
                 "when there is no published dashboard or no chromium binary",
    # not `benchmark`: pytest-benchmark registers that marker itself (custom settings for one benchmark)
    "latency": "a latency benchmark (tests/bench): timed with `pytest --benchmark`, run once as a smoke test "
               "otherwise",
}

# pytest-benchmark options (their argparse dests) whose explicit use means "time the benchmarks", with the
# value each has when not given.
_TIMING_IMPLYING_OPTIONS = {
    "benchmark_enable": False,
    "benchmark_only": False,
    "benchmark_json": None,
    "benchmark_save": None,
    "benchmark_autosave": None,
    "benchmark_save_data": False,
    "benchmark_compare": [],
    "benchmark_compare_fail": None,
    "benchmark_histogram": [],
    "benchmark_csv": [],
    "benchmark_cprofile": None,
}
_MODE_KEY = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("perfsuite")
    group.addoption(
        "--benchmark", action="store_true", default=False, dest="perfsuite_benchmark",
        help="perfsuite: time the latency and op benchmarks (tests/bench) through pytest-benchmark; all "
             "--benchmark-* options apply. Without it each benchmark runs once, untimed (smoke test).")


def _implying_options(config: pytest.Config) -> list:
    """The timing-only pytest-benchmark options the user gave explicitly, as command-line spellings."""
    given = []
    for dest, default in _TIMING_IMPLYING_OPTIONS.items():
        value = getattr(config.option, dest, default)
        if value not in (default, None, False, []):
            given.append("--" + dest.replace("_", "-"))
    return given


def _configure_benchmarks(config: pytest.Config) -> None:
    """Decide timed vs smoke before pytest-benchmark's own pytest_configure reads --benchmark-disable."""
    have_plugin = config.pluginmanager.hasplugin("benchmark")
    asked = bool(config.getoption("perfsuite_benchmark", False))
    implied = _implying_options(config) if have_plugin else []
    if asked and not have_plugin:
        raise pytest.UsageError("--benchmark needs pytest-benchmark (pip install pytest-benchmark; it is a "
                                "perfsuite dependency) and must not be disabled with -p no:benchmark")
    if asked and getattr(config.option, "benchmark_disable", False):
        raise pytest.UsageError("--benchmark (time the benchmarks) and --benchmark-disable (run them once, "
                                "untimed) contradict each other; drop one")
    timed = asked or bool(implied)
    if have_plugin and not timed:
        config.option.benchmark_disable = True
    config.stash[_MODE_KEY] = {"requested": timed, "asked": asked, "implied_by": implied,
                               "plugin": have_plugin}


def benchmark_mode(config: pytest.Config) -> dict:
    """{'requested': timed?, 'asked': --benchmark given?, 'implied_by': [options], 'plugin': pytest-benchmark?}"""
    return config.stash.get(_MODE_KEY, {"requested": False, "asked": False, "implied_by": [], "plugin": False})


def benchmarks_timed(config: pytest.Config) -> bool:
    """True when benchmarks are really timed in this run (decides which workloads tests/bench parametrizes):
    requested (--benchmark or an implying option) and not disabled by pytest-benchmark itself (e.g. xdist)."""
    session = getattr(config, "_benchmarksession", None)
    return benchmark_mode(config)["requested"] and session is not None and not session.disabled


def _benchmark_header(config: pytest.Config) -> str:
    mode = benchmark_mode(config)
    if not mode["plugin"]:
        return "perfsuite benchmarks: pytest-benchmark is not loaded; tests/bench cannot run"
    if benchmarks_timed(config):
        why = "--benchmark" if mode["asked"] else f"implied by {', '.join(mode['implied_by'])}"
        return f"perfsuite benchmarks: TIMED through pytest-benchmark ({why}); the 'quick' workload grid"
    if mode["requested"]:
        return ("perfsuite benchmarks: timing was requested but pytest-benchmark disabled itself (xdist or a "
                "missing dependency): each benchmark runs once, untimed, on the 'smoke' workloads")
    return ("perfsuite benchmarks: SMOKE-RUN (each benchmark once, untimed, on the 'smoke' workloads); "
            "pass --benchmark to time them")


def _register_hypothesis_profiles() -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # hypothesis is a dependency; tolerate its absence in foreign environments
        return
    # CI: derandomized (same examples every run), no deadline (MXNet's first call per shape is slow),
    # no example database (a fresh checkout must behave like any other).
    settings.register_profile("perfsuite-ci", derandomize=True, deadline=None, database=None,
                              print_blob=True, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("perfsuite-dev", deadline=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("PERFSUITE_HYPOTHESIS_PROFILE")
                          or ("perfsuite-ci" if os.environ.get("CI") else "perfsuite-dev"))


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's pytest_configure builds its session
def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    _register_hypothesis_profiles()
    _configure_benchmarks(config)


def pytest_report_header(config: pytest.Config) -> List[str]:
    return [_env_header(config), _benchmark_header(config)]


def _env_header(config: pytest.Config) -> str:
    try:

        info = collect_env()
        feats = ",".join(k for k in ("CUDA", "CUDNN", "MKLDNN", "BLAS_MKL", "BLAS_OPEN") if info.features.get(k))
        from hypothesis import settings

        return (f"perfsuite: {info.mxnet_distribution} {info.mxnet_dist_version} (mx {info.mxnet_version}; "
                f"{feats or 'no CUDA/MKLDNN'}), gpus={info.num_gpus}, gluonnlp {info.gluonnlp_version}, "
                f"numpy {info.numpy_version}, hypothesis profile {settings._current_profile}")
    except Exception as exc:  # the header must never break a run
        return f"perfsuite: environment not readable ({exc})"


def skip_unless_runnable(reason: Optional[str]) -> None:
    """pytest.skip(reason) when reason is set; reasons come from perfsuite.env / perfsuite.parity.ops.skip_reason."""
    if reason:
        pytest.skip(reason)
