"""perfsuite.validate: every bad input raises PerfsuiteInputError naming the value (and index) and what is allowed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from perfsuite import validate as v
from perfsuite.errors import PerfsuiteInputError
from perfsuite.reference import ops


def _raises(match: str):
    """pytest.raises for PerfsuiteInputError with a literal (not regex) fragment of the message."""
    import re

    return pytest.raises(PerfsuiteInputError, match=re.escape(match))


# --- check_finite -------------------------------------------------------------------------------------------


def test_check_finite_names_nan_and_index_exactly() -> None:
    qkv = np.zeros((2, 3, 6), dtype=np.float32)
    qkv[0, 1, 5] = np.nan
    with pytest.raises(PerfsuiteInputError) as info:
        v.check_finite("qkv", qkv)
    assert str(info.value) == "qkv contains NaN at index (0, 1, 5); inputs must be finite"


@pytest.mark.parametrize("bad, word", [(np.inf, "inf"), (-np.inf, "-inf"), (np.nan, "NaN")])
def test_check_finite_names_kind_of_value(bad: float, word: str) -> None:
    x = np.ones((3, 4))
    x[2, 1] = bad
    x[2, 3] = bad
    with _raises(f"x contains {word} at index (2, 1); inputs must be finite (2 non-finite values in total)"):
        v.check_finite("x", x)


def test_check_finite_reports_first_index_in_c_order() -> None:
    x = np.ones(10, dtype=np.float16)
    x[[7, 3]] = np.inf
    with _raises("at index (3,)"):
        v.check_finite("gamma", x)


def test_check_finite_scalar() -> None:
    with _raises("eps is NaN; inputs must be finite"):
        v.check_finite("eps", float("nan"))


def test_check_finite_accepts_finite_and_integer_arrays() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert v.check_finite("x", a) is a
    assert v.check_finite("x", [1, 2, 3]).dtype.kind == "i"


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), [1 + 2j], [[1, 2], [3]]])
def test_check_finite_rejects_non_numeric(bad: object) -> None:
    with pytest.raises(PerfsuiteInputError, match="x"):
        v.check_finite("x", bad)


# --- heads and interleaved layouts ----------------------------------------------------------------------------


@pytest.mark.parametrize("heads", [0, -2, 2.0, True, "2", None])
def test_check_heads_rejects(heads: object) -> None:
    with _raises(f"heads={heads!r} is not allowed; heads must be a positive integer"):
        v.check_heads(heads)


def test_check_heads_accepts_numpy_int() -> None:
    assert v.check_heads(np.int64(4)) == 4


def test_check_qkv_returns_head_dim() -> None:
    assert v.check_qkv(np.zeros((5, 2, 2 * 3 * 4)), 2) == 4


@pytest.mark.parametrize(
    "shape, heads, fragment",
    [
        ((5, 2, 20), 2, "qkv has shape (5, 2, 20) with heads=2; allowed: a 3-D array"),
        ((5, 2, 20), 2, "positive multiple of 3*heads=6"),
        ((5, 24), 2, "qkv has shape (5, 24)"),
        ((5, 2, 0), 1, "qkv has shape (5, 2, 0) with heads=1"),
        ((1, 1, 1, 6), 1, "(1, 1, 1, 6)"),
    ],
)
def test_check_qkv_rejects_shape(shape: tuple[int, ...], heads: int, fragment: str) -> None:
    with _raises(fragment):
        v.check_qkv(np.zeros(shape), heads)


def test_check_qkv_rejects_bad_heads_first() -> None:
    with _raises("heads=0"):
        v.check_qkv(np.zeros((5, 2, 6)), 0)


def test_check_kv_and_q() -> None:
    assert v.check_kv(np.zeros((7, 3, 2 * 2 * 5)), 2) == 5
    assert v.check_q(np.zeros((4, 3, 2 * 5)), 2) == 5
    with _raises("kv has shape (7, 3, 18) with heads=2; allowed: a 3-D array (seq_len, batch, heads*2*head_dim)"):
        v.check_kv(np.zeros((7, 3, 18)), 2)
    with _raises("positive multiple of 1*heads=4"):
        v.check_q(np.zeros((7, 3, 18)), 4)


def test_check_kv_cross_operand_consistency() -> None:
    kv = np.zeros((7, 3, 2 * 2 * 5))
    with _raises("kv has shape (7, 3, 20), batch 3; allowed: batch 4"):
        v.check_kv(kv, 2, batch=4)
    with _raises("head_dim 5 with heads=2; allowed: head_dim 6"):
        v.check_kv(kv, 2, head_dim=6)


def test_check_att() -> None:
    att = np.zeros((4, 5, 5))
    assert v.check_att(att, (4, 5, 5)) is not None
    assert v.check_att(att, (4, None, 5)) is not None
    with _raises("att has shape (4, 5, 5); allowed: shape (4, 5, 6)"):
        v.check_att(att, (4, 5, 6))
    with _raises("att has shape (4, 5, 5); allowed: shape (8, *, 5) ('*' = any size)"):
        v.check_att(att, (8, None, 5))
    with _raises("att has shape (4, 5, 5); allowed: shape (4, 25)"):
        v.check_att(att, (4, 25))


# --- lengths -----------------------------------------------------------------------------------------------


def test_check_lengths_accepts_and_returns_int64() -> None:
    out = v.check_lengths(np.array([[0, 3], [5, 1]], dtype=np.int32), (2, 2), 5)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[0, 3], [5, 1]])
    assert v.check_lengths(np.array([2], dtype=np.uint8), (1,), 2).tolist() == [2]


def test_check_lengths_too_long_names_value_and_index() -> None:
    with _raises("length[1, 0] = 7 is out of range; allowed: 0 <= length <= seq_len=5"):
        v.check_lengths(np.array([[0, 3], [7, 1]]), (2, 2), 5)


def test_check_lengths_negative_and_count() -> None:
    with _raises("length[2] = -1 is out of range; allowed: 0 <= length <= seq_len=4 (2 out-of-range lengths in total)"):
        v.check_lengths(np.array([1, 2, -1, 9]), (4,), 4)


def test_check_lengths_min_length() -> None:
    with _raises("length[1] = 0 is out of range; allowed: 1 <= length <= seq_len=3"):
        v.check_lengths(np.array([2, 0]), (2,), 3, min_length=1)


def test_check_lengths_scalar_for_1d_data() -> None:
    assert int(v.check_lengths(np.int32(2), (), 3)) == 2
    with _raises("length = 4 is out of range"):
        v.check_lengths(4, (), 3)


@pytest.mark.parametrize("bad", [np.array([1.0, 2.0]), np.array([True, False]), np.array([1.0, 2.0], np.float16)])
def test_check_lengths_rejects_non_integer_dtype(bad: np.ndarray) -> None:
    with _raises(f"length has dtype {bad.dtype}; allowed: an integer dtype"):
        v.check_lengths(bad, (2,), 3)


def test_check_lengths_rejects_shape() -> None:
    with _raises("length has shape (3,); allowed: shape (2, 3) (the data shape without its last axis)"):
        v.check_lengths(np.array([1, 2, 3]), (2, 3), 4)


# --- scalars and choices -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, -3, 1.5, 2.0, True, "4", None, 4097, 10 ** 6])
def test_check_batch_size_rejects(n: object) -> None:
    with _raises(f"batch size {n!r} is not allowed; allowed: an integer from 1 to 4096"):
        v.check_batch_size(n)


def test_check_batch_size_accepts() -> None:
    assert v.check_batch_size(1) == 1
    assert v.check_batch_size(np.int64(8)) == 8


def test_check_dtype() -> None:
    assert v.check_dtype("float32") == "float32"
    assert v.check_dtype(np.float16) == "float16"
    assert v.check_dtype("float64", allowed=v.REFERENCE_DTYPES) == "float64"
    with _raises("unknown dtype 'float64'; allowed: float32, float16"):
        v.check_dtype("float64")
    with _raises("unknown dtype 'int8'; allowed: float32, float16"):
        v.check_dtype("int8")
    with _raises("unknown dtype 'bfloat17'; allowed: float32, float16, float64"):
        v.check_dtype("bfloat17", allowed=v.REFERENCE_DTYPES)
    with _raises("unknown dtype None"):
        v.check_dtype(None, allowed=v.REFERENCE_DTYPES)


def test_check_choice_message_exact() -> None:
    with pytest.raises(PerfsuiteInputError) as info:
        v.check_choice("path", "foo", ["a", "b", "c"])
    assert str(info.value) == "unknown path 'foo'; allowed: a, b, c"
    assert v.check_choice("path", "b", ("a", "b")) == "b"
    with _raises("unknown path [1]"):
        v.check_choice("path", [1], ("a",))


@pytest.mark.parametrize("eps", [0, -1e-5, float("nan"), float("inf"), "1e-5", True, None])
def test_check_positive_float_rejects(eps: object) -> None:
    with _raises(f"eps={eps!r} is not allowed; eps must be a finite number > 0"):
        v.check_positive_float("eps", eps)


def test_input_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        v.check_batch_size(0)


# --- the references validate every input, before computing ----------------------------------------------------

RNG = np.random.default_rng(0)
H, D, L, B = 2, 3, 4, 2


def _args() -> dict[str, tuple]:
    """Valid argument tuples for every reference op, keyed by op name."""
    qkv = RNG.standard_normal((L, B, H * 3 * D))
    att = RNG.random((B * H, L, L))
    q = RNG.standard_normal((L + 1, B, H * D))
    kv = RNG.standard_normal((L, B, H * 2 * D))
    att_ed = RNG.random((B * H, L + 1, L))
    x = RNG.standard_normal((3, 5))
    return {
        "softmax": (x, np.array([1, 5, 0])),
        "selfatt_qk": (qkv, H),
        "selfatt_valatt": (qkv, att, H),
        "encdec_qk": (q, kv, H),
        "encdec_valatt": (kv, att_ed, H),
        "layer_norm": (x, np.ones(5), np.zeros(5)),
        "gelu_erf": (x,),
        "gelu_tanh": (x,),
        "fully_connected": (x, RNG.standard_normal((4, 5)), np.zeros(4)),
    }


# (op, position of the float argument to poison, the name the message must use)
POISON = [
    ("softmax", 0, "x"),
    ("selfatt_qk", 0, "qkv"),
    ("selfatt_valatt", 0, "qkv"),
    ("selfatt_valatt", 1, "att"),
    ("encdec_qk", 0, "q"),
    ("encdec_qk", 1, "kv"),
    ("encdec_valatt", 0, "kv"),
    ("encdec_valatt", 1, "att"),
    ("layer_norm", 0, "x"),
    ("layer_norm", 1, "gamma"),
    ("layer_norm", 2, "beta"),
    ("gelu_erf", 0, "x"),
    ("gelu_tanh", 0, "x"),
    ("fully_connected", 0, "x"),
    ("fully_connected", 1, "weight"),
    ("fully_connected", 2, "bias"),
]


@pytest.fixture
def no_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the references' computing functions fail loudly, to prove validation happens before them."""

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("computed before validating")

    for fn in ("einsum", "exp", "tanh", "mean", "sqrt"):
        monkeypatch.setattr(ops.np, fn, boom)
    monkeypatch.setattr(ops, "_erfc", boom)


@pytest.mark.parametrize("op, pos, name", POISON)
@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "inf")])
def test_reference_rejects_non_finite_before_computing(
    no_compute: None, op: str, pos: int, name: str, bad: float, word: str
) -> None:
    args = list(_args()[op])
    arr = np.array(args[pos], dtype=np.float64)
    idx = tuple(s - 1 for s in arr.shape)
    arr[idx] = bad
    args[pos] = arr
    with _raises(f"{name} contains {word} at index {idx}; inputs must be finite"):
        getattr(ops, op)(*args)


def test_reference_ops_run_when_valid() -> None:
    for op, args in _args().items():
        assert getattr(ops, op)(*args).dtype == np.float64


@pytest.mark.parametrize(
    "op, args, fragment",
    [
        ("softmax", (np.ones((3, 5)), np.array([1, 6, 0])), "length[1] = 6 is out of range"),
        ("softmax", (np.ones((3, 5)), np.array([1.0, 2.0, 0.0])), "length has dtype float64"),
        ("softmax", (np.ones((3, 5)), np.array([1, 2])), "length has shape (2,); allowed: shape (3,)"),
        ("softmax", (np.ones((3, 5)), np.array([1, 0, 2]), -1, "error"), "length[1] = 0 is out of range; allowed: 1"),
        ("softmax", (np.ones((3, 5)), None, 0), "softmax axis=0 on x of shape (3, 5) is not supported"),
        ("softmax", (np.ones((3, 5)), None, -1, "uniform"), "unknown zero_length mode 'uniform'; allowed: zeros"),
        ("selfatt_qk", (np.ones((4, 2, 10)), 2), "qkv has shape (4, 2, 10) with heads=2"),
        ("selfatt_qk", (np.ones((4, 2, 12)), 0), "heads=0"),
        (
            "selfatt_valatt",
            (np.ones((4, 2, 12)), np.ones((4, 4, 3)), 2),
            "att has shape (4, 4, 3); allowed: shape (4, 4, 4)",
        ),
        ("encdec_qk", (np.ones((3, 2, 4)), np.ones((5, 2, 12)), 2), "head_dim 3 with heads=2; allowed: head_dim 2"),
        ("encdec_qk", (np.ones((3, 2, 4)), np.ones((5, 1, 8)), 2), "batch 1; allowed: batch 2"),
        ("encdec_valatt", (np.ones((5, 2, 8)), np.ones((4, 3, 6)), 2), "allowed: shape (4, *, 5)"),
        ("layer_norm", (np.ones((3, 5)), np.ones(4), np.zeros(5)), "gamma has shape (4,); allowed: shape (5,)"),
        ("layer_norm", (np.ones((3, 5)), np.ones(5), np.zeros(5), 0.0), "eps=0.0 is not allowed"),
        ("layer_norm", (np.ones((3, 5)), np.ones(5), np.zeros(5), 1e-5, 2), "axis=2 on x of shape (3, 5)"),
        ("fully_connected", (np.ones((3, 2, 5)), np.ones((4, 5))), "weight has shape (4, 5) for x of shape (3, 2, 5)"),
        (
            "fully_connected",
            (np.ones((3, 2, 5)), np.ones((4, 10)), np.ones(3)),
            "bias has shape (3,); allowed: shape (4,)",
        ),
        ("fully_connected", (np.ones((3, 5)), np.ones((4, 5)), None, "yes"), "flatten='yes' is not allowed"),
    ],
)
def test_reference_rejects_bad_shapes_before_computing(
    no_compute: None, op: str, args: tuple, fragment: str
) -> None:
    with _raises(fragment):
        getattr(ops, op)(*args)


def test_validate_and_reference_do_not_import_mxnet() -> None:
    code = (
        "import sys; import perfsuite.validate, perfsuite.reference; "
        "assert 'mxnet' not in sys.modules, sorted(m for m in sys.modules if m.startswith('mxnet'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
