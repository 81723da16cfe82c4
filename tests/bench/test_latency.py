"""Whole-model latency benchmarks over perfsuite.workloads, timed by pytest-benchmark.

`pytest --benchmark tests/bench`: the 'quick' profile (BERT-base, seq 128, batch 1..32, the main CPU paths) is
timed with `benchmark.pedantic` on perfsuite.bench.timed's callable (one forward pass ending in waitall, inputs
already prepared; building, hybridizing, exporting, quantizing and the first, binding call are setup, never
timed). Rounds follow pytest-benchmark's own options: max(--benchmark-min-rounds, ceil(--benchmark-max-time /
first-call time)), after one warm-up round. `--benchmark-json`, `--benchmark-save`, `--benchmark-compare`,
`--benchmark-group-by` etc. work as usual; each benchmark's `group` is "<model> L<seq_len> <path>", so the
default table lists batch sizes per path. `extra_info` carries the workload, FLOPs, throughput (sentences/s at
the median), GFLOP/s, the rounds other processes disturbed (from /proc/stat, as perfsuite.timing does) and the
environment metadata.

`pytest tests/bench` (no --benchmark): a smoke run: the 'smoke' profile (2-layer model) and one BERT-base
batch-1 workload, each run once untimed, proving every benchmark works. GPU paths are parametrized in both
modes and skip with the exact reason on CPU builds. See perfsuite/pytest_plugin.py for the --benchmark rules.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import pytest

from perfsuite.bench import environment_meta, runner_for, skip_reason_workload, timed
from perfsuite.paths.model import MODEL_PATHS, to_outputs
from perfsuite.pytest_plugin import benchmarks_timed
from perfsuite.timing import _contaminated, _own_cpu_s, _system_busy_s
from perfsuite.workloads import GPU_PATHS, ORT_PATHS, PROFILES, Workload, select

pytestmark = [
    pytest.mark.latency,
    # MXNet's optimize_for/quantize on an imported SymbolBlock: inputs carry no dtype in the JSON (harmless)
    pytest.mark.filterwarnings("ignore:Cannot decide type for the following arguments:UserWarning"),
]

WARMUP_ROUNDS = 1
ARGNAMES = ("model", "path", "task", "batch", "seq_len")


def workloads(timed_run: bool) -> List[Tuple[str, Workload]]:
    """(profile label, workload) pairs this run benchmarks; GPU paths included (they skip on CPU builds), and the
    ONNX Runtime paths (they skip without the `onnx` extra); timed runs add `exported`, ORT's MXNet counterpart."""
    if timed_run:
        quick = PROFILES["quick"]
        return [("quick", w) for w in select("quick", paths=("exported",) + quick.paths + GPU_PATHS + ORT_PATHS)]
    smoke = PROFILES["smoke"]
    picked = [("smoke", w) for w in select("smoke", paths=smoke.paths + GPU_PATHS + ORT_PATHS)]
    picked.append(("smoke", Workload("bert-base", "hybridized", "classification", 1, 128)))
    return picked


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.function.__name__ != "test_latency":
        return
    params = []
    for label, w in workloads(benchmarks_timed(metafunc.config)):
        marks = [pytest.mark.gpu] if MODEL_PATHS[w.path].device == "gpu" else []
        params.append(pytest.param(w.model, w.path, w.task, w.batch, w.seq_len, marks=marks,
                                   id=f"{label}-{w.model}-{w.path}-{w.task}-b{w.batch}-L{w.seq_len}"))
    metafunc.parametrize(ARGNAMES, params)


class Interference:
    """pedantic's setup/teardown pair: other processes' CPU time during each round (outside the timed call)."""

    def __init__(self) -> None:
        self.others_s: List[float] = []
        self.contaminated: List[bool] = []
        self._start: Optional[Tuple[Optional[float], float, float]] = None

    def setup(self) -> None:
        self._start = (_system_busy_s(), _own_cpu_s(), time.perf_counter())

    def teardown(self, *args: object, **kwargs: object) -> None:
        t1, own1, sys1 = time.perf_counter(), _own_cpu_s(), _system_busy_s()
        sys0, own0, t0 = self._start
        others = max(0.0, (sys1 - sys0) - (own1 - own0)) if sys0 is not None and sys1 is not None else math.nan
        self.others_s.append(others)
        self.contaminated.append(_contaminated(t1 - t0, others))


def rounds_for(config: pytest.Config, first_call_s: float) -> int:
    """pytest-benchmark's own rule: enough rounds to fill --benchmark-max-time, at least --benchmark-min-rounds."""
    min_rounds = int(config.getoption("benchmark_min_rounds"))
    max_time = float(config.getoption("benchmark_max_time"))
    return max(min_rounds, math.ceil(max_time / max(first_call_s, 1e-9)))


def test_latency(benchmark, request: pytest.FixtureRequest, model: str, path: str, task: str, batch: int,
                 seq_len: int) -> None:
    w = Workload(model, path, task, batch, seq_len)
    reason = skip_reason_workload(w)
    if reason:
        pytest.skip(reason)
    _, prepare_s = runner_for(w.model, w.path, w.task)  # build/hybridize/export/quantize: cached per graph
    t0 = time.perf_counter()
    fn, runner = timed(w)  # device inputs + the first (binding) forward: setup, not a sample
    first_call_s = time.perf_counter() - t0

    benchmark.group = f"{w.model} L{w.seq_len} {w.path}"
    benchmark.extra_info.update(
        workload={"model": w.model, "path": w.path, "task": w.task, "batch": w.batch, "seq_len": w.seq_len},
        id=w.id, flops=w.flops, prepare_s=prepare_s, first_call_s=first_call_s, flags=dict(runner.flags),
        meta=environment_meta())

    rec = Interference()
    rounds = rounds_for(request.config, first_call_s)
    out = benchmark.pedantic(fn, setup=rec.setup, teardown=rec.teardown, rounds=rounds,
                             warmup_rounds=WARMUP_ROUNDS, iterations=1)

    if benchmark.stats is not None:  # timed run (None when pytest-benchmark is disabled: smoke run)
        median = benchmark.stats.stats.median
        marks = rec.contaminated[WARMUP_ROUNDS:]
        benchmark.extra_info.update(
            throughput=w.batch / median, gflops=w.flops / median / 1e9, rounds=rounds,
            warmup_rounds=WARMUP_ROUNDS, others_cpu_s=rec.others_s[WARMUP_ROUNDS:],
            contaminated_rounds=int(sum(marks)))

    # what was timed is a real forward pass: outputs of the right shapes, finite (checked outside the timing)
    outputs = to_outputs(out, w.task, np.full(w.batch, w.seq_len))
    shape = {"classification": (w.batch, 2), "qa": (w.batch, w.seq_len, 2),
             "embedding": (w.batch, w.seq_len, w.cfg.units)}[w.task]
    assert next(iter(outputs.values())).shape == shape
    assert all(np.isfinite(a).all() for a in outputs.values())


# ------------------------------------------------------------------ the --benchmark switch (perfsuite's plugin)
ROOT = Path(__file__).resolve().parents[2]


def _collect(*opts: str) -> "subprocess.CompletedProcess[str]":
    """`pytest --collect-only` of this module in a fresh process (options are parsed once per process)."""
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-p", "no:cacheprovider",
                           "tests/bench/test_latency.py", "-k", "test_latency", *opts],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("opts,timed_run,why", [
    (("--benchmark",), True, "TIMED through pytest-benchmark (--benchmark)"),
    (("--benchmark-json", "{tmp}/unused.json"), True, "TIMED through pytest-benchmark (implied by --benchmark-json)"),
    # tuning options alone do not switch timing on (this is also the plain `pytest` case)
    (("--benchmark-min-rounds", "3"), False, "SMOKE-RUN"),
], ids=["benchmark", "json-implies", "tuning-only"])  # one fresh pytest process each (~3 s): the switch end to end
def test_benchmark_switch(opts, timed_run, why, tmp_path):
    r = _collect(*(o.format(tmp=tmp_path) for o in opts))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"perfsuite benchmarks: {why}" in r.stdout
    ids = [line for line in r.stdout.splitlines() if "test_latency[" in line]
    expected = workloads(timed_run)
    assert len(ids) == len(expected)
    assert all(("quick-bert-base" if timed_run else "smoke-") in line for line in ids)


def test_benchmark_and_benchmark_disable_contradict():
    r = _collect("--benchmark", "--benchmark-disable")
    assert r.returncode == 4  # pytest's usage error
    assert "--benchmark (time the benchmarks) and --benchmark-disable" in r.stderr
