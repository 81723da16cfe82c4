"""The timed callables of perfsuite, in one place: pytest-benchmark, asv and `perfsuite run` all time these.

`timed(workload)` prepares the workload's path once (build, hybridize, export, quantize: setup, never timed)
and returns a zero-argument callable whose body is one synchronized forward pass on inputs already on the
device. `measure(workload)` times it with perfsuite.timing and returns a Measurement with metadata.
"""

from __future__ import annotations

import functools
import math
import time
import zlib
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from perfsuite import __version__
from perfsuite.env import collect_env, skip_reason_gpu
from perfsuite.errors import PerfsuiteInputError
from perfsuite.parity.model import model_weights
from perfsuite.passes import build_pass_library, skip_reason_passes
from perfsuite.paths.model import MODEL_PATHS, Runner, prepare, skip_reason_path
from perfsuite.timing import Measurement, Sample, mxnet_sync, peak_rss_bytes, peak_rss_reset, time_callable
from perfsuite.weights import CONFIGS
from perfsuite.workloads import OP_BENCHMARKS, Workload

__all__ = ["batch_for", "runner_for", "timed", "measure", "gemm_peak_gflops", "skip_reason_workload",
           "environment_meta", "measurement", "OP_BENCHMARKS", "op_callable", "GPU_ONLY_OPS", "skip_reason_op", "op_context"]


def skip_reason_workload(w: Workload) -> Optional[str]:
    """Why the workload cannot run here (its path's reason), or None."""
    reason = skip_reason_path(w.path)
    if reason:
        return reason
    if w.model == "minilm":
        from perfsuite.models import minilm_available

        return minilm_available()
    if w.path == "graph_pass":

        return skip_reason_passes()
    return None


def batch_for(w: Workload, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Benchmark inputs: seeded token ids, two segments, every position valid (the seed pads to seq_len)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, w.cfg.vocab_size, size=(w.batch, w.seq_len)).astype(np.int32)
    types = np.zeros_like(ids)
    types[:, w.seq_len // 2:] = 1
    return ids, types, np.full((w.batch,), w.seq_len, dtype=np.int32)


@functools.lru_cache(maxsize=8)
def runner_for(model: str, path: str, task: str = "classification") -> Tuple[Runner, float]:
    """One prepared runner per (model, path, task graph) per process, and how long preparing it took (seconds)."""

    kwargs: Dict[str, Any] = {}
    if MODEL_PATHS[path].judged_by == "agreement":  # INT8 calibrates on its own seeded batch
        calib = Workload(model, path, "classification", 16, 128)
        kwargs["calib_batches"] = [batch_for(calib, seed=1000)]
    if path == "graph_pass":

        kwargs.update(pass_library=str(build_pass_library()), passes=["perfsuite_identity_rewrite"])
    t0 = time.perf_counter()
    runner = prepare(path, CONFIGS[model], model_weights(model), task=task, **kwargs)
    return runner, time.perf_counter() - t0


def timed(w: Workload) -> Tuple[Callable[[], Any], Runner]:
    """(one synchronized forward pass on prepared inputs, its runner). All setup happens here."""
    runner, _ = runner_for(w.model, w.path, w.task)
    nd_inputs = runner.inputs(*batch_for(w))
    fn = functools.partial(runner.forward, nd_inputs)
    fn()  # first call binds the graph (static_alloc/static_shape allocate per shape): setup, not a sample
    return fn, runner


def environment_meta() -> Dict[str, Any]:
    """What a measurement must carry to be comparable later: MXNet build, versions, threads, machine, time."""

    return {"env": collect_env().to_dict(), "perfsuite_version": __version__,
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def measure(w: Workload, warmup: int = 1, min_repeat: int = 5, max_repeat: int = 30, min_time_s: float = 1.0,
            max_time_s: float = 60.0) -> Measurement:
    """Time one workload alone (warm-up, raw samples, interference marks, peak RSS of this process, metadata)."""
    fn, runner = timed(w)
    peak_rss_reset()
    samples, warm = time_callable(fn, warmup=warmup, min_repeat=min_repeat, max_repeat=max_repeat,
                                  min_time_s=min_time_s, max_time_s=max_time_s, sync=mxnet_sync)
    return measurement(w, samples, warm, runner, peak_rss_bytes=peak_rss_bytes())


def measurement(w: Workload, samples: Sequence[Sample], warmup: int, runner: Runner,
                peak_rss_bytes: Optional[int] = None, **meta: Any) -> Measurement:
    """A Measurement of workload `w` from samples timed here (alone, or alternated with other paths: `meta` says
    how), with the metadata every measurement carries."""
    _, prepare_s = runner_for(w.model, w.path, w.task)
    info = environment_meta()
    info["flags"] = dict(runner.flags)
    info["path_info"] = {k: v for k, v in runner.info.items() if k != "doc"}
    info.update(meta)
    wl = {"model": w.model, "path": w.path, "task": w.task, "batch": w.batch, "seq_len": w.seq_len}
    return Measurement.from_samples(wl, samples, warmup, w.flops, peak_rss_bytes=peak_rss_bytes,
                                    prepare_s=prepare_s, meta=info)


def gemm_peak_gflops(n: int = 2048, repeat: int = 5) -> float:
    """This machine's FP32 GEMM rate through MXNet (best of `repeat` n x n x n products), in GFLOP/s."""
    import mxnet as mx

    a = mx.nd.random.uniform(shape=(n, n))
    b = mx.nd.random.uniform(shape=(n, n))
    best = math.inf
    # dot goes through the BLAS the wheel links, FullyConnected through oneDNN where built; they differ by 2x on
    # some wheels (1.7.0.post2: dot ~88, FullyConnected ~210 GFLOP/s here), so the peak is the faster of the two.
    for fn in (lambda: mx.nd.dot(a, b), lambda: mx.nd.FullyConnected(a, b, num_hidden=n, no_bias=True)):
        samples, _ = time_callable(fn, warmup=1, min_repeat=repeat, max_repeat=repeat, min_time_s=0.0)
        best = min(best, min(s.wall_s for s in samples))
    return 2.0 * n ** 3 / best / 1e9


# ------------------------------------------------------------------------------------------ op benchmarks
#: Op benchmarks that need a CUDA build (CPU builds have no float16 GEMM), with the reason.
GPU_ONLY_OPS: Dict[str, str] = {"fc_float16": "float16 FullyConnected has no CPU kernel in MXNet (float16 GEMMs are "
                                              "CUDA-only)"}


def skip_reason_op(name: str) -> Optional[str]:
    """Why op benchmark `name` cannot run here, or None."""

    if name in GPU_ONLY_OPS:
        reason = skip_reason_gpu()
        if reason:
            return f"{name}: {GPU_ONLY_OPS[name]}; {reason}"
    return None


def op_context(name: str) -> Any:
    """Where op benchmark `name` runs: the GPU on a CUDA build with a visible GPU, else the CPU."""
    import mxnet as mx

    return mx.cpu() if skip_reason_gpu() else mx.gpu(0)


#: Host copies of the op benchmarks' seeded inputs (see op_callable's arr).
_HOST_DATA: Dict[Tuple[Any, ...], np.ndarray] = {}


def op_callable(name: str, batch: int = 8, seq_len: int = 128, heads: int = 12, head_dim: int = 64,
                ctx: Any = None) -> Tuple[Callable[[], Any], Dict[str, str]]:
    """(a synchronized callable running op benchmark `name`, the MXNET_* flags it needs set while timed)."""
    import mxnet as mx

    if name not in OP_BENCHMARKS:
        raise PerfsuiteInputError(f"unknown op benchmark {name!r}; allowed: {', '.join(OP_BENCHMARKS)}")
    ctx = ctx or mx.cpu()
    units = heads * head_dim
    flags: Dict[str, str] = {}
    drawn = [0]

    def arr(shape: Tuple[int, ...], dtype: str = "float32", scale: float = 1.0) -> Any:
        # the same seeded values every time (the k-th array of this benchmark), drawn once per process: the gate
        # prepares several copies of an op per session (new buffers, same data), and drawing millions of normals
        # again for each copy cost more than timing it
        key = (name, batch, seq_len, heads, head_dim, drawn[0], shape, dtype, scale)
        drawn[0] += 1
        if key not in _HOST_DATA:
            seed = zlib.crc32(repr(key).encode())
            _HOST_DATA[key] = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)
        return mx.nd.array(_HOST_DATA[key], ctx=ctx, dtype=dtype)

    length = mx.nd.array(np.full((batch * heads, seq_len), seq_len - 3), ctx=ctx, dtype="int32")
    if name == "attention_interleaved":
        qkv = arr((seq_len, batch, 3 * units))
        hl = mx.nd.array(np.full((batch * heads, seq_len), seq_len - 3), ctx=ctx, dtype="int32")

        def body() -> Any:
            att = mx.nd.contrib.interleaved_matmul_selfatt_qk(qkv, heads=heads)
            att = mx.nd.softmax(att, length=hl, use_length=True, axis=-1)
            return mx.nd.contrib.interleaved_matmul_selfatt_valatt(qkv, att, heads=heads)
    elif name == "attention_naive":
        q, k, v = (arr((batch * heads, seq_len, head_dim)) for _ in range(3))
        mask = mx.nd.array((np.arange(seq_len) < seq_len - 3).astype(np.float32)[None, None, :]
                           .repeat(batch * heads, 0).repeat(seq_len, 1), ctx=ctx)

        def body() -> Any:
            s = mx.nd.batch_dot(q, k, transpose_b=True) / np.sqrt(head_dim)
            s = mx.nd.where(mask, s, mx.nd.ones_like(s) * -1e4)
            return mx.nd.batch_dot(mx.nd.softmax(s, axis=-1) * mask, v)
    elif name in ("softmax_length", "softmax_fp16_safe", "softmax_fp16_unsafe"):
        dtype = "float32" if name == "softmax_length" else "float16"
        x = arr((batch * heads, seq_len, seq_len), dtype, 3.0)
        if dtype == "float16":
            flags["MXNET_SAFE_ACCUMULATION"] = "1" if name.endswith("_safe") else "0"

        def body() -> Any:
            return mx.nd.softmax(x, length=length, use_length=True, axis=-1)
    elif name == "softmax_mask":
        x = arr((batch * heads, seq_len, seq_len), "float32", 3.0)
        mask = mx.nd.array((np.arange(seq_len) < seq_len - 3).astype(np.float32)[None, None, :]
                           .repeat(batch * heads, 0).repeat(seq_len, 1), ctx=ctx)

        def body() -> Any:
            return mx.nd.softmax(mx.nd.where(mask, x, mx.nd.ones_like(x) * -1e4), axis=-1) * mask
    elif name.startswith("layernorm_fp16"):
        x, g, b = arr((batch * seq_len, units), "float16", 3.0), arr((units,), "float16"), arr((units,), "float16")
        flags["MXNET_SAFE_ACCUMULATION"] = "1" if name.endswith("_safe") else "0"

        def body() -> Any:
            return mx.nd.LayerNorm(x, g, b, axis=-1, eps=1e-5)
    else:
        dtype = "float16" if name == "fc_float16" else "float32"
        x, w, b = arr((batch * seq_len, units), dtype), arr((4 * units, units), dtype, 0.02), arr((4 * units,), dtype)

        def body() -> Any:
            return mx.nd.FullyConnected(x, w, b, num_hidden=4 * units)

    def run() -> Any:
        out = body()
        out.wait_to_read()
        return out

    return run, flags
