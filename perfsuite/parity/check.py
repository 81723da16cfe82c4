"""Compare a path's output with its reference under an elementwise bound, and explain the result.

A comparison fails when any element's error exceeds its bound, when the path produced NaN/inf where the
reference is finite, or when shapes differ. The report names the worst element (index, both values, error,
bound, error/bound), the fraction of elements over their bound, and whatever the caller says reproduces it
(seed, shape, flags), in the manner of MXNet's assert_almost_equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

__all__ = ["CheckResult", "compare", "assert_within", "ParityError"]


class ParityError(AssertionError):
    """A path disagrees with its reference beyond the declared tolerance."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one comparison; `passed` is the verdict, `message` explains it."""

    name: str
    passed: bool
    shape: Tuple[int, ...]
    worst_index: Optional[Tuple[int, ...]]
    worst_actual: float
    worst_expected: float
    worst_error: float
    worst_bound: float
    worst_ratio: float  # error / bound at the worst element (inf where the bound is 0 and the error is not)
    max_abs_error: float
    mismatch_fraction: float
    nonfinite: int
    context: Dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    @property
    def message(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        ctx = ", ".join(f"{k}={v}" for k, v in self.context.items())
        head = f"{verdict} {self.name}"
        if self.reason:
            return f"{head}: {self.reason}" + (f" [{ctx}]" if ctx else "")
        return (
            f"{head}: worst element {self.worst_index} actual={self.worst_actual:.9g} "
            f"expected={self.worst_expected:.9g} |error|={self.worst_error:.3g} bound={self.worst_bound:.3g} "
            f"error/bound={self.worst_ratio:.3g}; {self.mismatch_fraction:.2%} of {int(np.prod(self.shape))} "
            f"elements over their bound; max |error|={self.max_abs_error:.3g}; non-finite={self.nonfinite}"
            + (f" [{ctx}]" if ctx else "")
        )

    def to_dict(self) -> Dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["message"] = self.message
        d["shape"] = list(self.shape)
        d["worst_index"] = None if self.worst_index is None else list(self.worst_index)
        return d


def _fail_shape(name: str, actual: np.ndarray, expected: np.ndarray, context: Dict[str, Any]) -> CheckResult:
    return CheckResult(
        name, False, tuple(expected.shape), None, np.nan, np.nan, np.inf, 0.0, np.inf, np.inf, 1.0, 0,
        dict(context), reason=f"shape mismatch: actual {tuple(actual.shape)} vs expected {tuple(expected.shape)}",
    )


def compare(
    actual: Any,
    expected: Any,
    bound: Any,
    name: str = "output",
    context: Optional[Dict[str, Any]] = None,
) -> CheckResult:
    """Compare elementwise: passed iff shapes match, all finite where expected is, and |a - e| <= bound."""
    context = dict(context or {})
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return _fail_shape(name, a, e, context)
    b = np.broadcast_to(np.asarray(bound, dtype=np.float64), e.shape)
    if a.size == 0:
        return CheckResult(name, True, e.shape, None, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, context)
    err = np.abs(a - e)
    bad_nonfinite = ~np.isfinite(a) & np.isfinite(e)
    err = np.where(bad_nonfinite, np.inf, err)
    err = np.where(np.isnan(err), 0.0, err)  # both NaN or equal infinities: the reference decides semantics
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, err / b)
    over = err > b
    flat = int(np.argmax(ratio))
    idx = tuple(int(i) for i in np.unravel_index(flat, e.shape))
    finite_err = err[np.isfinite(err)]
    return CheckResult(
        name=name,
        passed=not bool(over.any()),
        shape=tuple(e.shape),
        worst_index=idx,
        worst_actual=float(a[idx]),
        worst_expected=float(e[idx]),
        worst_error=float(err[idx]),
        worst_bound=float(b[idx]),
        worst_ratio=float(ratio[idx]),
        max_abs_error=float(finite_err.max()) if finite_err.size else float("inf"),
        mismatch_fraction=float(over.mean()),
        nonfinite=int(bad_nonfinite.sum()),
        context=context,
    )


def assert_within(
    actual: Any, expected: Any, bound: Any, name: str = "output", context: Optional[Dict[str, Any]] = None
) -> CheckResult:
    """compare(), raising ParityError with the explanation when it fails."""
    result = compare(actual, expected, bound, name=name, context=context)
    if not result.passed:
        raise ParityError(result.message)
    return result
