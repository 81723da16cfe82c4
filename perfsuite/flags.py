"""MXNet's MXNET_* environment flags: the ones perfsuite knows (first release, read at every call or at bind,
device), setting some for a block of code (`mxnet_flags`, validated and restored), and whether a flag can take
effect in this build (`check_flag_effect`, `safe_accumulation_in_effect`). Imports mxnet only inside the functions
that probe it."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterator, Literal, Mapping, Optional

from perfsuite.env import EnvInfo, FLAG_PREFIX, collect_env, mxnet_at_least, skip_reason_gpu
from perfsuite.errors import PerfsuiteInputError

__all__ = ["FLAGS", "FlagSpec", "check_flag_effect", "flag_read_at", "mxnet_flags", "probe_safe_accumulation",
           "safe_accumulation_in_effect"]

ReadAt = Literal["call", "bind"]
Device = Literal["any", "gpu"]


@dataclass(frozen=True)
class FlagSpec:
    """What perfsuite knows about one MXNET_* environment flag.

    ``read_at='call'``: MXNet reads it at every operator call, so changing ``os.environ`` mid-process works.
    ``read_at='bind'``: read when a graph is bound/hybridized; set it before ``hybridize()``/``bind()`` or it
    silently does nothing for an already-built graph. ``device='gpu'``: only GPU code reads it.
    """

    name: str
    first_release: str
    read_at: ReadAt
    device: Device
    doc: str
    boolean: bool = True  # MXNet parses it with dmlc::GetEnv<bool>: '0', '1', 'true', 'false' (any case), ''


FLAGS: Mapping[str, FlagSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            FlagSpec(
                "MXNET_SAFE_ACCUMULATION",
                "1.5.0",
                "call",
                "any",
                "Accumulate float16 reductions (softmax, LayerNorm, norm, sum) in float32. Default off in 1.x. "
                "On CPU (1.9.1) it changes float16 softmax but NOT LayerNorm over the last axis.",
            ),
            FlagSpec(
                "MXNET_FC_TRUE_FP16",
                "1.7.0",
                "call",
                "gpu",
                "float16 FullyConnected accumulates in float16 (cuBLAS compute type 16F) instead of float32.",
            ),
            FlagSpec(
                "MXNET_USE_FUSION",
                "1.6.0",
                "bind",
                "gpu",
                "Pointwise operator fusion with runtime-compiled CUDA kernels. Default on; GPU graphs only.",
            ),
            FlagSpec(
                "MXNET_ENABLE_CUDA_GRAPHS",
                "1.8.0",
                "bind",
                "gpu",
                "Capture static-shape GPU graphs into CUDA graphs (needs static_alloc/static_shape).",
            ),
        )
    }
)

_BOOL_TRUE = ("1", "true")
_BOOL_FALSE = ("0", "false")


def _check_flag_name(name: Any) -> str:
    """Reject names that are not MXNET_* environment variable names."""
    if not isinstance(name, str) or not name.startswith(FLAG_PREFIX) or not re.fullmatch(r"[A-Z0-9_]+", name):
        raise PerfsuiteInputError(
            f"flag name {name!r} is not an MXNET_* variable; allowed: upper-case names starting with "
            f"'MXNET_', e.g. {', '.join(FLAGS)}"
        )
    return name


def _flag_value_to_str(name: str, value: Any) -> Optional[str]:
    """Validate one flag value and return the string to put in os.environ (None = unset the variable)."""
    if value is None:
        return None
    spec = FLAGS.get(name)
    if spec is not None and spec.boolean:
        allowed = "0, 1, True, False, '0', '1', 'true', 'false', or None to unset"
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, int) and value in (0, 1):
            return str(value)
        if isinstance(value, str) and value.lower() in _BOOL_TRUE + _BOOL_FALSE:
            return "1" if value.lower() in _BOOL_TRUE else "0"
        raise PerfsuiteInputError(f"{name}={value!r} is not a boolean flag value; allowed: {allowed}")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, str)):
        return str(value)
    raise PerfsuiteInputError(
        f"{name}={value!r} has type {type(value).__name__}; allowed: str, int, bool, or None to unset"
    )


@contextmanager
def mxnet_flags(**flags: Any) -> Iterator[dict[str, Optional[str]]]:
    """Set MXNET_* environment flags for the duration of a ``with`` block, then restore them exactly.

    ``with mxnet_flags(MXNET_SAFE_ACCUMULATION=1): ...``. Values become strings ('0'/'1' for the boolean
    flags in :data:`FLAGS`; None unsets). Previous values, including absence, come back on exit, also when
    the block raises. All names and values are checked before anything is changed. Unknown MXNET_* names are
    allowed (MXNet has many); other names are rejected. os.environ is process-wide: not thread-safe, and a
    ``bind``-time flag (see :func:`flag_read_at`) must be set before the graph is built. Yields the applied
    values.
    """
    applied: dict[str, Optional[str]] = {}
    for name, value in flags.items():
        applied[_check_flag_name(name)] = _flag_value_to_str(name, value)
    saved = {name: os.environ.get(name) for name in applied}
    try:
        for name, value in applied.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield dict(applied)
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def flag_read_at(name: str) -> ReadAt:
    """When MXNet reads flag `name`: 'call' (every operator call) or 'bind' (graph bind/hybridize).

    A 'call' flag can be toggled between two calls in one process and compared directly. A 'bind' flag only
    affects graphs bound after it is set: set it first, then hybridize (or build a fresh SymbolBlock), and
    compare two separately built graphs; toggling it around a cached graph changes nothing.
    """
    _check_flag_name(name)
    spec = FLAGS.get(name)
    if spec is None:
        raise PerfsuiteInputError(f"flag {name!r} is not in perfsuite's registry; allowed: {', '.join(FLAGS)}")
    return spec.read_at


def safe_accumulation_in_effect() -> bool:
    """Whether MXNet's next softmax call will see MXNET_SAFE_ACCUMULATION on, read from os.environ now.

    Parses like MXNet's dmlc::GetEnv<bool> (checked on 1.9.1): '1' or 'true' (any case) -> True; unset, '',
    '0' or 'false' -> False. Anything else (' 1', 'yes', '2') makes MXNet's op fail when its result is read
    ("Invalid Parameter format for MXNET_SAFE_ACCUMULATION expect boolean"), so it raises here too.
    """
    raw = os.environ.get("MXNET_SAFE_ACCUMULATION")
    if raw is None or raw == "":
        return False
    lowered = raw.lower()
    if lowered in _BOOL_TRUE:
        return True
    if lowered in _BOOL_FALSE:
        return False
    raise PerfsuiteInputError(
        f"MXNET_SAFE_ACCUMULATION={raw!r} is not a boolean MXNet accepts; allowed: '0', '1', 'true', 'false' "
        "(any case) or unset; MXNet itself fails the next float16 softmax with this value"
    )


def probe_safe_accumulation() -> bool:
    """Run MXNet once to see whether float16 softmax accumulates in float32 right now (imports mxnet).

    softmax of 4096 float16 zeros is exactly 1/4096 with float32 accumulation, but 1/2048 with float16
    accumulation (the running sum sticks at 2048, where float16's spacing is 2). Use it to check that
    :func:`mxnet_flags` really took effect instead of assuming it.
    """
    import mxnet as mx  # lazy

    value = float(mx.nd.softmax(mx.nd.zeros((1, 4096), dtype="float16"), axis=-1).asnumpy()[0, 0])
    if value == 1.0 / 4096:
        return True
    if value == 1.0 / 2048:
        return False
    raise RuntimeError(  # pragma: no cover - would mean a new softmax implementation
        f"float16 softmax of 4096 zeros gave {value!r}; expected 1/4096 (float32 accumulation) or 1/2048 (float16)"
    )


def check_flag_effect(name: str, env: Optional[EnvInfo] = None) -> str:
    """Explain how (and whether, on this build) the effect of flag `name` can be observed.

    Flags fail silently: MXNet ignores a GPU-only flag on CPU, a 'bind' flag set after hybridize(), and a
    flag older builds do not know. A test that compares flag on/off must first show the flag changed
    something (for MXNET_SAFE_ACCUMULATION: :func:`probe_safe_accumulation`), otherwise "no difference"
    proves nothing. Returns a one-paragraph explanation; does not change anything.
    """
    _check_flag_name(name)
    spec = FLAGS.get(name)
    if spec is None:
        return (
            f"{name} is not in perfsuite's registry ({', '.join(FLAGS)}): perfsuite cannot say when MXNet reads "
            "it; compare outputs of a fresh process with and without it."
        )
    env = collect_env() if env is None else env
    parts = [f"{name} (MXNet >= {spec.first_release}, read at {spec.read_at}, device {spec.device}): {spec.doc}"]
    if not mxnet_at_least(spec.first_release, env):
        parts.append(f"No effect here: {env.describe_mxnet()} predates {spec.first_release}.")
    elif spec.device == "gpu" and (not env.is_cuda_build or env.num_gpus < 1):
        parts.append(f"No effect here: only GPU code reads it ({skip_reason_gpu(env)}).")
    elif spec.read_at == "bind":
        parts.append("Set it before hybridize()/bind() and compare two separately built graphs.")
    else:
        parts.append("Toggling it between two calls takes effect at the next call.")
    if name == "MXNET_SAFE_ACCUMULATION":
        parts.append("Check with probe_safe_accumulation() (float16 softmax of 4096 zeros: 1/4096 on, 1/2048 off).")
    return " ".join(parts)

