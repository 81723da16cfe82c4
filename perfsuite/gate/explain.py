"""Why and when: `perfsuite explain` attributes a change between two MXNet builds to operators, and `perfsuite
bisect` names the first release where a check changes.

explain, latency: one worker per environment (the gate's environments and workers), operator bulking off so MXNet's
profiler sees operators, not bulks; the workload is profiled in both, alternating, for a few rounds; per operator
the time per call (median over rounds) in each, and its share of the change in wall time. The profiler's own
overhead (profiled vs plain wall time) and how much of the wall time the operators cover are stated.

explain, parity: for a whole-model case, the exported graph's intermediate values (embedding LayerNorm, and per
layer the attention LayerNorm, the FFN's first FullyConnected, GELU, the FFN LayerNorm) are compared, in both
environments, with the NumPy reference's own intermediate values under the twin-based bound: the first point
beyond its bound names the operator where the model departs. For an op-level case the op is the operator.

bisect: the releases between --good and --bad on the package index, each in a cached environment; CHECK is
`parity:<group>` (an op group such as layer_norm/float16 or a model group such as small/exported/embedding: pass
or fail) or `latency:<target>` (slower than --good beyond the threshold, with the gate's statistics). With few
releases every one is checked; with many, binary search on the assumption that the change happened once.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from perfsuite.cache import check_cache_root
from perfsuite.env import usable_cpus
from perfsuite.errors import PerfsuiteInputError
from perfsuite.gate import gate, options
from perfsuite.gate.driver import WorkerProcess
from perfsuite.gate.venvs import INSTALLERS, check_interpreter, ensure_environment, parse_spec, stage_perfsuite
from perfsuite.parity import ops as parity
from perfsuite.parity.trace import TRACE_NODES, parse_model_case_id, trace_case
from perfsuite.paths.model import MODEL_PATHS
from perfsuite.progress import StatusLine
from perfsuite.tables import table
from perfsuite.weights import CONFIGS, minilm_dir
from perfsuite.workloads import GATE_PROFILES, GateProfile, Target

__all__ = ["trace_case", "parse_model_case_id", "explain", "bisect", "release_versions", "TRACE_NODES",
           "EXPLAIN_FORMAT", "BISECT_FORMAT", "check_case_id", "parity_groups"]

EXPLAIN_FORMAT = "perfsuite-explain"
BISECT_FORMAT = "perfsuite-bisect"


def _check_installer(installer: str) -> None:
    if installer not in INSTALLERS:
        raise PerfsuiteInputError(f"--installer {installer!r}; allowed: {', '.join(INSTALLERS)}")


def check_case_id(case_id: str) -> None:
    """A parity case id explain can trace: an op case of perfsuite's grid or a whole-model case id."""
    if case_id.startswith("op:"):

        ids = {f"op:{c.id}" for c in parity.default_cases(devices=["cpu", "gpu"])}
        if case_id not in ids:
            raise PerfsuiteInputError(f"--parity {case_id!r} is not an op case of perfsuite's grid (`perfsuite parity "
                                      "--list` lists them)")
    elif case_id.startswith("model:"):
        parse_model_case_id(case_id)
    else:
        raise PerfsuiteInputError(f"--parity {case_id!r}: a case id starts with op: or model: (e.g. "
                                  "model:small-exported-embedding-b4-L64-random-s0)")


def parity_groups() -> List[str]:
    """The groups a parity:<group> check may name: op groups (path/mode/device and its prefixes) and model groups
    (model/path/task and its prefixes)."""
    from perfsuite.models import TASKS

    full = {f"{c.path}/{c.mode}/{c.device}" for c in parity.default_cases(devices=["cpu", "gpu"])}
    full |= {f"{m}/{p}/{t}" for m in CONFIGS for p in MODEL_PATHS for t in TASKS}
    out = set(full)
    for g in full:
        parts = g.split("/")
        out |= {"/".join(parts[:i]) for i in range(1, len(parts))}
    return sorted(out)


# ------------------------------------------------------------------------------------------------ the driver side
class _Envs:
    """Environments and workers for explain/bisect (the gate's machinery; operator bulking off for the profiler).
    Their progress goes to `status` (perfsuite.progress: redrawn in place on a terminal, whole lines in a log)."""

    def __init__(self, installer: str = "uv", err: TextIO = sys.stderr, threads: Optional[int] = None) -> None:
        self.installer, self.err = installer, err
        self.status = StatusLine(err)
        self.pythonpath = str(stage_perfsuite())
        n = threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or usable_cpus()
        self.worker_env = {"OMP_NUM_THREADS": str(n), "MXNET_EXEC_BULK_EXEC_INFERENCE": "0",
                           "MXNET_EXEC_BULK_EXEC_TRAIN": "0"}

        d = minilm_dir()
        if d is not None and d.is_dir():
            self.worker_env["PERFSUITE_MINILM_DIR"] = str(d)
        self.cache: Dict[str, Any] = {}

    def env(self, spec_text: str, variant: str = "") -> Any:
        key = f"{spec_text}|{variant}"
        if key not in self.cache:
            spec = parse_spec(spec_text)
            t = time.perf_counter()
            self.cache[key] = ensure_environment(spec, installer=self.installer, variant=variant,
                                                 progress=self.status.emit)
            self.status.emit(f"{spec.label}: environment ready ({time.perf_counter() - t:.1f} s)", final=True)
        return self.cache[key]

    def worker(self, env: Any, name: str) -> Any:
        w = WorkerProcess(env.python, name, pythonpath=self.pythonpath, env=self.worker_env)
        reply = w.request({"cmd": "hello"}, 180)
        w.describe = reply["describe"]  # type: ignore[attr-defined]
        return w


def _calls_for(call_s: float, target_s: float = 0.3) -> int:
    return max(1, min(200, math.ceil(target_s / max(call_s, 1e-6))))


def explain_latency(envs: _Envs, base_spec: str, cand_spec: str, target: str, rounds: int = 4,
                    variants: Tuple[str, str] = ("", "")) -> Dict[str, Any]:
    """Profile `target` in both environments in alternating rounds; operators sorted by their part in the change."""

    Target(target)  # validates
    sides = {"baseline": envs.env(base_spec, variants[0]), "candidate": envs.env(cand_spec, variants[1])}
    ws = {s: envs.worker(e, f"{s} ({e.spec.label})") for s, e in sides.items()}
    try:
        prep = {s: w.request({"cmd": "prepare", "target": target}, 900) for s, w in ws.items()}
        for s, r in prep.items():
            if r.get("skip"):
                raise PerfsuiteInputError(f"{target} cannot run on the {s} ({sides[s].spec.label}): {r['skip']}")
        calls = _calls_for(max(r["call_s"] for r in prep.values()))
        runs: Dict[str, List[Dict[str, Any]]] = {"baseline": [], "candidate": []}
        for r in range(rounds):
            order = ("baseline", "candidate") if r % 2 == 0 else ("candidate", "baseline")
            for s in order:
                runs[s].append(ws[s].request({"cmd": "profile", "target": target, "calls": calls}, 1800))
            envs.status.emit(f"round {r + 1}/{rounds}: baseline {runs['baseline'][-1]['profiled_s'] * 1e3:.2f} ms, "
                             f"candidate {runs['candidate'][-1]['profiled_s'] * 1e3:.2f} ms per call (profiled)",
                             final=r == rounds - 1)
    finally:
        for w in ws.values():
            w.close()
    return _attribution(runs, {s: ws[s].describe for s in ws}, target, calls)


def _attribution(runs: Dict[str, List[Dict[str, Any]]], describe: Dict[str, str], target: str,
                 calls: int) -> Dict[str, Any]:
    med = {s: {k: float(np.median([r[k] for r in rs])) for k in ("profiled_s", "plain_s")} for s, rs in runs.items()}
    names = sorted({n for rs in runs.values() for r in rs for n in r["ops"]})
    per_op: Dict[str, Dict[str, float]] = {}
    for n in names:
        b = float(np.median([r["ops"].get(n, {}).get("ms", 0.0) for r in runs["baseline"]]))
        c = float(np.median([r["ops"].get(n, {}).get("ms", 0.0) for r in runs["candidate"]]))
        cnt = max(r["ops"].get(n, {}).get("count", 0.0) for rs in runs.values() for r in rs)
        per_op[n] = {"baseline_ms": b, "candidate_ms": c, "diff_ms": c - b, "calls_per_forward": cnt}
    wall_b, wall_c = med["baseline"]["plain_s"] * 1e3, med["candidate"]["plain_s"] * 1e3
    diff = wall_c - wall_b
    ops_sorted = sorted(per_op.items(), key=lambda kv: -abs(kv[1]["diff_ms"]))
    rows = [{"operator": n, **v, "share_of_change": (v["diff_ms"] / diff) if diff else None} for n, v in ops_sorted]
    coverage = {s: sum(v[f"{s}_ms"] for v in per_op.values()) / (med[s]["profiled_s"] * 1e3) for s in med}
    overhead = {s: med[s]["profiled_s"] / med[s]["plain_s"] - 1.0 for s in med}
    return {"target": target, "describe": describe, "calls_per_round": calls, "rounds": len(runs["baseline"]),
            "wall_ms": {"baseline": wall_b, "candidate": wall_c, "diff": diff, "ratio": wall_c / wall_b},
            "profiled_ms": {s: med[s]["profiled_s"] * 1e3 for s in med}, "coverage": coverage,
            "profiler_overhead": overhead, "operators": rows}


def explain_parity(envs: _Envs, base_spec: str, cand_spec: str, case: str,
                   variants: Tuple[str, str] = ("", "")) -> Dict[str, Any]:
    """Trace a whole-model case in both environments (or run an op case in both): where each departs."""
    sides = {"baseline": envs.env(base_spec, variants[0]), "candidate": envs.env(cand_spec, variants[1])}
    out: Dict[str, Any] = {"case": case, "sides": {}}
    for s, e in sides.items():
        w = envs.worker(e, f"{s} ({e.spec.label})")
        try:
            if case.startswith("op:"):
                group = case[3:].split("-")
                reply = w.request({"cmd": "parity", "ops": "all", "models": [], "groups": [group[0]]}, 1800)
                mine = [c for c in reply["cases"] if c["id"] == case]
                if not mine:
                    raise PerfsuiteInputError(f"no op case {case!r} in this build's grid (see perfsuite parity --list)")
                out["sides"][s] = {"describe": w.describe, "op_case": mine[0],
                                   "operator": mine[0]["group"].split("/")[0]}
            else:
                parse_model_case_id(case)
                points = w.request({"cmd": "trace", "case": case}, 1800)["points"]
                first = next((p for p in points if not p["passed"]), None)
                out["sides"][s] = {"describe": w.describe, "points": points, "first_departure": first}
        finally:
            w.close()
    return out


# ------------------------------------------------------------------------------------------------ bisect
def release_versions(dist: str, timeout: float = 30.0) -> List[str]:
    """Every final (and post-) release of `dist` on PyPI, oldest first (PyPI's JSON API)."""
    import urllib.request

    from packaging.version import InvalidVersion, Version

    url = f"https://pypi.org/pypi/{dist}/json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as fh:
            data = json.load(fh)
    except Exception as exc:
        raise PerfsuiteInputError(f"cannot list the releases of {dist} on PyPI ({url}): {exc}") from None
    out = []
    for v, files in data.get("releases", {}).items():
        try:
            pv = Version(v)
        except InvalidVersion:
            continue
        if pv.is_prerelease or pv.is_devrelease or not files or all(f.get("yanked") for f in files):
            continue
        out.append(v)
    return sorted(out, key=Version)


def _check_parity(envs: _Envs, spec: str, group: str) -> Tuple[Optional[bool], str]:
    e = envs.env(spec)
    w = envs.worker(e, spec)
    try:
        models = [group.split("/")[0]] if group.split("/")[0] in ("small", "bert-base", "bert-large", "minilm") else []
        reply = w.request({"cmd": "parity", "ops": "none" if models else "all", "models": models,
                           "groups": [group]}, 3600)
    finally:
        w.close()
    ran = [c for c in reply["cases"] if c["status"] != "skip"]
    if not ran:
        return None, "no case of the group ran here"
    bad = [c for c in ran if c["status"] in ("fail", "error")]
    return not bad, f"{len(ran) - len(bad)} of {len(ran)} cases pass"


def _bisect_plan(good: str, bad: str, check: str, threshold: float, budget_s: float, installer: str,
                 versions: Optional[Sequence[str]]) -> Tuple[Any, str, str, str, List[str]]:
    """Every input of bisect checked before any work; (the good spec, check kind, what, the good version, the
    releases from --good towards --bad)."""
    from packaging.version import InvalidVersion, Version

    g, b = parse_spec(good, "--good"), parse_spec(bad, "--bad")
    if g.kind != "requirement" or b.kind != "requirement" or g.dist != b.dist:
        raise PerfsuiteInputError("bisect needs --good and --bad as pinned requirements of one distribution, e.g. "
                                  "--good mxnet==1.7.0.post2 --bad mxnet==1.9.1")
    if g.release_key == b.release_key:
        raise PerfsuiteInputError(f"--good and --bad are the same release ({g.label}); nothing lies between them")
    kind, _, what = check.partition(":")
    if kind not in ("parity", "latency") or not what:
        raise PerfsuiteInputError(f"--check {check!r}; allowed: parity:<group> (e.g. parity:layer_norm/float16) or "
                                  "latency:<target> (e.g. latency:op:softmax_fp16_safe)")
    if kind == "latency":

        Target(what)
    elif what not in parity_groups():
        raise PerfsuiteInputError(f"--check {check!r}: no parity group {what!r}; groups are an op's path/mode/device "
                                  "(e.g. layer_norm/float16) or a model's model/path/task (e.g. small/exported/"
                                  "embedding), or a prefix of one")
    _check_installer(installer)
    if not (math.isfinite(threshold) and 0 < threshold < 1):
        raise PerfsuiteInputError(f"--threshold {threshold!r}: allowed 0 < threshold < 1")
    if not (math.isfinite(budget_s) and budget_s >= 10):
        raise PerfsuiteInputError(f"--time-budget {budget_s!r}: allowed >= 10 seconds")

    check_cache_root()
    gv, bv = (str(g.requirement).split("==", 1)[1], str(b.requirement).split("==", 1)[1])
    lo, hi = sorted([Version(gv), Version(bv)])
    if versions is not None:
        if not versions:
            raise PerfsuiteInputError("--versions names no release; give releases such as 1.8.0.post0,1.9.0, or "
                                      "leave it out to list PyPI's")
        for v in versions:
            try:
                Version(v)
            except InvalidVersion:
                raise PerfsuiteInputError(f"--versions: {v!r} is not a version (e.g. 1.8.0.post0)") from None
        outside = [v for v in versions if not lo <= Version(v) <= hi]
        if outside:
            raise PerfsuiteInputError(f"--versions: {', '.join(outside)} not between --good ({gv}) and --bad ({bv})")
    allv = list(versions) if versions is not None else release_versions(g.dist or "mxnet")
    between = sorted({str(Version(v)): v for v in [*allv, gv, bv] if lo <= Version(v) <= hi}.values(), key=Version)
    if Version(gv) > Version(bv):
        between = between[::-1]  # walk from good towards bad
    return g, kind, what, gv, between


def _search(between: List[str], evaluate: Callable[[str], Optional[bool]]) -> str:
    """Check every release (six or fewer) or binary-search them; returns the strategy's name."""
    if len(between) <= 6:
        for v in between:
            evaluate(v)
        return "every release"
    lo_i, hi_i = 0, len(between) - 1
    evaluate(between[lo_i])
    evaluate(between[hi_i])
    while hi_i - lo_i > 1:
        mid = (lo_i + hi_i) // 2
        r = evaluate(between[mid])
        if r is None:  # skip an uncheckable release: try its neighbour
            mid2 = mid + 1 if mid + 1 < hi_i else mid - 1
            r = evaluate(between[mid2]) if lo_i < mid2 < hi_i else None
            mid = mid2
            if r is None:
                break
        if r:
            lo_i = mid
        else:
            hi_i = mid
    return "binary search"


def bisect(good: str, bad: str, check: str, threshold: float = 0.05, budget_s: float = 240.0,
           installer: str = "uv", err: TextIO = sys.stderr, versions: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Name the first release between `good` and `bad` where `check` changes (see the module docstring)."""
    from packaging.version import Version

    g, kind, what, gv, between = _bisect_plan(good, bad, check, threshold, budget_s, installer, versions)
    envs = _Envs(installer, err)
    results: Dict[str, Dict[str, Any]] = {}

    def evaluate(v: str) -> Optional[bool]:
        """True: behaves like --good; False: like --bad; None: could not be checked."""
        if v in results:
            return results[v]["good"]
        spec = f"{g.dist}=={v}"
        t = time.perf_counter()
        envs.status.emit(f"bisect: checking {spec} ...")
        try:
            if kind == "parity":
                ok, note = _check_parity(envs, spec, what)
                res = None if ok is None else ok == good_state["parity"]
            else:
                if v == gv:
                    res, note = True, "the good release itself"
                else:
                    ok, note = _check_latency(envs, good, spec, what, threshold, budget_s, err)
                    res = ok
        except Exception as exc:  # an install or import failure: that release cannot be judged
            res, note = None, f"could not be checked: {str(exc).splitlines()[0][:200]}"
        results[v] = {"version": v, "good": res, "note": note, "seconds": round(time.perf_counter() - t, 1)}
        envs.status.emit(f"bisect: {spec}: {'good' if res else 'bad' if res is False else 'unknown'} ({note})",
                         final=True)
        return res

    good_state: Dict[str, Any] = {}
    if kind == "parity":
        ok, note = _check_parity(envs, good, what)
        if ok is None:
            raise PerfsuiteInputError(f"--check {check}: {note} on {good}")
        good_state["parity"] = ok
        results[gv] = {"version": gv, "good": True, "note": f"reference state: {note}", "seconds": None}
    strategy = _search(between, evaluate)
    ordered = [results[v] for v in between if v in results]
    # the boundary: the last release that behaves like --good and the next checked one that behaves like --bad,
    # in the order from --good towards --bad (releases that could not be checked are passed over)
    judged = [r for r in ordered if r["good"] is not None]
    boundary = next(((a["version"], b["version"]) for a, b in zip(judged, judged[1:]) if a["good"] and not b["good"]),
                    None)
    newer = None
    if boundary:
        newer = max(boundary, key=Version)
    return {"format": BISECT_FORMAT, "format_version": 1, "good": good, "bad": bad, "check": check,
            "strategy": strategy, "releases": between, "results": ordered, "boundary": boundary,
            "first_change": newer}


def _check_latency(envs: _Envs, good: str, spec: str, target: str, threshold: float, budget_s: float,
                   err: TextIO) -> Tuple[Optional[bool], str]:
    """A small gate on one target: is `spec` slower than `good` beyond the threshold? (the gate's statistics)"""

    name = f"bisect-{abs(hash(target)) % 10 ** 6}"
    GATE_PROFILES[name] = GateProfile(name, f"bisect on {target}", (target,), parity_ops="none", parity_models=(),
                                      time_budget_s=budget_s, session_s=1.0)
    out = tempfile.mkdtemp(prefix="perfsuite-bisect-gate-")
    opts = options.GateOptions(baseline=good, candidate=spec, profile=name, threshold=threshold, parity=False,
                               out=os.path.join(out, "g"), installer=envs.installer)
    try:
        res = gate.run_gate(opts, err=open(os.devnull, "w"))
    finally:
        shutil.rmtree(out, ignore_errors=True)  # the verdict is all bisect keeps
    t = (res.doc.get("latency") or {}).get("targets", {}).get(target, {})
    c = t.get("comparison")
    outcome = t.get("outcome")
    if outcome == "slower":
        return False, c["describe"]
    if outcome in ("no slowdown", "faster"):
        return True, c["describe"]
    # inconclusive, not enough data, disturbed: undecided is never taken for "behaves like --good"
    return None, f"undecided ({outcome}): " + ((c or {}).get("describe") or "not measured")


def explain(baseline: str, candidate: str, workload: Optional[str] = None, parity: Optional[str] = None,
            rounds: int = 4, installer: str = "uv", allow_same: bool = False,
            err: TextIO = sys.stderr) -> Dict[str, Any]:
    """`perfsuite explain`: attribute a latency change (workload) or a parity difference (case) to operators."""

    if (workload is None) == (parity is None):
        raise PerfsuiteInputError("give exactly one of --workload TARGET and --parity CASE")
    b, c = parse_spec(baseline, "--baseline"), parse_spec(candidate, "--candidate")
    same = b.release_key == c.release_key
    if same and not allow_same:
        raise PerfsuiteInputError(f"--baseline and --candidate are the same ({b.label}); pass --allow-same for an "
                                  "A/A check")
    if not 2 <= rounds <= 1000:
        raise PerfsuiteInputError(f"--rounds {rounds}: allowed 2 to 1000 (alternating rounds, a median over them)")
    _check_installer(installer)
    if workload is not None:

        Target(workload)  # validates, before any environment is built
    else:
        check_case_id(parity or "")

    check_cache_root()
    for spec, option in ((b, "--baseline"), (c, "--candidate")):
        if spec.kind == "python":
            check_interpreter(spec, option)
    variants = ("aa-baseline", "aa-candidate") if same and b.kind != "python" else ("", "")
    envs = _Envs(installer, err)
    t0 = time.perf_counter()
    if workload is not None:
        body = explain_latency(envs, baseline, candidate, workload, rounds, variants)
    else:
        body = explain_parity(envs, baseline, candidate, parity or "", variants)
    return {"format": EXPLAIN_FORMAT, "format_version": 1, "baseline": baseline, "candidate": candidate,
            "seconds": round(time.perf_counter() - t0, 1), **body}


def render_explain(doc: Dict[str, Any], top: int = 12) -> str:
    """The explanation as text (tables through perfsuite.tables)."""

    lines = [f"explain: {doc['baseline']} -> {doc['candidate']} ({doc['seconds']:.0f} s)"]
    if "operators" in doc:
        w = doc["wall_ms"]
        lines.append(f"{doc['target']}: {w['baseline']:.3f} ms -> {w['candidate']:.3f} ms per call "
                     f"({w['ratio']:.3f}x, {w['diff']:+.3f} ms), median of {doc['rounds']} alternating rounds of "
                     f"{doc['calls_per_round']} calls, operator bulking off")
        lines.append("profiled operators cover " + ", ".join(f"{s} {v:.0%}" for s, v in doc["coverage"].items())
                     + " of the profiled wall time; the profiler's overhead: "
                     + ", ".join(f"{s} {v:+.1%}" for s, v in doc["profiler_overhead"].items()))
        rows = [[r["operator"], f"{r['calls_per_forward']:g}", f"{r['baseline_ms']:.3f}", f"{r['candidate_ms']:.3f}",
                 f"{r['diff_ms']:+.3f}", "-" if r["share_of_change"] is None else f"{r['share_of_change']:.0%}"]
                for r in doc["operators"][:top]]
        lines.append(table(["operator", "calls", "baseline ms", "candidate ms", "change ms", "share of change"],
                           rows, "simple"))
    else:
        for side, s in doc["sides"].items():
            if "points" in s:
                first = s["first_departure"]
                lines.append(f"{side} ({s['describe']}): " + (
                    f"first departs at {first['point']} ({first['operator']}, node {first['node']}): error/bound "
                    f"{first['worst_ratio']:.3g}" if first else "every traced point within its bound"))
            else:
                oc = s["op_case"]
                lines.append(f"{side} ({s['describe']}): {oc['status'].upper()} (err/bound {oc.get('worst_ratio')}); "
                             f"the operator is {s['operator']}")
        traced = [s for s in doc["sides"].values() if "points" in s]
        if traced:
            pts = [p["point"] for p in traced[0]["points"]]
            rows = []
            for i, p in enumerate(pts):
                rows.append([p, traced[0]["points"][i]["operator"][:40]]
                            + [f"{s['points'][i]['worst_ratio']:.3g}" for s in traced])
            lines.append(table(["point", "operator"] + [f"{k} err/bound" for k, s in doc["sides"].items()
                                                        if "points" in s], rows, "simple"))
    return "\n".join(lines) + "\n"


def render_bisect(doc: Dict[str, Any]) -> str:
    lines = [f"bisect {doc['check']}: {doc['good']} (good) .. {doc['bad']} (bad), {len(doc['releases'])} releases, "
             f"{doc['strategy']}"]
    lines.append(table(["release", "state", "note", "seconds"],
                       [[r["version"], {True: "good", False: "bad", None: "unknown"}[r["good"]], r["note"][:90],
                         r["seconds"]] for r in doc["results"]], "simple"))
    if doc.get("boundary"):
        a, b = doc["boundary"]
        lines.append(f"the check changes between {a} (like --good) and {b} (like --bad): first release with the "
                     f"change: {doc['first_change']}")
    else:
        unknown = [r["version"] for r in doc["results"] if r["good"] is None]
        bad_state = next((r["good"] for r in doc["results"] if r["version"] == doc["releases"][-1]), None)
        why = (f"{', '.join(unknown)} could not be checked" if unknown else
               "--bad behaves like --good under this check" if bad_state else "the releases checked do not say where")
        lines.append(f"UNDECIDED: no boundary found ({why}); exit 3")
    return "\n".join(lines) + "\n"
