"""perfsuite.timing: the timer measures the computation (not MXNet's enqueue), flags interference per sample,
reports its own overhead, and Measurement keeps honest raw records.

No speed assertions about this machine: the only timing bounds are physical ones (a computation cannot beat a
generous upper bound of the CPU's peak) and the enqueue-vs-compute gap, which is orders of magnitude wide.
"""

from __future__ import annotations

import math
import re
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from perfsuite.errors import PerfsuiteInputError
from perfsuite.timing import (INTERFERENCE_CORE_FRACTION, Measurement, Sample, alternation_orders, time_alternating,
                              time_block, time_callable, timer_overhead)

# ------------------------------------------------------------------------------ the timer waits for MXNet
N = 2048
GEMM_FLOPS = 2.0 * N ** 3  # 17.2 GFLOP for one 2048 x 2048 x 2048 float32 dot
# Generous upper bound of this machine's FP32 peak: every core doing 64 FLOP/cycle (two 512-bit FMA units) at
# 5 GHz. Real CPUs, and certainly this shared 2-core one, are below it, so a synchronized dot cannot be faster
# than GEMM_FLOPS / PEAK_BOUND (27 ms on 2 cores; the dot really takes several hundred ms here).
PEAK_BOUND_FLOPS = (os.cpu_count() or 1) * 64 * 5e9
MIN_GEMM_S = GEMM_FLOPS / PEAK_BOUND_FLOPS


@pytest.fixture(scope="module")
def gemm():
    import mxnet as mx

    if os.environ.get("MXNET_ENGINE_TYPE", "").lower().startswith("naive"):
        pytest.skip("MXNET_ENGINE_TYPE=NaiveEngine runs ops synchronously: nothing to show about the enqueue")
    a = mx.nd.random.uniform(shape=(N, N), dtype="float32")
    b = mx.nd.random.uniform(shape=(N, N), dtype="float32")
    mx.nd.dot(a, b).wait_to_read()  # first call: kernel selection, allocation
    return mx, a, b


def test_synchronized_timer_takes_at_least_the_gemm_cost(gemm):
    mx, a, b = gemm
    samples, warmup = time_callable(lambda: mx.nd.dot(a, b), warmup=1, min_repeat=2, max_repeat=2, min_time_s=0.0)
    assert warmup == 1 and len(samples) == 2
    for s in samples:
        assert s.wall_s >= MIN_GEMM_S, (
            f"a {N}^3 dot timed at {s.wall_s * 1e3:.2f} ms would be above {GEMM_FLOPS / s.wall_s / 1e9:.0f} GFLOP/s, "
            f"beyond the {PEAK_BOUND_FLOPS / 1e9:.0f} GFLOP/s bound: the timer measured the enqueue")


def test_without_sync_only_the_enqueue_is_timed(gemm):
    """What waitall prevents: the same timer with a no-op sync returns long before the product exists."""
    mx, a, b = gemm
    mx.nd.waitall()
    samples, _ = time_callable(lambda: mx.nd.dot(a, b), warmup=0, min_repeat=1, max_repeat=1, min_time_s=0.0,
                               sync=lambda: None)
    enqueue_s = samples[0].wall_s
    t0 = time.perf_counter()
    mx.nd.waitall()  # the computation was still running after the "sample" ended
    rest_s = time.perf_counter() - t0
    assert enqueue_s < MIN_GEMM_S, f"unsynchronized dot took {enqueue_s * 1e3:.2f} ms: is the engine synchronous?"
    assert rest_s + enqueue_s >= MIN_GEMM_S


# ------------------------------------------------------------------------------ interference per sample
SPIN_S = 0.5
SPINNER = ("import sys, time\n"
           "print('spinning', flush=True)\n"
           f"end = time.perf_counter() + {SPIN_S}\n"
           "while time.perf_counter() < end:\n"
           "    pass\n")


@pytest.fixture
def proc_stat():
    if not os.path.exists("/proc/stat"):
        pytest.skip("interference detection reads other processes' CPU time from /proc/stat, which this system "
                    f"({sys.platform}) lacks; samples then carry others_cpu_s = NaN and are never marked")


def test_sample_with_a_busy_child_process_is_contaminated(proc_stat):
    # a child process spinning on a core (not this process's CPU time) while the sample sleeps
    child = subprocess.Popen([sys.executable, "-c", SPINNER], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "spinning"  # the spin has started: interpreter start-up is over
        samples, _ = time_callable(lambda: time.sleep(0.3), warmup=0, min_repeat=1, max_repeat=1, min_time_s=0.0,
                                   sync=lambda: None)
    finally:
        child.wait(timeout=30)
    s = samples[0]
    assert s.others_cpu_s > INTERFERENCE_CORE_FRACTION * s.wall_s, s
    assert s.contaminated, s


def _cpu_ticks_by_process() -> dict:
    """{pid: (command, jiffies)} of every other process, from /proc/<pid>/stat: its own CPU time (utime, stime)
    plus that of its children that exited and were waited for (cutime, cstime), so short-lived processes that
    start and end inside a window are still counted (in their parent)."""
    out = {}
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                raw = fh.read()
        except OSError:  # exited meanwhile
            continue
        comm, rest = raw[raw.index("(") + 1:raw.rindex(")")], raw[raw.rindex(")") + 2:].split()
        out[int(name)] = (comm, sum(int(v) for v in rest[11:15]))  # fields 14-17: utime stime cutime cstime
    return out


def _non_process_ticks() -> dict:
    """Busy time no process is charged for, from /proc/stat: interrupts, soft interrupts, steal (other VMs)."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:9]]
    return {"irq": v[5], "softirq": v[6], "steal": v[7]}


def _spin_here(cpu_seconds: float) -> None:
    end = time.process_time() + cpu_seconds  # CPU time, not wall time: the machine may be descheduling us
    while time.process_time() < end:
        pass


WINDOWS = 6


@pytest.mark.parametrize("body,own_cpu", [(lambda: time.sleep(0.1), False), (lambda: _spin_here(0.1), True)],
                         ids=["sleeping", "busy-in-this-process"])
def test_quiet_sample_is_clean(proc_stat, body, own_cpu):
    """Nobody else busy -> not contaminated, whether this process sleeps or computes (its own CPU time is not
    interference). On a shared machine others may really be busy: retry (WINDOWS windows, 0.5 s apart); when
    every window was contaminated, an independent per-process account (/proc/<pid>/stat) decides between
    "the machine really is busy" (skip, naming the processes) and "the detection is wrong" (fail)."""
    jiffy = 1.0 / os.sysconf("SC_CLK_TCK")
    confirmed = []
    for attempt in range(WINDOWS):
        before, before_np = _cpu_ticks_by_process(), _non_process_ticks()
        samples, _ = time_callable(body, warmup=0, min_repeat=1, max_repeat=1, min_time_s=0.0, sync=lambda: None)
        after_np, after = _non_process_ticks(), _cpu_ticks_by_process()
        s = samples[0]
        if own_cpu:
            assert s.cpu_s >= 0.05, s  # the body really computed in this process
        if not s.contaminated:
            assert s.others_cpu_s <= INTERFERENCE_CORE_FRACTION * s.wall_s + 2 * jiffy, s
            return
        # processes new in the window count with all their time (they started inside it)
        used = {pid: (comm, (t - before.get(pid, (comm, 0))[1]) * jiffy) for pid, (comm, t) in after.items()}
        busy = sorted(((sec, f"{comm}[{pid}]") for pid, (comm, sec) in used.items() if sec > 0), reverse=True)
        busy += [(jiffy * (after_np[k] - before_np[k]), k) for k in after_np if after_np[k] > before_np[k]]
        busy.sort(reverse=True)
        total = sum(sec for sec, _ in busy)
        # the per-process window encloses the sample, so it sees at least the interference the sample saw
        # (less a jiffy of rounding per process that ran)
        if total + jiffy * len(busy) < INTERFERENCE_CORE_FRACTION * s.wall_s:
            pytest.fail(f"sample marked contaminated (others {s.others_cpu_s:.3f} CPU-s in {s.wall_s:.3f} s) but "
                        f"the per-process account (+ irq, softirq, steal) shows only {total:.3f} CPU-s: {busy[:5]}")
        confirmed.append((round(s.others_cpu_s, 3), busy[:3]))
        time.sleep(0.5)
    pytest.skip(f"machine busy: other processes took more than {INTERFERENCE_CORE_FRACTION:.0%} of a core in each "
                f"of {WINDOWS} windows (confirmed per process): {confirmed[:3]}...; the contamination marks were right")


# ------------------------------------------------------------------------------ timer overhead
def test_timer_overhead_is_positive_and_above_a_bare_loop():
    o = timer_overhead(n=300)
    assert set(o) == {"bare_loop_s", "timer_s", "timer_with_waitall_s"}
    assert all(v > 0 and math.isfinite(v) for v in o.values()), o
    assert o["timer_s"] > o["bare_loop_s"], o  # two /proc/stat reads and os.times() per sample vs one call


# ------------------------------------------------------------------------------ time_callable / time_alternating
@pytest.mark.parametrize("kw", [dict(warmup=-1), dict(min_repeat=0), dict(min_repeat=5, max_repeat=4)])
def test_time_callable_rejects_bad_counts(kw):
    with pytest.raises(PerfsuiteInputError, match="warmup >= 0 and 1 <= min_repeat <= max_repeat"):
        time_callable(lambda: None, sync=lambda: None, **kw)


def test_time_callable_warms_up_then_stops_within_max_repeat():
    calls = []
    samples, warm = time_callable(lambda: calls.append(1), warmup=3, min_repeat=2, max_repeat=4, min_time_s=0.0,
                                  max_time_s=60.0, sync=lambda: None)
    assert warm == 3
    assert 2 <= len(samples) <= 4 and len(calls) == 3 + len(samples)


def test_time_callable_samples_at_least_min_time_even_past_max_repeat():
    """--min-time promises 'at least': max_repeat does not cut sampling short of it; max_time_s still ends it."""
    def work():
        t = time.perf_counter()
        while time.perf_counter() - t < 0.002:
            pass

    t0 = time.perf_counter()
    samples, _ = time_callable(work, warmup=0, min_repeat=1, max_repeat=3, min_time_s=0.1, max_time_s=5.0,
                               sync=lambda: None)
    assert time.perf_counter() - t0 >= 0.1 and len(samples) > 3
    t0 = time.perf_counter()
    samples, _ = time_callable(work, warmup=0, min_repeat=1, max_repeat=3, min_time_s=10.0, max_time_s=0.05,
                               sync=lambda: None)
    assert time.perf_counter() - t0 < 2.0  # max_time_s ends it


def test_time_alternating_interleaves():
    order = []
    fns = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    syncs = []
    out = time_alternating(fns, rounds=4, warmup=1, sync=lambda: syncs.append(len(order)), seed=5)
    assert order[:3] == ["a", "b", "c"]  # warm-up of each
    rounds = [order[3 + 3 * i: 6 + 3 * i] for i in range(4)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)  # every round runs each callable once
    assert rounds[1] == rounds[0][::-1] and rounds[3] == rounds[2][::-1]  # counterbalanced in pairs of rounds
    assert syncs == list(range(1, len(order) + 1))  # every call, warm-up included, is followed by a sync
    assert {k: len(v) for k, v in out.items()} == {"a": 4, "b": 4, "c": 4}
    assert all(isinstance(s, Sample) for v in out.values() for s in v)


@pytest.mark.parametrize("rounds", [1, 7])
def test_odd_rounds_give_exactly_that_many_orders(rounds):
    orders = alternation_orders(["base", "cand", "x"], rounds, seed=rounds)
    assert len(orders) == rounds and all(sorted(o) == ["base", "cand", "x"] for o in orders)


def test_alternation_order_is_reproducible_by_default():
    """The default seed is fixed: two runs of the same alternation run the callables in the same order."""
    runs = []
    for _ in range(2):
        order = []
        time_alternating({n: (lambda n=n: order.append(n)) for n in "abcd"}, rounds=1, warmup=0, sync=lambda: None)
        runs.append(order)
    assert runs[0] == runs[1] and sorted(runs[0]) == list("abcd")
    assert alternation_orders(list("abcdefgh"), 3) == alternation_orders(list("abcdefgh"), 3, seed=0)


@pytest.mark.parametrize("rounds", [2, 6, 10])
def test_alternation_is_half_ab_half_ba(rounds):
    orders = alternation_orders(["base", "cand"], rounds, seed=rounds)
    firsts = [o[0] for o in orders]
    assert firsts.count("base") == firsts.count("cand") == rounds // 2
    assert alternation_orders(["base", "cand"], rounds, seed=rounds) == orders  # seeded


def test_time_block_times_calls_and_injects_a_known_slowdown(monkeypatch):
    """On a virtual clock (a busy machine cannot move it): each call takes 2 ms, the block reports the time per
    call, and a 50 % injected slowdown spins for half of each call's own time inside the window."""
    clock = {"t": 0.0}

    def perf_counter():
        clock["t"] += 1e-6  # reading the clock costs a microsecond
        return clock["t"]

    def work():
        clock["t"] += 0.002

    monkeypatch.setattr(time, "perf_counter", perf_counter)
    plain = time_block(work, calls=5, sync=lambda: None).wall_s
    slowed = time_block(work, calls=5, sync=lambda: None, inject_slowdown=0.5).wall_s
    monkeypatch.undo()
    assert 0.002 < plain < 0.00201  # per call, not per block
    assert 1.49 < slowed / plain < 1.51
    with pytest.raises(PerfsuiteInputError, match="calls must be >= 1"):
        time_block(work, calls=0, sync=lambda: None)
    with pytest.raises(PerfsuiteInputError, match="inject_slowdown -0.1"):
        time_block(work, calls=1, sync=lambda: None, inject_slowdown=-0.1)


def test_time_alternating_rejects_zero_rounds():
    with pytest.raises(PerfsuiteInputError, match="rounds must be >= 1"):
        time_alternating({"a": lambda: None}, rounds=0, sync=lambda: None)


# ------------------------------------------------------------------------------ Sample / Measurement
WL = {"model": "small", "path": "hybridized", "task": "classification", "batch": 4, "seq_len": 32}


def measurement(samples, contaminated=None, **kw):
    n = len(samples)
    return Measurement(WL, list(samples), list(contaminated or [False] * n), [0.0] * n, 1, 1e9, **kw)


def test_sample_rejects_negative_and_nan_wall_time():
    for bad in (-1e-3, float("nan")):
        with pytest.raises(PerfsuiteInputError, match="wall time must be >= 0"):
            Sample(bad, 0.0, 0.0, False)


@pytest.mark.parametrize("args,needle", [
    (([], [], []), "needs at least one sample"),
    (([0.1, -0.2], [False, False], [0.0, 0.0]), "sample times must be numbers >= 0"),
    (([0.1, float("nan")], [False, False], [0.0, 0.0]), "sample times must be numbers >= 0"),
    (([0.1, 0.2], [False], [0.0, 0.0]), "must have the same length"),
    (([0.1, 0.2], [False, False], [0.0]), "must have the same length"),
])
def test_measurement_rejects_impossible_records(args, needle):
    with pytest.raises(PerfsuiteInputError, match=needle):
        Measurement(WL, *args, 1, 1e9)


def test_statistics_use_clean_samples_only():
    # 1..9 s clean, two huge contaminated samples that must not move anything
    times = [5.0, 1.0, 100.0, 9.0, 3.0, 7.0, 200.0, 2.0, 8.0, 4.0, 6.0]
    dirty = [t >= 100 for t in times]
    m = measurement(times, dirty)
    clean = np.arange(1.0, 10.0)
    assert m.dropped == 2
    np.testing.assert_array_equal(np.sort(m.clean), clean)
    assert m.median_s == 5.0
    assert m.iqr_s == pytest.approx(np.percentile(clean, 75) - np.percentile(clean, 25)) == 4.0
    assert m.percentile_s(90) == pytest.approx(np.percentile(clean, 90))
    assert m.percentile_s(99) < 100.0
    assert m.throughput == pytest.approx(4 / 5.0)
    assert m.gflops == pytest.approx(1e9 / 5.0 / 1e9)
    assert m.noisy  # IQR 4 s on a 5 s median


def test_all_contaminated_falls_back_to_every_sample_and_says_so():
    m = measurement([1.0, 2.0, 3.0], [True, True, True])
    assert m.dropped == 3 and len(m.clean) == 3 and m.median_s == 2.0


def test_not_noisy_when_tight():
    assert not measurement([1.0, 1.01, 0.99, 1.0]).noisy


def test_to_dict_from_dict_round_trip():
    m = Measurement.from_samples(WL, [Sample(0.2, 0.3, 0.0, False), Sample(0.4, 0.5, 0.3, True),
                                      Sample(0.25, 0.3, float("nan"), False)], warmup=2, flops=3e9,
                                 peak_rss_bytes=123, prepare_s=1.5, meta={"env": {"mxnet_version": "1.9.1"}})
    d = m.to_dict()
    assert d["summary"]["median_s"] == m.median_s and d["summary"]["dropped"] == 1 and d["summary"]["n"] == 3
    back = Measurement.from_dict(d)  # the derived summary is ignored, recomputed from the raw samples
    assert back.samples_s == m.samples_s and back.contaminated == m.contaminated
    assert back.warmup == 2 and back.flops == 3e9 and back.peak_rss_bytes == 123 and back.prepare_s == 1.5
    assert back.meta == m.meta and back.workload == WL
    assert math.isnan(back.others_cpu_s[2])
    assert back.median_s == m.median_s


def test_from_dict_names_missing_keys():
    d = measurement([1.0]).to_dict()
    del d["samples_s"], d["flops"]
    with pytest.raises(PerfsuiteInputError, match="lacks samples_s, flops"):
        Measurement.from_dict(d)


# ------------------------------------------------------------------------------------------------ interference
# The arithmetic of the interference marks, with the two clocks replaced by fakes (the real-clock test above skips
# whenever the machine is busy, which on shared machines is most of the time).
def _fake_clocks(monkeypatch, others_per_call, own_per_call, wall=0.02):
    """Each timed call: the system's busy time grows by others + own, this process's CPU time by own."""
    from perfsuite import timing

    state = {"sys": 0.0, "own": 0.0, "i": 0, "phase": 0}

    def system_busy():
        return state["sys"]

    def own_cpu():
        return state["own"]

    def work():
        i = state["i"]
        state["sys"] += others_per_call[i % len(others_per_call)] + own_per_call
        state["own"] += own_per_call
        state["i"] += 1
        t = time.perf_counter()
        while time.perf_counter() - t < wall:
            pass

    monkeypatch.setattr(timing, "_system_busy_s", system_busy)
    monkeypatch.setattr(timing, "_own_cpu_s", own_cpu)
    return work


def test_own_cpu_time_is_not_interference(monkeypatch):
    work = _fake_clocks(monkeypatch, others_per_call=[0.0], own_per_call=0.04)  # 2 busy threads of our own
    samples, _ = time_callable(work, warmup=0, min_repeat=3, max_repeat=3, min_time_s=0.0, sync=lambda: None)
    assert all(not s.contaminated and s.others_cpu_s == pytest.approx(0.0) for s in samples)


def test_others_beyond_a_quarter_core_contaminate(monkeypatch):
    from perfsuite.timing import _JIFFY

    wall = 0.2  # long enough that the quarter core, not the jiffy allowance, decides
    allowed = INTERFERENCE_CORE_FRACTION * wall + 2 * _JIFFY
    work = _fake_clocks(monkeypatch, others_per_call=[allowed * 0.5, allowed * 1.3], own_per_call=0.01, wall=wall)
    samples, _ = time_callable(work, warmup=0, min_repeat=1, max_repeat=2, min_time_s=0.3, sync=lambda: None)
    marks = [s.contaminated for s in samples]
    assert marks[:2] == [False, True]
    assert samples[1].others_cpu_s == pytest.approx(allowed * 1.3)


def test_contaminated_samples_do_not_count_toward_min_repeat(monkeypatch):
    work = _fake_clocks(monkeypatch, others_per_call=[0.0, 1.0], own_per_call=0.0)  # every second one disturbed
    samples, _ = time_callable(work, warmup=0, min_repeat=3, max_repeat=20, min_time_s=0.0, sync=lambda: None)
    assert sum(not s.contaminated for s in samples) == 3 and len(samples) == 5


def test_only_the_cpus_this_process_may_use_count():
    from perfsuite.timing import _JIFFY, _busy_from_stat

    stat = ("cpu  900 0 900 100 0 0 0 0 0 0\n"
            "cpu0 100 0 100 50 0 0 0 0 0 0\n"
            "cpu1 300 0 300 50 0 0 0 0 0 0\n"
            "cpu2 500 0 500 0 0 0 0 0 0 0\n"
            "intr 12345\n")
    assert _busy_from_stat(stat, frozenset({0, 1})) == pytest.approx(800 * _JIFFY)  # cpu2's busy process ignored
    assert _busy_from_stat(stat, None) == pytest.approx(1800 * _JIFFY)


_PEAK_RSS_SCRIPT = """
import numpy as np
from perfsuite.timing import peak_rss_bytes, peak_rss_reset
ok1 = peak_rss_reset()
before = peak_rss_bytes()
block = np.ones(64 * 2 ** 20 // 8)  # 64 MiB, touched
grown = peak_rss_bytes()
del block
ok2 = peak_rss_reset()
print(ok1, ok2, before, grown, peak_rss_bytes())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS reset uses /proc/self/clear_refs (Linux)")
def test_peak_rss_follows_a_touched_allocation_and_resets():
    """VmHWM grows by at least what was touched and drops again after a reset (memory, not time: deterministic).
    In a fresh process: in the test process, memory freed by earlier tests is reused without growing the RSS."""
    out = subprocess.run([sys.executable, "-c", _PEAK_RSS_SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ok1, ok2, before, grown, after = out.stdout.split()
    before, grown, after = int(before), int(grown), int(after)
    assert ok1 == ok2 == "True"
    assert grown - before >= 60 * 2 ** 20, (before, grown)
    assert after <= grown - 60 * 2 ** 20, (grown, after)


def test_busy_jiffies_are_user_nice_system_irq_softirq_steal_of_allowed_cpus_only():
    """Each field has its own power of two, so the sum says exactly which fields count: user 1, nice 2, system 4,
    irq 32, softirq 64, steal 128 (not idle 8, iowait 16, guest 256, guest_nice 512); a CPU outside the set in
    the middle and a non-numeric cpu line do not end the scan."""
    from perfsuite.timing import _JIFFY, _busy_from_stat

    row = "1 2 4 8 16 32 64 128 256 512"
    stat = f"cpu  9 9 9 9 9 9 9 9 9 9\ncpu0 {row}\ncpufreq 7 7 7\ncpu1 {row}\ncpu2 {row}\nintr 5\n"
    assert _busy_from_stat(stat, frozenset({0, 2})) == pytest.approx(2 * 231 * _JIFFY)
    assert _busy_from_stat(stat, None) == pytest.approx(3 * 231 * _JIFFY)


@pytest.mark.parametrize("change,needle", [
    ({"batch": 0}, "workload batch=0 seq_len=128: must be positive"),
    ({"seq_len": 0}, "workload batch=1 seq_len=0: must be positive"),
    ({"batch": True}, "workload batch=True: expected int"),
    ({"seq_len": 1.5}, "workload seq_len=1.5: expected int"),
    ({"model": None}, "workload model=None: expected str"),
])
def test_measurement_names_the_bad_workload_field(change, needle):
    with pytest.raises(PerfsuiteInputError, match=re.escape(needle)):
        Measurement({**WL, "batch": 1, "seq_len": 128, **change}, [0.1], [False], [0.0], 1, 1e9)
    with pytest.raises(PerfsuiteInputError, match="a measurement's workload must be a dict; got list"):
        Measurement([1, 2], [0.1], [False], [0.0], 1, 1e9)


def test_the_smallest_valid_record_is_accepted():
    """batch 1, sequence length 1 and a zero sample time (a clock tick) are valid."""
    m = Measurement({**WL, "batch": 1, "seq_len": 1}, [0.0, 0.1], [False, False], [0.0, 0.0], 1, 1e9)
    assert m.samples_s == [0.0, 0.1]


def test_summary_names_its_percentiles():
    samples = [i / 100 for i in range(1, 101)]
    m = Measurement(WL, samples, [False] * 100, [0.0] * 100, 1, 1e9)
    s = m.to_dict()["summary"]
    assert sorted(s) == ["dropped", "gflops", "iqr_s", "median_s", "n", "p90_s", "p99_s", "throughput"]
    assert s["p90_s"] == pytest.approx(np.percentile(samples, 90)) and s["p99_s"] == pytest.approx(np.percentile(samples, 99))
    assert s["iqr_s"] == pytest.approx(np.percentile(samples, 75) - np.percentile(samples, 25))


def test_a_block_reports_wall_cpu_and_others_per_call(monkeypatch):
    """time_block divides every figure of the block by the number of calls."""
    work = _fake_clocks(monkeypatch, others_per_call=[0.6], own_per_call=0.3, wall=0.001)
    s = time_block(work, calls=3, sync=lambda: None)
    assert s.cpu_s == pytest.approx(0.3) and s.others_cpu_s == pytest.approx(0.6) and s.contaminated


def test_time_alternating_goes_on_in_whole_pairs_until_each_callable_has_its_minimum(monkeypatch):
    """perfsuite run's one pass: `rounds` at least, then pairs of rounds until every callable has min_clean clean
    samples and min_time_s of sampled time (a short callable gets more samples), max_rounds capping once min_time_s
    is reached; the first rounds are alternation_orders' and the order stays counterbalanced."""
    clock = [0.0]
    order = []
    cost = {"short": 0.01, "long": 0.3}

    def make(n):
        def fn():
            order.append(n)
            clock[0] += cost[n]
        return fn

    import types

    import perfsuite.timing as tm
    monkeypatch.setattr(tm, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(tm, "_system_busy_s", lambda: None)  # no interference marks on a fake clock
    if True:
        out = time_alternating({n: make(n) for n in cost}, rounds=3, warmup=0, sync=lambda: None, min_clean=2,
                               min_time_s=0.095)
        # short needs 10 samples for 0.1 s: rounds go on to 10 (an even count: whole pairs)
        assert len(out["short"]) == len(out["long"]) == 10
        assert [order[2 * k:2 * k + 2] for k in range(3)] == alternation_orders(["short", "long"], 3)
        firsts = [order[2 * k] for k in range(10)]
        assert firsts.count("short") == firsts.count("long")
        order.clear()
        out = time_alternating({n: make(n) for n in cost}, rounds=3, warmup=0, sync=lambda: None, min_clean=2,
                               min_time_s=0.095, max_rounds=6)
        assert len(out["short"]) == 10  # max_rounds caps only once min_time_s is reached
        out = time_alternating({n: make(n) for n in cost}, rounds=3, warmup=0, sync=lambda: None, min_clean=2,
                               min_time_s=0.0)
        assert len(out["short"]) == 3  # the minimum was enough
        with pytest.raises(PerfsuiteInputError, match="max_rounds"):
            time_alternating({n: make(n) for n in cost}, rounds=3, max_rounds=2, sync=lambda: None)
