"""perfsuite.cli: `perfsuite info` (table and JSON), help texts, exit codes, `python -m perfsuite`."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

import perfsuite
from perfsuite import cli, env as penv
from perfsuite.env import EnvInfo
from perfsuite.errors import PerfsuiteInputError
from perfsuite.flags import mxnet_flags

TABLE_KEYS = [
    "mxnet distribution",
    "mxnet.__version__",
    "build",
    "mkldnn/onednn",
    "gpus visible",
    "features enabled",
    "omp threads",
    "cpu model",
    "cpus usable",
    "gluonnlp",
    "numpy",
    "python",
    "platform",
    "MXNET_* flags set",
]


def _parse_table(text: str) -> dict[str, str]:
    """Split the aligned table back into key -> value, checking every value starts in the same column."""
    lines = text.rstrip("\n").split("\n")
    width = max(len(k) for k in TABLE_KEYS)
    rows = {}
    for line, key in zip(lines, TABLE_KEYS):
        assert line.startswith(key), line
        assert line[len(key):width + 2].strip() == "" and line[width + 2] != " ", f"misaligned: {line!r}"
        rows[key] = line[width + 2:]
    assert len(lines) == len(TABLE_KEYS)
    return rows


def test_info_table(capsys: pytest.CaptureFixture[str]) -> None:
    env = penv.collect_env()
    assert cli.main(["info"]) == 0
    out, err = capsys.readouterr()
    rows = _parse_table(out)
    assert rows["mxnet distribution"] == f"{env.mxnet_distribution} {env.mxnet_dist_version}"
    assert rows["mxnet.__version__"] == env.mxnet_version
    assert rows["build"] == ("CUDA" if env.is_cuda_build else "CPU")
    assert rows["omp threads"] == str(env.omp_threads)
    assert rows["gpus visible"] == str(env.num_gpus)
    assert err == ""


def test_info_table_shows_flags_in_force(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("MXNET_")]:
        monkeypatch.delenv(name)
    assert cli.main(["info"]) == 0
    assert _parse_table(capsys.readouterr().out)["MXNET_* flags set"] == "(none)"
    with mxnet_flags(MXNET_SAFE_ACCUMULATION=1, MXNET_USE_FUSION=0):
        assert cli.main(["info"]) == 0
    assert _parse_table(capsys.readouterr().out)["MXNET_* flags set"] == "MXNET_SAFE_ACCUMULATION=1, MXNET_USE_FUSION=0"


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format_version"] == penv.ENV_FORMAT_VERSION
    assert set(data) == {"format_version"} | {f.name for f in dataclasses.fields(EnvInfo)}
    dist = penv.find_mxnet_distribution()
    assert (data["mxnet_distribution"], data["mxnet_dist_version"]) == (dist.name, dist.version)
    assert EnvInfo.from_dict(data) == penv.collect_env()


def test_info_json_records_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with mxnet_flags(MXNET_SAFE_ACCUMULATION="true"):
        assert cli.main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mxnet_flags"]["MXNET_SAFE_ACCUMULATION"] == "1"


def test_format_env_table_on_fake_cuda_env() -> None:
    real = penv.collect_env()
    fake = dataclasses.replace(
        real,
        mxnet_distribution="mxnet-cu102",
        mxnet_dist_version="1.7.0.post2",
        mxnet_version="1.7.0",
        features={"CUDA": True, "CUDNN": True, "MKLDNN": False},
        num_gpus=1,
        gluonnlp_version=None,
        mxnet_flags={},
    )
    rows = _parse_table(cli.format_env_table(fake))
    assert rows["mxnet distribution"] == "mxnet-cu102 1.7.0.post2"
    assert rows["mxnet.__version__"] == "1.7.0"
    assert rows["build"] == "CUDA"
    assert rows["mkldnn/onednn"] == "no"
    assert rows["features enabled"] == "CUDA, CUDNN"
    assert rows["gluonnlp"] == "-"
    assert rows["MXNET_* flags set"] == "(none)"


def test_help_lists_info(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: perfsuite" in out and "info" in out and "Exit codes" in out


def test_info_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: perfsuite info" in out and "--json" in out and "OMP_NUM_THREADS" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"perfsuite {perfsuite.__version__}"


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: perfsuite" in capsys.readouterr().err


def test_unknown_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["nosuch"]) == 2
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err


def test_input_error_becomes_exit_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> EnvInfo:
        raise PerfsuiteInputError("MXNET_SAFE_ACCUMULATION='yes' is not a boolean MXNet accepts")

    monkeypatch.setattr(penv, "collect_env", broken)
    assert cli.main(["info"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "perfsuite: error: MXNET_SAFE_ACCUMULATION='yes' is not a boolean MXNet accepts\n"


def test_every_registered_subcommand_has_a_handler() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, subparser in sub.choices.items():
        assert callable(subparser.get_default("handler")), name


def test_help_does_not_import_mxnet() -> None:
    code = "import sys; from perfsuite.cli import main; main(['--help']); print('mxnet' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip().endswith("False")


def test_python_dash_m_perfsuite_info_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "perfsuite", "info", "--json"], capture_output=True, text=True, env=os.environ
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["mxnet_distribution"] == penv.find_mxnet_distribution().name


def test_format_json_is_the_name_and_the_old_flag_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    """One vocabulary: --json FILE writes a file (parity, explain, bisect); printing JSON is --format json. The old
    print flag keeps working for one release, with a deprecation line on stderr."""
    assert cli.main(["info", "--format", "json"]) == 0
    new = capsys.readouterr()
    assert json.loads(new.out)["format_version"] == penv.ENV_FORMAT_VERSION and "deprecated" not in new.err
    assert cli.main(["info", "--json"]) == 0
    old = capsys.readouterr()
    assert json.loads(old.out) == json.loads(new.out) and "deprecated" in old.err and "--format json" in old.err
    assert cli.main(["info", "--json", "--format", "table"]) == cli.EXIT_USAGE
    assert "disagree" in capsys.readouterr().err
