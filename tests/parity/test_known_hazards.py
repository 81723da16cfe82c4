"""Known defects of MXNet's optimized paths, pinned by their exact signature so that a fix, or a different failure,
is noticed.

Not an xfail: an xfail accepts any failure of its kind (a refactor's AssertionError would "xfail" too). Each test
asserts the comparison still fails *and* that the failure is the known defect and nothing else; if an MXNet release
fixes it, the test fails with "fixed: move the case into the regular grid".
"""

import numpy as np
import pytest

from perfsuite.parity.ops import OPS, ParityCase, make_inputs, run_case, skip_reason
from perfsuite.pytest_plugin import skip_unless_runnable

FLOAT16_MAX = 65504.0


def _mixed_rows_case(mode):
    """Rows 0-3 with std 300 (variance 9e4 > float16 max), rows 4-7 with std 100 (variance 1e4, representable)."""
    case = ParityCase("layer_norm", mode, (("N", 8), ("C", 768)), dist="huge")
    inputs = make_inputs(case)
    x = inputs["x"].astype(np.float64)
    x[4:] /= 3.0
    inputs["x"] = x.astype(inputs["x"].dtype)
    return case, inputs


@pytest.mark.parametrize("mode", ["float16", "float16-unsafe"])
def test_fp16_layer_norm_variance_overflow(mode):
    """MXNet CPU LayerNorm (1.6.0-1.9.1) keeps the row variance in float16 whatever MXNET_SAFE_ACCUMULATION says.

    Signature: a row whose variance exceeds 65504 comes out as beta (1.9.1: 1/sqrt(inf) = 0 scales x - mean away)
    or NaN (1.6-1.8); rows whose variance fits are within the float16 bound.
    """
    case, inputs = _mixed_rows_case(mode)
    skip_unless_runnable(skip_reason(case))
    var = inputs["x"].astype(np.float64).var(axis=1)
    assert np.all(var[:4] > FLOAT16_MAX) and np.all(var[4:] < FLOAT16_MAX / 4)
    outputs = []

    def captured(**kw):
        out = OPS["layer_norm"].impl(**kw)
        outputs.append(np.asarray(out))
        return out

    result = run_case(case, impl=captured, inputs=inputs)
    healthy = run_case(case, inputs={**inputs, "x": inputs["x"][4:]})
    assert healthy.passed, f"rows whose variance fits in float16 fail too (not the known defect): {healthy.message}"
    assert not result.passed, "fixed: MXNet's float16 LayerNorm survives variance > 65504; move the case into the grid"
    assert result.worst_index[0] < 4, f"the worst element is in a representable row: {result}"
    got = outputs[0][:4].astype(np.float64)
    beta = np.broadcast_to(inputs["beta"].astype(np.float64), got.shape)
    assert np.all(np.isnan(got)) or np.allclose(got, beta, rtol=0, atol=1e-3), \
        f"overflowing rows are neither beta nor NaN (another defect): {got[:, :4]}"


def test_fp32_layer_norm_handles_the_same_rows():
    result = run_case(ParityCase("layer_norm", "float32", (("N", 8), ("C", 768)), dist="huge"))
    assert result.passed, result.message
