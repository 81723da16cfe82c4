"""asv pieces: the version comparison (perfsuite.report.asv), asv.conf.json, and a smoke run of benchmarks/.

The synthetic result files below copy asv 0.6.6's format field by field from a real file written by
`asv run --quick` here (.asv/results/<machine>/<commit>-<env>.json): "version": 2, "result_columns",
rows [result, params, version, started_at, duration, stats...], NaN for a skipped combination (setup raised
NotImplementedError) and null for a failed one, parameter values stored as repr() strings.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from perfsuite.errors import PerfsuiteInputError
from perfsuite.report.asv import compare_versions, load_result_files, main, normalize_version

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / "benchmarks"

TIME_COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
                "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"]
MACHINE = {"arch": "x86_64", "cpu": "AMD EPYC", "machine": "vm", "num_cpu": "2", "os": "Linux 6.1",
           "ram": "25276510208"}
MODEL_PARAMS = [["'hybridized'", "'onednn'"], ["1", "8"], ["128"]]
# benchmark -> metadata as asv's benchmarks.json keeps it (only the fields asv_compare reads, plus type)
META = {
    "bench_model.BertBase.time_forward": {"param_names": ["path", "batch_size", "seq_len"],
                                          "params": MODEL_PARAMS, "type": "time", "unit": "seconds"},
    "bench_model.BertBaseThroughput.track_throughput": {"param_names": ["path", "batch_size", "seq_len"],
                                                        "params": MODEL_PARAMS, "type": "track",
                                                        "unit": "sentences/s"},
    "bench_model.BertBaseMemory.peakmem_forward": {"param_names": ["path", "batch_size", "seq_len"],
                                                   "params": [["'hybridized'"], ["8"], ["128"]],
                                                   "type": "peakmem", "unit": "bytes"},
    "bench_ops.Ops.time_op": {"param_names": ["op"], "params": [["'softmax_length'", "'fc_float16'"]],
                              "type": "time", "unit": "seconds"},
    "bench_misc.time_plain": {"param_names": [], "params": [], "type": "time", "unit": "seconds"},
}
NAN = float("nan")


def _row(kind: str, values: List[Optional[float]], params: List[List[str]]) -> List[Any]:
    started, duration = 1795678531543, 30.6
    if kind != "time":
        return [values, params, "f8c0c8e2" * 8, started, duration]
    finite = [v if v is not None and not math.isnan(v) else None for v in values]
    inf = [(-math.inf if v is not None else None) for v in finite]
    return [values, params, "705c3ed6" * 8, started, duration, inf, [(-x if x else None) for x in inf],
            finite, finite, [1 if v else None for v in finite], [1 if v else None for v in finite]]


def write_result(results: Path, version_spec: str, values: Dict[str, List[Optional[float]]],
                 commit: str = "7d155a5745ab9402539174e5dceeacc67ed7e817", date: int = 1795678144000,
                 machine: str = "vm", dist: str = "mxnet") -> Path:
    """One asv 0.6.6 result file (+ machine.json, benchmarks.json) for MXNet `version_spec` as asv.conf.json
    spells it ('1.7.0post2')."""
    mdir = results / machine
    mdir.mkdir(parents=True, exist_ok=True)
    (mdir / "machine.json").write_text(json.dumps(dict(MACHINE, machine=machine, version=1), indent=4))
    meta = {name: dict(m, name=name, version="0" * 64) for name, m in META.items()}
    meta["version"] = 2
    (results / "benchmarks.json").write_text(json.dumps(meta, indent=4))
    req = {"numpy": "1.23.5", dist: version_spec, "gluonnlp": "0.10.0", "safetensors": ""}
    env_name = "virtualenv-py3.11-gluonnlp0.10.0-{}{}-numpy1.23.5-safetensors".format(dist, version_spec)
    rows = {name: _row(META[name]["type"], vals, META[name]["params"]) for name, vals in values.items()}
    doc = {"commit_hash": commit, "env_name": env_name, "date": date,
           "params": dict(MACHINE, machine=machine, python="3.11", **req), "python": "3.11",
           "requirements": req, "env_vars": {}, "result_columns": TIME_COLUMNS, "results": rows,
           "durations": {"<setup_cache bench_model:191>": 70.8}, "version": 2}
    path = mdir / f"{commit[:8]}-{env_name}.json"
    path.write_text(json.dumps(doc))  # json writes NaN / -Infinity as asv does
    return path


# values per version: BertBase time (hyb b1, hyb b8, onednn b1, onednn b8), throughput, peakmem, ops, plain
FOUR = {
    "1.6.0": {"time": [0.40, 2.0, NAN, NAN], "tp": [2.5, 4.0, NAN, NAN], "mem": [1.75e9], "ops": [0.03, NAN]},
    "1.7.0post2": {"time": [0.20, 1.0, 0.15, None], "tp": [5.0, 8.0, 6.0, 9.0], "mem": [1.5e9], "ops": [0.02, NAN]},
    "1.8.0post0": {"time": [0.22, 1.1, 0.15, 0.8], "tp": [4.5, 7.0, 6.5, 9.5], "mem": [1.5e9], "ops": [0.02, NAN]},
    "1.9.1": {"time": [0.20, 1.0, 0.10, 0.5], "tp": [5.0, 8.0, 10.0, 16.0], "mem": [1.6e9], "ops": [0.01, NAN]},
}


def write_four(results: Path, **kw: Any) -> None:
    for v, d in FOUR.items():
        write_result(results, v, {"bench_model.BertBase.time_forward": d["time"],
                                  "bench_model.BertBaseThroughput.track_throughput": d["tp"],
                                  "bench_model.BertBaseMemory.peakmem_forward": d["mem"],
                                  "bench_ops.Ops.time_op": d["ops"],
                                  "bench_misc.time_plain": [0.001]}, **kw)


def _row_of(table: Any, bench: str, **params: str) -> Any:
    for r in table.rows:
        if r.benchmark == bench and all(r.params.get(k) == v for k, v in params.items()):
            return r
    raise AssertionError(f"no row {bench} {params}")


# ------------------------------------------------------------------------------------------ asv_compare
def test_normalize_version_matches_pep440_spellings() -> None:
    assert normalize_version("1.7.0post2") == "1.7.0.post2"
    assert normalize_version("1.8.0.post0") == "1.8.0.post0"
    assert normalize_version("1.8.0-post0") == "1.8.0.post0"
    assert normalize_version("1.9.1") == "1.9.1"


def test_compare_versions_values_ratios_and_order(tmp_path: Path) -> None:
    write_four(tmp_path)
    table = compare_versions(tmp_path, baseline="1.9.1")
    assert table.versions == ["1.6.0", "1.7.0.post2", "1.8.0.post0", "1.9.1"]
    assert table.baseline == "1.9.1" and table.machine == "vm" and table.commit.startswith("7d155a57")
    r = _row_of(table, "bench_model.BertBase.time_forward", path="hybridized", batch_size="8")
    assert r.unit == "seconds"
    assert r.values == {"1.6.0": 2.0, "1.7.0.post2": 1.0, "1.8.0.post0": 1.1, "1.9.1": 1.0}
    assert r.ratios["1.6.0"] == pytest.approx(2.0) and r.ratios["1.8.0.post0"] == pytest.approx(1.1)
    assert r.ratios["1.9.1"] == pytest.approx(1.0)
    # NaN = skipped (oneDNN needs 1.7), null = failed
    r = _row_of(table, "bench_model.BertBase.time_forward", path="onednn", batch_size="8")
    assert r.status == {"1.6.0": "skipped", "1.7.0.post2": "failed", "1.8.0.post0": "ok", "1.9.1": "ok"}
    assert r.values["1.6.0"] is None and r.ratios["1.6.0"] is None and r.ratios["1.8.0.post0"] == pytest.approx(1.6)
    tp = _row_of(table, "bench_model.BertBaseThroughput.track_throughput", path="onednn", batch_size="1")
    assert tp.unit == "sentences/s" and tp.ratios["1.7.0.post2"] == pytest.approx(0.6)
    mem = _row_of(table, "bench_model.BertBaseMemory.peakmem_forward")
    assert mem.unit == "bytes" and mem.ratios["1.6.0"] == pytest.approx(1.75 / 1.6)
    plain = _row_of(table, "bench_misc.time_plain")
    assert plain.params == {} and plain.values["1.6.0"] == 0.001
    # every combination of every benchmark is a row (4 + 4 + 1 + 2 + 1), except fc_float16: skipped everywhere
    assert len(table.rows) == 11 and table.hidden == 1
    with pytest.raises(AssertionError):
        _row_of(table, "bench_ops.Ops.time_op", op="fc_float16")
    full = compare_versions(tmp_path, baseline="1.9.1", include_empty=True)
    assert len(full.rows) == 12 and full.hidden == 0
    ops = _row_of(full, "bench_ops.Ops.time_op", op="fc_float16")
    assert set(ops.status.values()) == {"skipped"}


def test_markdown_rendering(tmp_path: Path) -> None:
    write_four(tmp_path)
    md = compare_versions(tmp_path, baseline="1.9.1").to_markdown()
    lines = md.splitlines()
    header = next(ln for ln in lines if ln.startswith("| benchmark"))
    assert header == "| benchmark | parameters | 1.6.0 | 1.7.0.post2 | 1.8.0.post0 | 1.9.1 (baseline) |"
    row = next(ln for ln in lines if "time_forward" in ln and "path=hybridized, batch_size=8" in ln)
    assert row == ("| `bench_model.BertBase.time_forward` | path=hybridized, batch_size=8, seq_len=128 | "
                   "2 s (2.00x) | 1 s (1.00x) | 1.1 s (1.10x) | 1 s |")
    row = next(ln for ln in lines if "time_forward" in ln and "path=onednn, batch_size=8" in ln)
    assert "| skipped | failed | 800 ms (1.60x) | 500 ms |" in row
    assert any("| 1669 MiB (1.09x) |" in ln for ln in lines)
    assert any("| 6 sent/s (0.60x) |" in ln for ln in lines)
    assert "machine `vm` (AMD EPYC, 2 CPUs, x86_64)" in md
    assert "1 parameter combinations skipped in every version" in md and "fc_float16" not in md


@pytest.mark.parametrize("spelling", ["1.7.0post2", "1.7.0.post2"])
def test_baseline_accepts_both_post_release_spellings(tmp_path: Path, spelling: str) -> None:
    write_four(tmp_path)
    table = compare_versions(tmp_path, baseline=spelling)
    assert table.baseline == "1.7.0.post2"
    r = _row_of(table, "bench_model.BertBase.time_forward", path="hybridized", batch_size="1")
    assert r.ratios["1.6.0"] == pytest.approx(2.0)


def test_unknown_baseline_names_the_versions(tmp_path: Path) -> None:
    write_four(tmp_path)
    with pytest.raises(PerfsuiteInputError, match=r"baseline '1\.5\.0' matches no .*1\.6\.0, 1\.7\.0\.post2"):
        compare_versions(tmp_path, baseline="1.5.0")


def test_newest_commit_by_default_and_commit_prefix(tmp_path: Path) -> None:
    old, new = "a" * 40, "b" * 40
    write_result(tmp_path, "1.9.1", {"bench_misc.time_plain": [2.0]}, commit=old, date=1000)
    write_result(tmp_path, "1.6.0", {"bench_misc.time_plain": [4.0]}, commit=old, date=1000)
    write_result(tmp_path, "1.9.1", {"bench_misc.time_plain": [1.0]}, commit=new, date=2000)
    t = compare_versions(tmp_path)
    assert t.commit == new and t.versions == ["1.9.1"] and t.rows[0].values == {"1.9.1": 1.0}
    t = compare_versions(tmp_path, commit="aaaa")
    assert t.versions == ["1.6.0", "1.9.1"] and t.rows[0].ratios["1.6.0"] == pytest.approx(2.0)
    with pytest.raises(PerfsuiteInputError, match="commit 'cc' matches 0 commits.*aaaaaaaa, bbbbbbbb"):
        compare_versions(tmp_path, commit="cc")


def test_several_machines_need_a_machine(tmp_path: Path) -> None:
    write_result(tmp_path, "1.9.1", {"bench_misc.time_plain": [1.0]}, machine="cpu-box")
    write_result(tmp_path, "1.9.1", {"bench_misc.time_plain": [0.1]}, machine="t4-box", dist="mxnet-cu102")
    with pytest.raises(PerfsuiteInputError, match="holds results of 2 machines; pass --machine with one of: cpu-box, t4-box"):
        compare_versions(tmp_path)
    t = compare_versions(tmp_path, machine="t4-box")
    assert t.versions == ["mxnet-cu102 1.9.1"] and t.baseline == "mxnet-cu102 1.9.1"
    # one machine's folder works as well
    assert compare_versions(tmp_path / "cpu-box").versions == ["1.9.1"]
    with pytest.raises(PerfsuiteInputError, match="no results of machine 'nope'.*cpu-box, t4-box"):
        compare_versions(tmp_path, machine="nope")


def test_bench_filter(tmp_path: Path) -> None:
    write_four(tmp_path)
    t = compare_versions(tmp_path, bench=r"Ops\.")
    assert {r.benchmark for r in t.rows} == {"bench_ops.Ops.time_op"}
    with pytest.raises(PerfsuiteInputError, match="no benchmark matches"):
        compare_versions(tmp_path, bench="nothing-like-this")


def test_bad_folders_and_files_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PerfsuiteInputError, match="does not exist"):
        compare_versions(tmp_path / "missing")
    with pytest.raises(PerfsuiteInputError, match="no asv machine folder"):
        compare_versions(tmp_path)
    path = write_result(tmp_path, "1.9.1", {"bench_misc.time_plain": [1.0]})
    path.write_text(path.read_text()[:200])
    with pytest.raises(PerfsuiteInputError, match=re.escape(path.name) + ".*not valid JSON"):
        compare_versions(tmp_path)
    path.write_text(json.dumps({"format": "perfsuite-run"}))
    with pytest.raises(PerfsuiteInputError, match="not an asv result file"):
        load_result_files(tmp_path)
    doc = {"version": 1, "result_columns": ["result"], "results": {}}
    path.write_text(json.dumps(doc))
    with pytest.raises(PerfsuiteInputError, match="format version 1.*asv update"):
        load_result_files(tmp_path)


def test_cli_main_prints_markdown_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_four(tmp_path)
    assert main([str(tmp_path), "--baseline", "1.6.0", "--bench", "time_forward"]) == 0
    out = capsys.readouterr().out
    assert "| 1.6.0 (baseline) |" in out and "(0.50x)" in out
    assert main([str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["baseline"] == "1.9.1" and len(doc["rows"]) == 11 and doc["hidden"] == 1
    assert main([str(tmp_path), "--json", "--all"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 12
    assert main([str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ asv.conf.json
def test_asv_conf_matrix() -> None:
    json5 = pytest.importorskip("json5", reason="json5 comes with asv; asv.conf.json has // comments")
    conf = json5.loads((ROOT / "asv.conf.json").read_text())
    assert conf["environment_type"] == "virtualenv" and conf["pythons"] == ["3.11"]
    req = conf["matrix"]["req"]
    # asv 0.6.6 truncates "1.7.0.post2": post-releases must be written without the dot
    assert req["mxnet"] == ["1.6.0", "1.7.0post2", "1.8.0post0", "1.9.1"]
    assert req["numpy"] == ["1.23.5"] and req["gluonnlp"] == ["0.10.0"]
    assert not any(".post" in v for v in req["mxnet"])
    for key in ("env_dir", "results_dir", "html_dir"):
        assert conf[key].startswith(".asv/")
    assert conf["benchmark_dir"] == "benchmarks"
    assert any("--no-deps" in c and "--force-reinstall" in c for c in conf["install_command"])


# --------------------------------------------------------------------------------- benchmarks/ smoke run
BENCH_PREFIXES = ("time_", "track_", "peakmem_", "mem_", "timeraw_")


def _load_benchmark_modules() -> List[Any]:
    mods = []
    for path in sorted(BENCH_DIR.glob("*.py")):
        name = f"_perfsuite_asv_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        mods.append(mod)
    return mods


def _benchmark_classes() -> List[Tuple[str, type]]:
    out = []
    for mod in _load_benchmark_modules():
        for attr, obj in vars(mod).items():
            if attr.startswith("_") or not isinstance(obj, type) or obj.__module__ != mod.__name__:
                continue
            if any(m.startswith(BENCH_PREFIXES) for m in dir(obj)):
                out.append((f"{Path(mod.__file__).stem}.{attr}", obj))
    return out


def _smallest(params: Sequence[Sequence[Any]]) -> List[List[Any]]:
    """Numeric parameters: the smallest value; names (paths, ops): every value."""
    return [[min(p)] if all(isinstance(v, (int, float)) for v in p) else list(p) for p in params]


def _smoke(cls: type, model: Optional[str] = None) -> Dict[str, Any]:
    inst = cls()
    if model is not None:
        inst.model = model
    params = _smallest(getattr(cls, "params", []) or [])
    if params:
        inst.params = params
    methods = sorted(m for m in dir(cls) if m.startswith(BENCH_PREFIXES))
    cache = inst.setup_cache() if hasattr(cls, "setup_cache") else None
    lead = (cache,) if hasattr(cls, "setup_cache") else ()
    counts: Dict[str, Any] = {"ran": 0, "skipped": 0, "reasons": []}
    env_before = {k: v for k, v in os.environ.items() if k.startswith("MXNET_")}
    for combo in itertools.product(*params) if params else [()]:
        args = lead + tuple(combo)
        try:
            if hasattr(inst, "setup"):
                inst.setup(*args)
        except NotImplementedError as exc:
            counts["skipped"] += 1
            counts["reasons"].append(str(exc))
            if hasattr(inst, "teardown"):
                inst.teardown(*args)  # asv calls it after a skipped setup too
            continue
        try:
            for m in methods:
                value = getattr(inst, m)(*args)
                if m.startswith("track_"):
                    assert isinstance(value, float) and value > 0, (m, combo, value)
                    assert getattr(cls, m).unit, f"{cls.__name__}.{m} needs a unit"
            counts["ran"] += 1
        finally:
            if hasattr(inst, "teardown"):
                inst.teardown(*args)
        assert {k: v for k, v in os.environ.items() if k.startswith("MXNET_")} == env_before
    return counts


def test_benchmark_classes_are_discovered() -> None:
    names = [n for n, _ in _benchmark_classes()]
    assert {"bench_model.BertSmall", "bench_model.BertBase", "bench_model.BertBaseThroughput",
            "bench_model.BertSmallMemory", "bench_ops.Ops"} <= set(names)
    asv_runner = pytest.importorskip("asv_runner.discovery", reason="asv's own discovery (asv_runner)")
    found = {b.name: b for b in asv_runner.disc_benchmarks(str(BENCH_DIR))}
    assert "bench_model.BertSmall.time_forward" in found
    assert "bench_model.BertSmallMemory.peakmem_forward" in found
    assert "bench_model.BertSmallMemory.time_forward" not in found  # no inherited benchmark methods
    for name, b in found.items():
        if b.type == "track":
            assert b.unit in ("sentences/s", "USD per 1M requests at c5.xlarge's $0.17/h (a bill only when measured "
                                             "on a c5.xlarge)"), name
    assert "bench_ops.Ops.time_op" in found


@pytest.mark.parametrize("name", [n for n, _ in _benchmark_classes()])
def test_benchmark_smoke(name: str) -> None:
    """setup + one call of each benchmark method on the smallest parameters; BERT-base classes on 'small'."""
    cls = dict(_benchmark_classes())[name]
    model = "small" if getattr(cls, "model", None) == "bert-base" else None
    counts = _smoke(cls, model=model)
    _require_a_run(counts)


def _require_a_run(counts: Dict[str, Any]) -> None:
    """At least one combination ran, unless all need a GPU this machine lacks (then skip, saying so)."""
    if counts["ran"] == 0 and counts["reasons"] and all("needs a CUDA build" in r or "needs a visible GPU" in r
                                                         for r in counts["reasons"]):
        pytest.skip(f"every combination needs a GPU: {counts['reasons'][0]}")
    assert counts["ran"] >= 1, counts


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, c in _benchmark_classes() if getattr(c, "model", None) == "bert-base"])
def test_benchmark_smoke_bert_base(name: str) -> None:
    """The BERT-base classes on BERT-base itself (slow: ~10 s of preparation per path)."""
    _require_a_run(_smoke(dict(_benchmark_classes())[name]))
