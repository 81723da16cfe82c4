"""Memory per path that means something: the peak resident memory (VmHWM) of a fresh process that loads the
weights, prepares one path (builds, hybridizes, exports, quantizes: INT8 includes its calibration on one batch of
16 x 128, as perfsuite prepares it), binds it at one batch size and runs it three times. That is what a serving
process of that path at that batch needs; the process that times every path cannot say it, because all the paths,
the parity models and MXNet's memory pool stay resident in it (its peak grew from 2.5 to 6.2 GB over a run).

Each probe is a perfsuite.gate.worker process (the gate's worker: `prepare`, then `memory`, driven through
perfsuite.gate.driver), run in background threads so that `perfsuite run` can overlap them with its parity checks;
no probe runs while anything is timed.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from perfsuite.errors import PerfsuiteInputError, one_line
from perfsuite.gate.driver import WorkerError, WorkerProcess
from perfsuite.workloads import Workload
import perfsuite

__all__ = ["MemoryProbes", "probe", "target_id", "PROBE_TIMEOUT_S", "PROBE_CALLS"]

#: A probe that takes longer (a stuck worker) is killed and reported as an error.
PROBE_TIMEOUT_S = 900.0
#: Calls after the binding call before the peak is read (the peak is reached by the first: more make it sure).
PROBE_CALLS = 2


def target_id(w: Workload) -> str:
    """The worker's name for a model workload: model:MODEL/PATH/TASK/bBATCH/LSEQ."""
    return f"model:{w.model}/{w.path}/{w.task}/b{w.batch}/L{w.seq_len}"


def _package_root() -> str:
    """The folder holding the perfsuite package this process runs: the probe imports the same code."""

    return str(Path(perfsuite.__file__).resolve().parent.parent)


def probe(w: Workload, register: Optional[List[Any]] = None, timeout_s: float = PROBE_TIMEOUT_S) -> Dict[str, Any]:
    """One fresh process for workload `w`: its peak RSS, or the reason it has none (skip or error)."""

    t0 = time.perf_counter()
    out: Dict[str, Any] = {"workload": {"model": w.model, "path": w.path, "task": w.task, "batch": w.batch,
                                        "seq_len": w.seq_len}, "peak_rss_bytes": None, "rss_bytes": None}
    worker = None
    try:
        worker = WorkerProcess(sys.executable, f"memory probe {w.id}", pythonpath=_package_root())
        if register is not None:
            register.append(worker)
        tid = target_id(w)
        reply = worker.request({"cmd": "prepare", "target": tid}, timeout_s)
        if reply.get("skip"):
            out["skip"] = reply["skip"]
        else:
            mem = worker.request({"cmd": "memory", "target": tid, "calls": PROBE_CALLS}, timeout_s)
            out["peak_rss_bytes"], out["rss_bytes"] = mem.get("peak_rss_bytes"), mem.get("rss_bytes")
    except (WorkerError, PerfsuiteInputError) as exc:  # a path that fails here fails (and is reported) when timed
        out["error"] = one_line(exc)
    finally:
        if worker is not None:
            worker.close()
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


class MemoryProbes:
    """Probes of several workloads, `parallel` at a time, in background threads: start(), then results() waits for
    all of them (cancel() kills whatever still runs, e.g. on Ctrl-C)."""

    def __init__(self, workloads: Sequence[Workload], parallel: int = 2) -> None:
        self.workloads = list(workloads)
        self.parallel = max(1, parallel)
        self._results: Dict[int, Dict[str, Any]] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._threads: List[threading.Thread] = []
        self._workers: List[Any] = []
        self._cancelled = False

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._cancelled or self._next >= len(self.workloads):
                    return
                i = self._next
                self._next += 1
            self._results[i] = probe(self.workloads[i], self._workers)

    def start(self) -> "MemoryProbes":
        for _ in range(min(self.parallel, len(self.workloads))):
            t = threading.Thread(target=self._run, daemon=True, name="perfsuite-memory-probe")
            t.start()
            self._threads.append(t)
        return self

    def results(self) -> List[Dict[str, Any]]:
        """Every probe's result, in the order of the workloads (waits for the running ones)."""
        for t in self._threads:
            t.join()
        return [self._results[i] for i in sorted(self._results)]

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
        for w in list(self._workers):
            w.kill()
