"""Reports of saved results: figures computed from raw samples, Markdown and plots, comparisons, bad files.

The results here are built in the test (seeded samples, a fake environment): no MXNet work, fast."""

import json
import re

import numpy as np
import pytest

from perfsuite import cli
from perfsuite.errors import PerfsuiteInputError
from perfsuite.report import comparison, markdown as report
from perfsuite.results import write_json_atomic
from perfsuite.timing import Measurement

ENV = {"format_version": 1, "mxnet_distribution": "mxnet", "mxnet_dist_version": "1.9.1", "mxnet_version": "1.9.1",
       "features": {"MKLDNN": True, "CUDA": False, "OPENMP": True}, "num_gpus": 0, "omp_threads": 2,
       "cpu_model": "Test CPU", "cpu_count": 2, "gluonnlp_version": "0.10.0", "numpy_version": "1.23.5",
       "python_version": "3.11.7", "platform": "Linux", "mxnet_flags": {}}
PATHS = ("naive_attention", "hybridized")
BATCHES = (1, 4, 16)


def _measurement(path, batch, scale=1.0, seed=0, contaminated=()):
    rng = np.random.default_rng(seed + batch)
    base = 0.01 * batch * (1.3 if path == "naive_attention" else 1.0) * scale
    samples = list(base * (1 + 0.02 * rng.standard_normal(7)))
    flags = [i in contaminated for i in range(7)]
    wl = {"model": "small", "path": path, "task": "classification", "batch": batch, "seq_len": 32}
    return Measurement(wl, samples, flags, [0.0] * 7, 0, 1e9 * batch, peak_rss_bytes=300 * 2 ** 20,
                       prepare_s=0.1).to_dict()


def _doc(version="1.9.1", scale=1.0, mkldnn=True, status="complete", price=None):
    env = dict(ENV, mxnet_dist_version=version, mxnet_version=version.split(".post")[0],
               features=dict(ENV["features"], MKLDNN=mkldnn))
    prices = dict(report.PRICES)
    if price:
        prices[report.USER_PRICE] = price
    rng = np.random.default_rng(1)
    speedups = []
    for b in BATCHES:
        base = 0.013 * b * scale * (1 + 0.01 * rng.standard_normal(5))
        speedups.append({"model": "small", "task": "classification", "seq_len": 32, "batch": b,
                         "optimized": "hybridized", "baseline": "naive_attention",
                         "label": "interleaved vs naive attention", "rounds": 5,
                         "optimized_samples_s": list(base / 1.3), "baseline_samples_s": list(base),
                         "optimized_contaminated": [False] * 5, "baseline_contaminated": [False] * 5})
    return {"format": report.RESULTS_FORMAT, "format_version": report.RESULTS_FORMAT_VERSION,
            "perfsuite_version": "0.1.0", "status": status, "started_utc": "2024-01-01T00:00:00Z",
            "finished_utc": "2024-01-01T00:05:00Z", "elapsed_s": 300.0,
            "config": {"profile": "smoke", "timing": {"warmup": 0, "min_repeat": 5, "max_repeat": 10,
                                                      "min_time_s": 0.0, "max_time_s": 10.0, "rounds": 5}},
            "env": env, "prices": prices, "gemm_n": 256, "gemm_peak_gflops": 50.0,
            "timer_overhead": {"bare_loop_s": 6e-8, "timer_s": 9e-5, "timer_with_waitall_s": 1e-4},
            "parity": None, "measurements": [_measurement(p, b, scale) for p in PATHS for b in BATCHES],
            "skipped": [{"id": "small/onednn/classification/b1/L32", "reason": "needs MKLDNN"}], "errors": [],
            "speedups": speedups, "speedups_skipped": [
                {"optimized": "gpu_fp16", "baseline": "gpu_fp32", "label": "GPU FP16 vs FP32",
                 "reason": "needs a CUDA build of MXNet; found mxnet 1.9.1 (CPU)"}]}


def _save(tmp_path, name, doc):
    folder = tmp_path / name
    folder.mkdir()
    write_json_atomic(folder / "results.json", doc)
    return folder


def test_cost_per_million_is_the_seeds_formula():
    assert report.cost_per_million(0.17, 10.0) == pytest.approx(0.17 / 3600 / 10 * 1e6)
    assert report.cost_per_million(0.17, 0.0) == float("inf")


def test_figures_come_from_the_clean_samples():
    d = _measurement("hybridized", 4, contaminated=(0, 1))
    d["samples_s"][0] = d["samples_s"][1] = 99.0  # contaminated outliers must not move the statistics
    m = Measurement.from_dict(d)
    f = report.workload_figures(m, 50.0, {"c5.xlarge": 0.17})
    clean = np.array(d["samples_s"][2:])
    assert f["median_ms"] == pytest.approx(np.median(clean) * 1e3)
    assert f["p90_ms"] == pytest.approx(np.percentile(clean, 90) * 1e3)
    assert f["throughput"] == pytest.approx(4 / np.median(clean))
    assert f["throughput_mean"] == pytest.approx(4 / np.mean(clean))  # long-run: batch / mean latency
    assert f["cost"]["c5.xlarge"] == pytest.approx(0.17 / 3600 / f["throughput_mean"] * 1e6)
    assert f["peak_fraction"] == pytest.approx(f["gflops"] / 50.0)
    assert f["dropped"] == 2 and f["n"] == 7 and f["peak_rss_mib"] == pytest.approx(300)


def test_speedup_is_paired_and_says_inconclusive():
    rng = np.random.default_rng(0)
    base = 1 + 0.3 * rng.random(8)  # drift shared by both: pairing cancels it
    rec = {"optimized_samples_s": list(base / 2), "baseline_samples_s": list(base)}
    r = report.speedup_ratio(rec)
    assert r.ratio == pytest.approx(0.5) and r.significant and r.n_units == 8
    assert report.format_speedup(r).startswith("2.00x [2.00, 2.00]")
    same = {"optimized_samples_s": list(base), "baseline_samples_s": list(base[::-1])}
    assert report.format_speedup(report.speedup_ratio(same)).startswith("inconclusive (")  # never "no change"
    wiggle = np.exp(np.array([1, -1, 2, -2, 3, -3, 1.5, -1.5]) * 1e-4)  # no change, and none beyond 5 % possible
    assert "(no change beyond 5%" in report.format_speedup(report.speedup_ratio(
        {"optimized_samples_s": list(base * wiggle), "baseline_samples_s": list(base)}))
    slower = {"optimized_samples_s": list(base * 2), "baseline_samples_s": list(base)}
    assert report.format_speedup(report.speedup_ratio(slower)).endswith("(slower)")
    few = {"optimized_samples_s": list(base[:5] / 2), "baseline_samples_s": list(base[:5])}
    assert report.format_speedup(report.speedup_ratio(few)).startswith("not enough data (2.00x on 5 pairs")


def test_a_disturbed_outlier_pair_does_not_move_the_speedup():
    rng = np.random.default_rng(1)
    base = 1 + 0.05 * rng.random(10)
    opt = base / 2 * (1 + 0.01 * rng.standard_normal(10))
    clean = report.speedup_ratio({"optimized_samples_s": list(opt), "baseline_samples_s": list(base)})
    opt_bad = opt.copy()
    opt_bad[3] = 50.0  # another process took the cores during this sample
    marks = [i == 3 for i in range(10)]
    rec = {"optimized_samples_s": list(opt_bad), "baseline_samples_s": list(base),
           "optimized_contaminated": marks, "baseline_contaminated": [False] * 10}
    r = report.speedup_ratio(rec)
    keep = [i != 3 for i in range(10)]
    assert r.n_units == 9 and r.ratio == pytest.approx(np.exp(np.mean(np.log(opt[keep] / base[keep]))))
    assert abs(r.ratio - clean.ratio) < 0.01


def test_report_has_every_figure(tmp_path):
    doc = _doc(price=0.3)
    path, plots = report.render(doc, tmp_path)
    text = path.read_text()
    for needle in ("## Environment", "mxnet 1.9.1", "OpenMP threads", "MKLDNN/oneDNN", "Test CPU",
                   "## Timer overhead", "0.06 us", "90.00 us", "GEMM peak", "50.0 GFLOP/s",
                   "### Latency (ms): median (IQR)", "### Throughput (sentences/s)", "### Cost per 1M requests",
                   "g4dn.xlarge ($0.526/h)", "c5.xlarge ($0.17/h)", "c5.24xlarge ($4.08/h)", "m5.xlarge ($0.192/h)",
                   "your price ($0.3/h)", "p90 ms", "p99 ms", "IQR ms", "sent/s", "GFLOP/s", "% of GEMM peak",
                   "peak RSS MiB", "dropped", "noisy", "## Speed-up of each optimization",
                   "interleaved vs naive attention", "1.30x", "GPU FP16 vs FP32", "needs a CUDA build",
                   "## Not measured", "needs MKLDNN", "sequence length 32"):
        assert needle in text, needle
    assert "without MKLDNN" not in text
    assert sorted(plots) == ["cost_small_classification_L32.png", "latency_small_classification_L32.png"]
    for p in plots:
        data = (tmp_path / p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert f"![{p}]({p})" in text


def test_interrupted_and_no_mkldnn_are_said(tmp_path):
    doc = _doc(version="1.6.0", mkldnn=False, status="interrupted")
    doc["error"] = "interrupted by the user (Ctrl-C)"
    text = report.render_markdown(doc)
    assert "Status: interrupted" in text and "Ctrl-C" in text
    assert "mxnet 1.6.0 is built without MKLDNN" in text and "build change" in text


def test_cli_rerenders_one_result_into_its_folder(tmp_path, capsys):
    folder = _save(tmp_path, "run1", _doc())
    assert cli.main(["report", str(folder)]) == 0
    out = capsys.readouterr().out
    assert (folder / "report.md").exists() and (folder / "latency_small_classification_L32.png").exists()
    assert "c5.xlarge" in out and str(folder / "report.md") in out
    other = tmp_path / "elsewhere"
    assert cli.main(["report", str(folder / "results.json"), "--out", str(other)]) == 0
    assert (other / "report.md").exists()


def test_cli_compares_two_versions(tmp_path, capsys):
    old = _save(tmp_path, "old", _doc(version="1.7.0.post2", scale=1.5))
    new = _save(tmp_path, "new", _doc(version="1.9.1"))
    out_dir = tmp_path / "cmp"
    assert cli.main(["report", str(old), str(new), "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    text = (out_dir / "comparison.md").read_text()
    assert "mxnet 1.7.0.post2 vs mxnet 1.9.1" in text and "Baseline: **mxnet 1.7.0.post2**" in text
    assert "mxnet 1.9.1 / mxnet 1.7.0.post2" in text and "not enough data" in text  # one run per side
    assert "## Speed-ups per result" in text and "perfsuite gate" in text
    assert (out_dir / "compare_small_classification_L32.png").read_bytes()[:4] == b"\x89PNG"
    assert "small/hybridized/classification/b4/L32" in printed and "not enough data" in printed
    rows = comparison.comparison_rows([report.load(old), report.load(new)], baseline=1)
    assert all(r.ratios[0].verdict == "not enough data" and r.ratios[0].ratio == pytest.approx(1.5, rel=0.05)
               for r in rows)
    assert all(r.ratios[1] is None for r in rows)


def test_replicated_runs_of_each_version_give_a_verdict(tmp_path):
    olds = [_save(tmp_path, f"old{i}", _doc(version="1.7.0.post2", scale=1.5 * (1 + 0.01 * i))) for i in range(4)]
    news = [_save(tmp_path, f"new{i}", _doc(version="1.9.1", scale=1 + 0.01 * i)) for i in range(4)]
    docs = [report.load(p) for p in olds + news]
    assert comparison.sides(docs) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    rows = comparison.comparison_rows(docs, baseline=0)
    assert all(r.ratios[1].verdict == "faster" and r.ratios[1].n_units == 4 for r in rows)
    path, _, _ = comparison.render_comparison(docs, tmp_path, baseline=0)
    assert "mxnet 1.7.0.post2 (4 runs) vs mxnet 1.9.1 (4 runs)" in path.read_text()


def test_comparison_labels_duplicates_and_notes_mkldnn(tmp_path):
    a = _save(tmp_path, "a", _doc(version="1.6.0", mkldnn=False))
    b = _save(tmp_path, "b", _doc(version="1.6.0", mkldnn=False))
    path, _, table = comparison.render_comparison([report.load(a), report.load(b)], tmp_path, baseline=0)
    text = path.read_text()
    assert "mxnet 1.6.0 (#1)" in text and "mxnet 1.6.0 (#2)" in text and "without MKLDNN" in text


def test_workload_missing_from_one_result_is_a_dash(tmp_path):
    doc_b = _doc()
    doc_b["measurements"] = doc_b["measurements"][:2]
    a, b = _save(tmp_path, "a", _doc()), _save(tmp_path, "b", doc_b)
    rows = comparison.comparison_rows([report.load(a), report.load(b)])
    missing = [r for r in rows if r.medians_s[1] is None]
    assert len(missing) == len(rows) - 2 and all(r.ratios[1] is None for r in missing)


@pytest.mark.parametrize("content,needle", [
    ("{\"format\": \"perfsuite-results\", \"format_version\": 1, \"env\": {", "is not valid JSON (line 1"),
    (json.dumps({"format": "perfsuite-parity", "format_version": 1}),
     "is not a perfsuite 'perfsuite-results' file (format: 'perfsuite-parity')"),
    (json.dumps({"format": "perfsuite-results", "format_version": 7}), "format_version 7; this perfsuite reads 1"),
    (json.dumps({"format": "perfsuite-results", "format_version": 1}), "without 'env'"),
    (json.dumps({"format": "perfsuite-results", "format_version": 1, "env": {}, "measurements": [{"x": 1}]}),
     "malformed measurement"),
])
def test_bad_result_files_exit_2_naming_the_file(tmp_path, capsys, content, needle):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert cli.main(["report", str(bad)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert needle in err and "bad.json" in err


def test_bad_report_arguments(tmp_path, capsys):
    folder = _save(tmp_path, "r", _doc())
    assert cli.main(["report", str(folder), str(folder), "--baseline", "3"]) == cli.EXIT_USAGE
    assert "--baseline 3: allowed 1 to 2" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["report", str(empty)]) == cli.EXIT_USAGE
    assert "without results.json" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "absent")]) == cli.EXIT_USAGE
    assert "absent" in capsys.readouterr().err
    with pytest.raises(PerfsuiteInputError, match="baseline 5"):
        comparison.comparison_rows([report.load(folder)], baseline=4)


def test_all_contaminated_and_over_peak_are_flagged():
    doc = _doc()
    doc["measurements"][0] = _measurement("naive_attention", 1, contaminated=range(7))
    doc["gemm_peak_gflops"] = 1.0  # every workload above it
    text = report.render_markdown(doc)
    assert re.search(r"\|\s*7\s*\|\s*7 \(all!\)\s*\|", text) and "Every sample of naive_attention batch 1 was contaminated" in text
    assert "Above 100% of the measured GEMM peak (hybridized, naive_attention)" in text


def test_memory_per_path_is_the_probes_and_older_results_keep_their_label():
    """Issue 19: the report's memory is each path's own process (the probes), in its own table and in the
    per-workload column where that batch was probed; a result without probes keeps the old, labelled figure."""
    doc = _doc()
    doc["memory"] = [
        {"workload": {"model": "small", "path": "hybridized", "task": "classification", "batch": 1, "seq_len": 32},
         "peak_rss_bytes": 512 * 2 ** 20, "rss_bytes": 500 * 2 ** 20, "seconds": 3.0},
        {"workload": {"model": "small", "path": "naive_attention", "task": "classification", "batch": 1,
                      "seq_len": 32}, "peak_rss_bytes": None, "rss_bytes": None, "error": "WorkerError: crashed"}]
    text = report.render_markdown(doc)
    assert "### Memory: peak RSS (MiB) of a process that runs only this path" in text
    assert re.search(r"\|\s*hybridized\s*\|\s*512\s*\|", text)
    assert re.search(r"\|\s*naive_attention\s*\|\s*error: WorkerError: crashed\s*\|", text)
    assert "own-process peak RSS MiB" in text
    row = [ln for ln in text.splitlines() if re.match(r"\|\s*hybridized\s*\|\s*4\s*\|", ln)][0]
    assert "300" not in row.split("|")[10]  # batch 4 was not probed: no figure, not the timing process's
    assert "hybridized b1 512 MiB" in report.text_summary(doc)
    old = report.render_markdown(_doc())
    assert "own-process" not in old and "a result of an earlier perfsuite" in old


def test_readme_excerpt_comes_from_a_saved_result(tmp_path, capsys):
    doc = _doc()
    for r in doc["speedups"]:
        r.update(optimized="int8", baseline="onednn")
    folder = _save(tmp_path, "r", doc)
    assert report.main(["--readme", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Measured here on 2024-01-01 (mxnet 1.9.1")
    assert "took 5:00 (min:s)" in out and re.search(r"\|\s*batch\s*\|\s*hybridized ms \(IQR\)", out)
    assert report.main(["--readme", str(tmp_path / "nothing")]) == 2
