"""perfsuite.env: flag context, registry, versions, skip reasons, environment record, and MXNet's real flag reading."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from perfsuite import env as penv, flags as pflags
from perfsuite.env import EnvInfo
from perfsuite.errors import PerfsuiteInputError
from perfsuite.flags import mxnet_flags

SAFE = "MXNET_SAFE_ACCUMULATION"


def _raises(fragment: str):
    """pytest.raises for PerfsuiteInputError whose message contains `fragment` literally."""
    return pytest.raises(PerfsuiteInputError, match=re.escape(fragment))


@pytest.fixture
def clean_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test with MXNET_SAFE_ACCUMULATION absent; monkeypatch restores the caller's value."""
    monkeypatch.delenv(SAFE, raising=False)


@pytest.fixture(scope="module")
def real_env() -> EnvInfo:
    return penv.collect_env()


def _fake(real: EnvInfo, **changes) -> EnvInfo:
    """A fake environment derived from the real one (no GPU or old MXNet needed)."""
    return dataclasses.replace(real, **changes)


def _cpu_160(real: EnvInfo) -> EnvInfo:
    """mxnet 1.6.0 CPU wheel: no MKLDNN, no CUDA."""
    features = dict(real.features, CUDA=False, MKLDNN=False)
    return _fake(real, mxnet_distribution="mxnet", mxnet_dist_version="1.6.0", mxnet_version="1.6.0", features=features)


# --- module import --------------------------------------------------------------------------------------------


def test_importing_env_does_not_import_mxnet() -> None:
    code = "import sys, perfsuite.env; print('mxnet' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip() == "False"


# --- mxnet_flags ----------------------------------------------------------------------------------------------


def test_flags_restore_a_value_set_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SAFE, "0")
    with mxnet_flags(MXNET_SAFE_ACCUMULATION=1) as applied:
        assert os.environ[SAFE] == "1"
        assert applied == {SAFE: "1"}
    assert os.environ[SAFE] == "0"


def test_flags_restore_absence(clean_safe: None) -> None:
    with mxnet_flags(MXNET_SAFE_ACCUMULATION=True):
        assert os.environ[SAFE] == "1"
    assert SAFE not in os.environ


def test_flags_restore_after_exception_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SAFE, "true")
    monkeypatch.delenv("MXNET_USE_FUSION", raising=False)
    with pytest.raises(ZeroDivisionError):
        with mxnet_flags(MXNET_SAFE_ACCUMULATION=0, MXNET_USE_FUSION=0):
            assert os.environ[SAFE] == "0" and os.environ["MXNET_USE_FUSION"] == "0"
            1 / 0
    assert os.environ[SAFE] == "true"
    assert "MXNET_USE_FUSION" not in os.environ


def test_flags_none_unsets_inside_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SAFE, "1")
    with mxnet_flags(MXNET_SAFE_ACCUMULATION=None):
        assert SAFE not in os.environ
    assert os.environ[SAFE] == "1"


def test_flags_nested_contexts_restore_in_order(clean_safe: None) -> None:
    with mxnet_flags(MXNET_SAFE_ACCUMULATION=1):
        with mxnet_flags(MXNET_SAFE_ACCUMULATION=0):
            assert os.environ[SAFE] == "0"
        assert os.environ[SAFE] == "1"
    assert SAFE not in os.environ


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, "1"), (0, "0"), (True, "1"), (False, "0"), ("1", "1"), ("0", "0"), ("true", "1"), ("FALSE", "0")],
)
def test_boolean_flag_values_are_normalized(clean_safe: None, value: object, expected: str) -> None:
    with mxnet_flags(MXNET_SAFE_ACCUMULATION=value):
        assert os.environ[SAFE] == expected


def test_unknown_mxnet_flag_is_allowed_with_any_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MXNET_PERFSUITE_TEST_FLAG", raising=False)
    with mxnet_flags(MXNET_PERFSUITE_TEST_FLAG=2):
        assert os.environ["MXNET_PERFSUITE_TEST_FLAG"] == "2"
    assert "MXNET_PERFSUITE_TEST_FLAG" not in os.environ


@pytest.mark.parametrize("name", ["OMP_NUM_THREADS", "mxnet_safe_accumulation", "MXNETSAFE", "PATH"])
def test_flags_reject_non_mxnet_names(name: str) -> None:
    before = dict(os.environ)
    with _raises(f"flag name {name!r} is not an MXNET_* variable; allowed: upper-case names starting with 'MXNET_'"):
        with mxnet_flags(**{name: "1"}):
            pytest.fail("body must not run")
    assert dict(os.environ) == before


@pytest.mark.parametrize("value", [2, -1, "yes", " 1", "01", "", 1.0])
def test_flags_reject_bad_boolean_values(clean_safe: None, value: object) -> None:
    with _raises(f"MXNET_SAFE_ACCUMULATION={value!r} is not a boolean flag value; allowed: 0, 1, True, False"):
        with mxnet_flags(MXNET_SAFE_ACCUMULATION=value):
            pytest.fail("body must not run")
    assert SAFE not in os.environ


def test_flags_reject_bad_type_for_unknown_flag() -> None:
    with _raises("MXNET_FOO=[1] has type list; allowed: str, int, bool, or None to unset"):
        with mxnet_flags(MXNET_FOO=[1]):
            pytest.fail("body must not run")


def test_flags_change_nothing_when_one_value_is_bad(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SAFE, "0")
    monkeypatch.delenv("MXNET_USE_FUSION", raising=False)
    with pytest.raises(PerfsuiteInputError):
        with mxnet_flags(MXNET_SAFE_ACCUMULATION=1, MXNET_USE_FUSION="maybe"):
            pass
    assert os.environ[SAFE] == "0"
    assert "MXNET_USE_FUSION" not in os.environ


# --- registry -------------------------------------------------------------------------------------------------


def test_flag_registry_entries() -> None:
    got = {n: (s.first_release, s.read_at, s.device) for n, s in pflags.FLAGS.items()}
    assert got == {
        "MXNET_SAFE_ACCUMULATION": ("1.5.0", "call", "any"),
        "MXNET_FC_TRUE_FP16": ("1.7.0", "call", "gpu"),
        "MXNET_USE_FUSION": ("1.6.0", "bind", "gpu"),
        "MXNET_ENABLE_CUDA_GRAPHS": ("1.8.0", "bind", "gpu"),
    }
    assert all(spec.name == name and spec.doc for name, spec in pflags.FLAGS.items())


def test_flag_read_at() -> None:
    assert pflags.flag_read_at("MXNET_SAFE_ACCUMULATION") == "call"
    assert pflags.flag_read_at("MXNET_USE_FUSION") == "bind"
    assert pflags.flag_read_at("MXNET_ENABLE_CUDA_GRAPHS") == "bind"
    with _raises("flag 'MXNET_NOT_A_FLAG' is not in perfsuite's registry; allowed: MXNET_SAFE_ACCUMULATION"):
        pflags.flag_read_at("MXNET_NOT_A_FLAG")
    with _raises("flag name 'OMP_NUM_THREADS' is not an MXNET_* variable"):
        pflags.flag_read_at("OMP_NUM_THREADS")


def test_features_table() -> None:
    assert dict(penv.FEATURES) == {
        "interleaved_attention": "1.6.0",
        "softmax_length": "1.6.0",
        "use_fusion": "1.6.0",
        "safe_accumulation": "1.5.0",
        "fc_true_fp16": "1.7.0",
        "custom_graph_pass": "1.7.0",
        "cuda_graphs": "1.8.0",
        "onednn_attention_fusion": "1.9.0",
    }
    assert set(penv.FEATURE_NOTES) == set(penv.FEATURES)


# --- versions -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.9.1", (1, 9, 1, 0)),
        ("1.7.0.post2", (1, 7, 0, 2)),
        ("1.7.0post2", (1, 7, 0, 2)),
        ("1.8.0.post0", (1, 8, 0, 0)),
        ("1.9", (1, 9, 0, 0)),
        ("1.9.0b20210801", (1, 9, 0, 0)),
        ("1.9.1+cu102", (1, 9, 1, 0)),
        ("2.0.0rc1", (2, 0, 0, 0)),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int, int, int]) -> None:
    assert penv.parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "one.two", "1.9.x", "latest"])
def test_parse_version_rejects_garbage(text: str) -> None:
    with _raises(f"cannot parse version {text!r}; allowed: a PEP 440 version such as '1.9.1'"):
        penv.parse_version(text)


def test_parse_version_rejects_non_string() -> None:
    with _raises("version 1.9 is a float; allowed: a version string"):
        penv.parse_version(1.9)  # type: ignore[arg-type]


def test_mxnet_at_least_on_fakes(real_env: EnvInfo) -> None:
    old = _cpu_160(real_env)
    assert penv.mxnet_at_least("1.6.0", old)
    assert penv.mxnet_at_least("1.5.0", old)
    assert not penv.mxnet_at_least("1.7.0", old)
    post = _fake(real_env, mxnet_dist_version="1.7.0.post2", mxnet_version="1.7.0")
    assert penv.mxnet_at_least("1.7.0", post)
    assert not penv.mxnet_at_least("1.8.0", post)


# --- skip reasons ---------------------------------------------------------------------------------------------


def test_skip_reason_gpu_on_cpu_build(real_env: EnvInfo) -> None:
    fake = _fake(real_env, features=dict(real_env.features, CUDA=False), num_gpus=0,
                 mxnet_distribution="mxnet", mxnet_dist_version="1.9.1")
    assert penv.skip_reason_gpu(fake) == "needs a CUDA build of MXNet; found mxnet 1.9.1 (CPU)"


def test_skip_reason_gpu_on_cuda_build_without_gpus(real_env: EnvInfo) -> None:
    fake = _fake(real_env, features=dict(real_env.features, CUDA=True), num_gpus=0,
                 mxnet_distribution="mxnet-cu102", mxnet_dist_version="1.9.1")
    assert fake.is_cuda_build
    assert penv.skip_reason_gpu(fake) == "needs a visible GPU; found mxnet-cu102 1.9.1 (CUDA build) but 0 GPUs visible"


def test_skip_reason_gpu_none_with_cuda_and_gpu(real_env: EnvInfo) -> None:
    fake = _fake(real_env, features=dict(real_env.features, CUDA=True), num_gpus=1, mxnet_distribution="mxnet-cu102")
    assert penv.skip_reason_gpu(fake) is None


def test_skip_reason_gpu_on_this_machine(real_env: EnvInfo) -> None:
    if real_env.is_cuda_build and real_env.num_gpus > 0:
        pytest.skip("this machine has a GPU")
    assert penv.skip_reason_gpu() is not None


def test_skip_reason_feature_old_version(real_env: EnvInfo) -> None:
    old = _cpu_160(real_env)
    assert (
        penv.skip_reason_feature("fc_true_fp16", old)
        == "needs MXNet >= 1.7.0 for fc_true_fp16 (MXNET_FC_TRUE_FP16); found mxnet 1.6.0"
    )
    assert (
        penv.skip_reason_feature("cuda_graphs", old)
        == "needs MXNet >= 1.8.0 for cuda_graphs (MXNET_ENABLE_CUDA_GRAPHS); found mxnet 1.6.0"
    )
    assert penv.skip_reason_feature("interleaved_attention", old) is None
    assert penv.skip_reason_feature("softmax_length", old) is None


def test_skip_reason_feature_older_than_every_feature(real_env: EnvInfo) -> None:
    ancient = _fake(real_env, mxnet_dist_version="1.4.1", mxnet_version="1.4.1")
    assert penv.skip_reason_feature("safe_accumulation", ancient) == (
        "needs MXNet >= 1.5.0 for safe_accumulation (MXNET_SAFE_ACCUMULATION); found mxnet 1.4.1"
    )


def test_skip_reason_feature_post_release(real_env: EnvInfo) -> None:
    post = _fake(real_env, mxnet_dist_version="1.7.0.post2", mxnet_version="1.7.0")
    assert penv.skip_reason_feature("fc_true_fp16", post) is None
    assert penv.skip_reason_feature("cuda_graphs", post) == (
        "needs MXNet >= 1.8.0 for cuda_graphs (MXNET_ENABLE_CUDA_GRAPHS); found mxnet 1.7.0.post2"
    )


def test_skip_reason_feature_unknown_name() -> None:
    with _raises("unknown feature 'flash_attention'; allowed: interleaved_attention, softmax_length"):
        penv.skip_reason_feature("flash_attention")


def test_skip_reason_feature_none_on_191(real_env: EnvInfo) -> None:
    v191 = _fake(real_env, mxnet_dist_version="1.9.1", mxnet_version="1.9.1")
    assert all(penv.skip_reason_feature(f, v191) is None for f in penv.FEATURES)


def test_skip_reason_mkldnn(real_env: EnvInfo) -> None:
    assert penv.skip_reason_mkldnn(_cpu_160(real_env)) == (
        "needs an MXNet build with MKL-DNN/oneDNN (feature MKLDNN); found mxnet 1.6.0 built without it"
    )
    assert penv.skip_reason_mkldnn(_fake(real_env, features=dict(real_env.features, MKLDNN=True))) is None


def test_check_flag_effect_explains(real_env: EnvInfo) -> None:
    cpu = _fake(real_env, features=dict(real_env.features, CUDA=False), num_gpus=0)
    text = pflags.check_flag_effect("MXNET_USE_FUSION", cpu)
    assert "read at bind" in text and "No effect here: only GPU code reads it" in text
    assert "predates 1.7.0" in pflags.check_flag_effect("MXNET_FC_TRUE_FP16", _cpu_160(real_env))
    safe = pflags.check_flag_effect(SAFE, cpu)
    assert "takes effect at the next call" in safe and "probe_safe_accumulation()" in safe
    assert "not in perfsuite's registry" in pflags.check_flag_effect("MXNET_OTHER", cpu)


# --- the environment record -----------------------------------------------------------------------------------


def test_find_mxnet_distribution_matches_installed_metadata() -> None:
    import mxnet as mx

    dist = penv.find_mxnet_distribution()
    assert dist is not None
    assert dist.name.startswith("mxnet")
    assert dist.version == importlib.metadata.version(dist.name)
    assert penv.parse_version(dist.version)[:3] == penv.parse_version(mx.__version__)[:3]


def test_find_mxnet_distribution_on_project_machine() -> None:
    """The project's reference venv pins the CPU wheel mxnet==1.9.1."""
    if importlib.metadata.version("mxnet") != "1.9.1":
        pytest.skip(f"not the project's reference venv (mxnet {importlib.metadata.version('mxnet')})")
    assert penv.find_mxnet_distribution() == ("mxnet", "1.9.1")


def test_collect_env_fields(real_env: EnvInfo) -> None:
    import mxnet as mx

    assert real_env.mxnet_version == mx.__version__
    assert (real_env.mxnet_distribution, real_env.mxnet_dist_version) == tuple(penv.find_mxnet_distribution())
    assert real_env.features["CUDA"] is real_env.is_cuda_build
    assert real_env.num_gpus >= 0
    assert real_env.omp_threads >= 1 and real_env.cpu_count >= 1
    assert real_env.numpy_version == np.__version__
    assert real_env.python_version == ".".join(map(str, sys.version_info[:3]))
    assert real_env.cpu_model


def test_collect_env_reads_flags_at_call_time(clean_safe: None) -> None:
    assert SAFE not in penv.collect_env().mxnet_flags
    with mxnet_flags(MXNET_SAFE_ACCUMULATION=1):
        assert penv.collect_env().mxnet_flags[SAFE] == "1"
    assert SAFE not in penv.collect_env().mxnet_flags


def test_env_dict_roundtrip(real_env: EnvInfo) -> None:
    data = real_env.to_dict()
    assert data["format_version"] == penv.ENV_FORMAT_VERSION
    assert EnvInfo.from_dict(json.loads(json.dumps(data))) == real_env


def test_env_from_dict_rejects_other_format(real_env: EnvInfo) -> None:
    data = dict(real_env.to_dict(), format_version=99)
    with _raises("EnvInfo format_version 99 is not supported; allowed: 1"):
        EnvInfo.from_dict(data)
    data = dict(real_env.to_dict(), gpu_name="T4")
    with _raises("EnvInfo dict has unknown keys ['gpu_name']"):
        EnvInfo.from_dict(data)


@pytest.mark.parametrize(
    ("environ", "cpus", "machine", "expected"),
    [
        ({"OMP_NUM_THREADS": "3"}, 2, "x86_64", 3),
        ({"OMP_NUM_THREADS": "4,2"}, 2, "x86_64", 4),
        ({}, 2, "x86_64", 1),  # MXNet halves the CPUs on x86 (assumes hyperthreading)
        ({}, 8, "x86_64", 4),
        ({}, 1, "x86_64", 1),
        ({}, 8, "aarch64", 8),
        ({"MXNET_OMP_MAX_THREADS": "2"}, 8, "x86_64", 2),
        ({"MXNET_OMP_MAX_THREADS": "16"}, 8, "x86_64", 8),
        ({"OMP_NUM_THREADS": "abc"}, 4, "x86_64", 2),
    ],
)
def test_detect_omp_threads(monkeypatch: pytest.MonkeyPatch, environ: dict, cpus: int, machine: str, expected: int) -> None:
    monkeypatch.setattr(penv.platform, "machine", lambda: machine)
    assert penv.detect_omp_threads(environ, cpus=cpus) == expected


# --- MXNet really reads MXNET_SAFE_ACCUMULATION at call time --------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, False), ("", False), ("0", False), ("false", False), ("FALSE", False), ("1", True), ("true", True), ("True", True)],
)
def test_safe_accumulation_in_effect(monkeypatch: pytest.MonkeyPatch, raw: str | None, expected: bool) -> None:
    if raw is None:
        monkeypatch.delenv(SAFE, raising=False)
    else:
        monkeypatch.setenv(SAFE, raw)
    assert pflags.safe_accumulation_in_effect() is expected


@pytest.mark.parametrize("raw", ["yes", "2", " 1", "on"])
def test_safe_accumulation_in_effect_rejects_what_mxnet_rejects(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(SAFE, raw)
    with _raises(f"MXNET_SAFE_ACCUMULATION={raw!r} is not a boolean MXNet accepts; allowed: '0', '1', 'true', 'false'"):
        pflags.safe_accumulation_in_effect()


def _softmax_of_zeros_fp16(n: int = 4096) -> float:
    import mxnet as mx

    return float(mx.nd.softmax(mx.nd.zeros((1, n), dtype="float16"), axis=-1).asnumpy()[0, 0])


def test_safe_accumulation_takes_effect_at_call_time_in_softmax(clean_safe: None) -> None:
    """float16 softmax of 4096 zeros: the float16 running sum sticks at 2048 (spacing 2 there) -> 1/2048;
    accumulated in float32 it is exactly 1/4096. Toggled in one process, each call follows os.environ."""
    seen = []
    for value in (0, 1, 0, 1):
        with mxnet_flags(MXNET_SAFE_ACCUMULATION=value):
            seen.append(_softmax_of_zeros_fp16())
            assert pflags.probe_safe_accumulation() is pflags.safe_accumulation_in_effect() is bool(value)
    assert seen == [1 / 2048, 1 / 4096, 1 / 2048, 1 / 4096]
    assert _softmax_of_zeros_fp16() == 1 / 2048  # unset = off in MXNet 1.x


def test_mxnet_rejects_bad_flag_value_only_when_result_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why safe_accumulation_in_effect() raises on 'yes': MXNet's op fails, but asynchronously, at read time."""
    import mxnet as mx

    monkeypatch.setenv(SAFE, "yes")
    out = mx.nd.softmax(mx.nd.zeros((1, 8), dtype="float16"), axis=-1)  # enqueued; no error yet
    with pytest.raises(mx.base.MXNetError, match="expect boolean but value='yes'"):
        out.asnumpy()
    monkeypatch.setenv(SAFE, "1")
    assert _softmax_of_zeros_fp16(8) == 1 / 8  # the engine still works afterwards


_ONLY_191 = pytest.mark.skipif(
    importlib.metadata.version("mxnet") != "1.9.1", reason="documents measured MXNet 1.9.1 CPU LayerNorm behaviour"
)


def _layer_norm_fp16(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mx.nd.LayerNorm over the last axis in float16 with gamma=1, beta=0: (output, std)."""
    import mxnet as mx

    n = x.shape[-1]
    out, _mean, std = mx.nd.LayerNorm(
        mx.nd.array(x, dtype="float16"),
        mx.nd.ones(n, dtype="float16"),
        mx.nd.zeros(n, dtype="float16"),
        axis=-1,
        eps=1e-5,
        output_mean_var=True,
    )
    return out.asnumpy(), std.asnumpy()


@_ONLY_191
def test_layer_norm_fp16_last_axis_ignores_safe_accumulation_on_cpu(clean_safe: None) -> None:
    """MXNet 1.9.1 CPU: LayerNorm over the last axis always accumulates float16 in float32 (layer_norm_cpu.h),
    so the flag changes nothing; but the row std is formed in float16, so a row whose variance exceeds
    65504 (float16 max) gets std=inf and an all-zero output, with the flag on or off."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 768)) * 300).astype(np.float16)  # BERT-width rows, std ~300, variance ~9e4
    with mxnet_flags(MXNET_SAFE_ACCUMULATION=0):
        out0, std0 = _layer_norm_fp16(x)
    with mxnet_flags(MXNET_SAFE_ACCUMULATION=1):
        out1, std1 = _layer_norm_fp16(x)
    np.testing.assert_array_equal(out0, out1)
    np.testing.assert_array_equal(std0, std1)
    assert np.isinf(std1).all()
    assert (out1 == 0).all()  # the float64 answer has unit variance per row


@_ONLY_191
@pytest.mark.parametrize("safe", [0, 1])
def test_layer_norm_fp16_zeroes_rows_whose_variance_overflows_float16(clean_safe: None, safe: int) -> None:
    """Rows of +-a (mean 0, variance a^2): a=255.875 (variance 65472 <= 65504) normalizes to +-1 exactly;
    a=256 (variance 65536 > 65504) gives std=inf and zeros. float32 gives +-1 for both."""
    below = np.tile(np.array([255.875, -255.875], dtype=np.float16), 384)
    above = np.tile(np.array([256.0, -256.0], dtype=np.float16), 384)
    with mxnet_flags(MXNET_SAFE_ACCUMULATION=safe):
        out, std = _layer_norm_fp16(np.stack([below, above]))
    np.testing.assert_array_equal(out[0], np.tile(np.array([1, -1], dtype=np.float16), 384))
    assert np.isfinite(std[0]).all() and np.isinf(std[1]).all()
    assert (out[1] == 0).all()
