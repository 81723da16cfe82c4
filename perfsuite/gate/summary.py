"""What the upgrade gate writes for people and CI: summary.md (verdict first, then the parity differences, then the
latency table; fit for a GitHub job summary or a pull-request comment), JUnit XML (one test case per parity check
and per timed workload, so Jenkins and GitLab show the gate as tests) and the terminal summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Optional

from perfsuite.results import write_text_atomic
from perfsuite.tables import fmt_ms, table

__all__ = ["markdown", "junit_xml", "text_summary", "write_outputs"]

_SHOWN_PARITY = ("regression", "fix", "pre-existing", "skipped on candidate only", "skipped on baseline only")


def _in_ms(s: Optional[float]) -> Optional[float]:
    return None if s is None else s * 1e3


def _env_line(doc: Dict[str, Any], side: str) -> str:
    e = doc["environments"].get(side) or {}
    return e.get("label") or e.get("spec") or side


_OUTCOME_TEXT = {"slower": "**slower**", "faster": "faster", "no slowdown": "no slowdown beyond {thr}",
                 "inconclusive": "**inconclusive**", "not enough data": "**not enough data**",
                 "disturbed": "**disturbed**"}


def _pct(x: Optional[float]) -> str:
    return "-" if x is None or x != x else f"{x * 100:.2f}"


def _latency_rows(doc: Dict[str, Any]) -> List[List[Any]]:
    """One row per compared workload: ratio, the two bounds, sessions/pairs, the noise components, medians, outcome."""
    rows = []
    thr = f"{doc['config']['threshold']:.0%}"
    for tid, t in (doc.get("latency") or {}).get("targets", {}).items():
        c = t.get("comparison")
        skip = t.get("skip") or {}
        if t.get("error"):
            rows.append([tid, "-", "-", "-", "-", "-", "-", "-", "-", f"ERROR: {t['error'][:120]}"])
        elif any(skip.values()):
            continue
        elif c:
            low = f"{c['low']:.3f}" if c.get("low") else "-"
            high = f"{c['threshold_bound']:.3f}" if c.get("threshold_bound") else "-"
            noise = c.get("noise") or {}
            outcome = _OUTCOME_TEXT.get(t.get("outcome"), t.get("outcome") or "-").format(thr=thr)
            if t.get("injected"):
                outcome += " (injected)"
            rows.append([tid, f"{c['ratio']:.3f}", low, high, f"{c['sessions']} / {c['pairs']}",
                         _pct(noise.get("within_sd_per_pair")), _pct(noise.get("between_sd")),
                         fmt_ms(_in_ms(c["baseline_median_s"])), fmt_ms(_in_ms(c["candidate_median_s"])), outcome])
    return rows


_LATENCY_HEADERS = ["workload", "ratio", "lower bound", "upper bound", "sessions / pairs", "sd per pair %",
                    "sd between sessions %", "baseline ms", "candidate ms", "outcome"]


def _skipped_targets(doc: Dict[str, Any]) -> List[List[str]]:
    out = []
    for tid, t in (doc.get("latency") or {}).get("targets", {}).items():
        skip = t.get("skip") or {}
        if any(skip.values()):
            b, c = skip.get("baseline"), skip.get("candidate")
            if b and c and b == c:
                out.append([tid, f"both: {b}"])
            else:
                out.append([tid, f"baseline: {b or 'runs'}; candidate: {c or 'runs'}"])
    return out


def _parity_detail(case: Optional[Dict[str, Any]]) -> str:
    if not case:
        return "missing"
    s = case["status"].upper()
    if case.get("worst_ratio") is not None:
        s += f" (err/bound {case['worst_ratio']:.3g})"
    if case["status"] != "pass" and case.get("detail"):
        s += f": {case['detail'][:160]}"
    return s


def markdown(doc: Dict[str, Any]) -> str:
    """summary.md: the verdict and why, parity differences, the latency table, environments, method."""
    v = doc.get("verdict") or {}
    base, cand = _env_line(doc, "baseline"), _env_line(doc, "candidate")
    cfg = doc["config"]
    ort = cfg.get("candidate_runtime") == "onnxruntime"
    title = (f"# Migration gate: {base} → {cand} (exported by {cfg.get('exporter')})" if ort
             else f"# MXNet upgrade gate: {base} → {cand}")
    lines = [f"{title}: **{v.get('word', 'INCOMPLETE')}** (exit {v.get('exit_code', '-')})", ""]
    if ort:
        pairs = ", ".join(f"{k} → {m}" for k, m in (cfg.get("candidate_paths") or {}).items())
        lines += [f"> The candidate is ONNX Runtime: the baseline's model, exported to ONNX by {cfg.get('exporter')} "
                  f"in the candidate's environment, run by ONNX Runtime. Each MXNet path is compared with its "
                  f"counterpart ({pairs}); case and workload names are the baseline's.", ""]
    if cfg.get("inject_slowdown"):
        lines += [f"> **Testing the gate:** the candidate's timed calls were slowed by "
                  f"{cfg['inject_slowdown']:.1%} on purpose (`--inject-slowdown`).", ""]
    if v.get("reasons"):
        lines += [f"- {r}" for r in v["reasons"]] + [""]
    else:
        lines += [f"No parity regression, and every workload's slowdown beyond {cfg['threshold']:.0%} ruled out.", ""]
    par = doc.get("parity")
    if par:
        c = par["counts"]
        lines += ["## Parity", "",
                  f"{c.get('both pass', 0)} cases pass on both, {c.get('regression', 0)} regressions, "
                  f"{c.get('fix', 0)} fixes, {c.get('pre-existing', 0)} fail on both (pre-existing), "
                  f"{c.get('skipped on candidate only', 0) + c.get('skipped on baseline only', 0)} run on one side "
                  f"only, {c.get('both skip', 0)} skipped on both ({par['seconds']:.0f} s).", ""]
        shown = [d for d in par["cases"] if d["kind"] in _SHOWN_PARITY]
        shown.sort(key=lambda d: _SHOWN_PARITY.index(d["kind"]))
        if shown:
            rows = [[d["kind"], d["id"], _parity_detail(d["baseline"]), _parity_detail(d["candidate"])]
                    for d in shown[:200]]
            lines += [table(["difference", "case", f"baseline ({base})", f"candidate ({cand})"], rows), ""]
            if len(shown) > 200:
                lines += [f"({len(shown) - 200} more in gate.json)", ""]
    lat = doc.get("latency")
    if lat:
        geo = v.get("geomean_ratio")
        design = lat.get("design") or {}
        lines += ["## Latency", "", _method(doc), ""]
        rows = _latency_rows(doc)
        if rows:
            lines += [table(_LATENCY_HEADERS, rows), ""]
        if geo:
            lines += [f"Geometric mean of the ratios over {len(rows)} workloads: **{geo:.3f}**.", ""]
        lines += [f"{len(lat['sessions'])} sessions; sampling stopped: {lat.get('stopped_because')}."
                  + (f" Design: at most {design.get('max_sessions')} sessions per workload, looks from session "
                     f"{design.get('first_look')}." if design else ""), ""]
        skipped = _skipped_targets(doc)
        if skipped:
            lines += ["Workloads not compared (they cannot run on one side or both):", "",
                      table(["workload", "why"], skipped), ""]
    lines += ["## Environments", ""]
    rows = _environment_rows(doc)
    lines += [table(["", f"baseline ({base})", f"candidate ({cand})"], rows), ""]
    lines += [f"perfsuite {doc['perfsuite_version']}, profile `{cfg['profile']}` ({cfg['profile_doc']}); "
              f"{doc.get('elapsed_s', 0):.0f} s in all. Every pair, both environments and the installed packages "
              "are in gate.json.", ""]
    lines += _investigate(doc)
    return "\n".join(lines).rstrip() + "\n"


def _environment_rows(doc: Dict[str, Any]) -> List[List[Any]]:
    """Both environments side by side: MXNet, versions, ONNX Runtime (if any), oneDNN, interpreter, build, CPU,
    threads."""
    rows: List[List[Any]] = []
    for key, label in (("describe", "MXNet"), ("mxnet_version", "mx.__version__"), ("onnx", "ONNX Runtime / onnx"),
                       ("MKLDNN", "MKLDNN/oneDNN"),
                       ("python", "interpreter"), ("created", "environment"), ("cpu_model", "CPU"),
                       ("omp_threads", "OpenMP threads")):
        vals = []
        for side in ("baseline", "candidate"):
            e = doc["environments"].get(side) or {}
            env = e.get("env") or {}
            if key == "MKLDNN":
                vals.append("yes" if (env.get("features") or {}).get("MKLDNN") else "no")
            elif key == "created":
                vals.append(f"{'built' if e.get('created') else 'reused'} in {e.get('seconds', 0):.1f} s"
                            + (f" ({e.get('installer')})" if e.get("installer") else ""))
            elif key == "onnx":
                o = e.get("onnx") or {}
                rt = o.get("onnxruntime") or o.get("onnxruntime-gpu")
                vals.append(f"{rt} / {o.get('onnx')}" if rt else "-")
            elif key in ("mxnet_version", "cpu_model", "omp_threads"):
                vals.append(env.get(key))
            else:
                vals.append(e.get(key))
        if key != "onnx" or any(v != "-" for v in vals):
            rows.append([label] + vals)
    return rows


def _method(doc: Dict[str, Any]) -> str:
    """The latency method in a paragraph a CI engineer can check."""
    cfg = doc["config"]
    lat = doc.get("latency") or {}
    design = lat.get("design") or {}
    w = design.get("workloads")
    a_slow = design.get("alpha_slower_per_workload")
    ib = cfg.get("ignore_below") or 0.0
    return (f"Ratio = candidate time / baseline time (> 1: the candidate is slower). Each session starts a fresh "
            f"worker per environment; each workload in turn is prepared in both, warmed up, and timed in pairs of "
            f"blocks back to back (half of them baseline first) while the other worker is "
            f"{'paused' if cfg.get('pause_idle', True) else 'left running'}; pairs disturbed by other processes are "
            f"measured again and left out. A session's figure is the Hodges-Lehmann estimate of its pairs' "
            f"log-ratios; the ratio is the geometric mean over sessions. After every session from the "
            f"{design.get('first_look', '-')}th, a group-sequential test (O'Brien-Fleming-type alpha spending over at "
            f"most {design.get('max_sessions', '-')} sessions, Student t bounds over sessions) decides each workload: "
            f"**slower** when its lower bound exceeds {1 + ib:.3g} (one-sided level "
            f"{a_slow if a_slow is None else f'{a_slow:.3g}'} per workload: Bonferroni over {w} workloads, so the "
            f"gate's false-alarm rate over every workload and look is at most {1 - cfg['confidence']:.0%}), **no "
            f"slowdown beyond {cfg['threshold']:.0%}** when its upper bound is below {1 + cfg['threshold']:.3g} (at "
            f"{1 - cfg['confidence']:.0%} per workload: SAFE needs every workload there), otherwise it goes on to the "
            f"next session until the budget or the planned sessions run out. The noise columns are the measured "
            f"variance components: sd of one pair's log-ratio within a session, and sd between sessions "
            f"(process to process) beyond what the pairs explain.")


def _investigate(doc: Dict[str, Any]) -> List[str]:
    """For every workload called slower and every parity regression: the command that says which operator."""
    b = (doc["environments"].get("baseline") or {}).get("spec") or _env_line(doc, "baseline")
    c = (doc["environments"].get("candidate") or {}).get("spec") or _env_line(doc, "candidate")
    cmds: List[str] = []
    if (doc.get("config") or {}).get("candidate_runtime") == "onnxruntime":
        return []  # explain and bisect compare MXNet builds
    for tid, t in ((doc.get("latency") or {}).get("targets") or {}).items():
        if t.get("outcome") == "slower":
            cmds.append(f"perfsuite explain --baseline '{b}' --candidate '{c}' --workload '{tid}'")
    for d in ((doc.get("parity") or {}).get("cases") or []):
        if d["kind"] == "regression":
            cmds.append(f"perfsuite explain --baseline '{b}' --candidate '{c}' --parity '{d['id']}'")
    if not cmds:
        return []
    out = ["## Which operator", "", "Run these to see which operator makes each difference (and `perfsuite bisect` "
           "for the release that introduced it):", "", "```"] + cmds[:20] + ["```", ""]
    if len(cmds) > 20:
        out.insert(-1, f"({len(cmds) - 20} more)")
    return out


def junit_xml(doc: Dict[str, Any]) -> str:
    """One <testcase> per parity case (failure: regression; skipped: pre-existing or not run) and per workload."""
    strict = bool(doc["config"].get("strict"))
    suites = ET.Element("testsuites", name="perfsuite gate")
    par = doc.get("parity")
    if par:
        s = ET.SubElement(suites, "testsuite", name="parity")
        n = fails = skips = 0
        for d in par["cases"]:
            n += 1
            tc = ET.SubElement(s, "testcase", classname=f"parity.{d['id'].split(':')[0]}", name=d["id"])
            msg = f"baseline {_parity_detail(d['baseline'])}; candidate {_parity_detail(d['candidate'])}"
            if d["kind"] == "regression" or (strict and d["kind"] in ("pre-existing", "skipped on candidate only")):
                ET.SubElement(tc, "failure", message=f"{d['kind']}: {msg}"[:1000])
                fails += 1
            elif d["kind"] in ("pre-existing", "both skip", "skipped on candidate only", "skipped on baseline only"):
                ET.SubElement(tc, "skipped", message=f"{d['kind']}: {msg}"[:1000])
                skips += 1
        s.set("tests", str(n))
        s.set("failures", str(fails))
        s.set("skipped", str(skips))
    lat = doc.get("latency")
    if lat:
        s = ET.SubElement(suites, "testsuite", name="latency")
        n = fails = skips = errors = 0
        for tid, t in lat["targets"].items():
            n += 1
            tc = ET.SubElement(s, "testcase", classname="latency", name=tid)
            c = t.get("comparison")
            skip = t.get("skip") or {}
            if t.get("error"):
                ET.SubElement(tc, "error", message=t["error"][:1000])
                errors += 1
            elif any(skip.values()):
                ET.SubElement(tc, "skipped", message=f"baseline: {skip.get('baseline') or 'runs'}; candidate: "
                                                     f"{skip.get('candidate') or 'runs'}"[:1000])
                skips += 1
            elif t.get("outcome") == "slower":
                ET.SubElement(tc, "failure", message=c["describe"])
                fails += 1
            elif t.get("outcome") not in ("no slowdown", "faster"):
                ET.SubElement(tc, "error", message=f"{t.get('outcome')}: "
                                                   + ((c or {}).get("describe") or "not measured")[:900])
                errors += 1
            else:
                out = ET.SubElement(tc, "system-out")
                out.text = c["describe"]
        s.set("tests", str(n))
        s.set("failures", str(fails))
        s.set("skipped", str(skips))
        s.set("errors", str(errors))
    if doc.get("status") in ("error", "interrupted"):
        s = ET.SubElement(suites, "testsuite", name="gate", tests="1", errors="1")
        tc = ET.SubElement(s, "testcase", classname="gate", name="run")
        ET.SubElement(tc, "error", message="; ".join(doc.get("errors") or [doc["status"]])[:1000])
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def text_summary(doc: Dict[str, Any]) -> str:
    """The terminal view: verdict, reasons, parity differences (first 20), latency table."""
    v = doc.get("verdict") or {}
    out = [f"gate: {_env_line(doc, 'baseline')} -> {_env_line(doc, 'candidate')}: {v.get('word')} "
           f"(exit {v.get('exit_code')})"]
    out += [f"  - {r}" for r in v.get("reasons") or []]
    par = doc.get("parity")
    if par:
        shown = [d for d in par["cases"] if d["kind"] in _SHOWN_PARITY]
        out += ["", "parity: " + ", ".join(f"{n} {k}" for k, n in par["counts"].items() if n)]
        if shown:
            shown.sort(key=lambda d: _SHOWN_PARITY.index(d["kind"]))
            out.append(table(["difference", "case", "baseline", "candidate"],
                             [[d["kind"], d["id"], _parity_detail(d["baseline"])[:60],
                               _parity_detail(d["candidate"])[:60]] for d in shown[:20]], fmt="simple"))
            if len(shown) > 20:
                out.append(f"({len(shown) - 20} more in summary.md)")
    rows = _latency_rows(doc)
    if rows:
        out += ["", table(["workload", "ratio", "low", "high", "sessions/pairs", "sd pair %", "sd sess %", "base ms",
                           "cand ms", "outcome"],
                          [[c.replace("**", "") for c in map(str, r)] for r in rows], fmt="simple")]
        geo = v.get("geomean_ratio")
        if geo:
            out.append(f"geometric mean ratio: {geo:.3f}")
    return "\n".join(out) + "\n"


def write_outputs(doc: Dict[str, Any], out_dir: Path, junit: Optional[str]) -> None:
    """summary.md and junit.xml in the results folder, and the JUnit file where --junit-xml asks."""
    write_text_atomic(out_dir / "summary.md", markdown(doc))
    xml = junit_xml(doc)
    write_text_atomic(out_dir / "junit.xml", xml)
    if junit:
        write_text_atomic(junit, xml)
