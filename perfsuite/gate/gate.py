"""`perfsuite gate`: is a candidate MXNet as correct and as fast as the baseline? A verdict with statistics and an
exit code, for CI.

1. Environments: one per SPEC (perfsuite.gate.venvs: built with uv, cached, reused; or an existing interpreter).
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
ONNX Runtime and the MXNet that exports the model (perfsuite.gate.venvs.with_exporter); each MXNet path is compared with
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

from perfsuite import __version__, stats
from perfsuite.cache import check_cache_root
from perfsuite.env import usable_cpus
from perfsuite.errors import PerfsuiteInputError, one_line
from perfsuite.gate import summary as gate_report
from perfsuite.gate.venvs import (INSTALLERS, check_interpreter, ensure_environment, parse_spec, stage_perfsuite,
                                  with_exporter)
from perfsuite.gate.driver import WorkerError, WorkerProcess
from perfsuite.outputs import check_output_file, check_output_folder, reserve_folder
from perfsuite.paths.model import ORT_COUNTERPARTS
from perfsuite.paths.onnx import CACHE_ENV
from perfsuite.progress import BudgetLine
from perfsuite.results import write_json_atomic
from perfsuite.stats import SequentialDesign, compare_sessions, hodges_lehmann, sequential_decision, trimmed_t
from perfsuite.tables import clock
from perfsuite.timing import alternation_orders
from perfsuite.weights import minilm_dir
from perfsuite.workloads import GATE_PROFILES, Target

__all__ = ["GateOptions", "GateOutcome", "run_gate", "validate", "diff_parity", "decide", "GATE_FORMAT",
           "GATE_FORMAT_VERSION", "EXIT_SAFE", "EXIT_REGRESSION", "EXIT_GATE_ERROR", "EXIT_UNDECIDED",
           "BLOCK_TARGET_S", "MAX_DISTURBED_SHARE", "OUTCOMES", "look", "replay"]

GATE_FORMAT = "perfsuite-gate"
GATE_FORMAT_VERSION = 2  # 2: sessions' figures, outcomes per workload, the sequential design, UNDECIDED (exit 3)
#: 0 SAFE, 1 NOT SAFE, 2 the gate could not run (bad input, install failure, a crashed or hung worker),
#: 3 UNDECIDED: it ran, but the evidence decides neither way within the budget.
EXIT_SAFE, EXIT_REGRESSION, EXIT_GATE_ERROR, EXIT_UNDECIDED = 0, 1, 2, 3
#: A workload's outcomes (see _outcome).
OUTCOMES = ("slower", "faster", "no slowdown", "inconclusive", "not enough data", "disturbed", "skipped", "error")
#: A timed block lasts at least this long: short ops are timed in blocks of calls (timer overhead negligible).
BLOCK_TARGET_S = 0.05
#: Clean pairs per workload and session at the start: even (half AB, half BA), at least 16 (BERT-base included),
#: sized from the steady-state call time and the profile's session_s; they grow with the measured noise up to
#: MAX_PAIRS_GROWN, and to at most MAX_PAIR_SECONDS_FACTOR x session_s of pairs per workload and session.
MIN_PAIRS, MAX_PAIRS, MAX_PAIRS_GROWN, MAX_PAIR_SECONDS_FACTOR = 16, 64, 128, 10.0
#: Single ops: their session figures vary mostly between processes, so many short sessions beat long ones.
MIN_PAIRS_OP = 8
#: Warm-up blocks per side before a workload's pairs in each session (after preparing it; not recorded).
WARMUP_BLOCKS = 2
#: Copies of an op's arrays per worker and session, the pairs cycling through them: where an op's arrays land moves
#: its time by up to ~9 % from one allocation to the next in one process (softmax_length here), so a session's
#: figure averages several layouts instead of drawing one (README, "The upgrade gate").
OP_VARIANTS = 4
#: A workload with more than this share of its pairs disturbed by other processes is not decided (its clean pairs
#: would be a selection the disturbance chose).
MAX_DISTURBED_SHARE = 0.25
#: The first look: with fewer sessions the sequential bounds are too wide to decide anything.
FIRST_LOOK = 4
#: The smallest --time-budget accepted (seconds).
MIN_TIME_BUDGET_S = 10.0
_HELLO_TIMEOUT_S = 180.0
_PARITY_TIMEOUT_S = 3600.0


@dataclass
class GateOptions:
    """What `perfsuite gate` was asked to do."""

    baseline: str
    candidate: str
    profile: str = "quick"
    threshold: float = 0.02
    confidence: float = 0.99  # 1 - the gate's family-wise false-alarm rate (every workload, every look)
    ignore_below: float = 0.0  # slower only when the lower bound exceeds 1 + ignore_below
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
    inject_targets: Tuple[str, ...] = ()  # ... of these workloads only (empty: every workload)
    pause_idle: bool = True  # SIGSTOP the idle worker while the other side is timed
    force: bool = False  # replace an existing --junit-xml file
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

    base = parse_spec(opts.baseline, "--baseline")
    cand = parse_spec(opts.candidate, "--candidate", allow_runtime=True)
    if opts.exporter is not None and cand.runtime != "onnxruntime":
        raise PerfsuiteInputError(f"--exporter {opts.exporter!r} applies only to an ONNX Runtime candidate "
                                  f"(onnxruntime==X.Y); the candidate {cand.label} is MXNet")
    cand = with_exporter(cand, base, opts.exporter)
    if base.release_key == cand.release_key and not opts.allow_same:
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
    if not (isinstance(opts.ignore_below, (int, float)) and 0 <= opts.ignore_below < opts.threshold):
        raise PerfsuiteInputError(f"--ignore-below {opts.ignore_below!r}: allowed 0 <= ignore-below < --threshold "
                                  f"({opts.threshold!r})")
    if opts.inject_targets:
        if not opts.inject_slowdown:
            raise PerfsuiteInputError("--inject-target applies only with --inject-slowdown")
        prof = GATE_PROFILES.get(opts.profile)
        known = [t.id for t in prof.target_list(cand.runtime)] if prof else []
        for tid in opts.inject_targets:
            if tid not in known:
                raise PerfsuiteInputError(f"--inject-target {tid!r} is not a workload of profile {opts.profile!r}; "
                                          f"allowed: {', '.join(known)}")
    cpus = usable_cpus()
    if opts.threads is not None and not 1 <= opts.threads <= cpus:
        raise PerfsuiteInputError(f"--threads {opts.threads!r}: allowed 1 to {cpus} (the CPUs this process may use)")
    if not (isinstance(opts.seed, int) and 0 <= opts.seed < 2 ** 32):
        raise PerfsuiteInputError(f"--seed {opts.seed!r}: allowed 0 <= seed < 2**32")
    if opts.time_budget_s is not None and opts.time_budget_s < MIN_TIME_BUDGET_S:
        raise PerfsuiteInputError(f"--time-budget {opts.time_budget_s!r}: allowed >= {MIN_TIME_BUDGET_S:.0f} seconds "
                                  "(building environments and one session take longer)")
    if not opts.latency:
        given = [name for name, on in (("--threshold", opts.threshold != 0.02), ("--confidence", opts.confidence != 0.99),
                                       ("--ignore-below", bool(opts.ignore_below)),
                                       ("--inject-slowdown", bool(opts.inject_slowdown)),
                                       ("--time-budget", opts.time_budget_s is not None), ("--seed", opts.seed != 0),
                                       ("--threads", opts.threads is not None)) if on]
        if given:
            raise PerfsuiteInputError(f"{', '.join(given)}: {'applies' if len(given) == 1 else 'apply'} to the latency "
                                      "comparison, which --no-latency turns off")
    if not (opts.parity or opts.latency):
        raise PerfsuiteInputError("--no-parity and --no-latency together leave nothing to check")
    if opts.junit_xml is not None:

        check_output_file(opts.junit_xml, "--junit-xml", force=opts.force)
    elif opts.force:
        raise PerfsuiteInputError("--force applies to --junit-xml, which was not given")
    if opts.out is not None:

        check_output_folder(opts.out, "--out")

    check_cache_root()  # environments and the staged perfsuite live there
    for spec, option in ((base, "--baseline"), (cand, "--candidate")):  # last: runs the interpreter (~0.1 s)
        if spec.kind == "python":
            check_interpreter(spec, option)
    return base, cand, GATE_PROFILES[opts.profile]


def reserve_out_dir(opts: GateOptions, base_label: str, cand_label: str, root: str = "results") -> Path:
    """Create and claim the output folder (perfsuite.outputs.reserve_folder): --out, or a fresh unique folder."""
    import re


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


# ------------------------------------------------------------------------------------------------ the gate
@dataclass
class _TargetState:
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
            self.say(f"TESTING THE GATE: the candidate's timed calls of {which} are slowed by {opts.inject_slowdown:.1%} "
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

        targets = [_TargetState(t.id) for t in self.targets]
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
        """Both workers of a session run on the same CPUs from their start, as many as their threads, chosen in turn
        per session. Two workers left to the scheduler settle on different cores, and cores differ: in an A/A gate
        with one thread each, FullyConnected ran 15 % slower in the worker on one core than in the other in 5 of 7
        sessions. Pinning only for the timing (preparing on every CPU) was worse: an op's arrays prepared on one
        core and timed on the other ran in two modes 14 % apart (fc_float32's session figures: sd 9.3 % against
        1.1 % pinned from the start). Only one worker runs at a time (the other is paused), so sharing costs only
        the preparation, which runs on one core."""
        if not self.opts.pause_idle or not hasattr(os, "sched_getaffinity"):
            return None
        usable = sorted(os.sched_getaffinity(0))
        n = min(self.threads, len(usable))
        if n >= len(usable):
            return None  # every CPU: nothing to choose
        start = (index * n) % len(usable)
        return [usable[(start + i) % len(usable)] for i in range(n)]

    def _next_session_s(self, active: List[_TargetState]) -> float:
        """What the next session will take: starting the workers plus each active target's last session."""
        known = [t.session_s[-1] for t in active if t.session_s]
        return self.worker_start_s + sum(known)

    def _session(self, index: int, active: List[_TargetState]) -> None:
        # which worker starts (and prepares) first alternates between sessions, so no side always goes first
        sides = ("baseline", "candidate") if index % 2 == 0 else ("candidate", "baseline")
        tag = f"session{index}"
        t0 = time.perf_counter()
        cpus = self.session_cpus(index)
        ws = {side: self.start_worker(side, tag, cpus) for side in sides}
        try:
            for w in ws.values():
                w.send({"cmd": "hello"})
            for side, w in ws.items():
                w.receive(_HELLO_TIMEOUT_S, "hello")
            self.worker_start_s = time.perf_counter() - t0
            for t in active:  # one workload after another: its pairs follow each other, caches stay its own
                self._measure_target(index, t, ws)
        finally:
            self.stop_workers()

    def _measure_target(self, index: int, t: _TargetState, ws: Dict[str, Any]) -> None:
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
            one = max(t.call_s["baseline"], 1e-6)
            t.calls = max(1, math.ceil(BLOCK_TARGET_S / one))
            n = int(round(self.profile.session_s / (2 * t.calls * one)))
            least, most = (MIN_PAIRS_OP, MIN_PAIRS) if t.id.startswith("op:") else (MIN_PAIRS, MAX_PAIRS)
            t.pairs_per_session = max(least, min(most, n + n % 2))
            t.plan_history.append({"session": index, "pairs": t.pairs_per_session, "why": "from the call time"})
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

    def _release(self, ws: Dict[str, Any], t: _TargetState) -> None:
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

    def _replan(self, t: _TargetState, index: int) -> None:
        """Plan the pairs per session from the measured variance components once 3 sessions have figures.

        With sd_w per pair within a session and sd_b between sessions, k sessions of m pairs give a standard error
        sqrt((sd_b^2 + (pi/3) sd_w^2 / m) / k) (HL figures). A slowdown of the threshold is decided at look k when
        that is below log(1 + threshold) / (q_k + z_0.9), q_k being the design's slower bound at k: the plan takes,
        among the looks still ahead, the one reached soonest (session cost: this target's overhead and its share
        of starting the workers, plus m pairs) and the m it needs, between MIN_PAIRS and what
        MAX_PAIR_SECONDS_FACTOR x the profile's session time allows. If no look ahead can reach it, m stays."""
        from scipy import stats as st


        if len(t.figures) < 3 or (t.plan_history and t.plan_history[-1].get("figures") == len(t.figures)):
            return
        cp = t.clean_pairs
        vc = stats.variance_components([math.log(p["candidate_s"] / p["baseline_s"]) for p in cp],
                                       [p["session"] for p in cp])
        c_pair = float(np.median([(p["baseline_s"] + p["candidate_s"]) * (t.calls or 1) for p in cp]))
        c_sess = float(np.median(t.overhead_s)) + self.worker_start_s / max(1, self.compared)
        sw, sb = vc["within_sd_per_pair"], vc["between_sd"]
        least = MIN_PAIRS_OP if t.id.startswith("op:") else MIN_PAIRS
        cap = min(MAX_PAIRS_GROWN, max(least, int(MAX_PAIR_SECONDS_FACTOR * self.profile.session_s
                                                       / max(c_pair, 1e-9))))
        delta = math.log1p(self.opts.threshold)
        z_power = float(st.norm.isf(0.1))
        done = len(t.figures)
        best: Optional[Tuple[float, int, int]] = None
        design = self.design_for(t)
        for k in range(max(done + 1, design.first_look), design.max_sessions + 1):
            q = design.critical(k, max(1, self.compared))[0]
            if not math.isfinite(q):
                continue
            room = k * (delta / (q + z_power)) ** 2 - sb ** 2
            if room <= 0:
                continue
            m = max(least, math.ceil(math.pi / 3 * sw ** 2 / room))
            m += m % 2
            if m > cap:
                continue
            cost = (k - done) * (c_sess + m * c_pair)
            if best is None or cost < best[0]:
                best = (cost, k, m)
        entry: Dict[str, Any] = {"session": index, "figures": done, "within_sd_per_pair": sw, "between_sd": sb,
                                 "pair_s": c_pair, "overhead_s": c_sess, "cap": cap}
        if best is None:
            entry.update(pairs=t.pairs_per_session, why="no look ahead reaches the threshold's precision at this "
                                                        "noise; pairs unchanged")
        else:
            t.pairs_per_session = best[2]
            entry.update(pairs=best[2], planned_sessions=best[1], planned_s=round(best[0], 1),
                         why="variance components")
        t.plan_history.append(entry)

    def _time_timeout(self, t: _TargetState) -> float:
        one = max(t.call_s.values()) if t.call_s else 1.0
        return max(120.0, 30.0 * (t.calls or 1) * one * (1 + self.opts.inject_slowdown))

    def design_for(self, t: _TargetState) -> Any:
        """Single ops get their own planned maximum of sessions: a session of an op costs a few seconds, and an
        op's time moves more from one process to the next (its arrays' layout) than a whole model's does."""
        return self.op_design if t.id.startswith("op:") else self.design

    def per_target_confidence(self) -> float:
        """Bonferroni over the workloads compared: the chance that an identical candidate is called slower (or
        faster) on any of them, at any look, stays below 1 - --confidence."""
        return 1.0 - self.design.alpha_slower(max(1, self.compared))

    def _comparison(self, t: _TargetState) -> Any:

        if not t.figures:
            return None
        design = self.design_for(t)
        return compare_sessions(t.figures[:design.max_sessions], design, max(1, self.compared),
                                threshold=self.opts.threshold, ignore_below=self.opts.ignore_below,
                                n_pairs=len(t.clean_pairs))

    def _evaluate(self, targets: List[_TargetState], sessions_done: int) -> None:
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

    def _chase_faster(self, t: _TargetState) -> None:
        """A workload decided "no slowdown" whose estimate is a speed-up beyond the threshold keeps being timed, so
        the report can say "faster" (informative only: its "no slowdown" stands whatever later sessions show, as the
        sequential design decided it) until its interval excludes 1 or the design's last session is reached."""
        c = self._comparison(t)
        if c is not None and c.faster:
            t.chasing_faster = False
            self.say(f"{t.id}: {c.describe()}")
        elif c is None or len(t.figures) >= self.design_for(t).max_sessions or not wants_faster(c, self.opts.threshold):
            t.chasing_faster = False

    def _target_doc(self, t: _TargetState, target: Any) -> Dict[str, Any]:

        c = self._comparison(t)
        d: Dict[str, Any] = {"id": t.id, "kind": target.kind, "skip": t.skip, "error": t.error, "calls": t.calls,
                             "pairs_per_session": t.pairs_per_session, "plan": t.plan_history, "call_s": t.call_s,
                             "prepare_s": t.prepare_s, "session_s": t.session_s, "overhead_s": t.overhead_s,
                             "decided_after_sessions": t.decided_after, "figures": t.figures,
                             "figure_sessions": t.figure_sessions, "injected": self._injected(t.id),
                             "pairs": t.pairs}
        d["outcome"] = _outcome(t, c)
        if c is not None:
            cp = t.clean_pairs
            vc = stats.variance_components([math.log(p["candidate_s"] / p["baseline_s"]) for p in cp],
                                     [p["session"] for p in cp]) if cp else {}
            vc.pop("session_figures", None)

            def num(x: float) -> Optional[float]:
                return x if x == x and math.isfinite(x) else None

            d["comparison"] = {"ratio": c.ratio, "low": num(c.low), "high": num(c.high),
                               "threshold_bound": num(c._margin[1]), "p_value": num(c.p_value),
                               "sessions": c.n_units, "pairs": c.n_pairs, "min_sessions": c.min_units,
                               "verdict": c.verdict, "within_threshold": c.within_threshold,
                               "rules_out_slowdown": c.rules_out_slowdown, "slower": c.slower, "faster": c.faster,
                               "describe": c.describe(),
                               "baseline_median_s": float(np.median([p["baseline_s"] for p in cp])) if cp else None,
                               "candidate_median_s": float(np.median([p["candidate_s"] for p in cp])) if cp else None,
                               "disturbed_pairs": int(sum(p["disturbed"] for p in t.pairs)),
                               "disturbed_share": t.disturbed_share, "noise": vc,
                               "needs": self._needs(t, c)}
        return d

    def _needs(self, t: _TargetState, c: Any) -> Optional[Dict[str, Any]]:
        """For a workload left undecided: how many sessions in all, and how much more time, the measured noise says
        ruling a slowdown beyond the threshold out would take (the design's last-look bound, this workload's session
        sd and estimate; a planning figure, not a promise)."""

        if t.outcome is not None or len(t.figures) < 3:
            return None
        est, se, _ = trimmed_t(t.figures)
        sd = se * math.sqrt(len(t.figures))
        room = math.log1p(self.opts.threshold) - max(est, 0.0)
        per = float(np.mean(t.session_s)) if t.session_s else math.nan
        design = self.design_for(t)
        done = len(t.figures)
        if room <= 0:
            return {"sessions": None, "seconds": None,
                    "why": f"its estimate ({math.exp(est):.3f}) lies beyond the threshold: more sessions would "
                           "likely call it slower"}
        q = design.critical(design.max_sessions, max(1, self.compared))[1]
        n = max(done + 1, math.ceil((q * sd / room) ** 2))
        more = n - done
        beyond = f", beyond this design's {design.max_sessions}" if n > design.max_sessions else ""
        return {"sessions": n, "seconds": more * per if per == per else None,
                "why": f"about {n} sessions in all, {more} more (~{clock(more * per)} at {per:.0f} s each{beyond}), at "
                       f"its session sd of {sd * 100:.2f} % and estimate {math.exp(est):.3f}"}

    # -------------------------------------------------------------------------------- verdict
    def _finish(self) -> GateOutcome:

        verdict = decide(self.doc, strict=self.opts.strict)
        self.doc["verdict"] = verdict
        self.doc["status"] = "complete"
        self.doc["finished_utc"] = _utc()
        self.save()
        assert self.out_dir is not None
        gate_report.write_outputs(self.doc, self.out_dir, self.opts.junit_xml)
        self.save()
        return GateOutcome(self.out_dir, self.doc, verdict["exit_code"])


def look(figures: Sequence[float], design: Any, workloads: int, threshold: float,
         ignore_below: float = 0.0) -> Optional[str]:
    """The gate's decision after the sessions whose figures are given: "slower", "no slowdown" or None (go on).
    The gate calls this after every session; gate_calibration's resampled gates and the tests call the same."""

    if len(figures) < design.first_look or len(figures) > design.max_sessions:
        return None
    return sequential_decision(compare_sessions(figures, design, workloads, threshold=threshold,
                                                ignore_below=ignore_below, rank_p=False))


def wants_faster(c: Any, threshold: float) -> bool:
    """Is a workload decided "no slowdown" worth more sessions to report a speed-up: its estimate is faster than
    1 / (1 + threshold) but its interval does not exclude 1 yet."""
    return c is not None and not c.faster and c.ratio == c.ratio and c.ratio < 1.0 / (1.0 + threshold)


def replay(figures: Sequence[float], design: Any, workloads: int, threshold: float,
           ignore_below: float = 0.0) -> Tuple[Optional[str], Optional[int]]:
    """A workload's sequential path through its sessions: (decision, the session count it came at), or (None, None)
    if no look up to the last figure (or the design's maximum) decides."""
    for k in range(design.first_look, min(len(figures), design.max_sessions) + 1):
        d = look(figures[:k], design, workloads, threshold, ignore_below)
        if d is not None:
            return d, k
    return None, None


def _outcome(t: _TargetState, c: Any) -> str:
    """A workload's outcome in the gate: slower, faster (informative: it also rules a slowdown out), no slowdown
    (beyond the threshold: ruled out), inconclusive, not enough data, disturbed, skipped or error."""
    if t.error:
        return "error"
    if t.skipped:
        return "skipped"
    if t.outcome == "slower":
        return "slower"
    if t.outcome == "no slowdown":
        return "faster" if c is not None and c.faster else "no slowdown"
    if t.disturbed_share > MAX_DISTURBED_SHARE:
        return "disturbed"
    if c is None or not c.enough:
        return "not enough data"
    return "inconclusive"


def decide(doc: Dict[str, Any], strict: bool = False) -> Dict[str, Any]:
    """The gate's verdict from its document: exit code and the reasons, most important first.

    NOT SAFE (exit 1): a parity regression (or, with --strict, a pre-existing failure or a case the candidate
    lost), or a workload measured slower. SAFE (exit 0): none of that, and every compared workload ruled a slowdown
    beyond the threshold out. Anything else is UNDECIDED (exit 3): the evidence does not say which, and the reasons
    name the workloads and what deciding them would take. A workload that failed in a worker makes the gate an
    ERROR (exit 2) unless it is already NOT SAFE."""
    reasons: List[str] = []
    undecided: List[str] = []
    errors: List[str] = []
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
    if lat is not None:
        targets = lat.get("targets") or {}
        thr = doc["config"]["threshold"]
        outcome = {tid: t.get("outcome") for tid, t in targets.items()}
        slower = [tid for tid, o in outcome.items() if o == "slower"]
        if slower:
            reasons.append(f"{len(slower)} workload(s) slower: " + "; ".join(
                f"{tid} {targets[tid]['comparison']['describe']}" for tid in slower))
        for tid, o in outcome.items():
            if o in ("inconclusive", "not enough data", "disturbed"):
                t = targets[tid]
                needs = (t.get("comparison") or {}).get("needs") or {}
                what = {"inconclusive": f"a slowdown beyond {thr:.0%} is not ruled out",
                        "not enough data": "too few sessions for a verdict",
                        "disturbed": f"{(t.get('comparison') or {}).get('disturbed_share', 0):.0%} of its pairs were "
                                     f"disturbed by other processes (more than {MAX_DISTURBED_SHARE:.0%})"}[o]
                ratio = (t.get("comparison") or {}).get("describe")
                undecided.append(f"{tid}: {what}" + (f" ({ratio})" if ratio and o != "not enough data" else "")
                                 + (f"; deciding it needs {needs['why']}" if needs.get("why") else ""))
        errors = [f"{tid}: {t['error']}" for tid, t in targets.items() if t.get("error")]
        compared = [tid for tid, o in outcome.items() if o not in ("skipped", "error")]
        if not compared and not errors:
            undecided.append("no workload could be timed on both sides (every one was skipped), so no slowdown is "
                             "ruled out")
        if strict:
            lost = [tid for tid, t in targets.items()
                    if (t.get("skip") or {}).get("candidate") and not (t.get("skip") or {}).get("baseline")]
            if lost:
                reasons.append(f"{len(lost)} workload(s) that run on the baseline cannot run on the candidate "
                               "(--strict): " + ", ".join(lost))
        valid = [t["comparison"]["ratio"] for t in targets.values()
                 if t.get("comparison") and t["comparison"]["verdict"] != "not enough data"]
        geo = float(np.exp(np.mean(np.log(valid)))) if valid else None
    if reasons:
        code, word = EXIT_REGRESSION, "NOT SAFE"
    elif errors:
        code, word = EXIT_GATE_ERROR, "ERROR"
    elif undecided:
        code, word = EXIT_UNDECIDED, "UNDECIDED"
    else:
        code, word = EXIT_SAFE, "SAFE"
    extra = ["a workload failed in a worker: " + "; ".join(errors)] if errors else []
    return {"exit_code": code, "word": word, "reasons": reasons + extra + undecided, "geomean_ratio": geo}


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


def default_threads() -> int:
    """The workers' OpenMP threads when neither --threads nor OMP_NUM_THREADS says: half the usable CPUs (at least
    1). With every core busy, whatever else runs (the driver, the system, a neighbour on a shared host) stalls
    OpenMP's barriers: on the 2-core machines here one BERT-base b1 pair's log-ratio varied with sd 9.3 % at 2
    threads against 5.7 % at 1 thread (README, "The upgrade gate"). Pass --threads to time at the deployment's."""
    return max(1, usable_cpus() // 2)


def _minilm_dir() -> Optional[str]:

    d = minilm_dir()
    return str(d) if d is not None and d.is_dir() else None


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

