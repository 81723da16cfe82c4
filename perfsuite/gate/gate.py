"""`perfsuite gate`: is a candidate MXNet as correct and as fast as the baseline? A verdict with statistics and an
exit code, for CI. This module runs the gate's session loop (`run_gate`); what it is asked is in
perfsuite.gate.options, what it decides in perfsuite.gate.verdict.

1. Environments: one per SPEC (perfsuite.gate.venvs: built with uv, cached, reused; or an existing interpreter).
2. Parity: perfsuite's op grid and whole-model cases run in both environments (in worker processes: the child is
   perfsuite.gate.worker, the driver's handle on it perfsuite.gate.driver) and are matched case by case
   (perfsuite.gate.verdict.diff_parity).
3. Latency, in *sessions*: each session starts one fresh worker per environment (so the process-to-process
   memory-layout variation is sampled, not frozen), prepares every undecided target in both, and times them in
   pairs within seconds of each other: one block of calls on one side, then one on the other, in a
   counterbalanced seeded order (exactly half of each target's pairs per session baseline first). A session's
   figure for a target is the median of its pairs' log-ratios; the session is the unit of the statistic
   (perfsuite.stats.compare_paired). Sampling is sequential: after each session, targets whose verdict is
   reached (slower, faster, or a change beyond the threshold ruled out: perfsuite.gate.verdict.look) stop; the
   others go on until the time budget is spent.
4. Output: gate.json (every pair, both environments, what was installed), summary.md (verdict first, for CI job
   summaries: perfsuite.gate.summary), optionally JUnit XML; exit 0 safe, 1 regression, 2 the gate could not run
   or decide, 3 undecided (perfsuite.gate.verdict.decide).

With an ONNX Runtime candidate (onnxruntime==X.Y: a migration off MXNet) the candidate's environment holds that
ONNX Runtime and the MXNet that exports the model (perfsuite.gate.venvs.with_exporter); each MXNet path is compared
with its ONNX Runtime counterpart (perfsuite.paths.model.ORT_COUNTERPARTS) in parity and latency, under the
baseline's names, and the op grid is not run (ONNX Runtime does not run MXNet operators).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO

import numpy as np

from perfsuite import __version__
from perfsuite.errors import PerfsuiteInputError, one_line
from perfsuite.gate import summary
from perfsuite.gate.driver import WorkerError, WorkerProcess
from perfsuite.gate.options import GateOptions, GateOutcome, default_threads, reserve_out_dir, validate
from perfsuite.gate.plan import (BLOCK_TARGET_S, MAX_PAIRS, MAX_PAIRS_GROWN, MAX_PAIR_SECONDS_FACTOR, MIN_PAIRS,
                                 first_plan, replan, session_cpus)
from perfsuite.gate.venvs import compile_bytecode, ensure_environment, stage_perfsuite
from perfsuite.gate.verdict import (EXIT_GATE_ERROR, MAX_DISTURBED_SHARE, PARITY_ORDER, comparison_doc, decide,
                                    diff_parity, look, needs, outcome, wants_faster)
from perfsuite.paths.model import ORT_COUNTERPARTS
from perfsuite.paths.onnx import CACHE_ENV
from perfsuite.progress import BudgetLine
from perfsuite.results import write_json_atomic
from perfsuite.stats import SequentialDesign, compare_sessions, hodges_lehmann
from perfsuite.tables import clock
from perfsuite.timing import alternation_orders
from perfsuite.weights import minilm_dir
from perfsuite.workloads import Target

__all__ = ["run_gate", "GATE_FORMAT", "GATE_FORMAT_VERSION", "WARMUP_BLOCKS", "OP_VARIANTS", "FIRST_LOOK",
           "TargetState"]

#: gate.json's format and its version.
GATE_FORMAT = "perfsuite-gate"
GATE_FORMAT_VERSION = 2  # 2: sessions' figures, outcomes per workload, the sequential design, UNDECIDED (exit 3)
#: Warm-up blocks per side before a workload's pairs in each session (after preparing it; not recorded).
WARMUP_BLOCKS = 2
#: Copies of an op's arrays per worker and session, the pairs cycling through them: where an op's arrays land moves
#: its time by up to ~9 % from one allocation to the next in one process (softmax_length here), so a session's
#: figure averages several layouts instead of drawing one (README, "The upgrade gate").
OP_VARIANTS = 4
#: The first look: with fewer sessions the sequential bounds are too wide to decide anything.
FIRST_LOOK = 4
_HELLO_TIMEOUT_S = 180.0
_PARITY_TIMEOUT_S = 3600.0


# ------------------------------------------------------------------------------------------------ the gate
@dataclass
class TargetState:
    """One workload across the gate's sessions: its plan, its pairs and session figures, and its decision."""

    id: str
    skip: Dict[str, Optional[str]] = field(default_factory=lambda: {"baseline": None, "candidate": None})
    calls: Optional[int] = None  # calls per timed block (short ops: a block lasts >= BLOCK_TARGET_S)
    pairs_per_session: Optional[int] = None  # clean pairs planned per session; grows with the measured noise
    plan_history: List[Dict[str, Any]] = field(default_factory=list)
    call_s: Dict[str, float] = field(default_factory=dict)
    prepare_s: Dict[str, List[float]] = field(default_factory=lambda: {"baseline": [], "candidate": []})
    overhead_s: List[float] = field(default_factory=list)  # per session: preparing, warming up, releasing
    session_s: List[float] = field(default_factory=list)  # per session: all the time this target took
    pairs: List[Dict[str, Any]] = field(default_factory=list)
    figures: List[float] = field(default_factory=list)  # per session: Hodges-Lehmann of its clean log-ratios
    figure_sessions: List[int] = field(default_factory=list)
    decided_after: Optional[int] = None
    outcome: Optional[str] = None  # "slower" or "no slowdown" once decided
    chasing_faster: bool = False  # decided "no slowdown", estimate a clear speed-up: sessions go on to report it
    error: Optional[str] = None

    @property
    def skipped(self) -> bool:
        return bool(self.skip["baseline"] or self.skip["candidate"])

    @property
    def runnable(self) -> bool:
        return not self.skipped and self.error is None

    @property
    def clean_pairs(self) -> List[Dict[str, Any]]:
        return [p for p in self.pairs if not p["disturbed"] and p["session"] in self.figure_sessions]

    @property
    def disturbed_share(self) -> float:
        return sum(p["disturbed"] for p in self.pairs) / len(self.pairs) if self.pairs else 0.0


class _Gate:
    """One run of the gate: environments, the workers' hello, parity, the latency sessions, gate.json, the verdict."""

    def __init__(self, opts: GateOptions, err: TextIO) -> None:
        self.opts, self.err = opts, err
        self.t0 = time.perf_counter()
        self.base_spec, self.cand_spec, self.profile = validate(opts)
        self.runtime = self.cand_spec.runtime  # "mxnet", or "onnxruntime" (a migration off MXNet)
        default_budget = self.profile.time_budget_s
        if self.runtime == "onnxruntime" and self.profile.ort_time_budget_s:
            default_budget = self.profile.ort_time_budget_s
        self.budget = opts.time_budget_s if opts.time_budget_s is not None else default_budget
        self.progress = BudgetLine(err, self.budget, self.t0)
        self.rng = np.random.default_rng(opts.seed)
        self.doc: Dict[str, Any] = {}
        self.out_dir: Optional[Path] = None
        self.envs: Dict[str, Any] = {}
        self.pythonpath = ""
        self.worker_env: Dict[str, str] = {}
        self.workers: List[Any] = []
        self.targets = self.profile.target_list(self.runtime)
        self.compared = len(self.targets)  # workloads runnable on both sides (known after session 1)

        self.design = SequentialDesign(confidence=opts.confidence, max_sessions=self.profile.max_sessions,
                                       first_look=min(FIRST_LOOK, self.profile.max_sessions))
        n_op = self.profile.max_op_sessions or self.profile.max_sessions
        self.op_design = SequentialDesign(confidence=opts.confidence, max_sessions=n_op,
                                          first_look=min(FIRST_LOOK, n_op))
        self.worker_start_s = 0.0
        self.threads = 1
        # an ONNX Runtime candidate runs the counterpart of each MXNet path the baseline runs
        self.path_map: Dict[str, Dict[str, str]] = {"baseline": {}, "candidate": {}}
        if self.runtime == "onnxruntime":
            self.path_map["candidate"] = dict(ORT_COUNTERPARTS)

    # -------------------------------------------------------------------------------- bookkeeping
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def save(self) -> None:
        if self.out_dir is not None:
            self.doc["elapsed_s"] = round(self.elapsed(), 2)
            write_json_atomic(self.out_dir / "gate.json", self.doc)

    def say(self, text: str) -> None:
        self.progress(text, force=True)

    def _log(self, name: str) -> str:
        assert self.out_dir is not None
        return str(self.out_dir / "logs" / f"{name}.log")

    def start_worker(self, side: str, tag: str, cpus: Optional[List[int]] = None) -> Any:
        w = WorkerProcess(self.envs[side].python, f"{side} worker ({self.envs[side].spec.label}, {tag})",
                          pythonpath=self.pythonpath, env=self.worker_env, log_path=self._log(f"{side}-{tag}"),
                          cpus=cpus)
        self.workers.append(w)
        return w

    def stop_workers(self) -> None:
        for w in self.workers:
            w.close()
        self.workers = []

    # -------------------------------------------------------------------------------- phases
    def run(self) -> GateOutcome:
        opts = self.opts
        self.out_dir = reserve_out_dir(opts, self.base_spec.label, self.cand_spec.label)
        (self.out_dir / "logs").mkdir()
        threads = opts.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or default_threads()
        self.threads = threads
        self.worker_env = {"OMP_NUM_THREADS": str(threads)}
        minilm = _minilm_dir()
        if minilm:
            self.worker_env["PERFSUITE_MINILM_DIR"] = minilm
        if self.runtime == "onnxruntime":  # each session's fresh workers reuse the first export (removed at the end)

            self.worker_env[CACHE_ENV] = str(self.out_dir / "onnx-cache")
        self.doc = {
            "format": GATE_FORMAT, "format_version": GATE_FORMAT_VERSION, "perfsuite_version": __version__,
            "status": "running", "started_utc": _utc(), "finished_utc": None, "elapsed_s": 0.0,
            "options": list(opts.argv) if opts.argv is not None else None,
            "config": {**{k: v for k, v in asdict(opts).items() if k != "argv"}, "time_budget_s": self.budget,
                       "profile_doc": self.profile.doc, "targets": [t.id for t in self.targets],
                       "parity_ops": self._parity_ops(), "parity_models": list(self.profile.parity_models),
                       "candidate_runtime": self.runtime, "exporter": self.cand_spec.exporter,
                       "candidate_paths": self.path_map["candidate"],
                       "omp_num_threads": threads, "block_target_s": BLOCK_TARGET_S,
                       "pairs_per_session": {"first": [MIN_PAIRS, MAX_PAIRS], "grown_up_to": MAX_PAIRS_GROWN,
                                             "max_pair_seconds": MAX_PAIR_SECONDS_FACTOR * self.profile.session_s},
                       "warmup_blocks": WARMUP_BLOCKS, "max_disturbed_share": MAX_DISTURBED_SHARE,
                       "session_s": self.profile.session_s, "max_sessions": self.design.max_sessions,
                       "max_op_sessions": self.op_design.max_sessions, "first_look": self.design.first_look,
                       "session_figure": "Hodges-Lehmann"},
            "environments": {}, "parity": None, "latency": None, "verdict": None, "errors": []}
        self.say(f"perfsuite gate: {self.base_spec.label} (baseline) vs {self.cand_spec.label} (candidate), profile "
                 f"{opts.profile}; results in {self.out_dir}/")
        if opts.inject_slowdown:
            which = ", ".join(opts.inject_targets) if opts.inject_targets else "every workload"
            self.say(f"TESTING THE GATE: the candidate's timed calls of {which} are slowed by "
                     f"{opts.inject_slowdown:.1%} (--inject-slowdown)")
        self.save()
        same = self.base_spec.requirement == self.cand_spec.requirement and self.base_spec.path == self.cand_spec.path
        for side, spec in (("baseline", self.base_spec), ("candidate", self.cand_spec)):
            variant = f"aa-{side}" if same and spec.kind != "python" else ""
            self.envs[side] = ensure_environment(spec, installer=opts.installer, rebuild=opts.rebuild_envs,
                                                 progress=self.say, variant=variant)
            e = self.envs[side]
            self.say(f"{side}: {'built' if e.created else 'reused'} environment {e.root or e.python} "
                     f"({e.seconds:.1f} s)")
            self.doc["environments"][side] = e.to_dict()
        self.pythonpath = str(stage_perfsuite())
        self.doc["perfsuite_staged"] = self.pythonpath
        for side, e in self.envs.items():
            self.doc["environments"][side]["bytecode_s"] = round(compile_bytecode(e, self.pythonpath), 2)
        self._hello()
        self.save()
        if opts.parity:
            self._parity()
            self.save()
        if opts.latency:
            self._latency()
        return self._finish()

    def _hello(self) -> None:
        ws = {side: self.start_worker(side, "hello") for side in ("baseline", "candidate")}
        for side, w in ws.items():
            w.send({"cmd": "hello", "runtime": self.envs[side].spec.runtime})
        for side, w in ws.items():
            reply = w.receive(_HELLO_TIMEOUT_S, "hello")
            if not reply.get("ok"):
                raise PerfsuiteInputError(f"{w.name}: MXNet does not work in this environment: {reply.get('error')}")
            info = {k: reply.get(k) for k in ("env", "describe", "freeze", "perfsuite_file", "python", "onnx")}
            if not str(info["perfsuite_file"]).startswith(self.pythonpath):
                raise PerfsuiteInputError(f"{w.name} imported perfsuite from {info['perfsuite_file']}, not the staged "
                                          f"copy under {self.pythonpath}")
            self.doc["environments"][side].update(info)
            o = info.get("onnx") or {}
            ort = f", onnxruntime {o.get('onnxruntime') or o.get('onnxruntime-gpu')}" if o else ""
            self.say(f"{side}: {info['describe']} (mx {info['env'].get('mxnet_version')}), "
                     f"MKLDNN {'yes' if (info['env'].get('features') or {}).get('MKLDNN') else 'no'}{ort}")
        self.stop_workers()

    def _parity_ops(self) -> str:
        # ONNX Runtime runs the whole exported model, not MXNet operators: no op grid on either side
        return "none" if self.runtime == "onnxruntime" else self.profile.parity_ops

    def _parity(self) -> None:
        p = self.profile
        req: Dict[str, Any] = {"cmd": "parity", "ops": self._parity_ops(), "models": list(p.parity_models)}
        reqs = {"baseline": dict(req), "candidate": dict(req)}
        if self.path_map["candidate"]:
            reqs["baseline"]["paths"] = list(self.path_map["candidate"])
            reqs["candidate"]["path_map"] = self.path_map["candidate"]
        what = "whole-model cases" if req["ops"] == "none" else "op grid and whole-model cases"
        self.progress(f"parity: {what} in both environments (concurrently) ...", force=True)
        t = time.perf_counter()
        ws = {side: self.start_worker(side, "parity") for side in ("baseline", "candidate")}
        for side, w in ws.items():
            w.send(reqs[side])
        cases = {}
        for side, w in ws.items():
            reply = w.receive(_PARITY_TIMEOUT_S, "parity")
            if not reply.get("ok"):

                raise WorkerError(f"{w.name}: parity could not run: {reply.get('error')}")
            cases[side] = reply["cases"]
        self.stop_workers()
        diff = diff_parity(cases["baseline"], cases["candidate"])
        counts = {k: sum(d["kind"] == k for d in diff) for k in PARITY_ORDER}
        self.doc["parity"] = {"seconds": round(time.perf_counter() - t, 1), "counts": counts, "cases": diff,
                              "request": reqs}
        self.say("parity: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))

    # -------------------------------------------------------------------------------- latency
    def _latency(self) -> None:
        targets = [TargetState(t.id) for t in self.targets]
        lat: Dict[str, Any] = {"sessions": [], "targets": {}, "stopped_because": None, "design": None}
        self.doc["latency"] = lat
        session = 0
        while True:
            active = [t for t in targets if t.runnable and (t.decided_after is None or t.chasing_faster)
                      and len(t.figures) < self.design_for(t).max_sessions]
            if not active:
                if not session or not any(t.runnable for t in targets):
                    lat["stopped_because"] = "no workload can run on both sides"
                elif any(t.runnable and t.decided_after is None for t in targets):
                    lat["stopped_because"] = "the planned maximum of sessions was reached"
                else:
                    lat["stopped_because"] = "every workload decided"
                break
            left = self.budget - self.elapsed()
            need = self._next_session_s(active)
            if left <= 0 or (session > 0 and need > left):
                lat["stopped_because"] = (f"time budget ({clock(self.budget)}) spent: the next session would take "
                                          f"about {clock(need)}, {clock(max(0.0, left))} was left")
                break
            ts = time.perf_counter()
            self._session(session, active)
            lat["sessions"].append({"index": session, "seconds": round(time.perf_counter() - ts, 2),
                                    "targets": [t.id for t in active], "cpus": self.session_cpus(session)})
            session += 1
            if session == 1:  # the workloads both sides can run are known: the design's W is fixed from here on
                self.compared = max(1, sum(t.runnable for t in targets))
                lat["design"] = self.design.to_dict(self.compared)
                lat["op_design"] = self.op_design.to_dict(self.compared)
                lat["per_target_confidence"] = self.per_target_confidence()
            self._evaluate(targets, session)
            self.save()
        for t in targets:
            lat["targets"][t.id] = self._target_doc(t, Target(t.id))
        self.save()

    def session_cpus(self, index: int) -> Optional[List[int]]:
        """The CPUs both workers of session `index` run on from their start (perfsuite.gate.plan.session_cpus); None
        (every CPU) when the idle worker is not paused."""
        return session_cpus(index, self.threads) if self.opts.pause_idle else None

    def _next_session_s(self, active: List[TargetState]) -> float:
        """What the next session will take: starting the workers plus each active target's last session."""
        known = [t.session_s[-1] for t in active if t.session_s]
        return self.worker_start_s + sum(known)

    def _session(self, index: int, active: List[TargetState]) -> None:
        # which worker starts (and prepares) first alternates between sessions, so no side always goes first
        sides = ("baseline", "candidate") if index % 2 == 0 else ("candidate", "baseline")
        tag = f"session{index}"
        t0 = time.perf_counter()
        cpus = self.session_cpus(index)
        ws = {side: self.start_worker(side, tag, cpus) for side in sides}
        try:
            for w in ws.values():
                w.send({"cmd": "hello", "light": True})
            for side, w in ws.items():
                w.receive(_HELLO_TIMEOUT_S, "hello")
            self.worker_start_s = time.perf_counter() - t0
            for t in active:  # one workload after another: its pairs follow each other, caches stay its own
                self._measure_target(index, t, ws)
        finally:
            self.stop_workers()

    def _measure_target(self, index: int, t: TargetState, ws: Dict[str, Any]) -> None:
        """Prepare `t` in both workers, warm it up on both sides, time its planned clean pairs (a disturbed pair is
        measured again in the same order), release it, and add the session's figure."""

        opts = self.opts
        t0 = time.perf_counter()
        self._resume(ws)
        self.progress(f"session {index + 1}: preparing {t.id}")
        variants = OP_VARIANTS if t.id.startswith("op:") else 1
        seed = int(self.rng.integers(2 ** 31))
        for side, w in ws.items():
            w.send({"cmd": "prepare", "target": t.id, "path_map": self.path_map[side], "variants": variants,
                    "seed": seed})
        replies = {side: w.receive(opts.prepare_timeout_s, f"prepare {t.id}") for side, w in ws.items()}
        for side, r in replies.items():
            if not r.get("ok"):
                t.error = f"{side}: {r.get('error')}"
            elif r.get("skip"):
                t.skip[side] = r["skip"]
            else:
                t.prepare_s[side].append(round(r["prepare_s"], 3))
                t.call_s.setdefault(side, r["call_s"])
        if not t.runnable:
            self._release(ws, t)
            return
        if t.calls is None:
            first_plan(t, index, self.profile.session_s)
        self._replan(t, index)
        inject = opts.inject_slowdown if self._injected(t.id) else 0.0
        timeout = self._time_timeout(t)

        def timed(side: str, variant: int) -> Dict[str, Any]:
            self._only(ws, side)
            return ws[side].request({"cmd": "time", "target": t.id, "calls": t.calls, "variant": variant,
                                     "inject": inject if side == "candidate" else 0.0}, timeout)

        for k in range(max(WARMUP_BLOCKS, variants)):  # warm-up of this workload on both sides, not recorded
            for side in ws:
                timed(side, k % variants)
        overhead = time.perf_counter() - t0
        m = int(t.pairs_per_session or MIN_PAIRS)
        queue = alternation_orders(["baseline", "candidate"], m, seed=int(self.rng.integers(2 ** 31)))
        attempts, clean, lr = 0, 0, []
        while queue and attempts < 2 * m:
            order = queue.pop(0)
            attempts += 1
            self.progress(f"session {index + 1}: {t.id} pair {clean + 1}/{m}")
            got = {side: timed(side, clean % variants) for side in order}
            disturbed = bool(got["baseline"]["contaminated"] or got["candidate"]["contaminated"])
            t.pairs.append({"session": index, "first": order[0], "baseline_s": got["baseline"]["wall_s"],
                            "candidate_s": got["candidate"]["wall_s"], "disturbed": disturbed,
                            "baseline_contaminated": got["baseline"]["contaminated"],
                            "candidate_contaminated": got["candidate"]["contaminated"]})
            if disturbed:  # measured again in the same order: the half AB, half BA balance holds
                queue.insert(0, order)
            else:
                clean += 1
                lr.append(math.log(got["candidate"]["wall_s"] / got["baseline"]["wall_s"]))
        t0r = time.perf_counter()
        self._release(ws, t)
        overhead += time.perf_counter() - t0r
        if clean >= max(2, m // 2):
            t.figures.append(hodges_lehmann(lr))
            t.figure_sessions.append(index)
        t.overhead_s.append(round(overhead, 3))
        t.session_s.append(round(time.perf_counter() - t0, 3))

    def _release(self, ws: Dict[str, Any], t: TargetState) -> None:
        """Both workers drop the target (its graph, weights and caches), so the next one runs in a process that
        holds only what a user's process would."""
        self._resume(ws)
        for w in ws.values():
            w.send({"cmd": "release", "target": t.id})
        for w in ws.values():
            w.receive(120.0, f"release {t.id}")

    def _only(self, ws: Dict[str, Any], side: str) -> None:
        """Let only `side` run: the other worker is paused (SIGSTOP), so its idle OpenMP threads cannot take a
        core while this side is timed; the timed worker itself runs with the threading settings a user's has."""
        if not self.opts.pause_idle:
            return
        for s, w in ws.items():
            if s != side:
                w.pause()
        ws[side].resume()

    def _resume(self, ws: Dict[str, Any]) -> None:
        for w in ws.values():
            w.resume()

    def _injected(self, target_id: str) -> bool:
        return bool(self.opts.inject_slowdown) and (not self.opts.inject_targets
                                                    or target_id in self.opts.inject_targets)

    def _replan(self, t: TargetState, index: int) -> None:
        """Plan the pairs per session from the measured variance components (perfsuite.gate.plan.replan)."""
        replan(t, index, self.design_for(t), max(1, self.compared), self.opts.threshold, self.profile.session_s,
               self.worker_start_s)

    def _time_timeout(self, t: TargetState) -> float:
        one = max(t.call_s.values()) if t.call_s else 1.0
        return max(120.0, 30.0 * (t.calls or 1) * one * (1 + self.opts.inject_slowdown))

    def design_for(self, t: TargetState) -> Any:
        """Single ops get their own planned maximum of sessions: a session of an op costs a few seconds, and an
        op's time moves more from one process to the next (its arrays' layout) than a whole model's does."""
        return self.op_design if t.id.startswith("op:") else self.design

    def per_target_confidence(self) -> float:
        """Bonferroni over the workloads compared: the chance that an identical candidate is called slower (or
        faster) on any of them, at any look, stays below 1 - --confidence."""
        return 1.0 - self.design.alpha_slower(max(1, self.compared))

    def _comparison(self, t: TargetState) -> Any:
        if not t.figures:
            return None
        design = self.design_for(t)
        return compare_sessions(t.figures[:design.max_sessions], design, max(1, self.compared),
                                threshold=self.opts.threshold, ignore_below=self.opts.ignore_below,
                                n_pairs=len(t.clean_pairs))

    def _evaluate(self, targets: List[TargetState], sessions_done: int) -> None:
        for t in targets:
            if t.chasing_faster:
                self._chase_faster(t)
                continue
            if t.decided_after is not None or not t.runnable or not t.figures:
                continue
            if t.disturbed_share > MAX_DISTURBED_SHARE:
                continue
            decision = look(t.figures, self.design_for(t), max(1, self.compared), self.opts.threshold,
                            self.opts.ignore_below)
            if decision is None:
                continue
            t.outcome = decision
            t.decided_after = sessions_done
            c = self._comparison(t)
            self.say(f"{t.id}: {c.describe()}")
            t.chasing_faster = decision == "no slowdown" and wants_faster(c, self.opts.threshold)
            if t.chasing_faster:
                self.say(f"{t.id}: no slowdown decided; sessions go on (within the budget) to decide the speed-up "
                         f"its estimate shows ({1 / c.ratio:.3f}x)")

    def _chase_faster(self, t: TargetState) -> None:
        """A workload decided "no slowdown" whose estimate is a speed-up beyond the threshold keeps being timed, so
        the report can say "faster" (informative only: its "no slowdown" stands whatever later sessions show, as the
        sequential design decided it) until its interval excludes 1 or the design's last session is reached."""
        c = self._comparison(t)
        if c is not None and c.faster:
            t.chasing_faster = False
            self.say(f"{t.id}: {c.describe()}")
        elif c is None or len(t.figures) >= self.design_for(t).max_sessions or not wants_faster(c, self.opts.threshold):
            t.chasing_faster = False

    def _target_doc(self, t: TargetState, target: Any) -> Dict[str, Any]:
        c = self._comparison(t)
        d: Dict[str, Any] = {"id": t.id, "kind": target.kind, "skip": t.skip, "error": t.error, "calls": t.calls,
                             "pairs_per_session": t.pairs_per_session, "plan": t.plan_history, "call_s": t.call_s,
                             "prepare_s": t.prepare_s, "session_s": t.session_s, "overhead_s": t.overhead_s,
                             "decided_after_sessions": t.decided_after, "figures": t.figures,
                             "figure_sessions": t.figure_sessions, "injected": self._injected(t.id),
                             "pairs": t.pairs}
        d["outcome"] = outcome(t, c)
        if c is not None:
            d["comparison"] = comparison_doc(t, c, self._needs(t, c))
        return d

    def _needs(self, t: TargetState, c: Any) -> Optional[Dict[str, Any]]:
        """For a workload left undecided: what deciding it would take (perfsuite.gate.verdict.needs)."""
        return needs(t, self.design_for(t), max(1, self.compared), self.opts.threshold)

    # -------------------------------------------------------------------------------- verdict
    def _finish(self) -> GateOutcome:
        verdict = decide(self.doc, strict=self.opts.strict)
        self.doc["verdict"] = verdict
        self.doc["status"] = "complete"
        self.doc["finished_utc"] = _utc()
        self.save()
        assert self.out_dir is not None
        summary.write_outputs(self.doc, self.out_dir, self.opts.junit_xml)
        self.save()
        return GateOutcome(self.out_dir, self.doc, verdict["exit_code"])


def run_gate(opts: GateOptions, err: Optional[TextIO] = None) -> GateOutcome:
    """Run the gate. Errors of the gate itself (an install failure, a crashed or hung worker, Ctrl-C) are saved
    in gate.json with status 'error' or 'interrupted' before they propagate."""

    err = err if err is not None else sys.stderr
    g = _Gate(opts, err)  # validates: bad input raises here, before anything is written
    try:
        return g.run()
    except BaseException as exc:
        g.stop_workers()
        if g.doc:
            g.doc["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
            g.doc["errors"].append(one_line(exc, lines=3, limit=800) if not isinstance(exc, KeyboardInterrupt)
                                   else "interrupted (Ctrl-C)")
            g.doc["verdict"] = {"exit_code": EXIT_GATE_ERROR, "word": "ERROR", "reasons": g.doc["errors"][-1:],
                                "geomean_ratio": None}
            try:
                g.save()
                if g.out_dir is not None and not isinstance(exc, (KeyboardInterrupt,)):

                    summary.write_outputs(g.doc, g.out_dir, opts.junit_xml)
            except Exception:
                pass
        if isinstance(exc, (WorkerError, PerfsuiteInputError)) and g.out_dir is not None:
            raise PerfsuiteInputError(f"{exc} (what was measured is in {g.out_dir / 'gate.json'})") from None
        raise
    finally:
        if g.out_dir is not None:  # the ONNX Runtime workers' exported models (BERT-base: 440 MB each)
            shutil.rmtree(g.out_dir / "onnx-cache", ignore_errors=True)


def _minilm_dir() -> Optional[str]:
    d = minilm_dir()
    return str(d) if d is not None and d.is_dir() else None


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

