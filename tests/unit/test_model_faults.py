"""Tests of the tests, whole model: the comparison fails for a dropped bias, a misordered interleaved QKV weight,
a missing length mask and a wrong graph pass, each fed through the same run_model_case as the real paths."""

import numpy as np
import pytest

from perfsuite.model_parity import ModelCase, make_batch, model_weights, run_model_case
from perfsuite.paths.model import prepare, skip_reason_path
from perfsuite.pytest_plugin import skip_unless_runnable
from perfsuite.weights import CONFIGS

CASE = ModelCase("small", "hybridized", batch=4, seq_len=32, seed=1)


def _runner_with(weights, path="hybridized", **kw):
    return prepare(path, CASE.cfg, weights, **kw)


def _fails(runner, batch=None):
    result = run_model_case(CASE, runner=runner, batch=batch)
    assert not result.passed, "the fault went unnoticed:\n" + result.message
    assert "worst element" in result.message and "error/bound=" in result.message
    return result


def test_dropped_bias_fails():
    w = dict(model_weights("small"))
    w["layer1.ffn.1.bias"] = np.zeros_like(w["layer1.ffn.1.bias"])
    _fails(_runner_with(w))


def test_misordered_interleaved_qkv_fails():
    """Heads of Wq in the wrong order (what a wrong per-head interleaving of Q, K, V does)."""
    cfg = CONFIGS["small"]
    w = dict(model_weights("small"))
    for name in ("layer0.attn.q.weight", "layer0.attn.q.bias"):
        a = w[name].reshape(cfg.heads, cfg.head_dim, *w[name].shape[1:])
        w[name] = np.ascontiguousarray(a[::-1]).reshape(w[name].shape)
    _fails(_runner_with(w))


def test_swapped_q_and_k_fails():
    w = dict(model_weights("small"))
    for part in ("weight", "bias"):
        w[f"layer0.attn.q.{part}"], w[f"layer0.attn.k.{part}"] = w[f"layer0.attn.k.{part}"], w[f"layer0.attn.q.{part}"]
    _fails(_runner_with(w))


def test_missing_length_mask_fails():
    """The path sees every sentence as full length (mask dropped); the reference masks the padding."""
    runner = _runner_with(model_weights("small"))
    ids, types, valid = make_batch(CASE)
    assert (valid < CASE.seq_len).any()

    class NoMask:
        info = runner.info

        def __call__(self, i, t, v):
            return runner(i, t, np.full_like(v, CASE.seq_len))

    _fails(NoMask(), batch=(ids, types, valid))


GP_CASE = ModelCase("small", "graph_pass", batch=4, seq_len=32, seed=1)


def _pass_library():
    skip_unless_runnable(skip_reason_path("graph_pass"))
    from perfsuite.passes import build_pass_library, skip_reason_passes

    skip_unless_runnable(skip_reason_passes())
    return str(build_pass_library())


def test_wrong_graph_pass_fails():
    """A pass is judged against the unpassed exported model: the correct rewrite agrees (exactly, here), the
    bias-dropping one differs."""
    lib = _pass_library()
    good = _runner_with(model_weights("small"), "graph_pass", pass_library=lib, passes=["perfsuite_identity_rewrite"])
    result = run_model_case(GP_CASE, runner=good)
    assert result.passed and result.base_comparisons and "agrees with the unpassed" in result.message
    bad = _runner_with(model_weights("small"), "graph_pass", pass_library=lib, passes=["perfsuite_drop_bias"])
    result = run_model_case(GP_CASE, runner=bad)
    assert not result.passed and "DIFFERS from the unpassed exported model" in result.message
    assert "error/bound=" in result.message


def test_a_correct_pass_on_a_base_model_that_fails_the_reference_is_not_blamed():
    """As on MXNet 1.7.0.post2 (tanh GELU): the base model fails the reference, the pass keeps it as it is; the
    verdict is the pass's (PASS), and the message says the base model fails the reference on this MXNet."""
    lib = _pass_library()
    w = dict(model_weights("small"))
    w["layer1.ffn.2.bias"] = w["layer1.ffn.2.bias"] * 1.01  # a model that is not the reference's
    passed = _runner_with(w, "graph_pass", pass_library=lib, passes=["perfsuite_identity_rewrite"])
    base = _runner_with(w, "exported")
    result = run_model_case(GP_CASE, runner=passed, base_runner=base)
    assert result.passed and not result.reference_passed
    assert "the base model itself fails the reference on this MXNet, not the pass" in result.message


def test_onednn_with_a_wrong_backend_name_is_refused():
    """MXNet only logs an unknown backend ('ONEDNN' in 1.9.1); perfsuite counts the fused nodes and refuses."""
    skip_unless_runnable(skip_reason_path("onednn"))
    from perfsuite.errors import PerfsuiteInputError

    with pytest.raises(PerfsuiteInputError, match="optimize_for\\(backend='ONEDNN'\\) fused nothing"):
        prepare("onednn", CASE.cfg, model_weights("small"), onednn_backend="ONEDNN")
    assert prepare("onednn", CASE.cfg, model_weights("small")).info["fused_nodes"]
