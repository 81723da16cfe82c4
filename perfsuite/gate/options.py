"""What `perfsuite gate` is asked to do and what it gives back: `GateOptions` (every option of the command),
`GateOutcome` (the results folder, gate.json's document, the exit code), `validate` (every option checked before
any work: the SPECs, the profile, the thresholds, the output files, the interpreters), `reserve_out_dir` (the
results folder, claimed atomically) and `default_threads` (the workers' OpenMP threads).

A SPEC names an MXNet (mxnet==X.Y, a wheel, an existing interpreter: perfsuite.gate.venvs). With an ONNX Runtime
candidate (onnxruntime==X.Y: a migration off MXNet) the candidate's environment also holds the MXNet that exports
the model (--exporter; perfsuite.gate.venvs.with_exporter).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from perfsuite.cache import check_cache_root
from perfsuite.env import usable_cpus
from perfsuite.errors import PerfsuiteInputError
from perfsuite.gate.venvs import INSTALLERS, check_interpreter, parse_spec, with_exporter
from perfsuite.outputs import check_output_file, check_output_folder, reserve_folder
from perfsuite.workloads import GATE_PROFILES

__all__ = ["GateOptions", "GateOutcome", "validate", "reserve_out_dir", "default_threads", "MIN_TIME_BUDGET_S"]

#: The smallest --time-budget accepted (seconds).
MIN_TIME_BUDGET_S = 10.0


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
    threads: Optional[int] = None  # OMP_NUM_THREADS of the workers; None: the caller's, else default_threads()
    inject_slowdown: float = 0.0  # testing the gate only: the candidate's timed calls are slowed by this fraction
    inject_targets: Tuple[str, ...] = ()  # ... of these workloads only (empty: every workload)
    pause_idle: bool = True  # SIGSTOP the idle worker while the other side is timed
    force: bool = False  # replace an existing --junit-xml file
    prepare_timeout_s: float = 900.0
    argv: Optional[Sequence[str]] = None


@dataclass
class GateOutcome:
    """What a gate gave back: its results folder, gate.json's document and the exit code."""

    out_dir: Path
    doc: Dict[str, Any]
    exit_code: int


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
        given = [name for name, on in (("--threshold", opts.threshold != 0.02),
                                       ("--confidence", opts.confidence != 0.99),
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
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"{base_label}-vs-{cand_label}").strip("-")[:80]
    return reserve_folder(opts.out, f"gate-{time.strftime('%Y%m%d-%H%M%S')}-{slug}", root=root)


def default_threads() -> int:
    """The workers' OpenMP threads when neither --threads nor OMP_NUM_THREADS says: half the usable CPUs (at least
    1). With every core busy, whatever else runs (the driver, the system, a neighbour on a shared host) stalls
    OpenMP's barriers: on the 2-core machines here one BERT-base b1 pair's log-ratio varied with sd 9.3 % at 2
    threads against 5.7 % at 1 thread (README, "The upgrade gate"). Pass --threads to time at the deployment's."""
    return max(1, usable_cpus() // 2)

