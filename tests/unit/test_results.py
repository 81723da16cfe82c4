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


def test_writes_go_through_a_temporary_file_and_os_replace(tmp_path, monkeypatch):
    """The file appears by an atomic rename of a complete temporary file in the same folder, never written in place
    (a reader or a crash midway sees the old file or the new one, never half of one)."""
    import os

    from perfsuite import results

    calls = []
    real = os.replace

    def spy(src, dst):
        calls.append((str(src), str(dst), os.path.getsize(src)))
        return real(src, dst)

    monkeypatch.setattr(results.os, "replace", spy)
    target = tmp_path / "r.json"
    results.write_json_atomic(target, {"format": "x", "format_version": 1, "v": list(range(100))})
    assert len(calls) == 1
    src, dst, size = calls[0]
    assert dst == str(target) and src != dst and os.path.dirname(src) == str(tmp_path)
    assert size == target.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary file left


def test_relative_paths_numpy_values_and_tuples(tmp_path, monkeypatch):
    import json

    import numpy as np

    from perfsuite.results import write_json_atomic, write_text_atomic

    monkeypatch.chdir(tmp_path)
    write_json_atomic("r.json", {"a": np.float32(1.5), "b": (1, 2), "c": np.int64(3), "d": frozenset({4})})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 1.5, "b": [1, 2], "c": 3, "d": [4]}
    write_text_atomic("t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        write_json_atomic("x.json", {"o": object()})
    assert not (tmp_path / "x.json").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "t.txt"]
    with pytest.raises(PerfsuiteInputError, match="cannot write 'no/such/f.json': folder 'no/such' does not exist"):
        write_json_atomic("no/such/f.json", {})


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    from perfsuite.results import write_text_atomic

    p = tmp_path / "summary.md"
    p.write_text("before\n")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(p, "a lone surrogate \ud800 cannot be encoded")  # fails inside the write
    assert p.read_text() == "before\n" and sorted(os.listdir(tmp_path)) == ["summary.md"]


def test_bare_file_names_permissions_and_a_readable_key_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o027)
    try:
        write_json_atomic("r.json", {"format": "x", "format_version": 1, "b": 1, "a": [2]})
    finally:
        os.umask(old)
    assert sorted(os.listdir(tmp_path)) == ["r.json"]
    assert os.stat("r.json").st_mode & 0o777 == 0o640  # 0666 less the umask, like any file the user writes
    # keys in the order written ("format" first), one-space indents: diff-friendly and small
    assert (tmp_path / "r.json").read_text() == '{\n "format": "x",\n "format_version": 1,\n "b": 1,\n "a": [\n  2\n ]\n}\n'


def test_binary_writes_go_through_the_same_atomic_writer(tmp_path):
    import numpy as np

    from perfsuite.results import write_atomic

    out = tmp_path / "emb.npy"
    write_atomic(out, lambda fh: np.save(fh, np.arange(3.0)), binary=True)
    assert np.load(out).tolist() == [0.0, 1.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["emb.npy"]


def test_a_binary_file_is_named_and_refused(tmp_path):
    from perfsuite.results import read_result

    f = tmp_path / "results.json"
    f.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(PerfsuiteInputError) as info:
        read_result(f, "perfsuite-results", 1)
    assert str(info.value) == (f"{str(f)!r} is not a text file (not UTF-8); expected a perfsuite "
                               "'perfsuite-results' JSON file")
