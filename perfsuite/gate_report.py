"""What the upgrade gate writes for people and CI: summary.md (verdict first, then the parity differences, then the
latency table; fit for a GitHub job summary or a pull-request comment), JUnit XML (one test case per parity check
and per timed workload, so Jenkins and GitLab show the gate as tests) and the terminal summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Optional

from perfsuite.results import write_text_atomic
from perfsuite.tables import table

__all__ = ["markdown", "junit_xml", "text_summary", "write_outputs"]

_SHOWN_PARITY = ("regression", "fix", "pre-existing", "skipped on candidate only", "skipped on baseline only")


def _ms(s: Optional[float]) -> str:
    if s is None:
        return "-"
    ms = s * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _env_line(doc: Dict[str, Any], side: str) -> str:
    e = doc["environments"].get(side) or {}
    return e.get("label") or e.get("spec") or side


def _latency_rows(doc: Dict[str, Any]) -> List[List[Any]]:
    rows = []
    for tid, t in (doc.get("latency") or {}).get("targets", {}).items():
        c = t.get("comparison")
        skip = t.get("skip") or {}
        if t.get("error"):
            rows.append([tid, "-", "-", "-", "-", "-", "-", f"ERROR: {t['error'][:120]}"])
        elif any(skip.values()):
            continue
        elif c:
            interval = f"[{c['low']:.3f}, {c['high']:.3f}]" if c.get("low") else "-"
            p = f"{c['p_value']:.2g}" if c.get("p_value") is not None else "-"
            verdict = {"no change": "no significant change"}.get(c["verdict"], c["verdict"])
            if c["verdict"] == "no change" and not c["within_threshold"]:
                verdict += f" (inconclusive beyond {doc['config']['threshold']:.0%})"
            rows.append([tid, f"{c['ratio']:.3f}", interval, p, f"{c['sessions']} / {c['pairs']}",
                         _ms(c["baseline_median_s"]), _ms(c["candidate_median_s"]), f"**{verdict}**"
                         if c["verdict"] in ("slower", "faster") else verdict])
    return rows


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
        lines += [f"No parity regression and no workload slower beyond {cfg['threshold']:.0%}.", ""]
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
        per = lat.get("per_target_confidence") or cfg["confidence"]
        lines += ["## Latency", "",
                  f"Ratio = candidate time / baseline time (> 1: the candidate is slower). Each session starts a "
                  f"fresh worker per environment and times each workload in pairs, one block of calls on each side "
                  f"back to back, half of the pairs baseline first; a session's figure is the median of its pairs' "
                  f"log-ratios, and the interval is a Student t interval over sessions at {per:.2%} per workload "
                  f"(Bonferroni: {cfg['confidence']:.0%} for all workloads together). A workload is called slower "
                  f"or faster only when its interval excludes 1, the exact Wilcoxon signed-rank test over sessions "
                  f"agrees (p < {1 - per:.2g}), and the change exceeds {cfg['threshold']:.0%}; sampling stopped "
                  f"early for workloads whose verdict was reached or whose interval already excluded a change beyond "
                  f"{cfg['threshold']:.0%}.", ""]
        rows = _latency_rows(doc)
        if rows:
            lines += [table(["workload", "ratio", f"{per:.2%} interval", "p", "sessions / pairs",
                             "baseline ms", "candidate ms", "verdict"], rows), ""]
        if geo:
            lines += [f"Geometric mean of the ratios over {len(rows)} workloads: **{geo:.3f}**.", ""]
        lines += [f"{len(lat['sessions'])} sessions; sampling stopped: {lat.get('stopped_because')}.", ""]
        skipped = _skipped_targets(doc)
        if skipped:
            lines += ["Workloads not compared (they cannot run on one side or both):", "",
                      table(["workload", "why"], skipped), ""]
    lines += ["## Environments", ""]
    rows = []
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
                ort = o.get("onnxruntime") or o.get("onnxruntime-gpu")
                vals.append(f"{ort} / {o.get('onnx')}" if ort else "-")
            elif key in ("mxnet_version", "cpu_model", "omp_threads"):
                vals.append(env.get(key))
            else:
                vals.append(e.get(key))
        if key != "onnx" or any(v != "-" for v in vals):
            rows.append([label] + vals)
    lines += [table(["", f"baseline ({base})", f"candidate ({cand})"], rows), ""]
    lines += [f"perfsuite {doc['perfsuite_version']}, profile `{cfg['profile']}` ({cfg['profile_doc']}); "
              f"{doc.get('elapsed_s', 0):.0f} s in all. Every pair, both environments and the installed packages "
              "are in gate.json.", ""]
    lines += _investigate(doc)
    return "\n".join(lines).rstrip() + "\n"


def _investigate(doc: Dict[str, Any]) -> List[str]:
    """For every workload called slower and every parity regression: the command that says which operator."""
    b = (doc["environments"].get("baseline") or {}).get("spec") or _env_line(doc, "baseline")
    c = (doc["environments"].get("candidate") or {}).get("spec") or _env_line(doc, "candidate")
    cmds: List[str] = []
    if (doc.get("config") or {}).get("candidate_runtime") == "onnxruntime":
        return []  # explain and bisect compare MXNet builds
    for tid, t in ((doc.get("latency") or {}).get("targets") or {}).items():
        if (t.get("comparison") or {}).get("verdict") == "slower":
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
            elif c and c["verdict"] == "slower":
                ET.SubElement(tc, "failure", message=c["describe"])
                fails += 1
            elif not c or c["verdict"] == "not enough data":
                ET.SubElement(tc, "error", message=(c or {}).get("describe", "not measured"))
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
        out += ["", table(["workload", "ratio", "interval", "p", "sessions/pairs", "base ms", "cand ms", "verdict"],
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
