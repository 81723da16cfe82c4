"""`perfsuite gate`: is a candidate MXNet as correct and as fast as the baseline? A verdict with statistics and an
exit code, for CI.

1. Environments: one per SPEC (perfsuite.envs: built with uv, cached, reused; or an existing interpreter).
2. Parity: perfsuite's op grid and whole-model cases run in both environments (in worker processes) and are
   matched case by case: pass on the baseline and fail on the candidate is a *regression* (blocks); fail on both
   is *pre-existing* (blocks only with --strict); fail then pass is a *fix*; skipped on one side only is reported
   with both reasons (blocks only with --strict).
3. Latency, in *sessions*: each session starts one fresh worker per environment (so the process-to-process
   memory-layout variation is sampled, not frozen), prepares every undecided target in both, and times them in
   pairs within seconds of each other: one block of calls on one side, then one on the other, in a
   counterbalanced seeded order (exactly half of each target's pairs per session baseline first). A session's
   figure for a target is the median of its pairs' log-ratios; the session is the unit of the statistic
   (perfsuite.stats.compare_paired). Sampling is sequential: after each session, targets whose verdict is
   reached (slower, faster, or a change beyond the threshold ruled out) stop; the others go on until the time
   budget is spent.
4. Output: gate.json (every pair, both environments, what was installed), summary.md (verdict first, for CI job
   summaries), optionally JUnit XML; exit 0 safe, 1 regression, 2 the gate could not run or decide.

With an ONNX Runtime candidate (onnxruntime==X.Y: a migration off MXNet) the candidate's environment holds that
ONNX Runtime and the MXNet that exports the model (perfsuite.envs.with_exporter); each MXNet path is compared with
its ONNX Runtime counterpart (perfsuite.paths.model.ORT_COUNTERPARTS) in parity and latency, under the baseline's
names, and the op grid is not run (ONNX Runtime does not run MXNet operators).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from perfsuite import __version__
from perfsuite.errors import PerfsuiteInputError
from perfsuite.results import write_json_atomic

__all__ = ["GateOptions", "GateOutcome", "run_gate", "validate", "diff_parity", "GATE_FORMAT",
           "GATE_FORMAT_VERSION", "EXIT_SAFE", "EXIT_REGRESSION", "EXIT_GATE_ERROR", "BLOCK_TARGET_S"]

GATE_FORMAT = "perfsuite-gate"
GATE_FORMAT_VERSION = 1
EXIT_SAFE, EXIT_REGRESSION, EXIT_GATE_ERROR = 0, 1, 2
#: A timed block lasts at least this long: short ops are timed in blocks of calls (timer overhead negligible).
BLOCK_TARGET_S = 0.05
#: Pairs per target and session: even (half AB, half BA), and bounded.
MIN_PAIRS, MAX_PAIRS = 4, 16
_HELLO_TIMEOUT_S = 180.0
_PARITY_TIMEOUT_S = 3600.0


@dataclass
class GateOptions:
    """What `perfsuite gate` was asked to do."""

    baseline: str
    candidate: str
    profile: str = "quick"
    threshold: float = 0.02
    confidence: float = 0.95
    time_budget_s: Optional[float] = None  # None: the profile's
    out: Optional[str] = None
    junit_xml: Optional[str] = None
    strict: bool = False
    allow_same: bool = False
    installer: str = "uv"
    rebuild_envs: bool = False
    seed: int = 0
    parity: bool = True
    latency: bool = True
    exporter: Optional[str] = None  # ONNX Runtime candidate: the MXNet that exports the model (envs.with_exporter)
    threads: Optional[int] = None  # OMP_NUM_THREADS of the workers; None: the caller's, else every usable CPU
    inject_slowdown: float = 0.0  # testing the gate only: the candidate's timed calls are slowed by this fraction
    prepare_timeout_s: float = 900.0
    argv: Optional[Sequence[str]] = None


@dataclass
class GateOutcome:
    out_dir: Path
    doc: Dict[str, Any]
    exit_code: int


# ------------------------------------------------------------------------------------------------ validation
def validate(opts: GateOptions) -> Tuple[Any, Any, Any]:
    """Check every option before any work; returns (baseline spec, candidate spec, profile)."""
    from perfsuite.envs import INSTALLERS, check_interpreter, parse_spec, with_exporter
    from perfsuite.workloads import GATE_PROFILES

    base = parse_spec(opts.baseline, "--baseline")
    cand = parse_spec(opts.candidate, "--candidate", allow_runtime=True)
    if opts.exporter is not None and cand.runtime != "onnxruntime":
        raise PerfsuiteInputError(f"--exporter {opts.exporter!r} applies only to an ONNX Runtime candidate "
                                  f"(onnxruntime==X.Y); the candidate {cand.label} is MXNet")
    cand = with_exporter(cand, base, opts.exporter)
    if base.requirement == cand.requirement and base.path == cand.path and not opts.allow_same:
        raise PerfsuiteInputError(f"--baseline and --candidate are the same ({base.label}); an A/A check (the same "
                                  "MXNet in two separately built environments) must be asked for with --allow-same")
    if opts.profile not in GATE_PROFILES:
        raise PerfsuiteInputError(f"unknown profile {opts.profile!r}; allowed: {', '.join(GATE_PROFILES)}")
    if not (isinstance(opts.threshold, (int, float)) and 0 < opts.threshold < 1):
        raise PerfsuiteInputError(f"--threshold {opts.threshold!r}: allowed 0 < threshold < 1 (0.02 is 2 %)")
    if not (isinstance(opts.confidence, (int, float)) and 0.5 < opts.confidence < 1):
        raise PerfsuiteInputError(f"--confidence {opts.confidence!r}: allowed 0.5 < confidence < 1")
    if opts.time_budget_s is not None and not (math.isfinite(opts.time_budget_s) and opts.time_budget_s > 0):
        raise PerfsuiteInputError(f"--time-budget {opts.time_budget_s!r}: must be a positive number of seconds")
    if opts.installer not in INSTALLERS:
        raise PerfsuiteInputError(f"--installer {opts.installer!r}; allowed: {', '.join(INSTALLERS)}")
    if not 0 <= opts.inject_slowdown < 10:
        raise PerfsuiteInputError(f"--inject-slowdown {opts.inject_slowdown!r}: allowed 0 <= fraction < 10")
    if opts.threads is not None and opts.threads < 1:
        raise PerfsuiteInputError(f"--threads {opts.threads!r}: must be a positive integer")
    if not (opts.parity or opts.latency):
        raise PerfsuiteInputError("--no-parity and --no-latency together leave nothing to check")
    if opts.junit_xml is not None:
        j = Path(opts.junit_xml)
        if j.is_dir():
            raise PerfsuiteInputError(f"--junit-xml {opts.junit_xml!r} is a folder; give a file name")
        parent = j.parent if str(j.parent) else Path(".")
        if not parent.is_dir():
            raise PerfsuiteInputError(f"--junit-xml {opts.junit_xml!r}: folder {str(parent)!r} does not exist")
        if not os.access(parent, os.W_OK):
            raise PerfsuiteInputError(f"--junit-xml {opts.junit_xml!r}: folder {str(parent)!r} is not writable")
    if opts.out is not None:
        from perfsuite.outputs import check_output_folder

        check_output_folder(opts.out, "--out")
    for spec in (base, cand):  # last: it runs the interpreter (a fraction of a second)
        if spec.kind == "python":
            check_interpreter(spec)
    return base, cand, GATE_PROFILES[opts.profile]


def reserve_out_dir(opts: GateOptions, base_label: str, cand_label: str, root: str = "results") -> Path:
    """Create and claim the output folder (perfsuite.outputs.reserve_folder): --out, or a fresh unique folder."""
    import re

    from perfsuite.outputs import reserve_folder

    slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"{base_label}-vs-{cand_label}").strip("-")[:80]
    return reserve_folder(opts.out, f"gate-{time.strftime('%Y%m%d-%H%M%S')}-{slug}", root=root)


# ------------------------------------------------------------------------------------------------ parity
PARITY_ORDER = ("regression", "fix", "pre-existing", "skipped on candidate only", "skipped on baseline only",
                "both pass", "both skip")


def _bad(status: Optional[str]) -> bool:
    return status in ("fail", "error")


def diff_parity(base_cases: Sequence[Dict[str, Any]], cand_cases: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Match parity outcomes case by case and classify each (see PARITY_ORDER)."""
    b = {c["id"]: c for c in base_cases}
    c = {x["id"]: x for x in cand_cases}
    out = []
    for cid in list(dict.fromkeys(list(b) + list(c))):
        bs = b.get(cid, {}).get("status", "missing")
        cs = c.get(cid, {}).get("status", "missing")
        if _bad(cs) and bs == "pass":
            kind = "regression"
        elif _bad(bs) and cs == "pass":
            kind = "fix"
        elif _bad(bs) and _bad(cs):
            kind = "pre-existing"
        elif bs == "pass" and cs in ("skip", "missing"):
            kind = "skipped on candidate only"
        elif cs == "pass" and bs in ("skip", "missing"):
            kind = "skipped on baseline only"
        elif _bad(cs):  # skipped or missing on the baseline, failing on the candidate: nothing passed before
            kind = "pre-existing"
        elif _bad(bs):
            kind = "fix" if cs == "pass" else "skipped on candidate only"
        elif bs == cs == "pass":
            kind = "both pass"
        else:
            kind = "both skip"
        out.append({"id": cid, "group": (b.get(cid) or c.get(cid) or {}).get("group", ""), "kind": kind,
                    "baseline": b.get(cid), "candidate": c.get(cid)})
    return out


# ------------------------------------------------------------------------------------------------ progress
class _Progress:
    """One status line on stderr: redrawn in place on a terminal, at most one line per 15 s in a log."""

    def __init__(self, stream: TextIO, budget_s: float, start: float) -> None:
        self.stream, self.budget, self.start = stream, budget_s, start
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.last = 0.0

    def __call__(self, text: str, force: bool = False) -> None:
        now = time.perf_counter()
        el = now - self.start
        line = f"[gate {_clock(el)} / budget {_clock(self.budget)}, {_clock(max(0.0, self.budget - el))} left] {text}"
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
            if force:
                self.stream.write("\n")
        elif force or now - self.last >= 15:
            self.stream.write(line + "\n")
            self.last = now
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


# ------------------------------------------------------------------------------------------------ the gate
@dataclass
class _TargetState:
    id: str
    skip: Dict[str, Optional[str]] = field(default_factory=lambda: {"baseline": None, "candidate": None})
    calls: Optional[int] = None
    pairs_per_session: Optional[int] = None
    call_s: Dict[str, float] = field(default_factory=dict)
    prepare_s: Dict[str, List[float]] = field(default_factory=lambda: {"baseline": [], "candidate": []})
    pairs: List[Dict[str, Any]] = field(default_factory=list)
    decided_after: Optional[int] = None
    error: Optional[str] = None

    @property
    def skipped(self) -> bool:
        return bool(self.skip["baseline"] or self.skip["candidate"])


class _Gate:
    def __init__(self, opts: GateOptions, err: TextIO) -> None:
        self.opts, self.err = opts, err
        self.t0 = time.perf_counter()
        self.base_spec, self.cand_spec, self.profile = validate(opts)
        self.runtime = self.cand_spec.runtime  # "mxnet", or "onnxruntime" (a migration off MXNet)
        default_budget = self.profile.time_budget_s
        if self.runtime == "onnxruntime" and self.profile.ort_time_budget_s:
            default_budget = self.profile.ort_time_budget_s
        self.budget = opts.time_budget_s if opts.time_budget_s is not None else default_budget
        self.progress = _Progress(err, self.budget, self.t0)
        self.rng = np.random.default_rng(opts.seed)
        self.doc: Dict[str, Any] = {}
        self.out_dir: Optional[Path] = None
        self.envs: Dict[str, Any] = {}
        self.pythonpath = ""
        self.worker_env: Dict[str, str] = {}
        self.workers: List[Any] = []
        self.targets = self.profile.target_list(self.runtime)
        self.compared = len(self.targets)  # workloads runnable on both sides (known after session 1)
        # an ONNX Runtime candidate runs the counterpart of each MXNet path the baseline runs
        self.path_map: Dict[str, Dict[str, str]] = {"baseline": {}, "candidate": {}}
        if self.runtime == "onnxruntime":
            from perfsuite.paths.model import ORT_COUNTERPARTS

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

    def start_worker(self, side: str, tag: str) -> Any:
        from perfsuite.worker import WorkerProcess

        w = WorkerProcess(self.envs[side].python, f"{side} worker ({self.envs[side].spec.label}, {tag})",
                          pythonpath=self.pythonpath, env=self.worker_env, log_path=self._log(f"{side}-{tag}"))
        self.workers.append(w)
        return w

    def stop_workers(self) -> None:
        for w in self.workers:
            w.close()
        self.workers = []

    # -------------------------------------------------------------------------------- phases
    def run(self) -> GateOutcome:
        from perfsuite.envs import ensure_environment, stage_perfsuite

        opts = self.opts
        self.out_dir = reserve_out_dir(opts, self.base_spec.label, self.cand_spec.label)
        (self.out_dir / "logs").mkdir()
        threads = opts.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or _usable_cpus()
        self.worker_env = {"OMP_NUM_THREADS": str(threads)}
        minilm = _minilm_dir()
        if minilm:
            self.worker_env["PERFSUITE_MINILM_DIR"] = minilm
        if self.runtime == "onnxruntime":  # each session's fresh workers reuse the first export (removed at the end)
            from perfsuite.paths.onnx import CACHE_ENV

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
                       "pairs_per_session": [MIN_PAIRS, MAX_PAIRS], "session_s": self.profile.session_s},
            "environments": {}, "parity": None, "latency": None, "verdict": None, "errors": []}
        self.say(f"perfsuite gate: {self.base_spec.label} (baseline) vs {self.cand_spec.label} (candidate), profile "
                 f"{opts.profile}; results in {self.out_dir}/")
        if opts.inject_slowdown:
            self.say(f"TESTING THE GATE: the candidate's timed calls are slowed by {opts.inject_slowdown:.1%} "
                     "(--inject-slowdown)")
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
                from perfsuite.worker import WorkerError

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
        from perfsuite.workloads import Target

        targets = [_TargetState(t.id) for t in self.targets]
        lat: Dict[str, Any] = {"sessions": [], "targets": {}, "stopped_because": None}
        self.doc["latency"] = lat
        session = 0
        last_session_s: Optional[float] = None
        while True:
            active = [t for t in targets if not t.skipped and t.decided_after is None and t.error is None]
            if not active:
                lat["stopped_because"] = "every target decided" if session else "no target can run"
                break
            left = self.budget - self.elapsed()
            if session > 0 and last_session_s is not None and left < last_session_s * 0.9:
                lat["stopped_because"] = f"time budget ({_clock(self.budget)}) spent"
                break
            if left <= 0:
                lat["stopped_because"] = f"time budget ({_clock(self.budget)}) spent"
                break
            ts = time.perf_counter()
            self._session(session, active)
            last_session_s = time.perf_counter() - ts
            lat["sessions"].append({"index": session, "seconds": round(last_session_s, 2),
                                    "targets": [t.id for t in active]})
            session += 1
            self.compared = sum(not t.skipped and t.error is None for t in targets)
            lat["per_target_confidence"] = self.per_target_confidence()
            self._evaluate(targets, session)
            self.save()
        for t in targets:
            lat["targets"][t.id] = self._target_doc(t, Target(t.id))
        self.save()

    def _session(self, index: int, active: List[_TargetState]) -> None:
        opts = self.opts
        # which worker starts (and prepares) first alternates between sessions, so no side always goes first
        sides = ("baseline", "candidate") if index % 2 == 0 else ("candidate", "baseline")
        tag = f"session{index}"
        ws = {side: self.start_worker(side, tag) for side in sides}
        try:
            for w in ws.values():
                w.send({"cmd": "hello"})
            for side, w in ws.items():
                w.receive(_HELLO_TIMEOUT_S, "hello")
            for t in active:  # prepare in both at once: preparation is not timed
                self.progress(f"session {index + 1}: preparing {t.id}")
                for side, w in ws.items():
                    w.send({"cmd": "prepare", "target": t.id, "path_map": self.path_map[side]})
                replies = {side: w.receive(opts.prepare_timeout_s, f"prepare {t.id}") for side, w in ws.items()}
                for side, r in replies.items():
                    if not r.get("ok"):
                        t.error = f"{side}: {r.get('error')}"
                    elif r.get("skip"):
                        t.skip[side] = r["skip"]
                    else:
                        t.prepare_s[side].append(round(r["prepare_s"], 3))
                        t.call_s.setdefault(side, r["call_s"])
                if t.calls is None and not t.skipped and t.error is None:
                    one = max(t.call_s["baseline"], 1e-6)
                    t.calls = max(1, math.ceil(BLOCK_TARGET_S / one))
                    block = t.calls * one
                    n = int(round(self.profile.session_s / (2 * block)))
                    t.pairs_per_session = max(MIN_PAIRS, min(MAX_PAIRS, n - n % 2))
            runnable = [t for t in active if not t.skipped and t.error is None]
            for t in runnable:  # one warm-up block per side after preparation (not recorded)
                for side, w in ws.items():
                    w.request({"cmd": "time", "target": t.id, "calls": t.calls}, self._time_timeout(t))
            from perfsuite.timing import alternation_orders

            orders = {t.id: alternation_orders(["baseline", "candidate"], t.pairs_per_session or MIN_PAIRS,
                                               seed=int(self.rng.integers(2 ** 31))) for t in runnable}
            rounds = max((len(o) for o in orders.values()), default=0)
            for r in range(rounds):
                todo = [t for t in runnable if r < len(orders[t.id])]
                for k in self.rng.permutation(len(todo)):
                    t = todo[k]
                    order = orders[t.id][r]
                    self.progress(f"session {index + 1}: {t.id} pair {r + 1}/{len(orders[t.id])}; "
                                  f"{len(active)} targets undecided")
                    got: Dict[str, Dict[str, Any]] = {}
                    for side in order:
                        inject = opts.inject_slowdown if side == "candidate" else 0.0
                        got[side] = ws[side].request({"cmd": "time", "target": t.id, "calls": t.calls,
                                                      "inject": inject}, self._time_timeout(t))
                    t.pairs.append({"session": index, "first": order[0],
                                    "baseline_s": got["baseline"]["wall_s"], "candidate_s": got["candidate"]["wall_s"],
                                    "baseline_contaminated": got["baseline"]["contaminated"],
                                    "candidate_contaminated": got["candidate"]["contaminated"]})
        finally:
            self.stop_workers()

    def _time_timeout(self, t: _TargetState) -> float:
        one = max(t.call_s.values()) if t.call_s else 1.0
        return max(120.0, 30.0 * (t.calls or 1) * one * (1 + self.opts.inject_slowdown))

    def per_target_confidence(self) -> float:
        """Bonferroni over the workloads compared: the chance that an identical candidate is called slower (or
        faster) on any of them stays below 1 - --confidence."""
        n = max(1, self.compared)
        return 1.0 - (1.0 - self.opts.confidence) / n

    def _comparison(self, t: _TargetState) -> Any:
        from perfsuite.stats import compare_paired

        if not t.pairs:
            return None
        return compare_paired([p["baseline_s"] for p in t.pairs], [p["candidate_s"] for p in t.pairs],
                              [p["session"] for p in t.pairs], confidence=self.per_target_confidence(),
                              threshold=self.opts.threshold, unit="session")

    def _evaluate(self, targets: List[_TargetState], sessions_done: int) -> None:
        for t in targets:
            if t.decided_after is None and t.pairs:
                c = self._comparison(t)
                if c is not None and c.decided:
                    t.decided_after = sessions_done
                    self.say(f"{t.id}: {c.describe()}")

    def _target_doc(self, t: _TargetState, target: Any) -> Dict[str, Any]:
        c = self._comparison(t)
        d: Dict[str, Any] = {"id": t.id, "kind": target.kind, "skip": t.skip, "error": t.error, "calls": t.calls,
                             "pairs_per_session": t.pairs_per_session, "call_s": t.call_s, "prepare_s": t.prepare_s,
                             "decided_after_sessions": t.decided_after, "pairs": t.pairs}
        if c is not None:
            b = np.array([p["baseline_s"] for p in t.pairs])
            cc = np.array([p["candidate_s"] for p in t.pairs])
            d["comparison"] = {"ratio": c.ratio, "low": c.low if c.low == c.low else None,
                               "high": c.high if c.high == c.high else None, "p_value": c.p_value if c.p_value == c.p_value else None,
                               "sessions": c.n_units, "pairs": c.n_pairs, "min_sessions": c.min_units,
                               "verdict": c.verdict, "within_threshold": c.within_threshold,
                               "describe": c.describe(), "baseline_median_s": float(np.median(b)),
                               "candidate_median_s": float(np.median(cc)),
                               "disturbed_pairs": int(sum(p["baseline_contaminated"] or p["candidate_contaminated"]
                                                          for p in t.pairs))}
        return d

    # -------------------------------------------------------------------------------- verdict
    def _finish(self) -> GateOutcome:
        from perfsuite import gate_report

        verdict = decide(self.doc, strict=self.opts.strict)
        self.doc["verdict"] = verdict
        self.doc["status"] = "complete"
        self.doc["finished_utc"] = _utc()
        self.save()
        assert self.out_dir is not None
        gate_report.write_outputs(self.doc, self.out_dir, self.opts.junit_xml)
        self.save()
        return GateOutcome(self.out_dir, self.doc, verdict["exit_code"])


def decide(doc: Dict[str, Any], strict: bool = False) -> Dict[str, Any]:
    """The gate's verdict from its document: exit code and the reasons, most important first."""
    reasons: List[str] = []
    cannot: List[str] = []
    par = doc.get("parity")
    if par:
        c = par["counts"]
        if c.get("regression"):
            reasons.append(f"{c['regression']} parity regression(s): passes on the baseline, fails on the candidate")
        if strict and c.get("pre-existing"):
            reasons.append(f"{c['pre-existing']} pre-existing parity failure(s) (--strict)")
        if strict and c.get("skipped on candidate only"):
            reasons.append(f"{c['skipped on candidate only']} parity case(s) that ran on the baseline cannot run on "
                           "the candidate (--strict)")
    lat = doc.get("latency")
    geo = None
    if lat:
        comps = [t["comparison"] for t in lat["targets"].values() if t.get("comparison")]
        slower = [tid for tid, t in lat["targets"].items() if (t.get("comparison") or {}).get("verdict") == "slower"]
        if slower:
            reasons.append(f"{len(slower)} workload(s) slower beyond {doc['config']['threshold']:.0%}: "
                           + ", ".join(slower))
        short = [tid for tid, t in lat["targets"].items()
                 if (t.get("comparison") or {}).get("verdict") == "not enough data"
                 or (not t.get("comparison") and not any((t.get("skip") or {}).values()))]
        if short:
            cannot.append(f"not enough data for {len(short)} workload(s) within the time budget ("
                          + ", ".join(short) + "): raise --time-budget")
        errors = [f"{tid}: {t['error']}" for tid, t in lat["targets"].items() if t.get("error")]
        if errors:
            cannot.append("a workload failed in a worker: " + "; ".join(errors))
        valid = [c["ratio"] for c in comps if c["verdict"] != "not enough data"]
        geo = float(np.exp(np.mean(np.log(valid)))) if valid else None
    if cannot:
        code, word = EXIT_GATE_ERROR, "UNDECIDED"
    elif reasons:
        code, word = EXIT_REGRESSION, "NOT SAFE"
    else:
        code, word = EXIT_SAFE, "SAFE"
    return {"exit_code": code, "word": word, "reasons": reasons + cannot, "geomean_ratio": geo}


def run_gate(opts: GateOptions, err: Optional[TextIO] = None) -> GateOutcome:
    """Run the gate. Errors of the gate itself (an install failure, a crashed or hung worker, Ctrl-C) are saved
    in gate.json with status 'error' or 'interrupted' before they propagate."""
    from perfsuite.worker import WorkerError

    err = err if err is not None else sys.stderr
    g = _Gate(opts, err)  # validates: bad input raises here, before anything is written
    try:
        return g.run()
    except BaseException as exc:
        g.stop_workers()
        if g.doc:
            g.doc["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
            g.doc["errors"].append(_one_line(exc) if not isinstance(exc, KeyboardInterrupt)
                                   else "interrupted (Ctrl-C)")
            g.doc["verdict"] = {"exit_code": EXIT_GATE_ERROR, "word": "ERROR", "reasons": g.doc["errors"][-1:],
                                "geomean_ratio": None}
            try:
                g.save()
                if g.out_dir is not None and not isinstance(exc, (KeyboardInterrupt,)):
                    from perfsuite import gate_report

                    gate_report.write_outputs(g.doc, g.out_dir, opts.junit_xml)
            except Exception:
                pass
        if isinstance(exc, (WorkerError, PerfsuiteInputError)) and g.out_dir is not None:
            raise PerfsuiteInputError(f"{exc} (what was measured is in {g.out_dir / 'gate.json'})") from None
        raise
    finally:
        if g.out_dir is not None:  # the ONNX Runtime workers' exported models (BERT-base: 440 MB each)
            import shutil

            shutil.rmtree(g.out_dir / "onnx-cache", ignore_errors=True)


def _usable_cpus() -> int:
    from perfsuite.env import _usable_cpus as usable

    return usable()


def _minilm_dir() -> Optional[str]:
    from perfsuite.weights import minilm_dir

    d = minilm_dir()
    return str(d) if d is not None and d.is_dir() else None


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _one_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {' | '.join(lines[-3:]) if lines else ''}"[:800]
