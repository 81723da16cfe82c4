"""Nothing lost: results folders are reserved atomically, outputs are checked before any work, and every user error
of every command ends in one line and exit code 2 (a table of hostile inputs), never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perfsuite import cli
from perfsuite.errors import PerfsuiteInputError
from perfsuite.outputs import RESERVED_MARKER, check_output_file, check_output_folder, reserve_folder
from perfsuite.results import write_json_atomic


def test_reserved_folders_are_unique_and_claimed(tmp_path):
    a = reserve_folder(None, "run", root=str(tmp_path))
    b = reserve_folder(None, "run", root=str(tmp_path))
    assert a != b and a.name == "run" and b.name == "run-2"
    assert (a / RESERVED_MARKER).is_file() and (b / RESERVED_MARKER).is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert reserve_folder(str(empty), "x") == empty
    with pytest.raises(PerfsuiteInputError, match="already holds files"):
        reserve_folder(str(empty), "x")  # the first reservation holds it
    (tmp_path / "afile").write_text("x")
    with pytest.raises(PerfsuiteInputError, match="is a file"):
        reserve_folder(str(tmp_path / "afile"), "x")
    with pytest.raises(PerfsuiteInputError, match="is a file, not a folder"):
        reserve_folder(str(tmp_path / "afile" / "sub"), "x")


def test_output_files_are_checked(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    with pytest.raises(PerfsuiteInputError, match="already exists; pass --force"):
        check_output_file(str(tmp_path / "old.json"), "--json")
    assert check_output_file(str(tmp_path / "old.json"), "--json", force=True)
    with pytest.raises(PerfsuiteInputError, match="is a folder"):
        check_output_file(str(tmp_path), "--json")
    with pytest.raises(PerfsuiteInputError, match="must end in .npy"):
        check_output_file(str(tmp_path / "x.txt"), "--output", ".npy")


@pytest.fixture
def unwritable_folder(tmp_path):
    """A folder nobody can write into, root included (CI runs as root, who ignores permission bits): mode 0500 for
    other users, and for root the immutable attribute (chattr +i), which the kernel enforces on root too."""
    import shutil

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    immutable = False
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if not chattr or subprocess.run([chattr, "+i", str(ro)], capture_output=True).returncode != 0:
            pytest.skip("running as root, and this file system has no immutable attribute (chattr +i failed): no "
                        "folder here is unwritable for root")
        immutable = True
    try:
        yield ro
    finally:
        if immutable:
            subprocess.run([shutil.which("chattr"), "-i", str(ro)], capture_output=True)
        ro.chmod(0o700)


def test_unwritable_folder_is_refused(unwritable_folder):
    assert not os.access(unwritable_folder, os.W_OK)
    with pytest.raises(PerfsuiteInputError, match="is not writable"):
        check_output_file(str(unwritable_folder / "x.json"), "--json")
    with pytest.raises(PerfsuiteInputError, match="is not writable"):
        check_output_folder(str(unwritable_folder / "out"), "--out")


def test_two_runs_started_at_once_both_keep_their_results(tmp_path):
    """Two `perfsuite run`s in the same second, in the same folder, without --out: two folders, both complete."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "perfsuite", "run", "--profile", "smoke", "--no-parity", "--path", "hybridized",
           "--batch-size", "1", "--max-repeat", "5", "--min-time", "0"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-500:] for o in outs]
    folders = sorted((tmp_path / "results").iterdir())
    assert len(folders) == 2
    for f in folders:
        doc = json.loads((f / "results.json").read_text())
        assert doc["status"] == "complete" and len(doc["measurements"]) == 1


def _results(tmp_path: Path, **env_over) -> Path:
    from tests.unit.test_report import _doc

    folder = tmp_path / "r1"
    folder.mkdir()
    doc = _doc()
    doc["env"].update(env_over)
    write_json_atomic(folder / "results.json", doc)
    return folder


def _edited(tmp_path: Path, change) -> Path:
    from tests.unit.test_report import _doc

    folder = tmp_path / "edited"
    folder.mkdir()
    doc = _doc()
    change(doc)
    (folder / "results.json").write_text(json.dumps(doc))
    return folder


def _set_batch_string(doc):
    doc["measurements"][0]["workload"]["batch"] = "4"


HOSTILE = [
    # (argv builder, needle)
    (lambda t: ["run", "--batch-size", ""], "--batch-size is empty"),
    (lambda t: ["run", "--batch-size", ",,"], "--batch-size is empty"),
    (lambda t: ["run", "--model", ""], "--model is empty"),
    (lambda t: ["run", "--instance", "p3.2xlarge"], "--instance 'p3.2xlarge'; allowed: g4dn.xlarge"),
    (lambda t: ["run", "--out", str(t / "afile" / "sub")], "is a file, not a folder"),
    (lambda t: ["run", "--out", str(_results(t))], "already holds results.json"),
    (lambda t: ["parity", "--model", "small", "--mode", "float8"], "--mode selects op-level cases"),
    (lambda t: ["parity", "--model", "small", "--quick"], "--quick selects op-level cases"),
    (lambda t: ["parity", "--list", "--json", str(t / "f.json")], "--list prints the selected cases and exits"),
    (lambda t: ["parity", "--json", str(t)], "is a folder; give a file name"),
    (lambda t: ["parity", "--json", str(t / "afile")], "already exists; pass --force"),
    (lambda t: ["parity", "--task", "qa"], "--task applies to whole-model checks (--model) only"),
    (lambda t: ["parity", "--model", "small", "--paths", "hybridized", "--custom-pass-lib", str(t / "afile")],
     "apply to the graph_pass path, which --paths does not select"),
    (lambda t: ["report", "/bin/ls"], "is not a text file"),
    (lambda t: ["report", str(_edited(t, lambda d: d.update(env=None)))], "'env' is NoneType, expected a dict"),
    (lambda t: ["report", str(_edited(t, _set_batch_string))], "workload batch='4': expected int"),
    (lambda t: ["report", str(_results(t)), str(_results_other_machine(t))], "come from different machines"),
    (lambda t: ["report", str(_results(t)), "--out", str(_results_second(t))], "holds another run's results.json"),
    (lambda t: ["asv-compare", str(t), "--bench", "((", "--baseline", "1.9.1"], "is not a valid regular expression"),
    (lambda t: ["infer", "--model", "small", "--task", "embedding", "--input", str(t / "afile"), "--output",
                str(t / "afile")], "must end in .npy"),
    (lambda t: ["infer", "--model", "small", "--task", "embedding", "--input", str(t / "afile"), "--path",
                "hybridized", "--custom-pass-lib", "/nonexist.so", "--output", str(t / "o.npy")],
     "apply to --path graph_pass only"),
]


def _results_other_machine(t: Path) -> Path:
    from tests.unit.test_report import _doc

    folder = t / "other"
    folder.mkdir()
    doc = _doc(version="1.8.0.post0", scale=1.1)
    doc["env"].update(cpu_model="Another CPU", cpu_count=64)
    write_json_atomic(folder / "results.json", doc)
    return folder


def _results_second(t: Path) -> Path:
    from tests.unit.test_report import _doc

    folder = t / "second"
    folder.mkdir()
    write_json_atomic(folder / "results.json", _doc())
    return folder


@pytest.mark.parametrize("build,needle", HOSTILE, ids=[h[1][:45] for h in HOSTILE])
def test_hostile_inputs_get_one_line_and_exit_2(build, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    argv = build(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert needle in err and err.startswith("perfsuite: error: ") and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


@pytest.mark.parametrize("var,value,needle", [("OMP_NUM_THREADS", "abc", "OMP_NUM_THREADS='abc'"),
                                              ("OMP_NUM_THREADS", "0", "must be a positive integer"),
                                              ("MXNET_ENGINE_TYPE", "Bogus", "MXNET_ENGINE_TYPE='Bogus'; allowed")])
def test_bad_environment_variables_are_named_before_mxnet_reads_them(var, value, needle):
    env = dict(os.environ, **{var: value})
    p = subprocess.run([sys.executable, "-m", "perfsuite", "info"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and needle in p.stderr and "Traceback" not in p.stderr


def test_ctrl_c_ends_with_one_line(monkeypatch, capsys):
    from perfsuite import env

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(env, "collect_env", interrupted)
    assert cli.main(["info"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "perfsuite: stopped (Ctrl-C); what was already written is kept"
