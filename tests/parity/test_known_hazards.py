"""Known defects of MXNet's optimized paths, pinned so that a fix (or a regression elsewhere) is noticed.

Each test is a strict xfail: the comparison must keep catching the defect; if an MXNet release fixes it, the test
XPASSes, which fails the run under xfail_strict and tells us to move the case into the regular grid.
"""

import pytest

from perfsuite.parity import ParityCase, run_case, skip_reason
from perfsuite.pytest_plugin import skip_unless_runnable


@pytest.mark.parametrize("mode", ["float16", "float16-unsafe"])
@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "MXNet CPU LayerNorm (1.6.0-1.9.1) keeps the row variance in float16 whatever MXNET_SAFE_ACCUMULATION says: "
    "a row with variance > 65504 (std >= 256) overflows; 1.9.1 returns zeros, 1.6-1.8 return NaN"))
def test_fp16_layer_norm_variance_overflow(mode):
    case = ParityCase("layer_norm", mode, (("N", 8), ("C", 768)), dist="huge")
    skip_unless_runnable(skip_reason(case))
    result = run_case(case)
    assert result.passed, result.message


def test_fp32_layer_norm_handles_the_same_rows():
    result = run_case(ParityCase("layer_norm", "float32", (("N", 8), ("C", 768)), dist="huge"))
    assert result.passed, result.message
