"""Whole-model BERT inference: latency (time_*), throughput and cost (track_*), peak memory (peakmem_*).

asv style (as numpy/pandas write theirs): `params` / `param_names` over path x batch size x sequence length;
`setup` prepares the path once through perfsuite.bench.timed and keeps the bound callable, so the timed
body is one synchronized forward pass (it ends with mx.nd.waitall()); a combination that cannot run on
this MXNet build (oneDNN and INT8 need MXNet >= 1.7 with MKLDNN; GPU paths need a CUDA build) raises
NotImplementedError in setup, which asv records as skipped.

The default grid is sized for `asv run --quick` over four MXNet versions on a 2-core machine: a broad grid
on the 'small' model (2 layers, 64 units) and BERT-base at sequence length 128, batch 1 and 8, on two paths;
BERT-base GPU paths (batch 1 and 128) for CUDA builds, skipped elsewhere without importing MXNet.
Each (benchmark, parameter combination) runs in a new process (asv spawns them), so every one pays
`import mxnet` and the model's preparation.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, List, Optional, Sequence

from perfsuite.workloads import Workload, asv_params

# The cost track prices this machine's throughput at c5.xlarge's on-demand price (perfsuite.report.markdown.PRICES): a trend
# across MXNet versions, and a bill only where the benchmarks ran on a c5.xlarge.
COST_UNIT = "USD per 1M requests at c5.xlarge's $0.17/h (a bill only when measured on a c5.xlarge)"
TASK = "classification"

# asv (asv_runner >= 0.3) re-runs setup before every timed sample; keeping the bound callable per workload
# makes that re-run free instead of re-binding the graph (the forward pass itself holds no state).
_BOUND: Dict[Workload, Callable[[], Any]] = {}


def bound_forward(model: str, path: str, batch_size: int, seq_len: int) -> Callable[[], Any]:
    """One synchronized forward pass of `model` on `path`, prepared (setup, never timed) on first use."""
    w = Workload(model, path, TASK, int(batch_size), int(seq_len))
    fn = _BOUND.get(w)
    if fn is None:
        from perfsuite import bench

        reason = _gpu_skip_reason(w) or bench.skip_reason_workload(w)
        if reason:
            raise NotImplementedError(f"{w.id}: {reason}")
        fn, _ = bench.timed(w)  # builds/exports/quantizes and runs one binding call
        _BOUND[w] = fn
    return fn


def _gpu_skip_reason(w: Workload) -> Optional[str]:
    """A GPU path on a CPU wheel: the reason, from the installed distribution's name, without `import mxnet`
    (~2 s per skipped combination otherwise). None for CPU paths and CUDA builds (checked fully later)."""
    from perfsuite.env import find_mxnet_distribution
    from perfsuite.paths.model import MODEL_PATHS

    if MODEL_PATHS[w.path].device != "gpu":
        return None
    dist = find_mxnet_distribution()
    if dist is None or not dist.name.startswith("mxnet-cu"):
        found = f"{dist.name} {dist.version}" if dist else "no MXNet distribution"
        return f"needs a CUDA build of MXNet (mxnet-cu102, ...); found {found} (CPU)"
    return None


def cache_key(path: str, batch_size: int, seq_len: int) -> str:
    return f"{path}/b{int(batch_size)}/L{int(seq_len)}"


def measure_grid(model: str, params: Sequence[Sequence[Any]], **timing: Any) -> Dict[str, Dict[str, Any]]:
    """Throughput of every combination of `params` (paths, batch sizes, seq lens), timed by perfsuite.

    For asv's `setup_cache`: one process measures the whole grid with perfsuite's timer (warm-up, clean
    samples, interference marks), and the track_* benchmarks report from it. Throughput and cost then
    come from one and the same measurement, and asv does not prepare the model once per figure.
    Each entry holds either the figures, or "skip" (cannot run here) or "error" (failed; reported by
    that combination alone).
    """
    from perfsuite import bench

    out: Dict[str, Dict[str, Any]] = {}
    for path, batch_size, seq_len in itertools.product(*params):
        w = Workload(model, path, TASK, int(batch_size), int(seq_len))
        key = cache_key(path, batch_size, seq_len)
        reason = _gpu_skip_reason(w) or bench.skip_reason_workload(w)
        if reason:
            out[key] = {"skip": f"{w.id}: {reason}"}
            continue
        try:
            m = bench.measure(w, **timing)
        except Exception as exc:  # one broken path must not take the other combinations down with it
            out[key] = {"error": f"{w.id}: {type(exc).__name__}: {exc}"}
            continue
        out[key] = {"throughput": m.throughput, "median_s": m.median_s, "n": len(m.samples_s),
                    "dropped": m.dropped}
        print(f"{w.id}: median {m.median_s * 1e3:.2f} ms, {m.throughput:.2f} sentences/s "
              f"({len(m.samples_s)} samples, {m.dropped} contaminated)")
    return out


class _Prepared:
    """setup binds the workload's forward pass; subclasses add time_forward or peakmem_forward.

    (asv would discover benchmark methods defined here in every subclass, hence none here.)
    """

    model = "small"
    param_names = ["path", "batch_size", "seq_len"]
    timeout = 600  # seconds per process, including `import mxnet` and the model's preparation

    def setup(self, path: str, batch_size: int, seq_len: int) -> None:
        self.forward = bound_forward(self.model, path, batch_size, seq_len)


class _Throughput:
    """track_throughput / track_cost_per_million from one perfsuite measurement per combination.

    Subclasses define their own `setup_cache` (asv keys the cache by the function's source line: an
    inherited one would be shared between classes).
    """

    model = "small"
    param_names = ["path", "batch_size", "seq_len"]
    timeout = 900
    # timed() already ran one (binding) call; then at least 3 samples and at least 0.5 s, at most 10 s
    timing: Dict[str, Any] = dict(warmup=0, min_repeat=3, max_repeat=20, min_time_s=0.5, max_time_s=10.0)

    def _measure(self) -> Dict[str, Dict[str, Any]]:
        return measure_grid(self.model, self.params, **self.timing)

    def setup(self, cache: Dict[str, Dict[str, Any]], path: str, batch_size: int, seq_len: int) -> None:
        entry = cache[cache_key(path, batch_size, seq_len)]
        if "skip" in entry:
            raise NotImplementedError(entry["skip"])
        if "error" in entry:
            raise RuntimeError(entry["error"])
        self.throughput = float(entry["throughput"])

    def track_throughput(self, cache: Dict[str, Any], path: str, batch_size: int, seq_len: int) -> float:
        return self.throughput

    track_throughput.unit = "sentences/s"  # type: ignore[attr-defined]

    def track_cost_per_million(self, cache: Dict[str, Any], path: str, batch_size: int, seq_len: int) -> float:
        from perfsuite.report.markdown import PRICES, cost_per_million  # the one cost function and price table

        return cost_per_million(PRICES["c5.xlarge"], self.throughput)

    track_cost_per_million.unit = COST_UNIT  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------- small model
class BertSmall(_Prepared):
    """The 'small' model (2 layers, 64 units): every CPU path, batch 1/32, sequence length 80/128."""

    model = "small"
    params: List[List[Any]] = asv_params("BertSmall")  # perfsuite.workloads.ASV_GRIDS

    def time_forward(self, path: str, batch_size: int, seq_len: int) -> None:
        self.forward()


class BertSmallMemory(_Prepared):
    """Peak resident memory of the process (MXNet, the prepared model, one forward pass)."""

    model = "small"
    params: List[List[Any]] = asv_params("BertSmallMemory")  # perfsuite.workloads.ASV_GRIDS

    def peakmem_forward(self, path: str, batch_size: int, seq_len: int) -> None:
        self.forward()


class BertSmallThroughput(_Throughput):
    model = "small"
    params: List[List[Any]] = asv_params("BertSmallThroughput")  # perfsuite.workloads.ASV_GRIDS

    def setup_cache(self) -> Dict[str, Dict[str, Any]]:
        return self._measure()


# ------------------------------------------------------------------------------------------ BERT-base
class BertBase(_Prepared):
    """BERT-base, sequence length 128, batch 1 and 8: GluonNLP hybridized and oneDNN-partitioned."""

    model = "bert-base"
    params: List[List[Any]] = asv_params("BertBase")  # perfsuite.workloads.ASV_GRIDS
    number = 1  # one forward pass per sample (0.1 s to several s here)
    repeat = (2, 10, 30.0)
    warmup_time = 0.0  # setup already ran the binding call

    def time_forward(self, path: str, batch_size: int, seq_len: int) -> None:
        self.forward()


class BertBaseMemory(_Prepared):
    model = "bert-base"
    params: List[List[Any]] = asv_params("BertBaseMemory")  # perfsuite.workloads.ASV_GRIDS

    def peakmem_forward(self, path: str, batch_size: int, seq_len: int) -> None:
        self.forward()


class BertBaseThroughput(_Throughput):
    model = "bert-base"
    params: List[List[Any]] = asv_params("BertBaseThroughput")  # perfsuite.workloads.ASV_GRIDS
    # ~0.15-1 s per call here: exactly 3 samples per combination unless they take over 20 s
    timing: Dict[str, Any] = dict(warmup=0, min_repeat=3, max_repeat=3, min_time_s=0.0, max_time_s=20.0)

    def setup_cache(self) -> Dict[str, Dict[str, Any]]:
        return self._measure()


# ------------------------------------------------------------------------------------ BERT-base on a GPU
# CUDA builds only (an asv machine whose matrix installs mxnet-cu102, see asv.conf.json and the README):
# FP32, FP16 with FP32 accumulation, and the seed's fastest setting (true FP16), at batch 1 and 128. On CPU
# wheels every combination is skipped from the distribution's name, without importing MXNet.
class BertBaseGPU(_Prepared):
    model = "bert-base"
    params: List[List[Any]] = asv_params("BertBaseGPU")  # perfsuite.workloads.ASV_GRIDS
    number = 1
    repeat = (2, 10, 30.0)
    warmup_time = 0.0

    def time_forward(self, path: str, batch_size: int, seq_len: int) -> None:
        self.forward()


class BertBaseGPUThroughput(_Throughput):
    model = "bert-base"
    params: List[List[Any]] = asv_params("BertBaseGPUThroughput")  # perfsuite.workloads.ASV_GRIDS
    timing: Dict[str, Any] = dict(warmup=0, min_repeat=5, max_repeat=50, min_time_s=1.0, max_time_s=20.0)

    def setup_cache(self) -> Dict[str, Dict[str, Any]]:
        return self._measure()
