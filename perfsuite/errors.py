"""Errors perfsuite raises on purpose."""

__all__ = ["PerfsuiteInputError", "one_line"]


class PerfsuiteInputError(ValueError):
    """Bad input to perfsuite's API or CLI; the message names the value and what is allowed."""


def one_line(exc: BaseException, lines: int = 1, limit: int = 500) -> str:
    """An exception as one line for a results file or a progress line: its type and its last `lines` non-empty
    lines (MXNet puts the cause last, under a C++ stack trace), joined by ' | ', at most `limit` characters."""
    text = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {' | '.join(text[-lines:]) if text else ''}"[:limit]
