"""A synchronized timer that keeps raw samples, flags interference per sample, and records what was measured.

MXNet's engine is asynchronous (on CPU too): a call returns after enqueueing. Every timed call here ends with
`mx.nd.waitall()`, so a sample is the computation, not the enqueue. These machines are shared: for each sample
the timer also reads the CPU time all *other* processes used meanwhile (/proc/stat minus this process), and a
sample during which others took more than a quarter of a core is marked contaminated. Statistics use the clean
samples; how many were dropped is reported. Records are typed: raw samples plus metadata, never summaries alone.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from perfsuite.errors import PerfsuiteInputError

__all__ = ["Sample", "Measurement", "time_callable", "time_alternating", "alternation_orders", "time_block",
           "timer_overhead", "mxnet_sync",
           "peak_rss_reset", "peak_rss_bytes", "rss_bytes", "INTERFERENCE_CORE_FRACTION", "MEASUREMENT_FORMAT_VERSION"]

MEASUREMENT_FORMAT_VERSION = 1
INTERFERENCE_CORE_FRACTION = 0.25  # others using > 1/4 core during a sample contaminate it
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_JIFFY = 1.0 / _CLK_TCK


def mxnet_sync() -> None:
    """Block until MXNet's engine has finished everything queued."""
    import mxnet as mx

    mx.nd.waitall()


def _allowed_cpus() -> Optional[frozenset]:
    """The CPUs this process may run on (its affinity); None where the platform cannot say."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None




def _busy_from_stat(text: str, cpus: Optional[frozenset]) -> float:
    """Busy jiffies (user, nice, system, irq, softirq, steal) summed over the per-CPU lines of `cpus` (every CPU
    when None). Only the CPUs this process can use matter: on a 64-core host a busy process pinned elsewhere does
    not disturb a sample here."""
    total = 0
    for line in text.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        parts = line.split()
        try:
            cpu = int(parts[0][3:])
        except ValueError:
            continue
        if cpus is not None and cpu not in cpus:
            continue
        vals = [int(v) for v in parts[1:9]]  # user nice system idle iowait irq softirq steal
        total += vals[0] + vals[1] + vals[2] + vals[5] + vals[6] + vals[7]
    return total * _JIFFY


def _system_busy_s() -> Optional[float]:
    """CPU seconds spent busy on the CPUs this process may use now (its affinity can change: the upgrade gate pins
    its workers while it times them), from the per-CPU lines of /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    return _busy_from_stat(text, _allowed_cpus())


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


@dataclass(frozen=True)
class Sample:
    """One timed call: wall time, this process's CPU time, other processes' CPU time meanwhile."""

    wall_s: float
    cpu_s: float
    others_cpu_s: float  # NaN where /proc/stat is unavailable
    contaminated: bool

    def __post_init__(self) -> None:
        if not self.wall_s >= 0:
            raise PerfsuiteInputError(f"a sample's wall time must be >= 0; got {self.wall_s!r}")


def _contaminated(wall: float, others: float) -> bool:
    # /proc/stat counts in jiffies (10 ms): allow two jiffies of rounding before calling a sample contaminated
    return bool(others == others and others > INTERFERENCE_CORE_FRACTION * wall + 2 * _JIFFY)


def _one(fn: Callable[[], Any], sync: Callable[[], None]) -> Sample:
    sys0, own0, t0 = _system_busy_s(), _own_cpu_s(), time.perf_counter()
    fn()
    sync()
    t1, own1, sys1 = time.perf_counter(), _own_cpu_s(), _system_busy_s()
    wall, own = t1 - t0, own1 - own0
    others = max(0.0, (sys1 - sys0) - own) if sys0 is not None and sys1 is not None else float("nan")
    return Sample(wall, own, others, _contaminated(wall, others))


def _spin_until(deadline: float) -> None:
    while time.perf_counter() < deadline:
        pass


def time_block(fn: Callable[[], Any], calls: int, sync: Callable[[], None] = mxnet_sync,
               inject_slowdown: float = 0.0) -> Sample:
    """One sample of `calls` synchronized calls in a row, as the time per call (short ops are timed in blocks so
    that the timer's own cost, read outside the window, is negligible).

    `inject_slowdown` (testing the upgrade gate only): after each call, busy-wait for that fraction of the
    call's own duration, inside the timed window, so the callable is slower by a known fraction.
    """
    if calls < 1:
        raise PerfsuiteInputError(f"calls must be >= 1; got {calls}")
    if not 0.0 <= inject_slowdown < 10.0:
        raise PerfsuiteInputError(f"inject_slowdown {inject_slowdown!r}: allowed 0 <= fraction < 10")

    def block() -> None:
        for _ in range(calls):
            c0 = time.perf_counter()
            fn()
            sync()
            if inject_slowdown:
                c1 = time.perf_counter()
                _spin_until(c1 + inject_slowdown * (c1 - c0))

    s = _one(block, lambda: None)
    return Sample(s.wall_s / calls, s.cpu_s / calls, s.others_cpu_s / calls, s.contaminated)


def time_callable(fn: Callable[[], Any], warmup: int = 2, min_repeat: int = 5, max_repeat: int = 50,
                  min_time_s: float = 2.0, max_time_s: float = 60.0,
                  sync: Callable[[], None] = mxnet_sync) -> Tuple[List[Sample], int]:
    """Warm up, then time `fn` until min_repeat clean samples and at least min_time_s of sampling; max_repeat caps
    the count only once min_time_s is reached, and max_time_s ends sampling whatever else holds.

    Returns (samples, warmup count). Contaminated samples are kept (marked) and do not count toward min_repeat.
    """
    if warmup < 0 or min_repeat < 1 or max_repeat < min_repeat:
        raise PerfsuiteInputError(f"need warmup >= 0 and 1 <= min_repeat <= max_repeat; got {warmup}, "
                                  f"{min_repeat}, {max_repeat}")
    for _ in range(warmup):
        fn()
        sync()
    samples: List[Sample] = []
    start = time.perf_counter()
    while True:
        samples.append(_one(fn, sync))
        clean = sum(not s.contaminated for s in samples)
        elapsed = time.perf_counter() - start
        if clean >= min_repeat and elapsed >= min_time_s:
            break
        if elapsed >= max_time_s or (len(samples) >= max_repeat and elapsed >= min_time_s):
            break
    return samples, warmup


def _order_stream(names: Sequence[str], seed: int) -> Iterator[List[str]]:
    rng = np.random.default_rng(seed)
    while True:
        order = [names[i] for i in rng.permutation(len(names))]
        yield order
        yield order[::-1]


def alternation_orders(names: Sequence[str], rounds: int, seed: int = 0) -> List[List[str]]:
    """The order of each round of an alternation, counterbalanced: rounds come in pairs, a seeded shuffle and
    its reverse, so for any two callables exactly half of each pair of rounds runs one first (Pinpoint's half AB,
    half BA), and an odd last round is a fresh shuffle."""
    stream = _order_stream(list(names), seed)
    return [next(stream) for _ in range(rounds)]


def time_alternating(fns: Dict[str, Callable[[], Any]], rounds: int = 6, warmup: int = 1,
                     sync: Callable[[], None] = mxnet_sync, seed: int = 0, min_clean: int = 0,
                     min_time_s: float = 0.0, max_rounds: Optional[int] = None, max_time_s: float = float("inf"),
                     on_round: Optional[Callable[[int], None]] = None) -> Dict[str, List[Sample]]:
    """Time several callables in alternation, one sample each per round in a counterbalanced order
    (`alternation_orders`), so drift and interference hit them alike and no callable always runs first.

    `rounds` rounds at least; then, in whole pairs of rounds (the order stays counterbalanced), until every
    callable has `min_clean` clean samples and `min_time_s` of sampled time (time_callable's rule per callable, so
    a short callable still gets enough samples), capped by `max_rounds` once min_time_s is reached and by
    `max_time_s` of sampling in all whatever else holds. `on_round(k)` is called after round k (1-based).
    """
    if rounds < 1:
        raise PerfsuiteInputError(f"rounds must be >= 1; got {rounds}")
    if max_rounds is not None and max_rounds < rounds:
        raise PerfsuiteInputError(f"max_rounds ({max_rounds}) must be >= rounds ({rounds})")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
            sync()
    out: Dict[str, List[Sample]] = {k: [] for k in fns}
    names = list(fns)
    start = time.perf_counter()

    def satisfied() -> bool:
        return all(sum(not s.contaminated for s in out[n]) >= min_clean and sum(s.wall_s for s in out[n]) >= min_time_s
                   for n in names)

    def timed_enough() -> bool:
        return all(sum(s.wall_s for s in out[n]) >= min_time_s for n in names)

    stream = _order_stream(names, seed)  # alternation_orders' rounds, and on past them
    k = 0
    while True:
        for name in next(stream):
            out[name].append(_one(fns[name], sync))
        k += 1
        if on_round is not None:
            on_round(k)
        if k < rounds or (k > rounds and k % 2):
            continue  # the minimum, then up to whole pairs
        if satisfied() or time.perf_counter() - start >= max_time_s:
            break
        if max_rounds is not None and k >= max_rounds and timed_enough():
            break
    return out


def timer_overhead(n: int = 2000) -> Dict[str, float]:
    """The timer's own cost per sample next to a bare perf_counter loop, in seconds (no MXNet work)."""
    t0 = time.perf_counter()
    for _ in range(n):
        time.perf_counter()
    bare = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n):
        _one(lambda: None, lambda: None)
    ours = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(min(n, 500)):
        _one(lambda: None, mxnet_sync)
    with_sync = (time.perf_counter() - t0) / min(n, 500)
    return {"bare_loop_s": bare, "timer_s": ours, "timer_with_waitall_s": with_sync}


def peak_rss_reset() -> bool:
    """Reset the process's peak RSS (Linux: write 5 to /proc/self/clear_refs); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _status_kib(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_rss_bytes() -> Optional[int]:
    """Peak resident set size since the last reset (VmHWM), in bytes; None where unavailable."""
    return _status_kib("VmHWM")


def rss_bytes() -> Optional[int]:
    """Resident set size now (VmRSS), in bytes; None where unavailable."""
    return _status_kib("VmRSS")


@dataclass
class Measurement:
    """Raw samples of one workload plus everything needed to interpret and compare them later."""

    workload: Dict[str, Any]  # model, path, task, batch, seq_len (perfsuite.workloads.Workload as a dict)
    samples_s: List[float]
    contaminated: List[bool]
    others_cpu_s: List[float]
    warmup: int
    flops: float
    peak_rss_bytes: Optional[int] = None
    prepare_s: Optional[float] = None
    meta: Dict[str, Any] = field(default_factory=dict)  # env, flags, threads, perfsuite version, time

    def __post_init__(self) -> None:
        n = len(self.samples_s)
        if n == 0:
            raise PerfsuiteInputError(f"a measurement needs at least one sample ({self.workload})")
        if len(self.contaminated) != n or len(self.others_cpu_s) != n:
            raise PerfsuiteInputError("samples_s, contaminated and others_cpu_s must have the same length")
        if any(not isinstance(s, (int, float)) or not (s >= 0) for s in self.samples_s):
            raise PerfsuiteInputError(f"sample times must be numbers >= 0 ({self.workload})")
        w = self.workload
        if not isinstance(w, dict):
            raise PerfsuiteInputError(f"a measurement's workload must be a dict; got {type(w).__name__}")
        for key, kind in (("model", str), ("path", str), ("task", str), ("batch", int), ("seq_len", int)):
            if not isinstance(w.get(key), kind) or isinstance(w.get(key), bool):
                raise PerfsuiteInputError(f"workload {key}={w.get(key)!r}: expected {kind.__name__}")
        if w["batch"] < 1 or w["seq_len"] < 1:
            raise PerfsuiteInputError(f"workload batch={w['batch']} seq_len={w['seq_len']}: must be positive")

    @classmethod
    def from_samples(cls, workload: Dict[str, Any], samples: Sequence[Sample], warmup: int, flops: float,
                     **kw: Any) -> "Measurement":
        return cls(workload, [s.wall_s for s in samples], [s.contaminated for s in samples],
                   [s.others_cpu_s for s in samples], warmup, flops, **kw)

    @property
    def clean(self) -> np.ndarray:
        """Clean samples; all samples when every one was contaminated (then `dropped` says so)."""
        arr = np.array(self.samples_s)
        keep = ~np.array(self.contaminated)
        return arr[keep] if keep.any() else arr

    @property
    def dropped(self) -> int:
        return int(sum(self.contaminated))

    @property
    def median_s(self) -> float:
        return float(np.median(self.clean))

    @property
    def iqr_s(self) -> float:
        q1, q3 = np.percentile(self.clean, [25, 75])
        return float(q3 - q1)

    def percentile_s(self, q: float) -> float:
        return float(np.percentile(self.clean, q))

    @property
    def noisy(self) -> bool:
        """IQR above 10 % of the median (torch.utils.benchmark's warning level)."""
        return self.iqr_s > 0.1 * self.median_s

    @property
    def throughput(self) -> float:
        """Sentences per second at the median latency (a typical batch)."""
        return self.workload["batch"] / self.median_s

    @property
    def mean_s(self) -> float:
        return float(np.mean(self.clean))

    @property
    def throughput_mean(self) -> float:
        """Long-run sentences per second: batch / mean latency (what a server sustains, and pays for)."""
        return self.workload["batch"] / self.mean_s

    @property
    def gflops(self) -> float:
        return self.flops / self.median_s / 1e9

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["summary"] = {"median_s": self.median_s, "iqr_s": self.iqr_s, "p90_s": self.percentile_s(90),
                        "p99_s": self.percentile_s(99), "throughput": self.throughput, "gflops": self.gflops,
                        "dropped": self.dropped, "n": len(self.samples_s)}
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Measurement":
        keys = ("workload", "samples_s", "contaminated", "others_cpu_s", "warmup", "flops", "peak_rss_bytes",
                "prepare_s", "meta")
        missing = [k for k in keys[:6] if k not in d]
        if missing:
            raise PerfsuiteInputError(f"measurement record lacks {', '.join(missing)}")
        return cls(**{k: d.get(k) for k in keys if k in d})
