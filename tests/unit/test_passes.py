"""perfsuite.passes: build perfsuite's own graph-pass library, load it, apply its passes to an exported model.

The library is compiled once per session into a temporary directory (about 6 s for MXNet 1.9.1, 3 s for 1.7 on
the 2-core machines). The model is two Dense layers with non-zero random biases (default initializers leave
biases at zero, which would hide a bias bug), hybridized, exported and re-imported as symbol + params.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
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

REASON = P.skip_reason_passes()
needs_passes = pytest.mark.skipif(REASON is not None, reason=REASON or "")
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ on PATH")

# SymbolBlock.imports always says this about its data input; it is MXNet's, not about the rewrite
pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type for the following arguments:UserWarning")

IN_SHAPE = (2, 5, 8)  # (batch, tokens, units): the first Dense keeps 3-D like BERT's FFN (flatten=False)


def _raises(fragment: str):
    """pytest.raises for PerfsuiteInputError whose message contains `fragment` literally."""
    return pytest.raises(PerfsuiteInputError, match=re.escape(fragment))


def _ops(sym) -> list[str]:
    return [n["op"] for n in json.loads(sym.tojson())["nodes"]]


def _node(sym, name: str) -> dict:
    return next(n for n in json.loads(sym.tojson())["nodes"] if n["name"] == name)


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> Path:
    if REASON:
        pytest.skip(REASON)
    out = tmp_path_factory.mktemp("passlib")
    path = P.build_pass_library(out_dir=out)
    return P.load_pass_library(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(sym, arg_params, aux_params, x, reference output) of an exported two-Dense HybridBlock."""
    import mxnet as mx

    mx.random.seed(7)
    rng = np.random.default_rng(7)

    class TwoDense(mx.gluon.HybridBlock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.ffn = mx.gluon.nn.Dense(16, flatten=False, activation="relu", prefix="ffn_",
                                             bias_initializer=mx.init.Uniform(1.0))
                self.proj = mx.gluon.nn.Dense(4, prefix="proj_", bias_initializer=mx.init.Uniform(1.0))

        def hybrid_forward(self, F, x):
            return self.proj(self.ffn(x))

    net = TwoDense(prefix="net_")
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = mx.nd.array(rng.standard_normal(IN_SHAPE).astype(np.float32))
    ref = net(x).asnumpy()
    prefix = str(tmp_path_factory.mktemp("model") / "two_dense")
    net.export(prefix)
    sym, args, aux = mx.model.load_checkpoint(prefix, 0)
    for name in ("net_ffn_bias", "net_proj_bias"):
        assert np.abs(args[name].asnumpy()).min() > 0, f"{name} must be non-zero, or no bias bug is visible"
    return sym, args, aux, x, ref


def _run(sym, args, aux, x, tmp_path: Path) -> np.ndarray:
    """Save the (rewritten) graph + params and run it through SymbolBlock.imports, as the seed did."""
    import mxnet as mx

    prefix = str(tmp_path / "rewritten")
    mx.model.save_checkpoint(prefix, 0, sym, args, aux)
    block = mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0000.params")
    return block(x).asnumpy()


def _rel_err(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))


# --- building and loading -------------------------------------------------------------------------------


@needs_passes
def test_build_is_cached_and_lists_both_passes(lib: Path):
    started = time.perf_counter()
    again = P.build_pass_library(out_dir=lib.parent)
    assert again == lib and time.perf_counter() - started < 2.0, "an unchanged build must be a cache hit"
    env = collect_env()
    assert env.mxnet_dist_version in lib.name
    assert P.library_passes(lib) == P.PASS_NAMES
    assert P.loaded_passes() == {P.IDENTITY_PASS: lib, P.DROP_BIAS_PASS: lib}
    assert P.load_pass_library(str(lib)) == lib  # loading again is allowed


def test_pass_source_is_package_data():
    assert P.PASS_SOURCE.is_file() and "REGISTER_PASS(perfsuite_identity_rewrite)" in P.PASS_SOURCE.read_text()


# --- the two passes --------------------------------------------------------------------------------------


@needs_passes
def test_identity_rewrite_changes_graph_not_outputs(lib, exported, tmp_path):
    sym, args, aux, x, ref = exported
    new_sym, new_args, new_aux = P.apply_passes(sym, args, aux, [P.IDENTITY_PASS], input_shapes={"data": IN_SHAPE})
    before, after = _ops(sym), _ops(new_sym)
    assert after.count("broadcast_add") == 2 and before.count("broadcast_add") == 0
    assert len(after) == len(before) + 2 and after.count("FullyConnected") == 2
    for fc in ("net_ffn_fwd", "net_proj_fwd"):
        node = _node(new_sym, fc)
        assert node["attrs"]["no_bias"] == "True" and len(node["inputs"]) == 2
    assert set(new_args) == set(args) and set(new_aux) == set(aux)
    out = _run(new_sym, new_args, new_aux, x, tmp_path)
    # FC(no_bias) + broadcast_add does the same float32 additions as FC with bias: only reordering could differ
    assert _rel_err(out, ref) <= 1e-5


@needs_passes
def test_drop_bias_is_caught(lib, exported, tmp_path):
    sym, args, aux, x, ref = exported
    new_sym, new_args, new_aux = P.apply_passes(sym, args, aux, [P.DROP_BIAS_PASS], input_shapes={"data": IN_SHAPE})
    assert "broadcast_add" not in _ops(new_sym) and len(_ops(new_sym)) == len(_ops(sym)) - 2
    assert set(args) - set(new_args) == {"net_ffn_bias", "net_proj_bias"}
    assert "net_ffn_bias" in args, "the caller's dict must not be modified"
    out = _run(new_sym, new_args, new_aux, x, tmp_path)
    assert np.max(np.abs(out - ref)) > 1e-2


@needs_passes
def test_name_filter_option_rewrites_only_matching_fc(lib, exported, tmp_path):
    sym, args, aux, x, ref = exported
    new_sym, new_args, new_aux = P.apply_passes(sym, args, aux, [P.IDENTITY_PASS], options={"fc_name_contains": "ffn"},
                                                input_shapes={"data": IN_SHAPE})
    adds = [n["name"] for n in json.loads(new_sym.tojson())["nodes"] if n["op"] == "broadcast_add"]
    assert adds == ["net_ffn_fwd_perfsuite_bias_add"]
    assert _node(new_sym, "net_proj_fwd")["attrs"].get("no_bias", "False") == "False"
    assert _rel_err(_run(new_sym, new_args, new_aux, x, tmp_path), ref) <= 1e-5


@needs_passes
def test_passes_chain_in_order(lib, exported, tmp_path):
    sym, args, aux, x, ref = exported
    new_sym, new_args, new_aux = P.apply_passes(sym, args, aux, [P.IDENTITY_PASS, P.DROP_BIAS_PASS],
                                                input_shapes={"data": IN_SHAPE})
    # the FCs have no bias after the first pass, so the second finds nothing to drop
    assert _ops(new_sym).count("broadcast_add") == 2
    assert _rel_err(_run(new_sym, new_args, new_aux, x, tmp_path), ref) <= 1e-5


@needs_passes
def test_without_input_shapes(lib, exported):
    """1.8+ accept params without the data input; 1.7's optimize_for does not, so the pass runs without params."""
    import mxnet as mx

    sym, args, aux, _, _ = exported
    if "shape_dict" in inspect.signature(mx.sym.Symbol.optimize_for).parameters:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            new_sym, _, _ = P.apply_passes(sym, args, aux, [P.IDENTITY_PASS])
    else:
        with pytest.warns(UserWarning, match="runs without params"):
            new_sym, _, _ = P.apply_passes(sym, args, aux, [P.IDENTITY_PASS])
    assert _ops(new_sym).count("broadcast_add") == 2


@needs_passes
def test_graph_whose_shape_inference_needs_input_shapes(lib):
    """1.8+ infer shapes inside optimize_for; arange_like fails on an unknown input shape unless input_shapes is given."""
    import mxnet as mx

    data = mx.sym.var("data")
    steps = mx.sym.contrib.arange_like(data, axis=1)
    out = mx.sym.FullyConnected(mx.sym.broadcast_add(data, mx.sym.reshape(steps, (1, -1))), num_hidden=3, name="fc")
    args = {"fc_weight": mx.nd.ones((3, 4)), "fc_bias": mx.nd.ones((3,))}
    if "shape_dict" in inspect.signature(mx.sym.Symbol.optimize_for).parameters:
        with _raises("give input_shapes= for ['data']"):
            P.apply_passes(out, args, {}, [P.IDENTITY_PASS])
    new_sym, _, _ = P.apply_passes(out, args, {}, [P.IDENTITY_PASS], input_shapes={"data": (2, 4)})
    assert "broadcast_add" in [n["op"] for n in json.loads(new_sym.tojson())["nodes"] if n["name"].startswith("fc")]


# --- errors ----------------------------------------------------------------------------------------------


@needs_passes
def test_unknown_pass_name_is_an_error_not_a_log_line(lib, exported):
    sym, args, aux, _, _ = exported
    # MXNet itself only logs "Error optimizing for backend 'perfsuite_no_such_pass' cannot be found"
    unchanged = sym.optimize_for("perfsuite_no_such_pass")
    assert unchanged.tojson() == sym.tojson()
    with _raises("graph pass 'perfsuite_no_such_pass' is not registered") as info:
        P.apply_passes(sym, args, aux, ["perfsuite_no_such_pass"])
    assert str(lib) in str(info.value) and P.IDENTITY_PASS in str(info.value)


@needs_passes
def test_failing_pass_raises(lib, exported, capfd):
    sym, args, aux, _, _ = exported
    with _raises(f"graph pass '{P.IDENTITY_PASS}' from {lib} failed") as info:
        P.apply_passes(sym, args, aux, [P.IDENTITY_PASS], options={"fc_nme": "ffn"}, input_shapes={"data": IN_SHAPE})
    # 1.8+ carry the pass's message in the MXNetError; lib_api 7 (1.7) has no channel for it: it goes to stderr
    assert "unknown option 'fc_nme'; allowed: fc_name_contains" in str(info.value) + capfd.readouterr().err


@needs_passes
@pytest.mark.parametrize("passes", ["perfsuite_identity_rewrite", [""], [3]])
def test_passes_must_be_a_list_of_names(lib, exported, passes):
    sym, args, aux, _, _ = exported
    with _raises("allowed: a list of non-empty pass names"):
        P.apply_passes(sym, args, aux, passes)


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


def test_lib_api_10_without_lib_api_cc_like_the_18_wheels(tmp_path):
    fake = _fake_mxnet_dir(tmp_path, 10)
    with _raises("needs src/lib_api.cc for lib_api version 10") as info:
        P.build_pass_library(out_dir=tmp_path, mxnet_dir=fake)
    assert "lib_api_cc=" in str(info.value)


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
