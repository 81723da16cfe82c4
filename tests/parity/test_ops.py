"""Op-level parity of MXNet's optimized paths against the float64 NumPy references (the registry's grid)."""

import pytest

from perfsuite.parity.ops import default_cases, run_case, skip_reason
from perfsuite.pytest_plugin import skip_unless_runnable

CASES = default_cases()


def _marks(case):
    return [pytest.mark.gpu] if case.device == "gpu" else []


@pytest.mark.parity
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marks(c)) for c in CASES])
def test_op_parity(case):
    skip_unless_runnable(skip_reason(case))
    result = run_case(case)
    assert result.passed, result.message
