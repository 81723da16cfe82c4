"""perfsuite.passes: build perfsuite's own graph-pass library, load it, apply its passes in-process and in a child.

The library is built once (cached under perfsuite's cache dir; about 15 s from scratch for MXNet 1.9.1 on the
2-core machines). Its passes target GluonNLP 0.10's node names, so the model is a tiny 2-layer GluonNLP BERT
classifier exported as GluonNLP's deploy script does, with non-zero random biases (default initializers leave biases
at zero, which would hide a bias bug). The isolated tests start a child Python with mxnet each (about 4 s).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import pickle
import re
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from perfsuite import passes as P
from perfsuite.env import collect_env, mxnet_at_least
from perfsuite.errors import PerfsuiteInputError
from perfsuite.passes import library

REASON = P.skip_reason_passes()
needs_passes = pytest.mark.skipif(REASON is not None, reason=REASON or "")
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ on PATH")

# SymbolBlock.imports always says this about its data inputs; it is MXNet's, not about the rewrite
pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type for the following arguments:UserWarning")

BATCH, SEQ, LAYERS = 2, 8, 2
INPUTS = ("data0", "data1", "data2")
SHAPES = {"data0": (BATCH, SEQ), "data1": (BATCH, SEQ), "data2": (BATCH,)}
FFN = [P.GLUONNLP_FFN_NAME.format(layer=i) for i in range(LAYERS)]
ESCAPED_INIT = '["uniform", {"scale": 1.0}]'  # serialized with escaped quotes: lib_api 7's parser cannot read them


def _raises(fragment: str):
    """pytest.raises for PerfsuiteInputError whose message contains `fragment` literally."""
    return pytest.raises(PerfsuiteInputError, match=re.escape(fragment))


def _nodes(sym) -> list[dict]:
    return json.loads(sym.tojson())["nodes"]


def _ops(sym) -> list[str]:
    return [n["op"] for n in _nodes(sym)]


def _node(sym, name: str) -> dict:
    return next(n for n in _nodes(sym) if n["name"] == name)


def _ulps(out: np.ndarray, ref: np.ndarray) -> float:
    """Largest difference in units of float32 spacing at the reference's largest magnitude."""
    return float(np.max(np.abs(out - ref)) / np.spacing(np.float32(np.max(np.abs(ref)))))


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lib_path() -> Path:
    if REASON:
        pytest.skip(REASON)
    return P.build_pass_library()


@pytest.fixture(scope="module")
def lib(lib_path) -> Path:
    """The library, also loaded into this process (for the in-process apply_passes tests)."""
    return P.load_pass_library(lib_path)


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """A GluonNLP-named 2-layer BERT classifier, exported: dict with sym/args/aux, files, inputs, reference output."""
    import mxnet as mx
    from gluonnlp.model.bert import BERTClassifier, BERTEncoder, BERTModel

    mx.random.seed(7)
    rng = np.random.default_rng(7)
    with mx.name.NameManager():  # fresh counters: the names of a fresh deploy process (bertencoder0_...)
        enc = BERTEncoder(num_layers=LAYERS, units=64, hidden_size=256, max_length=512, num_heads=4, dropout=0.1,
                          output_attention=False, output_all_encodings=False, activation="gelu", layer_norm_eps=1e-12)
        model = BERTModel(enc, 1000, token_type_vocab_size=2, units=64, embed_size=64, use_pooler=True,
                          use_decoder=False, use_classifier=False)
        net = BERTClassifier(model, num_classes=2, dropout=0.1)
    net.initialize(mx.init.Normal(0.02))
    net.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.arange(SEQ).reshape((1, SEQ))
    net(x, mx.nd.zeros_like(x), mx.nd.array([SEQ]))
    prefix = str(tmp_path_factory.mktemp("bert") / "bert")
    net.export(prefix, 0)
    sym, args, aux = mx.model.load_checkpoint(prefix, 0)
    for name in list(args):
        if name.endswith(("_bias", "_beta")):
            args[name] = mx.nd.array(rng.uniform(-0.5, 0.5, args[name].shape).astype(np.float32))
    graph = json.loads(sym.tojson())
    for node in graph["nodes"]:  # an attribute with escaped quotes, as Gluon writes initializers
        if node["name"] == FFN[0][:-len("_fwd")] + "_bias":
            node.setdefault("attrs", {})["__init__"] = ESCAPED_INIT
    sym = mx.sym.load_json(json.dumps(graph))
    mx.model.save_checkpoint(prefix, 0, sym, args, aux)
    inputs = [mx.nd.array(rng.integers(1, 1000, (BATCH, SEQ)).astype(np.float32)),
              mx.nd.array(rng.integers(0, 2, (BATCH, SEQ)).astype(np.float32)), mx.nd.array([SEQ, 5])]
    for fc in FFN:
        assert np.abs(args[fc[:-len("_fwd")] + "_bias"].asnumpy()).min() > 0, "biases must be non-zero"
    files = (prefix + "-symbol.json", prefix + "-0000.params")
    return {"sym": sym, "args": args, "aux": aux, "files": files, "inputs": inputs, "ref": _run_files(*files, inputs)}


def _run_files(symbol_file: str, params_file: str, inputs) -> np.ndarray:
    """Run an exported graph through SymbolBlock.imports, as a deployment does."""
    import mxnet as mx

    block = mx.gluon.SymbolBlock.imports(symbol_file, list(INPUTS), params_file)
    return block(*inputs).asnumpy()


def _run(sym, args, aux, inputs, tmp_path: Path) -> np.ndarray:
    import mxnet as mx

    prefix = str(tmp_path / "rewritten")
    mx.model.save_checkpoint(prefix, 0, sym, args, aux)
    return _run_files(prefix + "-symbol.json", prefix + "-0000.params", inputs)


def _ffn_graph(name: str = FFN[0], second: str = "bertencoder0_transformer0_positionwiseffn0_ffn_2_fwd"):
    """A GluonNLP-named FFN alone (FC -> GELU -> FC) as a symbol with its params: small graphs for option tests."""
    import mxnet as mx

    rng = np.random.default_rng(3)
    shapes = {f"{name[:-4]}_weight": (16, 8), f"{name[:-4]}_bias": (16,), f"{second[:-4]}_weight": (4, 16),
              f"{second[:-4]}_bias": (4,)}  # Gluon's parameter names: the node name without '_fwd'
    v = {k: mx.sym.var(k) for k in shapes}
    h = mx.sym.FullyConnected(mx.sym.var("data"), v[f"{name[:-4]}_weight"], v[f"{name[:-4]}_bias"], num_hidden=16,
                              flatten=False, name=name)
    h = mx.sym.LeakyReLU(h, act_type="gelu", name=name.replace("ffn_1_fwd", "gelu0_leakyrelu0"))
    out = mx.sym.FullyConnected(h, v[f"{second[:-4]}_weight"], v[f"{second[:-4]}_bias"], num_hidden=4,
                                flatten=False, name=second)
    args = {k: mx.nd.array(rng.standard_normal(s).astype(np.float32)) for k, s in shapes.items()}
    assert set(args) == set(out.list_arguments()) - {"data"}
    return out, args


# --- building and loading -------------------------------------------------------------------------------


@needs_passes
def test_build_is_cached_and_lists_all_passes(lib: Path):
    started = time.perf_counter()
    again = P.build_pass_library(out_dir=lib.parent)
    assert again == lib and time.perf_counter() - started < 2.0, "an unchanged build must be a cache hit"
    env = collect_env()
    assert env.mxnet_dist_version in lib.name
    assert P.library_passes(lib) == P.PASS_NAMES == (P.IDENTITY_PASS, P.DROP_BIAS_PASS, P.CRASH_PASS, P.HANG_PASS)
    assert {name: P.loaded_passes()[name] for name in P.PASS_NAMES} == {name: lib for name in P.PASS_NAMES}
    assert P.load_pass_library(str(lib)) == lib  # loading again is allowed


def test_pass_source_is_package_data_and_uses_lib_api_parsers():
    source = P.PASS_SOURCE.read_text()
    for name in P.PASS_NAMES:
        assert f"REGISTER_PASS({name})" in source
    # like user libraries: lib_api.h's JSON parser (1.7) and Graph API (1.8/1.9), no parser of its own
    assert "JsonParser parser" in source and "Graph* graph" in source and "class JsonReader" not in source
    assert "bertencoder0_transformer" in source and "_positionwiseffn0_ffn_1_fwd" in source


# --- the passes, in-process --------------------------------------------------------------------------------


@needs_passes
def test_identity_rewrite_changes_graph_not_outputs(lib, bert, tmp_path):
    sym, args, aux = bert["sym"], bert["args"], bert["aux"]
    new_sym, new_args, new_aux = P.apply_passes(sym, args, aux, [P.IDENTITY_PASS], input_shapes=SHAPES)
    before, after = _ops(sym), _ops(new_sym)
    assert after.count("broadcast_add") == before.count("broadcast_add") + LAYERS, "one add per layer"
    assert len(after) == len(before) + LAYERS and after.count("FullyConnected") == before.count("FullyConnected")
    adds = [n for n in _nodes(new_sym) if n["name"].endswith("_perfsuite_bias_add")]
    assert [n["name"] for n in adds] == [f"{fc}_perfsuite_bias_add" for fc in FFN]
    for fc in FFN:
        node = _node(new_sym, fc)
        assert node["attrs"]["no_bias"] == "True" and len(node["inputs"]) == 2
        assert _node(new_sym, fc[:-len("_fwd")] + "_bias")["attrs"]["__shape__"] == "(256,)"
    for other in ("bertencoder0_transformer0_positionwiseffn0_ffn_2_fwd", "bertencoder0_transformer0_proj_fwd",
                  "bertmodel0_pooler_fwd", "bertclassifier0_dense0_fwd"):
        assert _node(new_sym, other)["attrs"]["no_bias"] == "False", f"{other} is no target"
    assert _node(new_sym, FFN[0][:-len("_fwd")] + "_bias")["attrs"]["__init__"] == ESCAPED_INIT
    assert set(new_args) == set(args) and set(new_aux) == set(aux)
    out = _run(new_sym, new_args, new_aux, bert["inputs"], tmp_path)
    # FC(no_bias) + broadcast_add does the same float32 additions as FC with bias: at most reordering differs
    assert _ulps(out, bert["ref"]) <= 4


@needs_passes
def test_drop_bias_is_caught(lib, bert, tmp_path):
    sym, args, aux = bert["sym"], bert["args"], bert["aux"]
    new_sym, new_args, new_aux = P.apply_passes(sym, args, aux, [P.DROP_BIAS_PASS], input_shapes=SHAPES)
    assert _ops(new_sym).count("broadcast_add") == _ops(sym).count("broadcast_add")
    assert set(args) - set(new_args) == {fc[:-len("_fwd")] + "_bias" for fc in FFN}
    assert FFN[0][:-len("_fwd")] + "_bias" in args, "the caller's dict must not be modified"
    out = _run(new_sym, new_args, new_aux, bert["inputs"], tmp_path)
    assert _ulps(out, bert["ref"]) > 1000 and np.max(np.abs(out - bert["ref"])) > 1e-4


@needs_passes
def test_graph_without_gluonnlp_names_fails_cleanly(lib, capfd):
    import mxnet as mx

    args = {"net_ffn_weight": mx.nd.ones((16, 8)), "net_ffn_bias": mx.nd.ones((16,)),
            "net_proj_weight": mx.nd.ones((4, 16)), "net_proj_bias": mx.nd.ones((4,))}
    v = {k: mx.sym.var(k) for k in args}
    hidden = mx.sym.FullyConnected(mx.sym.var("data"), v["net_ffn_weight"], v["net_ffn_bias"], num_hidden=16,
                                   name="net_ffn_fwd")
    out = mx.sym.FullyConnected(hidden, v["net_proj_weight"], v["net_proj_bias"], num_hidden=4, name="net_proj_fwd")
    for name in (P.IDENTITY_PASS, P.DROP_BIAS_PASS):
        with _raises(f"graph pass '{name}' from {lib} failed") as info:
            P.apply_passes(out, args, {}, [name], input_shapes={"data": (2, 8)})
        # 1.8+ carry the pass's message in the MXNetError; lib_api 7 (1.7) has no channel for it: it goes to stderr
        message = str(info.value) + capfd.readouterr().err
        assert "found no GluonNLP BERT FFN node: looked for FullyConnected nodes named " \
               "bertencoder0_transformer<N>_positionwiseffn0_ffn_1_fwd" in message
        assert "the graph has 7 nodes, 2 FullyConnected (e.g. 'net_ffn_fwd')" in message


@needs_passes
def test_name_filter_option_rewrites_only_matching_layer(lib, bert, tmp_path):
    sym, args, aux = bert["sym"], bert["args"], bert["aux"]
    new_sym, new_args, new_aux = P.apply_passes(sym, args, aux, [P.IDENTITY_PASS],
                                                options={"fc_name_contains": "transformer1_"}, input_shapes=SHAPES)
    adds = [n["name"] for n in _nodes(new_sym) if n["name"].endswith("_perfsuite_bias_add")]
    assert adds == [f"{FFN[1]}_perfsuite_bias_add"]
    assert _node(new_sym, FFN[0])["attrs"]["no_bias"] == "False"
    assert _ulps(_run(new_sym, new_args, new_aux, bert["inputs"], tmp_path), bert["ref"]) <= 4


@needs_passes
def test_name_filter_matching_no_target_fails(lib, capfd):
    sym, args = _ffn_graph()
    with _raises(f"graph pass '{P.IDENTITY_PASS}' from {lib} failed") as info:
        P.apply_passes(sym, args, {}, [P.IDENTITY_PASS], options={"fc_name_contains": "transformer7_"},
                       input_shapes={"data": (2, 5, 8)})
    assert "none of the 1 GluonNLP BERT FFN nodes" in str(info.value) + capfd.readouterr().err


@needs_passes
def test_passes_chain_in_order(lib, bert, tmp_path):
    sym, args, aux = bert["sym"], bert["args"], bert["aux"]
    new_sym, new_args, new_aux = P.apply_passes(sym, args, aux, [P.IDENTITY_PASS, P.DROP_BIAS_PASS],
                                                input_shapes=SHAPES)
    # the FFN FCs have no bias after the first pass, so the second finds its targets but nothing to drop
    assert _ops(new_sym).count("broadcast_add") == _ops(sym).count("broadcast_add") + LAYERS
    assert _ulps(_run(new_sym, new_args, new_aux, bert["inputs"], tmp_path), bert["ref"]) <= 4


@needs_passes
def test_without_input_shapes(lib):
    """1.8+ accept params without the data input; 1.7's optimize_for does not, so the pass runs without params."""
    import mxnet as mx

    sym, args = _ffn_graph()
    if "shape_dict" in inspect.signature(mx.sym.Symbol.optimize_for).parameters:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            new_sym, _, _ = P.apply_passes(sym, args, {}, [P.IDENTITY_PASS])
    else:
        with pytest.warns(UserWarning, match="runs without params"):
            new_sym, _, _ = P.apply_passes(sym, args, {}, [P.IDENTITY_PASS])
    assert _ops(new_sym).count("broadcast_add") == 1


@needs_passes
def test_graph_whose_shape_inference_needs_input_shapes(lib):
    """1.8+ infer shapes inside optimize_for; arange_like fails on an unknown input shape unless input_shapes is given."""
    import mxnet as mx

    data = mx.sym.var("data")
    steps = mx.sym.contrib.arange_like(data, axis=1)
    prefix = FFN[0][:-len("_fwd")]
    out = mx.sym.FullyConnected(mx.sym.broadcast_add(data, mx.sym.reshape(steps, (1, -1))),
                                mx.sym.var(f"{prefix}_weight"), mx.sym.var(f"{prefix}_bias"), num_hidden=3, name=FFN[0])
    args = {f"{prefix}_weight": mx.nd.ones((3, 4)), f"{prefix}_bias": mx.nd.ones((3,))}
    if "shape_dict" in inspect.signature(mx.sym.Symbol.optimize_for).parameters:
        with _raises("give input_shapes= for ['data']"):
            P.apply_passes(out, args, {}, [P.IDENTITY_PASS])
    new_sym, _, _ = P.apply_passes(out, args, {}, [P.IDENTITY_PASS], input_shapes={"data": (2, 4)})
    assert f"{FFN[0]}_perfsuite_bias_add" in [n["name"] for n in _nodes(new_sym) if n["op"] == "broadcast_add"]


# --- errors, in-process ---------------------------------------------------------------------------------------


@needs_passes
def test_unknown_pass_name_is_an_error_not_a_log_line(lib):
    sym, args = _ffn_graph()
    # MXNet itself only logs "Error optimizing for backend 'perfsuite_no_such_pass' cannot be found"
    unchanged = sym.optimize_for("perfsuite_no_such_pass")
    assert unchanged.tojson() == sym.tojson()
    with _raises("graph pass 'perfsuite_no_such_pass' is not registered") as info:
        P.apply_passes(sym, args, {}, ["perfsuite_no_such_pass"])
    assert str(lib) in str(info.value) and P.IDENTITY_PASS in str(info.value)


@needs_passes
def test_unknown_option_makes_the_pass_fail(lib, capfd):
    sym, args = _ffn_graph()
    with _raises(f"graph pass '{P.IDENTITY_PASS}' from {lib} failed") as info:
        P.apply_passes(sym, args, {}, [P.IDENTITY_PASS], options={"fc_nme": "ffn"}, input_shapes={"data": (2, 5, 8)})
    # 1.8+ carry the pass's message in the MXNetError; lib_api 7 (1.7) has no channel for it: it goes to stderr
    assert "unknown option 'fc_nme'; allowed: fc_name_contains" in str(info.value) + capfd.readouterr().err


@needs_passes
@pytest.mark.parametrize("passes", ["perfsuite_identity_rewrite", [""], [3]])
def test_passes_must_be_a_list_of_names(lib, passes):
    sym, args = _ffn_graph()
    with _raises("allowed: a list of non-empty pass names"):
        P.apply_passes(sym, args, {}, passes)


def test_missing_library_path(tmp_path):
    with _raises(f"pass library {tmp_path / 'nope.so'} does not exist"):
        P.load_pass_library(tmp_path / "nope.so")


def test_library_suffix(tmp_path):
    bad = tmp_path / "libpasses.so.1"
    bad.write_bytes(b"\x7fELF")
    with _raises("does not end in .so or .dll; mx.library.load refuses other names"):
        P.load_pass_library(bad)


def test_garbage_library(tmp_path):
    bad = tmp_path / "garbage.so"
    bad.write_text("not a shared library\n")
    with _raises(f"cannot open pass library {bad}"):
        P.load_pass_library(bad)


def _compile(tmp_path: Path, name: str, code: str, *extra: str) -> Path:
    src, out = tmp_path / f"{name}.cc", tmp_path / f"{name}.so"
    src.write_text(code)
    subprocess.run(["g++", "-shared", "-fPIC", *extra, str(src), "-o", str(out)], check=True, capture_output=True)
    return out


@needs_gxx
def test_shared_library_without_lib_api(tmp_path):
    plain = _compile(tmp_path, "plain", "extern \"C\" int perfsuite_f() { return 1; }\n")
    with _raises("is not an MXNet extension library with graph passes: it does not export _opVersion"):
        P.load_pass_library(plain)


@needs_gxx
def test_library_with_undefined_symbols_does_not_kill_the_process(tmp_path):
    # mx.library.load of such a library ends the process ("symbol lookup error"); ours must raise instead
    code = "int perfsuite_missing();\nstatic int v = perfsuite_missing();\nextern \"C\" int _opVersion() { return v; }\n"
    undef = _compile(tmp_path, "undef", code)
    with _raises("undefined symbol"):
        P.load_pass_library(undef)


@needs_passes
def test_library_for_another_mxnet_version(tmp_path):
    code = ('extern "C" {\nint _opVersion() { return 999; }\nint _passRegSize() { return 0; }\n'
            "void _passRegGet(int, void**, const char**) {}\nint initialize(int) { return 1; }\n}\n")
    other = _compile(tmp_path, "other_version", code)
    with _raises("MXNet could not load pass library") as info:
        P.load_pass_library(other)
    assert "Library version (999) does not match MXNet version" in str(info.value)


# --- in a child process ----------------------------------------------------------------------------------------


@needs_passes
def test_isolated_rewrite_writes_files_and_reports(lib_path, bert, tmp_path, monkeypatch):
    # a 'perfsuite' package in the caller's cwd must not shadow the real one in the child
    shadow = tmp_path / "cwd" / "perfsuite"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('shadowed perfsuite imported')\n")
    monkeypatch.chdir(shadow.parent)
    result = P.apply_passes_isolated(*bert["files"], lib_path, [P.IDENTITY_PASS, P.DROP_BIAS_PASS], SHAPES,
                                     tmp_path / "out" / "bert-rewritten", timeout_s=120)
    assert result.symbol_file == tmp_path / "out" / "bert-rewritten-symbol.json"
    assert result.params_file == tmp_path / "out" / "bert-rewritten-0000.params"
    assert result.symbol_file.is_file() and result.params_file.is_file()
    assert not list((tmp_path / "out").glob("*.tmp*")), "no temporary files left behind"
    assert result.library == lib_path and result.passes == (P.IDENTITY_PASS, P.DROP_BIAS_PASS)
    n = len(_nodes(bert["sym"]))
    assert result.nodes_before == n and result.nodes_after == (n + LAYERS, n + LAYERS)
    assert result.op_count_changes == {"broadcast_add": LAYERS}
    assert result.mxnet_version == collect_env().mxnet_version
    assert 0 < sum(result.pass_seconds) < result.child_seconds < result.wall_seconds
    assert 0 < result.overhead_seconds < result.wall_seconds
    out = _run_files(str(result.symbol_file), str(result.params_file), bert["inputs"])
    assert _ulps(out, bert["ref"]) <= 4


@needs_passes
def test_isolated_crash_names_the_signal_and_the_library(lib_path, bert, tmp_path):
    import mxnet as mx

    with pytest.raises(P.PassLibraryCrashed) as info:
        P.apply_passes_isolated(*bert["files"], lib_path, [P.IDENTITY_PASS, P.CRASH_PASS], SHAPES, tmp_path / "out",
                                timeout_s=120)
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert f"pass library {lib_path} crashed in pass '{P.CRASH_PASS}'" in message
    assert "killed by SIGFPE (signal 8)" in message
    assert "units per head = 768 / 0" in message, "the child's last output is quoted"
    err = info.value
    assert (err.signal_name, err.pass_name, err.returncode, err.hung) == ("SIGFPE", P.CRASH_PASS, -8, False)
    again = pickle.loads(pickle.dumps(err))  # worker processes pass exceptions on
    assert str(again) == message and again.signal_name == "SIGFPE" and again.library == lib_path
    assert not list(tmp_path.glob("out*")), "a crashed child writes no result files"
    assert float(mx.nd.ones((2,)).sum().asscalar()) == 2.0, "the parent process survives and MXNet still works"


@needs_passes
def test_isolated_hang_is_killed_after_the_timeout(lib_path, bert, tmp_path):
    started = time.monotonic()
    with pytest.raises(P.PassLibraryCrashed) as info:
        P.apply_passes_isolated(*bert["files"], lib_path, [P.HANG_PASS], SHAPES, tmp_path / "out", timeout_s=2)
    elapsed = time.monotonic() - started
    assert f"pass library {lib_path} hung for more than 2 s in pass '{P.HANG_PASS}'" in str(info.value)
    assert info.value.hung and info.value.signal_name is None and info.value.pass_name == P.HANG_PASS
    assert elapsed < 2 + 30, "killed at the timeout (plus the child's start), not later"
    pid = int(re.search(r"child process \(pid (\d+)\)", str(info.value)).group(1))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone


@needs_passes
def test_isolated_clean_failure_is_an_input_error(lib_path, tmp_path):
    import mxnet as mx

    data = mx.sym.var("data")
    sym = mx.sym.FullyConnected(data, num_hidden=4, name="net_dense0_fwd")
    prefix = str(tmp_path / "plain")
    mx.model.save_checkpoint(prefix, 0, sym, {"net_dense0_weight": mx.nd.ones((4, 8)),
                                              "net_dense0_bias": mx.nd.ones((4,))}, {})
    with _raises(f"graph pass '{P.IDENTITY_PASS}' from {lib_path} failed") as info:
        P.apply_passes_isolated(prefix + "-symbol.json", prefix + "-0000.params", lib_path, [P.IDENTITY_PASS],
                                {"data": (2, 8)}, tmp_path / "out", timeout_s=120)
    # 1.8+: in MXNet's message; 1.7: from the child's stderr, appended
    assert "found no GluonNLP BERT FFN node" in str(info.value)
    assert not isinstance(info.value, P.PassLibraryCrashed)


def test_isolated_argument_errors(tmp_path):
    existing = tmp_path / "model-symbol.json"
    existing.write_text("{}")
    lib = tmp_path / "lib.so"
    lib.write_bytes(b"")
    with _raises(f"params_file {tmp_path / 'nope.params'} does not exist"):
        P.apply_passes_isolated(existing, tmp_path / "nope.params", lib, [P.IDENTITY_PASS], None, tmp_path / "o")
    with _raises("timeout_s=0; allowed: a positive number of seconds"):
        P.apply_passes_isolated(existing, existing, lib, [P.IDENTITY_PASS], None, tmp_path / "o", timeout_s=0)
    with _raises("allowed: a non-empty list of pass names"):
        P.apply_passes_isolated(existing, existing, lib, [], None, tmp_path / "o")
    with _raises("does not end in .so or .dll"):
        P.apply_passes_isolated(existing, existing, existing, [P.IDENTITY_PASS], None, tmp_path / "o")


def test_child_environment_finds_this_perfsuite(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    from perfsuite.passes import isolated

    env = isolated._child_env()
    root = str(Path(P.__file__).resolve().parent.parent.parent)
    assert env["PYTHONPATH"].split(os.pathsep) == [root, "/somewhere/else"]


# --- build inputs and skip reasons --------------------------------------------------------------------------


def test_skip_reason_old_mxnet():
    old = dataclasses.replace(collect_env(), mxnet_distribution="mxnet", mxnet_dist_version="1.6.0", mxnet_version="1.6.0")
    assert P.skip_reason_passes(old) == (
        "needs MXNet >= 1.7.0 for custom graph passes (REGISTER_PASS / optimize_for); found mxnet 1.6.0"
    )


def test_no_compiler(monkeypatch, tmp_path):
    fake = _fake_mxnet_dir(tmp_path, 7)  # headers present: only the compiler is missing
    monkeypatch.setenv("PATH", str(tmp_path))
    with _raises("building perfsuite's pass library needs g++ (C++17) on PATH; none found"):
        P.build_pass_library(out_dir=tmp_path, mxnet_dir=fake)
    if mxnet_at_least("1.7.0"):
        assert "needs g++ (C++17) on PATH" in (P.skip_reason_passes(mxnet_dir=fake) or "")


def test_no_headers(tmp_path):
    with _raises(f"needs mxnet/include/mxnet/lib_api.h; {tmp_path / 'include' / 'mxnet' / 'lib_api.h'} does not exist"):
        P.build_pass_library(out_dir=tmp_path, mxnet_dir=tmp_path)
    if mxnet_at_least("1.7.0"):
        assert "needs mxnet/include/mxnet/lib_api.h" in (P.skip_reason_passes(mxnet_dir=tmp_path) or "")


def _fake_mxnet_dir(tmp_path: Path, version: int) -> Path:
    inc = tmp_path / "mxnet" / "include" / "mxnet"
    inc.mkdir(parents=True)
    (inc / "lib_api.h").write_text(f"#define MX_LIBRARY_VERSION {version}\n#define REGISTER_PASS(Name)\n")
    return tmp_path / "mxnet"


def test_lib_api_10_without_lib_api_cc_like_the_18_wheels(tmp_path, monkeypatch):
    monkeypatch.delenv(library.LIB_API_CC_ENV, raising=False)  # CI sets it for the 1.8 builds
    fake = _fake_mxnet_dir(tmp_path, 10)
    with _raises("needs src/lib_api.cc for lib_api version 10") as info:
        P.build_pass_library(out_dir=tmp_path, mxnet_dir=fake)
    message = str(info.value)
    assert "Provide the file src/lib_api.cc of apache/mxnet at tag 1.8.0" in message
    assert "lib_api_cc= (build_pass_library) or in the environment variable PERFSUITE_LIB_API_CC" in message
    assert "No MXNet 1.8 distribution on PyPI ships it" in message
    with _raises(f"lib_api_cc='{tmp_path / 'nope.cc'}': {tmp_path / 'nope.cc'} does not exist; give the path of "
                 "the file src/lib_api.cc of apache/mxnet at tag 1.8.0"):
        P.build_pass_library(out_dir=tmp_path, mxnet_dir=fake, lib_api_cc=tmp_path / "nope.cc")


def test_the_environment_variable_is_only_a_fallback_for_wheels_without_lib_api_cc(tmp_path, monkeypatch):
    """CI sets PERFSUITE_LIB_API_CC (1.8.0's file) for a whole job: a 1.9 wheel keeps its own file, a 1.7 build
    (header-only) ignores it, a 1.8 wheel uses it; a missing file is named with the variable."""
    vendored = tmp_path / "lib_api_180.cc"
    vendored.write_text("// apache/mxnet 1.8.0 src/lib_api.cc stand-in\n")
    monkeypatch.setenv(library.LIB_API_CC_ENV, str(vendored))
    v11 = _fake_mxnet_dir(tmp_path / "a", 11)
    (v11 / "src").mkdir()
    (v11 / "src" / "lib_api.cc").write_text("// 1.9's own\n")
    assert library._build_inputs(v11, None)["lib_api_cc"] == (v11 / "src" / "lib_api.cc").resolve()
    assert library._build_inputs(_fake_mxnet_dir(tmp_path / "b", 7), None)["lib_api_cc"] is None
    assert library._build_inputs(_fake_mxnet_dir(tmp_path / "c", 10), None)["lib_api_cc"] == vendored.resolve()
    monkeypatch.setenv(library.LIB_API_CC_ENV, str(tmp_path / "gone.cc"))
    with _raises(f"PERFSUITE_LIB_API_CC='{tmp_path / 'gone.cc'}': {tmp_path / 'gone.cc'} does not exist"):
        library._build_inputs(_fake_mxnet_dir(tmp_path / "d", 10), None)


def test_header_without_register_pass(tmp_path):
    inc = tmp_path / "mxnet" / "include" / "mxnet"
    inc.mkdir(parents=True)
    (inc / "lib_api.h").write_text("// MXNet 1.6: custom operators only\n")
    with _raises("needs a lib_api.h with REGISTER_PASS (MXNet >= 1.7.0)"):
        P.build_pass_library(out_dir=tmp_path, mxnet_dir=tmp_path / "mxnet")


@needs_gxx
def test_compile_error_is_reported(tmp_path):
    fake = _fake_mxnet_dir(tmp_path, 7)  # a header that defines nothing: the source cannot compile
    with _raises("compiling perfsuite's pass library against") as info:
        P.build_pass_library(out_dir=tmp_path, mxnet_dir=fake)
    assert "error" in str(info.value)
    assert not list(tmp_path.glob("*.so")), "a failed build must leave no library behind"
