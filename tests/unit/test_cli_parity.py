"""`perfsuite parity`: selection, table, JSON, exit codes and input errors."""

import json

import pytest

from perfsuite import cli
from perfsuite.parity import ops as parity
from perfsuite.parity.check import compare


def test_list_selects_by_path_and_mode(capsys):
    assert cli.main(["parity", "--list", "--path", "layer_norm", "--mode", "float16", "--device", "cpu"]) == 0
    ids = capsys.readouterr().out.split()
    assert ids and all(i.startswith("layer_norm-float16-cpu-") for i in ids)


@pytest.mark.parametrize("argv,needle", [
    (["--path", "softmax"], "unknown path 'softmax'; allowed: "),
    (["--mode", "fp16"], "unknown mode 'fp16'; allowed: "),
    (["--device", "tpu"], "unknown device 'tpu'; allowed: cpu, gpu"),
])
def test_bad_selection_is_named(capsys, argv, needle):
    assert cli.main(["parity", *argv]) == cli.EXIT_USAGE
    assert needle in capsys.readouterr().err


def test_json_to_missing_folder_fails_before_running(capsys, tmp_path):
    code = cli.main(["parity", "--path", "gelu_erf", "--json", str(tmp_path / "no" / "x.json")])
    assert code == cli.EXIT_USAGE and "does not exist" in capsys.readouterr().err


def test_runs_table_and_json(capsys, tmp_path):
    out_file = tmp_path / "parity.json"
    code = cli.main(["parity", "-q", "--path", "gelu_erf,softmax_length", "--quick", "--device", "cpu",
                     "--json", str(out_file)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "gelu_erf" in out and "softmax_length" in out and "PASS" in out and "worst err/bound" in out
    data = json.loads(out_file.read_text())
    assert data["format"] == "perfsuite-parity" and data["format_version"] == 1
    assert data["env"]["mxnet_distribution"] and data["cases"]
    assert all(c["status"] == "pass" for c in data["cases"])
    assert all(c["comparison"]["worst_ratio"] < 1 for c in data["cases"])


def test_failure_gives_exit_1(monkeypatch, capsys):
    def broken(case, impl=None, inputs=None):
        return compare([1.0, 2.0], [1.0, 0.0], 1e-3, name=case.path, context={"seed": case.seed})

    monkeypatch.setattr(parity, "run_case", broken)
    assert cli.main(["parity", "-q", "--path", "gelu_erf", "--device", "cpu"]) == cli.EXIT_FAILED
    assert "FAIL" in capsys.readouterr().out


def test_mxnet_error_is_a_failure_not_a_crash(monkeypatch, capsys):
    def raising(case, impl=None, inputs=None):
        raise RuntimeError("MXNetError: operator not found")

    monkeypatch.setattr(parity, "run_case", raising)
    assert cli.main(["parity", "-q", "--path", "gelu_erf", "--device", "cpu"]) == cli.EXIT_FAILED
    assert "RuntimeError: MXNetError: operator not found" in capsys.readouterr().out


def test_nothing_ran_has_its_own_exit_code(capsys):
    from perfsuite.env import skip_reason_gpu

    if skip_reason_gpu() is None:
        pytest.skip("a GPU is visible here, so GPU cases run")
    assert cli.main(["parity", "-q", "--path", "gelu_erf", "--device", "gpu"]) == cli.EXIT_NOTHING_RAN
    captured = capsys.readouterr()
    assert "needs a CUDA build of MXNet" in captured.out and "nothing ran" in captured.err


def test_tolerances_lists_every_entry(capsys):
    from perfsuite.parity.tolerance import TOLERANCES

    assert cli.main(["parity", "--tolerances"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == len(TOLERANCES)
