"""Input checks shared by the references, the paths under test and the CLI.

Every check raises :class:`perfsuite.errors.PerfsuiteInputError` whose message names the bad value (and its
index, for arrays) and what is allowed. Pure NumPy: nothing here imports MXNet, so a bad input is rejected
before any MXNet call can fail asynchronously (an MXNet op error only surfaces at the next synchronization).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from perfsuite.errors import PerfsuiteInputError

__all__ = [
    "DTYPES",
    "REFERENCE_DTYPES",
    "check_array",
    "check_att",
    "check_batch_size",
    "check_choice",
    "check_dtype",
    "check_finite",
    "check_heads",
    "check_kv",
    "check_lengths",
    "check_positive_float",
    "check_q",
    "check_qkv",
    "check_shape",
]

DTYPES: tuple[str, ...] = ("float32", "float16")
"""Data types the paths under test accept."""

REFERENCE_DTYPES: tuple[str, ...] = DTYPES + ("float64",)
"""Data types allowed where a reference (NumPy float64) computation is also acceptable; pass as ``allowed=``."""

# numpy dtype kinds accepted as numeric data: bool, signed/unsigned integer, floating point.
_NUMERIC_KINDS = "biuf"


def _index(idx: Iterable[Any]) -> tuple[int, ...]:
    """Turn a numpy index row into a plain tuple of ints so messages print as (0, 1, 5)."""
    return tuple(int(i) for i in idx)


def _is_int(value: Any) -> bool:
    """True for Python/NumPy integers, False for bool (True is not a batch size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _shape_str(shape: Sequence[int | None]) -> str:
    """Format a shape, with None printed as '*' (any size)."""
    inner = ", ".join("*" if s is None else str(int(s)) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def check_array(name: str, arr: Any, ndim: int | None = None) -> np.ndarray:
    """Return ``arr`` as a numeric (bool/int/float) ndarray, optionally of exactly ``ndim`` dimensions."""
    try:
        with warnings.catch_warnings():  # numpy 1.23 only warns for ragged lists, then builds an object array
            warnings.simplefilter("ignore", np.VisibleDeprecationWarning)
            a = np.asarray(arr)
    except (ValueError, TypeError) as exc:  # ragged nested lists in newer numpy
        raise PerfsuiteInputError(
            f"{name} cannot be converted to an array ({exc}); allowed: a numeric array"
        ) from None
    if a.dtype.kind not in _NUMERIC_KINDS:
        raise PerfsuiteInputError(
            f"{name} has dtype {a.dtype}; allowed: a real numeric array (bool, integer or floating point)"
        )
    if ndim is not None and a.ndim != ndim:
        raise PerfsuiteInputError(f"{name} has shape {_shape_str(a.shape)} ({a.ndim}-D); allowed: a {ndim}-D array")
    return a


def check_finite(name: str, arr: Any) -> np.ndarray:
    """Reject NaN/inf, naming the first offending element's index; returns ``arr`` as an ndarray."""
    a = check_array(name, arr)
    if a.dtype.kind != "f":
        return a  # bool and integer arrays are always finite
    bad = ~np.isfinite(a)
    n_bad = int(np.count_nonzero(bad))
    if n_bad == 0:
        return a
    idx = _index(np.argwhere(bad)[0])
    value = a[idx]
    what = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    more = f" ({n_bad} non-finite values in total)" if n_bad > 1 else ""
    where = f"contains {what} at index {idx}" if idx else f"is {what}"
    raise PerfsuiteInputError(f"{name} {where}; inputs must be finite{more}")


def check_heads(heads: Any) -> int:
    """Number of attention heads: a positive integer."""
    if not _is_int(heads) or heads <= 0:
        raise PerfsuiteInputError(f"heads={heads!r} is not allowed; heads must be a positive integer")
    return int(heads)


def _check_interleaved(
    name: str, arr: Any, heads: Any, blocks: int, layout: str, batch: int | None, head_dim: int | None
) -> int:
    """Shared check of an interleaved (seq_len, batch, heads*blocks*head_dim) array; returns head_dim."""
    h = check_heads(heads)
    a = check_array(name, arr)
    width = h * blocks
    if a.ndim != 3 or a.shape[-1] == 0 or a.shape[-1] % width != 0:
        raise PerfsuiteInputError(
            f"{name} has shape {_shape_str(a.shape)} with heads={h}; allowed: a 3-D array {layout} "
            f"whose last dimension is a positive multiple of {blocks}*heads={width}"
        )
    d = a.shape[-1] // width
    if batch is not None and a.shape[1] != batch:
        raise PerfsuiteInputError(
            f"{name} has shape {_shape_str(a.shape)}, batch {a.shape[1]}; allowed: batch {batch} (the other operand's)"
        )
    if head_dim is not None and d != head_dim:
        raise PerfsuiteInputError(
            f"{name} has shape {_shape_str(a.shape)}, i.e. head_dim {d} with heads={h}; "
            f"allowed: head_dim {head_dim} (the other operand's), last dimension {head_dim * width}"
        )
    return d


def check_qkv(qkv: Any, heads: Any) -> int:
    """Self-attention input (seq_len, batch, heads*3*head_dim), per head [q|k|v]; returns head_dim."""
    return _check_interleaved("qkv", qkv, heads, 3, "(seq_len, batch, heads*3*head_dim)", None, None)


def check_kv(kv: Any, heads: Any, *, batch: int | None = None, head_dim: int | None = None) -> int:
    """Encoder-decoder keys/values (seq_len, batch, heads*2*head_dim), per head [k|v]; returns head_dim.

    ``batch``/``head_dim``, when given, must match (they come from the query operand).
    """
    return _check_interleaved("kv", kv, heads, 2, "(seq_len, batch, heads*2*head_dim)", batch, head_dim)


def check_q(q: Any, heads: Any, *, batch: int | None = None, head_dim: int | None = None) -> int:
    """Encoder-decoder queries (seq_len, batch, heads*head_dim); returns head_dim."""
    return _check_interleaved("q", q, heads, 1, "(seq_len, batch, heads*head_dim)", batch, head_dim)


def check_shape(name: str, arr: Any, expected_shape: Sequence[int | None]) -> np.ndarray:
    """Require ``arr.shape == expected_shape`` (None in ``expected_shape`` matches any size); returns the array."""
    a = check_array(name, arr)
    ok = a.ndim == len(expected_shape) and all(e is None or s == e for s, e in zip(a.shape, expected_shape))
    if not ok:
        raise PerfsuiteInputError(
            f"{name} has shape {_shape_str(a.shape)}; allowed: shape {_shape_str(expected_shape)}"
            + (" ('*' = any size)" if any(e is None for e in expected_shape) else "")
        )
    return a


def check_att(att: Any, expected_shape: Sequence[int | None]) -> np.ndarray:
    """Attention weights of shape ``expected_shape`` (batch*heads, len_q, len_k); None matches any size."""
    return check_shape("att", att, expected_shape)


def check_lengths(length: Any, shape: Sequence[int], seq_len: int, min_length: int = 0) -> np.ndarray:
    """Valid lengths for a masked softmax; returns them as an int64 array.

    ``shape`` is the data shape without its last (masked) axis and ``seq_len`` the size of that axis, i.e.
    call ``check_lengths(length, x.shape[:-1], x.shape[-1])``. Lengths must have an integer dtype (MXNet
    rejects float lengths), exactly that shape, and ``min_length <= length <= seq_len`` (MXNet does not check
    the upper bound: a longer length reads past the row).
    """
    a = check_array("length", length)
    if a.dtype.kind not in "iu":
        raise PerfsuiteInputError(f"length has dtype {a.dtype}; allowed: an integer dtype (e.g. int32)")
    expected = tuple(int(s) for s in shape)
    if a.shape != expected:
        raise PerfsuiteInputError(
            f"length has shape {_shape_str(a.shape)}; allowed: shape {_shape_str(expected)} "
            "(the data shape without its last axis)"
        )
    lo, hi = int(min_length), int(seq_len)
    bad = (a < lo) | (a > hi)
    if np.any(bad):
        idx = _index(np.argwhere(bad)[0])
        n_bad = int(np.count_nonzero(bad))
        more = f" ({n_bad} out-of-range lengths in total)" if n_bad > 1 else ""
        where = f"length{list(idx)}" if idx else "length"
        raise PerfsuiteInputError(
            f"{where} = {int(a[idx])} is out of range; allowed: {lo} <= length <= seq_len={hi}{more}"
        )
    return a.astype(np.int64, copy=False)


#: The largest batch size accepted (the seed's grid stops at 300; beyond this memory runs out first).
MAX_BATCH_SIZE = 4096


def check_batch_size(n: Any, option: str = "batch size") -> int:
    """Batch size: an integer from 1 to MAX_BATCH_SIZE (bool rejected); the error names `option`."""
    if not _is_int(n) or not 1 <= n <= MAX_BATCH_SIZE:
        raise PerfsuiteInputError(f"{option} {n!r} is not allowed; allowed: an integer from 1 to {MAX_BATCH_SIZE}")
    return int(n)


def check_positive_float(name: str, value: Any) -> float:
    """A finite real number > 0 (e.g. LayerNorm's eps)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if isinstance(value, (bool, np.bool_, str, bytes)) or not np.isfinite(v) or v <= 0:
        raise PerfsuiteInputError(f"{name}={value!r} is not allowed; {name} must be a finite number > 0")
    return v


def check_choice(kind: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Require ``value`` in ``allowed``: "unknown path 'foo'; allowed: a, b, c"."""
    options = tuple(allowed)
    try:
        ok = value in options
    except (TypeError, ValueError):  # unhashable value, or an array (ambiguous truth value)
        ok = False
    if not ok:
        raise PerfsuiteInputError(f"unknown {kind} {value!r}; allowed: {', '.join(str(o) for o in options)}")
    return value


def check_dtype(name: Any, allowed: Iterable[str] = DTYPES) -> str:
    """Data type name in ``allowed`` (float32, float16; pass ``allowed=REFERENCE_DTYPES`` to add float64).

    Accepts a name or anything ``np.dtype`` understands (np.float32, 'f4'); returns the canonical name.
    """
    canonical = None
    if name is not None:  # np.dtype(None) is float64: not a choice anyone made
        try:
            canonical = np.dtype(name).name
        except TypeError:
            pass
    options = tuple(allowed)
    if canonical not in options:
        raise PerfsuiteInputError(f"unknown dtype {name!r}; allowed: {', '.join(options)}")
    return canonical
