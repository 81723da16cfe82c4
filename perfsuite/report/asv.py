"""MXNet versions side by side, from asv's result files.

asv keeps one result file per (commit, environment) under ``<results_dir>/<machine>/``; in perfsuite the
environments are MXNet versions (asv.conf.json's matrix). ``asv compare`` and ``asv continuous`` compare two
*commits* in one environment, never two environments, so this module does that comparison: per benchmark and
parameter combination, each MXNet version's value (asv's median for time_* benchmarks, the tracked value for
track_*, peak RSS for peakmem_*) and its ratio to a baseline version.

    from perfsuite.report.asv import compare_versions
    table = compare_versions(".asv/results", baseline="1.9.1")
    print(table.to_markdown())

or ``python -m perfsuite.report.asv .asv/results --baseline 1.9.1``.

Reads asv 0.6's result format (``"version": 2``, columns named in ``"result_columns"``): a value ``NaN``
means asv skipped the combination (setup raised NotImplementedError), ``null`` that it failed.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from perfsuite.env import parse_version
from perfsuite.errors import PerfsuiteInputError
from perfsuite.outputs import print_format

__all__ = ["compare_versions", "VersionTable", "VersionRow", "ResultFile", "load_result_files",
           "normalize_version", "add_arguments", "run_args", "main"]

ASV_RESULTS_FORMAT = 2  # "version" of asv 0.5/0.6 result files
_NOT_RESULTS = {"machine.json", "benchmarks.json"}
_MXNET_KEY = re.compile(r"^(?:pip\+)?(mxnet(?:-[a-z0-9]+)?)$")
_MXNET_IN_ENV_NAME = re.compile(r"(?:^|-)(mxnet(?:-cu\d+[a-z]*)?)(\d+(?:\.\d+)*(?:\.?post\d+)?)(?=-|$)")

PathLike = Union[str, "Path"]


def normalize_version(version: str) -> str:
    """PEP 440 spelling of a version as asv's matrix writes it: '1.7.0post2' -> '1.7.0.post2'."""
    from packaging.version import InvalidVersion, Version

    v = str(version).strip()
    try:
        return str(Version(v))  # packaging normalizes every PEP 440 spelling: 1.7.0post2, 1.8.0-post0, 1.8.0.r0
    except InvalidVersion:
        return v.lower()


def _version_key(label: str) -> Tuple:
    """Order labels by their PEP 440 version (perfsuite.env.parse_version); unparsable ones last, by name."""

    try:
        return (0, parse_version(label), label)
    except PerfsuiteInputError:
        return (1, (), label)


@dataclass(frozen=True)
class ResultFile:
    """One asv result file: one commit of perfsuite measured in one environment (one MXNet version)."""

    path: Path
    machine: str
    commit: str
    env_name: str
    date: int  # commit date, ms since the epoch (asv's "date")
    distribution: Optional[str]  # 'mxnet', 'mxnet-cu102', ... (None when the environment does not say)
    version: Optional[str]  # normalized MXNet version
    params: Dict[str, Any]
    results: Dict[str, Dict[str, Any]]  # benchmark -> {column: value}

    @property
    def label(self) -> str:
        """How the version is shown: '1.9.1' for the mxnet wheel, 'mxnet-cu102 1.9.1' for others."""
        if self.version is None:
            return self.env_name
        if self.distribution in (None, "mxnet"):
            return self.version
        return f"{self.distribution} {self.version}"


def _mxnet_of(params: Dict[str, Any], requirements: Dict[str, Any], env_name: str) -> Tuple[Optional[str], Optional[str]]:
    for source in (requirements, params):
        for key, value in source.items():
            m = _MXNET_KEY.match(str(key))
            if m and value not in (None, ""):
                return m.group(1), normalize_version(str(value))
    m = _MXNET_IN_ENV_NAME.search(env_name)
    if m:
        return m.group(1), normalize_version(m.group(2))
    return None, None


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PerfsuiteInputError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise PerfsuiteInputError(f"{str(path)!r} is not a UTF-8 JSON file (not an asv result file)") from None
    try:
        return json.loads(text)  # asv writes NaN / Infinity, which Python's json reads
    except ValueError as exc:
        raise PerfsuiteInputError(f"{str(path)!r} is not valid JSON ({exc}); is it a truncated asv result "
                                  "file? Re-run `asv run` for that environment or delete the file") from None


def _parse_result_file(path: Path, machine: str) -> ResultFile:
    d = _read_json(path)
    if not isinstance(d, dict) or "result_columns" not in d or "results" not in d:
        raise PerfsuiteInputError(
            f"{str(path)!r} is not an asv result file (no 'result_columns'/'results'); allowed in an asv "
            f"results folder: machine.json, benchmarks.json and asv's <commit>-<environment>.json files")
    if d.get("version") != ASV_RESULTS_FORMAT:
        raise PerfsuiteInputError(
            f"{str(path)!r} is an asv result file of format version {d.get('version')!r}; this reads version "
            f"{ASV_RESULTS_FORMAT} (asv 0.5/0.6). Run `asv update` to convert older files")
    columns = list(d["result_columns"])
    if "result" not in columns or "params" not in columns:
        raise PerfsuiteInputError(f"{str(path)!r}: result_columns {columns} lack 'result' or 'params'")
    results: Dict[str, Dict[str, Any]] = {}
    for name, row in d["results"].items():
        if not isinstance(row, list):
            raise PerfsuiteInputError(f"{str(path)!r}: benchmark {name!r} has a {type(row).__name__}, not a row")
        results[name] = dict(zip(columns, row))
    params = dict(d.get("params") or {})
    dist, version = _mxnet_of(params, dict(d.get("requirements") or {}), str(d.get("env_name", "")))
    return ResultFile(path=path, machine=str(params.get("machine", machine)), commit=str(d.get("commit_hash", "")),
                      env_name=str(d.get("env_name", path.stem)), date=int(d.get("date") or 0),
                      distribution=dist, version=version, params=params, results=results)


def _machine_dirs(results_dir: Path) -> List[Path]:
    if not results_dir.is_dir():
        raise PerfsuiteInputError(f"asv results folder {str(results_dir)!r} does not exist; run `asv run` first "
                                  "(asv.conf.json puts results in .asv/results)")
    if (results_dir / "machine.json").is_file():  # given one machine's folder
        return [results_dir]
    return sorted(p for p in results_dir.iterdir() if p.is_dir() and (p / "machine.json").is_file())


def load_result_files(results_dir: PathLike, machine: Optional[str] = None) -> List[ResultFile]:
    """Every asv result file under `results_dir` (the results folder, or one machine's folder in it)."""
    root = Path(results_dir)
    dirs = _machine_dirs(root)
    if not dirs:
        raise PerfsuiteInputError(f"{str(root)!r} holds no asv machine folder (<machine>/machine.json); "
                                  "run `asv machine --yes` and `asv run` first")
    if machine is not None:
        names = [p.name for p in dirs]
        if machine not in names:
            raise PerfsuiteInputError(f"no results of machine {machine!r} in {str(root)!r}; allowed: "
                                      f"{', '.join(names)}")
        dirs = [p for p in dirs if p.name == machine]
    files: List[ResultFile] = []
    for d in dirs:
        for path in sorted(d.glob("*.json")):
            if path.name not in _NOT_RESULTS:
                files.append(_parse_result_file(path, d.name))
    return files


def _benchmarks_meta(results_dir: Path) -> Dict[str, Dict[str, Any]]:
    for candidate in (results_dir / "benchmarks.json", results_dir.parent / "benchmarks.json"):
        if candidate.is_file():
            meta = _read_json(candidate)
            if isinstance(meta, dict):
                return {k: v for k, v in meta.items() if isinstance(v, dict)}
    return {}


def _unrepr(value: str) -> str:
    try:
        v = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
    return v if isinstance(v, str) else value


def _combos(params: Sequence[Sequence[str]]) -> List[Tuple[str, ...]]:
    import itertools

    return [tuple(c) for c in itertools.product(*params)] if params else [()]


def _is_value(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass
class VersionRow:
    """One benchmark and parameter combination across versions."""

    benchmark: str
    params: Dict[str, str]  # name -> value, e.g. {'path': 'hybridized', 'batch_size': '8', 'seq_len': '128'}
    unit: str
    values: Dict[str, Optional[float]]  # version label -> value (None: no value, see status)
    status: Dict[str, str]  # version label -> 'ok', 'skipped', 'failed' or 'missing'
    ratios: Dict[str, Optional[float]]  # version label -> value / baseline value

    @property
    def params_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.params.items())


@dataclass
class VersionTable:
    """MXNet versions x benchmarks of one machine and one perfsuite commit."""

    machine: str
    machine_info: Dict[str, Any]
    commit: str
    baseline: str
    versions: List[str]
    env_names: Dict[str, str]
    rows: List[VersionRow] = field(default_factory=list)
    hidden: int = 0  # combinations skipped (or missing) in every version, left out (include_empty=False)

    def to_dict(self) -> Dict[str, Any]:
        return {"machine": self.machine, "machine_info": self.machine_info, "commit": self.commit,
                "baseline": self.baseline, "versions": self.versions, "env_names": self.env_names,
                "hidden": self.hidden, "rows": [{"benchmark": r.benchmark, "params": r.params, "unit": r.unit, "values": r.values,
                          "status": r.status, "ratios": r.ratios} for r in self.rows]}

    def to_markdown(self) -> str:
        info = self.machine_info
        hw = ", ".join(x for x in (info.get("cpu"), f"{info['num_cpu']} CPUs" if info.get("num_cpu") else None,
                                   info.get("arch")) if x)
        lines = [
            f"### MXNet versions on machine `{self.machine}`" + (f" ({hw})" if hw else ""),
            "",
            f"perfsuite commit `{self.commit[:8]}`; each cell: asv's value (median for time_*) and, in "
            f"parentheses, its ratio to MXNet {self.baseline}. Ratio > 1: slower (time), more memory "
            "(peakmem), more sentences/s (throughput), dearer (cost).",
            "",
        ]
        head = ["benchmark", "parameters"] + [v + (" (baseline)" if v == self.baseline else "") for v in self.versions]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---", "---"] + ["---:"] * len(self.versions)) + "|")
        for r in self.rows:
            cells = []
            for v in self.versions:
                if r.values.get(v) is None:
                    cells.append(r.status.get(v, "missing"))
                    continue
                text = format_value(r.values[v], r.unit)
                ratio = r.ratios.get(v)
                if v != self.baseline and ratio is not None:
                    text += f" ({ratio:.2f}x)"
                cells.append(text)
            lines.append("| " + " | ".join([f"`{r.benchmark}`", r.params_text or "-"] + cells) + " |")
        if self.hidden:
            lines += ["", f"{self.hidden} parameter combinations skipped in every version (e.g. GPU paths on a CPU "
                          "machine) are not shown."]
        units = sorted({r.unit for r in self.rows if r.unit not in ("seconds", "bytes", "sentences/s", "")})
        if units:
            lines += ["", "Units: " + "; ".join(f"$ = {u}" if u.startswith("USD") else u for u in units) + "."]
        return "\n".join(lines) + "\n"


def format_value(value: float, unit: str) -> str:
    """A value in a readable unit: seconds as us/ms/s, bytes as MiB, anything else with 4 digits."""
    if unit == "seconds":
        if value < 1e-3:
            return f"{value * 1e6:.3g} us"
        if value < 1.0:
            return f"{value * 1e3:.3g} ms"
        return f"{value:.3g} s"
    if unit == "bytes":
        return f"{value / 2 ** 20:.0f} MiB"
    if unit.startswith("USD"):  # "USD per 1M requests (c5.xlarge $0.17/h)"
        return f"${value:.4g}"
    if unit == "sentences/s":
        return f"{value:.4g} sent/s"
    return f"{value:.4g} {unit}".rstrip()


def _pick_commit(files: List[ResultFile], commit: Optional[str]) -> str:
    commits: Dict[str, int] = {}
    for f in files:
        commits[f.commit] = max(commits.get(f.commit, 0), f.date)
    if commit is None:  # the newest commit (by commit date) that has results
        return max(commits, key=lambda c: (commits[c], sum(f.commit == c for f in files)))
    matches = [c for c in commits if c.startswith(commit)]
    if len(matches) != 1:
        raise PerfsuiteInputError(
            f"commit {commit!r} matches {len(matches)} commits with results; allowed: "
            f"{', '.join(c[:8] for c in sorted(commits))}")
    return matches[0]


def compare_versions(results_dir: PathLike, baseline: str = "1.9.1", machine: Optional[str] = None,
                     commit: Optional[str] = None, bench: Optional[str] = None,
                     include_empty: bool = False) -> VersionTable:
    """Per benchmark and parameter combination, each MXNet version's value and its ratio to `baseline`.

    results_dir: asv's results folder (asv.conf.json: .asv/results) or one machine's folder in it.
    baseline: the MXNet version to divide by, as the matrix or pip spells it ('1.7.0post2' == '1.7.0.post2');
      for a non-'mxnet' distribution 'mxnet-cu102 1.9.1' (or just '1.9.1' when only one has it).
    machine: which machine's results (required when the folder holds several; hardware is never mixed).
    commit: a perfsuite commit hash or prefix; default the newest commit with results.
    bench: a regular expression; only benchmarks whose name it matches (re.search).
    include_empty: also list combinations skipped in every version (hidden by default and counted in
      `hidden`; combinations that failed somewhere are always listed).
    """
    root = Path(results_dir)
    files = load_result_files(root, machine)
    machines = sorted({f.machine for f in files})
    if not files:
        raise PerfsuiteInputError(f"no asv result files under {str(root)!r}; run `asv run --quick` first")
    if len(machines) > 1:
        raise PerfsuiteInputError(f"{str(root)!r} holds results of {len(machines)} machines; pass --machine with one of: "
                                  f"{', '.join(machines)} (versions are compared on one machine)")
    picked = _pick_commit(files, commit)
    files = [f for f in files if f.commit == picked]
    by_label: Dict[str, ResultFile] = {}
    for f in sorted(files, key=lambda f: f.env_name):
        label = f.label
        if label in by_label:  # two environments with one MXNet version (other python, env vars, ...)
            label = f"{label} ({f.env_name})"
        by_label[label] = f
    versions = sorted(by_label, key=_version_key)

    base = _match_baseline(baseline, versions)
    meta = _benchmarks_meta(root)  # benchmarks.json: units, parameter names
    try:
        pattern = re.compile(bench) if bench else None
    except re.error as exc:
        raise PerfsuiteInputError(f"--bench {bench!r} is not a valid regular expression ({exc})") from None
    names = sorted({n for f in by_label.values() for n in f.results if not pattern or pattern.search(n)})
    if not names:
        raise PerfsuiteInputError(f"no benchmark matches {bench!r} in the results of commit {picked[:8]}"
                                  if bench else f"the results of commit {picked[:8]} hold no benchmark")
    rows: List[VersionRow] = []
    hidden = 0
    for name in names:
        info = meta.get(name, {})
        unit = str(info.get("unit") or _default_unit(name))
        per_version, all_combos = _per_version(by_label, name)
        param_names = list(info.get("param_names") or [])
        for combo in all_combos:
            names_ = param_names if len(param_names) == len(combo) else [f"p{i}" for i in range(len(combo))]
            values_out: Dict[str, Optional[float]] = {}
            status: Dict[str, str] = {}
            for label in versions:
                if label not in per_version or combo not in per_version[label]:
                    values_out[label], status[label] = None, "missing"
                    continue
                values_out[label], status[label] = _value_status(per_version[label][combo], unit)
            if not include_empty and all(st in ("skipped", "missing") for st in status.values()):
                hidden += 1
                continue
            b = values_out.get(base)
            ratios = {v: (values_out[v] / b if values_out[v] is not None and b else None) for v in versions}
            rows.append(VersionRow(name, {k: _unrepr(v) for k, v in zip(names_, combo)}, unit, values_out,
                                   status, ratios))
    first = next(iter(by_label.values()))
    machine_info = {k: first.params.get(k) for k in ("arch", "cpu", "num_cpu", "os", "ram") if k in first.params}
    return VersionTable(machine=first.machine, machine_info=machine_info, commit=picked, baseline=base,
                        versions=versions, env_names={v: by_label[v].env_name for v in versions}, rows=rows,
                        hidden=hidden)


def _per_version(by_label: Dict[str, "ResultFile"], name: str
                 ) -> Tuple[Dict[str, Dict[Tuple[str, ...], Any]], List[Tuple[str, ...]]]:
    """One benchmark's values per version, by parameter combination, and every combination in first-seen order."""
    per_version: Dict[str, Dict[Tuple[str, ...], Any]] = {}
    all_combos: List[Tuple[str, ...]] = []
    for label, f in by_label.items():
        row = f.results.get(name)
        if row is None:
            continue
        combos = _combos(row.get("params") or [])
        values = row.get("result")
        values = values if isinstance(values, list) else [values] * len(combos)
        per_version[label] = dict(zip(combos, values))
        for c in combos:
            if c not in all_combos:
                all_combos.append(c)
    return per_version, all_combos


def _value_status(x: Any, unit: str) -> Tuple[Optional[float], str]:
    """An asv result value as (number or None, "ok" | "skipped" | "failed" | "invalid (...)")."""
    if _is_value(x) and (float(x) < 0 or float(x) != float(x)) and unit in ("seconds", "bytes"):
        return None, f"invalid ({x!r})"  # a time or size cannot be < 0
    if _is_value(x):
        return float(x), "ok"
    if isinstance(x, float) and math.isnan(x):
        return None, "skipped"
    return None, "failed"


def _default_unit(name: str) -> str:
    leaf = name.rsplit(".", 1)[-1]
    return "seconds" if leaf.startswith("time_") else "bytes" if leaf.startswith(("peakmem_", "mem_")) else ""


def _match_baseline(baseline: str, versions: Sequence[str]) -> str:
    want = normalize_version(baseline)
    exact = [v for v in versions if normalize_version(v) == want or v == baseline]
    if not exact:  # '1.9.1' names 'mxnet-cu102 1.9.1' when only one distribution has it
        exact = [v for v in versions if normalize_version(v.split(" ")[-1].split(" (")[0]) == want]
    if len(exact) != 1:
        what = "matches no" if not exact else f"matches {len(exact)}"
        raise PerfsuiteInputError(f"baseline {baseline!r} {what} MXNet version with results; allowed: "
                                  f"{', '.join(versions)}")
    return exact[0]


# ------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `perfsuite asv-compare` / `python -m perfsuite.report.asv`."""
    parser.add_argument("results_dir", nargs="?", default=".asv/results",
                        help="asv results folder, or one machine's folder in it (default: .asv/results)")
    parser.add_argument("--baseline", default="1.9.1", help="MXNet version to divide by (default: 1.9.1)")
    parser.add_argument("--machine", help="machine name (required when the folder holds several)")
    parser.add_argument("--commit", help="perfsuite commit (hash prefix); default: the newest with results")
    parser.add_argument("--bench", help="only benchmarks whose name matches this regular expression")
    parser.add_argument("--all", action="store_true", dest="include_empty",
                        help="also list combinations skipped in every version (e.g. GPU paths on a CPU machine)")
    parser.add_argument("--format", choices=("markdown", "json"), default=None,
                        help="how to print the table: markdown (default) or json")
    parser.add_argument("--json", action="store_true",
                        help="deprecated spelling of --format json (elsewhere --json FILE writes a file)")
    return parser


def run_args(args: argparse.Namespace) -> int:
    """Handler: print the table; 0 when printed (PerfsuiteInputError propagates for exit code 2)."""
    if args.bench:  # a bad pattern is refused before any file is read
        try:
            re.compile(args.bench)
        except re.error as exc:
            raise PerfsuiteInputError(f"--bench {args.bench!r} is not a valid regular expression ({exc})") from None

    fmt = print_format(args.json, args.format, "markdown", "asv-compare")
    table = compare_versions(args.results_dir, baseline=args.baseline, machine=args.machine, commit=args.commit,
                             bench=args.bench, include_empty=args.include_empty)
    if fmt == "json":
        print(json.dumps(table.to_dict(), indent=1))
    else:
        print(table.to_markdown(), end="")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(
        prog="python -m perfsuite.report.asv",
        description="Compare MXNet versions (asv environments) from asv result files."))
    args = parser.parse_args(argv)
    try:
        return run_args(args)
    except PerfsuiteInputError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
