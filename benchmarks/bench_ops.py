"""Per-op benchmarks: perfsuite.bench.OP_BENCHMARKS (BERT-base shapes at sequence length 128, batch 8).

Interleaved vs naive attention, softmax with length vs mask, float16 LayerNorm and softmax with
MXNET_SAFE_ACCUMULATION on/off, FullyConnected per dtype. The op runs on the GPU when this MXNet is a CUDA
build with a visible GPU, else on the CPU; float16 FullyConnected needs the GPU (CPU builds have no float16
GEMM) and is skipped elsewhere. Flags an op needs are set in setup and restored in teardown (the safe
accumulation flag is read on every call, so it is in force while timed).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Tuple

from perfsuite.bench import OP_BENCHMARKS

_BOUND: Dict[str, Tuple[Callable[[], Any], Dict[str, str]]] = {}


def bound_op(op: str) -> Tuple[Callable[[], Any], Dict[str, str]]:
    """(the op's synchronized callable, the MXNET_* flags to hold while timing), prepared on first use."""
    if op not in _BOUND:
        from perfsuite import bench
        from perfsuite.flags import mxnet_flags

        reason = bench.skip_reason_op(op)
        if reason:
            raise NotImplementedError(reason)
        fn, flags = bench.op_callable(op, ctx=bench.op_context(op))
        with mxnet_flags(**flags):
            fn()  # allocation and first-call work happen here, and errors of the op surface in setup
        _BOUND[op] = (fn, flags)
    return _BOUND[op]


class Ops:
    params = [list(OP_BENCHMARKS)]
    param_names = ["op"]
    timeout = 300

    def setup(self, op: str) -> None:
        from perfsuite.flags import mxnet_flags

        self.run, flags = bound_op(op)
        self._flags = contextlib.ExitStack()
        self._flags.enter_context(mxnet_flags(**flags))

    def teardown(self, op: str) -> None:
        flags = getattr(self, "_flags", None)  # asv calls teardown also after setup skipped the op
        if flags is not None:
            flags.close()

    def time_op(self, op: str) -> None:
        self.run()
