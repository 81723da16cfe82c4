"""Per-op benchmarks (perfsuite.bench.OP_BENCHMARKS), timed by pytest-benchmark with `pytest --benchmark`.

Pairs that answer the seed's questions share a pytest-benchmark group, so the default report compares them:
interleaved vs naive attention, softmax with length vs with a mask, float16 LayerNorm and softmax with safe
accumulation on vs off, FullyConnected per dtype. Shapes are BERT-base's at seq 128, batch 8 when timed (batch 1
in the smoke run). The MXNET_* flags a benchmark needs are set with perfsuite.flags.mxnet_flags around the timing,
and checked to have taken effect. Ops are milliseconds long, so pytest-benchmark's own calibration
(`benchmark(fn)`) decides rounds; one untimed call first allocates the outputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from perfsuite.bench import OP_BENCHMARKS, environment_meta, op_callable
from perfsuite.flags import mxnet_flags, probe_safe_accumulation
from perfsuite.pytest_plugin import benchmarks_timed

pytestmark = pytest.mark.latency

GROUPS = {
    "attention_interleaved": "op: attention interleaved vs naive",
    "attention_naive": "op: attention interleaved vs naive",
    "softmax_length": "op: softmax length vs mask",
    "softmax_mask": "op: softmax length vs mask",
    "layernorm_fp16_safe": "op: LayerNorm fp16 safe accumulation on/off",
    "layernorm_fp16_unsafe": "op: LayerNorm fp16 safe accumulation on/off",
    "softmax_fp16_safe": "op: softmax fp16 safe accumulation on/off",
    "softmax_fp16_unsafe": "op: softmax fp16 safe accumulation on/off",
    "fc_float32": "op: FullyConnected per dtype",
    "fc_float16": "op: FullyConnected per dtype",
}


def test_groups_cover_every_op_benchmark() -> None:
    assert set(GROUPS) == set(OP_BENCHMARKS)


@pytest.mark.parametrize("name", list(OP_BENCHMARKS))
def test_op(benchmark, request: pytest.FixtureRequest, name: str) -> None:
    from perfsuite.bench import op_context, skip_reason_op

    reason = skip_reason_op(name)
    if reason:
        pytest.skip(reason)
    ctx = op_context(name)
    batch = 8 if benchmarks_timed(request.config) else 1
    fn, flags = op_callable(name, batch=batch, ctx=ctx)

    benchmark.group = GROUPS[name]
    benchmark.extra_info.update(op=name, doc=OP_BENCHMARKS[name], batch=batch, seq_len=128, flags=flags,
                                ctx=str(ctx), meta=environment_meta())
    with mxnet_flags(**flags):
        if "MXNET_SAFE_ACCUMULATION" in flags:  # the flag is read per call: check it is in effect, don't assume
            in_effect = probe_safe_accumulation()
            benchmark.extra_info["safe_accumulation_in_effect"] = in_effect
            assert in_effect == (flags["MXNET_SAFE_ACCUMULATION"] == "1")
        fn()  # untimed: the first call allocates outputs and workspace
        out = benchmark(fn)
    assert np.isfinite(out.asnumpy().astype(np.float64)).all()
