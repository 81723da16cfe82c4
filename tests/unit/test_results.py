"""Result files: atomic writes, and clear errors for corrupt, foreign or newer files."""

import json
import os

import pytest

from perfsuite.errors import PerfsuiteInputError
from perfsuite.results import read_result, write_json_atomic


def test_round_trip(tmp_path):
    p = write_json_atomic(tmp_path / "r.json", {"format": "x", "format_version": 1, "v": [1, 2]})
    assert read_result(p, "x", 1)["v"] == [1, 2]
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


def test_failed_write_keeps_previous_file(tmp_path):
    p = tmp_path / "r.json"
    write_json_atomic(p, {"format": "x", "format_version": 1, "v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(p, {"format": "x", "format_version": 1, "v": object()})
    assert json.loads(p.read_text())["v"] == 1
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


@pytest.mark.parametrize("content,needle", [
    ("{not json", "is not valid JSON (line 1"),
    ('{"format": "other", "format_version": 1}', "is not a perfsuite 'x' file (format: 'other')"),
    ("[1, 2]", "is not a perfsuite 'x' file (format: 'list')"),
    ('{"format": "x", "format_version": 9}', "has x format_version 9; this perfsuite reads 1"),
])
def test_bad_files_are_named(tmp_path, content, needle):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(PerfsuiteInputError) as err:
        read_result(p, "x", 1)
    assert needle in str(err.value) and "bad.json" in str(err.value)


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(PerfsuiteInputError, match="does not exist"):
        write_json_atomic(tmp_path / "nope" / "r.json", {})
    with pytest.raises(PerfsuiteInputError, match="cannot read"):
        read_result(tmp_path / "absent.json", "x", 1)
