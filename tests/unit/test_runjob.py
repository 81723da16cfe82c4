"""`perfsuite run`: the whole job end to end on the smoke profile, interruption safety, bad inputs.

Runs each benchmark briefly on the 'small' model ('smoke' profile, tiny --min-time); no speed assertions (the
machine is shared and noisy)."""

import io
import json
import re

import pytest

from perfsuite import bench, cli, measure_pass, run as runjob
from perfsuite.report import markdown as report
from perfsuite.results import read_result
from perfsuite.workloads import SPEEDUPS, select

SMOKE = ["run", "--profile", "smoke", "--min-time", "0.001", "--max-repeat", "5", "--no-memory"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One complete smoke run with parity and a user price, shared by the tests that read its output."""
    out_dir = tmp_path_factory.mktemp("run") / "results"
    cap_out, cap_err = io.StringIO(), io.StringIO()
    opts = runjob.RunOptions(profile="smoke", out=str(out_dir), price_per_hour=0.3, min_time_s=0.001, max_repeat=5)
    outcome = runjob.run_job(opts, out=cap_out, err=cap_err)
    return outcome, cap_out.getvalue(), cap_err.getvalue()


def test_run_writes_versioned_json_report_and_plots(smoke_run):
    outcome, out, err = smoke_run
    folder = outcome.out_dir
    assert outcome.exit_code == 0, out + err
    doc = read_result(folder / "results.json", report.RESULTS_FORMAT, report.RESULTS_FORMAT_VERSION)
    assert doc["status"] == "complete" and doc["perfsuite_version"]
    assert doc["env"]["mxnet_distribution"] and doc["env"]["features"]
    workloads = select("smoke")
    runnable = [w for w in workloads if not bench.skip_reason_workload(w)]
    assert len(doc["measurements"]) == len(runnable)
    assert len(doc["measurements"]) + len(doc["skipped"]) == len(workloads)
    for m in doc["measurements"]:
        assert len(m["samples_s"]) >= 5 and len(m["contaminated"]) == len(m["samples_s"])
        assert m["meta"]["env"]["mxnet_version"] and m["flops"] > 0
    assert doc["timer_overhead"]["timer_s"] > 0 and doc["gemm_peak_gflops"] > 0
    assert doc["prices"][report.USER_PRICE] == 0.3
    # parity summary: the op grid and the whole-model check of every selected path
    assert doc["parity"]["ops"]["counts"]["pass"] > 0
    assert {c["path"] for c in doc["parity"]["model"]["cases"]} == set(doc["config"]["paths"])
    # speed-ups: alternating samples of each runnable pair, per batch size
    for s in doc["speedups"]:
        assert len(s["optimized_samples_s"]) == len(s["baseline_samples_s"]) == s["rounds"] >= 5
        assert {s["optimized"], s["baseline"]} <= set(s["alternated"])
    gpu_pairs = {(o, b) for o, b, _ in SPEEDUPS if o.startswith("gpu")}
    assert {(s["optimized"], s["baseline"]) for s in doc["speedups_skipped"]} >= gpu_pairs
    names = sorted(p.name for p in folder.iterdir())
    assert "report.md" in names and "results.json" in names
    assert {"latency_small_classification_L32.png", "cost_small_classification_L32.png"} <= set(names)
    for png in folder.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [n for n in names if n.endswith(".tmp")]
    # it says where the files are, shows a progress bar, and prints the tables
    assert str(folder / "results.json") in out and str(folder / "report.md") in out
    assert re.search(r"\[#+\.*\] \d+/\d+ +\d+% elapsed \d+:\d\d ETA \d+:\d\d", err)
    assert "your price" in out and "speed-ups" in out and "timer overhead" in out
    # memory per path: a fresh process per runnable path at the smallest batch size
    probed = {(r["workload"]["path"], r["workload"]["batch"]): r for r in doc["memory"]}
    assert set(probed) == {(w.path, 1) for w in runnable if w.batch == 1}
    for r in probed.values():
        assert r["peak_rss_bytes"] > 100 * 2 ** 20 and r["rss_bytes"] <= r["peak_rss_bytes"], r
    assert "peak RSS of a process running only that path" in out


def test_report_has_every_figure(smoke_run):
    outcome, _, _ = smoke_run
    text = (outcome.out_dir / "report.md").read_text()
    for needle in ("## Environment", "OpenMP threads", "MKLDNN/oneDNN", "## Timer overhead", "GEMM peak",
                   "## Parity", "Op level", "Whole model", "### Latency (ms): median (IQR)",
                   "### Throughput (sentences/s)", "### Cost per 1M requests", "long-run sent/s",
                   "Priced at your price ($0.3/h), the machine measured", "need a run on that instance",
                   "c5.xlarge $0.17/h", "g4dn.xlarge $0.526/h", "your price ($0.3/h)",
                   "p90 ms", "p99 ms", "GFLOP/s", "% of GEMM peak", "peak RSS MiB", "dropped", "noisy",
                   "## Speed-up of each optimization", "GPU FP16 vs FP32", "latency_small_classification_L32.png",
                   "cost_small_classification_L32.png"):
        assert needle in text, needle


def test_cost_is_reported_only_for_the_machine_measured(smoke_run):
    """A price describes only the instance measured: the seed's other prices are named, never applied."""
    outcome, _, _ = smoke_run
    doc = dict(outcome.doc, prices={})
    text = report.render_markdown(doc)
    assert "No cost is reported" in text and "$/1M" not in report.text_summary(doc)
    doc = dict(outcome.doc, prices={"c5.xlarge": report.PRICES["c5.xlarge"]})
    text = report.render_markdown(doc)
    assert re.search(r"\|\s*c5\.xlarge \(\$0\.17/h\)\s*\|", text) and "c5.24xlarge ($4.08/h)" not in text
    assert "c5.24xlarge $4.08/h" in text  # named in the note, not applied


def test_saved_run_rerenders_and_compares(smoke_run, tmp_path, capsys):
    outcome, _, _ = smoke_run
    other = tmp_path / "again"
    assert cli.main(["report", str(outcome.out_dir), "--out", str(other)]) == 0
    assert (other / "report.md").read_text().count("### Latency (ms)") == 1
    cmp_dir = tmp_path / "cmp"
    capsys.readouterr()
    # the same run given twice (its folder and its file) is refused: it would pose as two replicated runs
    assert cli.main(["report", str(outcome.out_dir), str(outcome.results_path), "--out", str(cmp_dir)]) == 2
    assert "are the same file; give each run once" in capsys.readouterr().err and not cmp_dir.exists()
    # a second run (here: the first with one sample changed) is compared; one run per side decides nothing
    doc = json.loads(outcome.results_path.read_text())
    doc["measurements"][0]["samples_s"][0] *= 1.001
    second = tmp_path / "second.json"
    second.write_text(json.dumps(doc))
    assert cli.main(["report", str(outcome.results_path), str(second), "--out", str(cmp_dir)]) == 0
    text = (cmp_dir / "comparison.md").read_text()
    assert "(#1)" in text and "(#2)" in text and "not enough data" in text
    capsys.readouterr()


def _failing_measure(monkeypatch, fail_on, exc):
    real = bench.measure
    calls = []

    def measure(w, **kw):
        calls.append(w.id)
        if len(calls) == fail_on:
            raise exc
        return real(w, **kw)

    monkeypatch.setattr(bench, "measure", measure)
    return calls


def _interrupting_timed(monkeypatch, path, batch, exc, after_calls=0):
    """bench.timed, with the callable of (path, batch) raising `exc` after `after_calls` calls (the binding call in
    timed() included)."""
    real = bench.timed

    def timed(w):
        fn, runner = real(w)
        if (w.path, w.batch) != (path, batch):
            return fn, runner
        left = [after_calls - 1]  # timed() made the binding call already

        def failing():
            if left[0] <= 0:
                raise exc
            left[0] -= 1
            return fn()
        return failing, runner

    monkeypatch.setattr(bench, "timed", timed)


def test_interruption_in_the_second_group_keeps_the_first(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the CLI would set it for the rest of the session otherwise
    _interrupting_timed(monkeypatch, "naive_attention", 4, KeyboardInterrupt(), after_calls=3)
    out_dir = tmp_path / "r"
    code = cli.main(SMOKE + ["--no-parity", "--path", "hybridized,naive_attention", "--out", str(out_dir)])
    assert code == 130
    doc = read_result(out_dir / "results.json", report.RESULTS_FORMAT, report.RESULTS_FORMAT_VERSION)
    assert doc["status"] == "interrupted" and "Ctrl-C" in doc["error"]
    assert sorted(m["workload"]["path"] + str(m["workload"]["batch"]) for m in doc["measurements"]) == \
        ["hybridized1", "naive_attention1"]  # batch 1's group, alternated
    assert [s["batch"] for s in doc["speedups"]] == [1]
    assert "what was measured is in" in capsys.readouterr().err
    assert "Status: interrupted" in (out_dir / "report.md").read_text()
    report.load(out_dir)  # and `perfsuite report` can read it


def test_a_path_that_raises_in_a_group_is_recorded_and_the_others_are_timed(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    _interrupting_timed(monkeypatch, "naive_attention", 4, RuntimeError("MXNetError: simulated\nlast line"),
                        after_calls=4)
    out_dir = tmp_path / "r"
    code = cli.main(SMOKE + ["--no-parity", "--path", "hybridized,naive_attention", "--out", str(out_dir)])
    assert code == cli.EXIT_FAILED
    doc = json.loads((out_dir / "results.json").read_text())
    assert doc["status"] == "complete"
    assert sorted(m["workload"]["path"] + str(m["workload"]["batch"]) for m in doc["measurements"]) == \
        ["hybridized1", "hybridized4", "naive_attention1"]
    assert [e["id"] for e in doc["errors"]] == ["small/naive_attention/classification/b4/L32"]
    assert "RuntimeError: last line" in doc["errors"][0]["error"]
    assert [s["batch"] for s in doc["speedups"]] == [1]
    assert any(s.get("batch") == 4 and "naive_attention raised" in s["reason"] for s in doc["speedups_skipped"])
    capsys.readouterr()


def test_latency_and_speed_ups_come_from_one_set_of_samples(monkeypatch, tmp_path, capsys):
    """Issue 19: one measurement pass. Every call of every workload's callable is counted: the binding call, the
    warm-up and its samples, nothing else (no second timing for the speed-ups), and each speed-up's samples are
    the latency samples of its two paths."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    real = bench.timed
    calls = {}

    def timed(w):
        calls[w.id] = 0
        fn, runner = real(w)  # its binding call is counted below

        def counted():
            calls[w.id] += 1
            return fn()
        calls[w.id] += 1
        return counted, runner

    monkeypatch.setattr(bench, "timed", timed)
    out_dir = tmp_path / "r"
    assert cli.main(SMOKE + ["--no-parity", "--path", "naive_attention,hybridized,onednn", "--out",
                             str(out_dir)]) == 0
    doc = json.loads((out_dir / "results.json").read_text())
    ms = {"small/{path}/{task}/b{batch}/L{seq_len}".format(**m["workload"]): m for m in doc["measurements"]}
    assert set(ms) == set(calls) and len(ms) == 6
    for wid, m in ms.items():
        assert calls[wid] == 1 + m["warmup"] + len(m["samples_s"]), wid
        assert len(m["samples_s"]) >= measure_pass.planned_rounds(measure_pass.PROFILE_TIMING["smoke"])[0]
        assert m["meta"]["alternated_with"] == ["naive_attention", "hybridized", "onednn"] or \
            sorted(m["meta"]["alternated_with"]) == ["hybridized", "naive_attention", "onednn"]
    assert len(doc["speedups"]) == 4
    for s in doc["speedups"]:
        for side in ("optimized", "baseline"):
            m = ms[f"small/{s[side]}/{s['task']}/b{s['batch']}/L{s['seq_len']}"]
            assert s[f"{side}_samples_s"] == m["samples_s"] and s[f"{side}_contaminated"] == m["contaminated"]
    # progress: one step per group (batch 1 and 4), each with the ETA shown then
    assert [p["step"] for p in doc["progress"]] == [1, 2] and doc["progress"][0]["eta_s"] is not None
    capsys.readouterr()


def test_an_error_in_one_workload_is_recorded_and_the_run_goes_on(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    _failing_measure(monkeypatch, 2, RuntimeError("MXNetError: simulated kernel failure\nlast line"))
    out_dir = tmp_path / "r"
    code = cli.main(SMOKE + ["--no-parity", "--path", "hybridized", "--out", str(out_dir)])
    assert code == cli.EXIT_FAILED
    doc = json.loads((out_dir / "results.json").read_text())
    assert doc["status"] == "complete" and len(doc["measurements"]) == 1
    assert doc["errors"][0]["id"] == "small/hybridized/classification/b4/L32"
    assert "RuntimeError: last line" in doc["errors"][0]["error"]
    assert "ERROR" in (out_dir / "report.md").read_text()
    capsys.readouterr()


@pytest.mark.parametrize("argv,needle", [
    (["--profile", "fast"], "unknown profile 'fast'; allowed: quick, full, smoke"),
    (["--path", "hybridized,warp"], "unknown path 'warp'; allowed: "),
    (["--model", "gpt"], "unknown model 'gpt'; allowed: "),
    (["--task", "ner"], "unknown task 'ner'; allowed: "),
    (["--price-per-hour", "-1"], "--price-per-hour -1.0: must be a positive"),
    (["--price-per-hour", "nan"], "--price-per-hour nan: must be a positive"),
    (["--batch-size", "1,x"], "--batch-size 'x': not an integer"),
    (["--batch-size", "0"], "--batch-size 0: allowed 1 to 4096"),
    (["--batch-size", "1000000"], "--batch-size 1000000: allowed 1 to 4096"),
    (["--seq-len", "1"], "sequence length 1: allowed 2 <= seq_len"),
    (["--max-repeat", "3"], "--max-repeat 3: must be an integer >= 5"),
    (["--min-time", "-2"], "--min-time -2.0: must be a finite number of seconds >= 0"),
    (["--memory-batch", "3"], "--memory-batch 3: each must be a selected batch size (1, 2, 4, 8, 16, 32)"),
    (["--memory-batch", "1,x"], "--memory-batch 'x': not an integer"),
    (["--memory-batch", ","], "--memory-batch is empty; give at least one value"),
])
def test_bad_run_inputs_exit_2_naming_the_value(capsys, tmp_path, argv, needle):
    out_dir = tmp_path / "never"
    assert cli.main(["run", "--out", str(out_dir), *argv]) == cli.EXIT_USAGE
    assert needle in capsys.readouterr().err
    assert not out_dir.exists()  # refused before any work


def test_out_folder_with_results_is_refused(tmp_path, capsys):
    (tmp_path / "results.json").write_text("{}")
    assert cli.main(["run", "--profile", "smoke", "--out", str(tmp_path)]) == cli.EXIT_USAGE
    assert "already holds results.json" in capsys.readouterr().err


def test_speedup_groups_pair_selected_runnable_paths():
    wls = select("smoke", paths=["hybridized", "naive_attention", "gpu_fp16"])
    groups, skipped = measure_pass.speedup_groups(wls, lambda w: "no GPU" if w.path.startswith("gpu") else None)
    assert set(groups) == {("small", "classification", 32, 1), ("small", "classification", 32, 4)}
    assert all(g == [("hybridized", "naive_attention", "interleaved vs naive attention")] for g in groups.values())
    why = {(s["optimized"], s["baseline"]): s["reason"] for s in skipped}
    assert why[("gpu_fp16", "gpu_fp32")] == "no GPU"
    assert why[("onednn", "hybridized")] == "path onednn not selected (--path)"


def test_progress_bar_eta_and_plain_lines():
    stream = io.StringIO()
    bar = runjob.ProgressBar([1.0, 3.0], stream, width=8)
    assert bar.eta_s() is None
    bar.show("not shown on a log")
    bar.step("first")
    bar.step("second")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[##......] 1/2  25% elapsed 0:00 ETA ") and "first" in lines[0]
    assert lines[1].startswith("[########] 2/2 100%")


def test_default_out_dir_and_threads_note():
    import mxnet  # noqa: F401  (imported: OMP_NUM_THREADS can no longer change anything)

    assert re.fullmatch(r"results/\d{8}-\d{6}-mxnet-1\.7\.0\.post2", runjob.default_out_dir("1.7.0.post2").as_posix())
    env = {"OMP_NUM_THREADS": "2"}
    assert "set by the caller" in runjob.apply_default_threads(env) and env == {"OMP_NUM_THREADS": "2"}
    env = {}
    note = runjob.apply_default_threads(env)
    assert "already imported" in note and env == {}
