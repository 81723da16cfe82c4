"""A long-lived worker process inside one MXNet environment, driven over a pipe by the upgrade gate.

Protocol: one JSON object per line on stdin (a request), one JSON object per line back (the reply). The worker
keeps its real stdout for replies only and points file descriptor 1 at stderr, so whatever MXNet, OpenMP or a
pass library prints cannot corrupt the protocol.

Requests (``cmd``): ``hello`` (environment, installed distributions), ``parity`` (the op grid and whole-model
cases, outcomes per case), ``prepare`` (build a target once: an op benchmark or a model workload, warm it up,
measure one call), ``time`` (one block of calls of a prepared target: time per call and interference marks;
``inject`` slows it by a known fraction, for testing the gate only), ``release`` (drop a prepared target),
``memory`` (peak and current resident memory, after more calls of a prepared target), ``quit``.
Replies carry ``ok``; a failed request replies ``{"ok": false, "error": ..., "kind": "input" | "error"}`` and the
worker stays alive. This module is the child (``python -m perfsuite.gate.worker``) and the protocol's constants;
the driver's side, `WorkerProcess`, is perfsuite.gate.driver (the child never imports it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import perfsuite
from perfsuite import bench
from perfsuite.env import collect_env
from perfsuite.errors import PerfsuiteInputError, one_line
from perfsuite.flags import mxnet_flags
from perfsuite.parity import ops as parity
from perfsuite.parity.model import ModelCase, own_pass_selection, run_model_cases
from perfsuite.parity.trace import trace_case
from perfsuite.paths.model import MODEL_PATHS
from perfsuite.paths.onnx import onnx_versions, skip_reason_onnx
from perfsuite.timing import mxnet_sync, peak_rss_bytes, rss_bytes, time_block
from perfsuite.workloads import MODEL_PARITY_SHAPES, Target

__all__ = ["main", "PROTOCOL_VERSION", "CPUS_ENV"]

#: The version of the request/reply protocol (the hello reply carries it).
PROTOCOL_VERSION = 1
#: The CPUs a worker runs on (comma-separated), set before MXNet starts any thread, so all of them inherit it.
CPUS_ENV = "PERFSUITE_WORKER_CPUS"


class _State:
    def __init__(self) -> None:
        self.prepared: Dict[str, Tuple[List[Callable[[], Any]], Dict[str, str]]] = {}
        self.spacers: List[Any] = []  # allocations that shift where each op copy's arrays land (kept alive)


def _freeze() -> List[str]:
    import importlib.metadata as md

    seen = {}
    for d in md.distributions():
        name = d.metadata.get("Name")
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={d.version}"
    return sorted(seen.values(), key=str.lower)


def _hello(state: _State, req: Dict[str, Any]) -> Dict[str, Any]:
    if req.get("light"):  # a session's workers: the gate read the environment once already (collect_env imports
        return {"pid": os.getpid(), "protocol": PROTOCOL_VERSION}  # MXNet and reads the machine: 1-3 s a worker)
    info = collect_env()
    onnx: Optional[Dict[str, Any]] = None
    if req.get("runtime") == "onnxruntime":  # an ONNX Runtime candidate: its versions, or why it cannot run

        problem = skip_reason_onnx("onnxruntime")
        if problem:
            raise PerfsuiteInputError(f"ONNX Runtime cannot run in this environment: {problem}")
        onnx = dict(onnx_versions())
    return {"env": info.to_dict(), "describe": info.describe_mxnet(), "freeze": _freeze(), "onnx": onnx,
            "perfsuite_file": perfsuite.__file__, "perfsuite_version": perfsuite.__version__,
            "python": sys.executable, "pid": os.getpid(), "protocol": PROTOCOL_VERSION}


def _parity(state: _State, req: Dict[str, Any]) -> Dict[str, Any]:
    ops = req.get("ops", "all")
    groups = list(req.get("groups") or [])  # only cases whose group starts with one of these (bisect's checks)

    def wanted(group: str) -> bool:
        return not groups or any(group.startswith(g) for g in groups)

    op_out: List[Dict[str, Any]] = []
    if ops != "none":
        cases = [c for c in parity.default_cases(devices=["cpu", "gpu"], quick=ops == "quick")
                 if wanted(f"{c.path}/{c.mode}/{c.device}")]
        for o in parity.run_cases(cases):
            op_out.append({"id": f"op:{o.case.id}", "group": f"{o.case.path}/{o.case.mode}/{o.case.device}",
                           "status": o.status, "detail": o.detail.splitlines()[0][:300] if o.detail else "",
                           "worst_ratio": None if o.comparison is None else o.comparison.worst_ratio})
    model_out: List[Dict[str, Any]] = []
    models = list(req.get("models") or [])
    if models:
        lib, passes, no_lib = own_pass_selection()
        if req.get("passes") and lib:  # perfsuite's own passes by name (the wrong, crashing, hanging ones: tests)
            passes = tuple(req["passes"])
        from perfsuite.models import TASKS

        # path_map (an ONNX Runtime candidate): run path_map[p] and report it under MXNet path p, so the gate
        # matches it with the baseline's case; paths: only these MXNet paths (the baseline of such a gate)
        path_map: Dict[str, str] = dict(req.get("path_map") or {})
        paths = list(path_map) or list(req.get("paths") or MODEL_PATHS)
        mcases = [ModelCase(m, path_map.get(p, p), *MODEL_PARITY_SHAPES[m], "text" if m == "minilm" else "random",
                            task=t)
                  for m in models for p in paths for t in TASKS if wanted(f"{m}/{p}/{t}")]
        shown = {v: k for k, v in path_map.items()}
        timeout = req.get("pass_timeout")
        for o in run_model_cases(mcases, lib, passes, pass_timeout_s=float(timeout) if timeout else None):
            r = o.result
            detail = o.detail.splitlines()[0][:300] if o.detail else ""
            if o.case.path == "graph_pass" and o.status == "skip" and no_lib:
                detail = f"perfsuite's pass library cannot be built here: {no_lib}"[:300]
            as_path = shown.get(o.case.path, o.case.path)
            model_out.append({"id": f"model:{dataclasses.replace(o.case, path=as_path).id}",
                              "group": f"{o.case.model}/{as_path}/{o.case.task}", "ran_path": o.case.path,
                              "status": o.status, "detail": detail,
                              "worst_ratio": None if r is None or not r.comparisons else r.worst_ratio,
                              "metrics": None if r is None else r.metrics})
    return {"cases": op_out + model_out}


def _prepare(state: _State, req: Dict[str, Any]) -> Dict[str, Any]:
    target = Target(req["target"])
    kind, op, workload = target.parts()
    t0 = time.perf_counter()
    variants = max(1, int(req.get("variants", 1)))
    fns: List[Callable[[], Any]] = []
    if kind == "op":
        reason = bench.skip_reason_op(op or "")
        if reason:
            return {"skip": reason}
        # several copies of the op's arrays, each after a seeded allocation of another size: where the arrays land
        # (alignment, pages) moves an op's time by several % from one allocation to the next, so one copy per
        # process would make a session's figure depend on one draw of the layout
        rng = np.random.default_rng(int(req.get("seed", 0)))
        spacers = []
        for _ in range(variants):
            spacers.append(np.ones(int(rng.integers(1, 1 << 19)), dtype=np.uint8))
            fn, flags = bench.op_callable(op or "", ctx=bench.op_context(op or ""))
            fns.append(fn)
        state.spacers.append(spacers)
    else:
        assert workload is not None
        path_map: Dict[str, str] = dict(req.get("path_map") or {})
        if path_map:  # an ONNX Runtime candidate: time the counterpart of the baseline's MXNet path
            if workload.path not in path_map:
                return {"skip": f"MXNet path {workload.path} has no ONNX Runtime counterpart (those with one: "
                                f"{', '.join(f'{k} -> {v}' for k, v in path_map.items())})"}
            workload = dataclasses.replace(workload, path=path_map[workload.path])
        reason = bench.skip_reason_workload(workload)
        if reason:
            return {"skip": reason}
        fn, runner = bench.timed(workload)
        flags = dict(runner.flags)
        fns.append(fn)
    with mxnet_flags(**flags):
        for fn in fns:
            fn()  # first call: binding, allocation (errors of the path surface here)
            _sync()
        t1 = time.perf_counter()
        fns[0]()
        _sync()
        one = time.perf_counter() - t1
    state.prepared[target.id] = (fns, flags)
    return {"skip": None, "prepare_s": time.perf_counter() - t0, "call_s": one, "flags": flags,
            "ran": op if kind == "op" else workload.path}


def _sync() -> None:
    mxnet_sync()


def _time(state: _State, req: Dict[str, Any]) -> Dict[str, Any]:
    tid = req["target"]
    if tid not in state.prepared:
        raise PerfsuiteInputError(f"target {tid!r} was not prepared in this worker")
    fns, flags = state.prepared[tid]
    fn = fns[int(req.get("variant", 0)) % len(fns)]
    with mxnet_flags(**flags):
        s = time_block(fn, int(req.get("calls", 1)), sync=mxnet_sync, inject_slowdown=float(req.get("inject", 0.0)))
    return {"wall_s": s.wall_s, "others_cpu_s": s.others_cpu_s, "contaminated": s.contaminated}


def _profile(state: _State, req: Dict[str, Any]) -> Dict[str, Any]:
    """A prepared target under MXNet's profiler (aggregate statistics per operator), and the same number of calls
    without it, for the profiler's overhead. Operator bulking must be off in this process (the driver sets
    MXNET_EXEC_BULK_EXEC_INFERENCE=0), or the profiler reports bulks of operators instead of operators."""
    import mxnet as mx

    tid = req["target"]
    if tid not in state.prepared:
        raise PerfsuiteInputError(f"target {tid!r} was not prepared in this worker")
    fns, flags = state.prepared[tid]
    fn = fns[0]
    calls = int(req.get("calls", 1))
    with mxnet_flags(**flags):
        plain = time_block(fn, calls, sync=mxnet_sync).wall_s
        mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=os.devnull)
        mx.profiler.set_state("run")
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
            mxnet_sync()
        profiled = (time.perf_counter() - t0) / calls
        mx.profiler.set_state("stop")
        stats = json.loads(mx.profiler.dumps(reset=True, format="json"))
    ops = {name: {"count": v["Count"] / calls, "ms": v["Total"] / calls}
           for name, v in (stats.get("Time", {}).get("operator") or {}).items()}
    return {"ops": ops, "profiled_s": profiled, "plain_s": plain, "calls": calls}


def _trace(state: _State, req: Dict[str, Any]) -> Dict[str, Any]:
    """Where a whole-model case departs from the reference: perfsuite.parity.trace.trace_case, run here."""

    return {"points": trace_case(req["case"])}


def _memory(state: _State, req: Dict[str, Any]) -> Dict[str, Any]:
    """This process's peak and current resident memory (VmHWM, VmRSS), after `calls` more calls of a prepared
    target: what a process that loaded and ran only that target needed (perfsuite run's memory per path)."""

    tid = req.get("target")
    if tid is not None:
        if tid not in state.prepared:
            raise PerfsuiteInputError(f"target {tid!r} was not prepared in this worker")
        fns, flags = state.prepared[tid]
        with mxnet_flags(**flags):
            for _ in range(int(req.get("calls", 0))):
                fns[0]()
                _sync()
    # the current size first: the peak only grows, so it is >= the size read before it even while MXNet's engine
    # threads still touch pages (read the other way round, a CI run saw the size 4 KiB above the peak)
    rss = rss_bytes()
    return {"peak_rss_bytes": peak_rss_bytes(), "rss_bytes": rss}


def _release(state: _State, req: Dict[str, Any]) -> Dict[str, Any]:
    """Drop a prepared target: its callable, the cached runner (graph, weights, exported files) and garbage, so the
    next target is timed in a process that holds only what it needs."""
    import gc

    state.prepared.pop(req["target"], None)
    state.spacers.clear()
    bench.runner_for.cache_clear()
    gc.collect()
    return {}


_HANDLERS: Dict[str, Callable[[_State, Dict[str, Any]], Dict[str, Any]]] = {
    "hello": _hello, "parity": _parity, "prepare": _prepare, "time": _time, "profile": _profile, "trace": _trace,
    "release": _release, "memory": _memory,
    "quit": lambda state, req: {},
}


def _pin_from_start() -> None:
    cpus = os.environ.get(CPUS_ENV)
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


def main() -> int:
    """Serve requests on stdin until 'quit' or end of input."""
    _pin_from_start()
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints (MXNet's C++ logging, pass libraries) go to stderr
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when a worker ends (Ctrl-C reaches it)
    state = _State()
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = None
        try:
            req = json.loads(line)
            cmd = req.get("cmd")
            if cmd not in _HANDLERS:
                raise PerfsuiteInputError(f"unknown request {cmd!r}; allowed: {', '.join(_HANDLERS)}")
            reply = {"ok": True, **_HANDLERS[cmd](state, req)}
        except PerfsuiteInputError as exc:
            reply = {"ok": False, "error": str(exc), "kind": "input"}
        except Exception as exc:  # an MXNet error is reported to the driver; the worker stays alive
            reply = {"ok": False, "error": one_line(exc), "kind": "error"}
        proto.write(json.dumps(reply, default=_jsonable) + "\n")
        proto.flush()
        if cmd == "quit":
            break
    return 0


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
