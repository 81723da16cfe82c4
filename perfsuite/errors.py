"""Errors perfsuite raises on purpose."""

__all__ = ["PerfsuiteInputError"]


class PerfsuiteInputError(ValueError):
    """Bad input to perfsuite's API or CLI; the message names the value and what is allowed."""
