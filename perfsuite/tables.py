"""The one table writer: every table perfsuite prints or writes goes through `table` (tabulate, a maintained
library): GitHub Markdown for reports and summaries, 'simple' aligned columns for terminals."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from tabulate import tabulate

__all__ = ["clock", "fmt_ms", "table", "markdown_lines"]


def _cell(x: Any, markdown: bool) -> str:
    if x is None:
        return "-"
    text = str(x).replace("\n", " ")
    return text.replace("|", "\\|") if markdown else text


def table(header: Sequence[Any], rows: Sequence[Sequence[Any]], fmt: str = "github") -> str:
    """A table as text: fmt 'github' (Markdown) or 'simple' (terminal). Cells are shown as given (no number
    parsing), None as '-'."""
    md = fmt == "github"
    return tabulate([[_cell(c, md) for c in r] for r in rows], headers=[_cell(h, md) for h in header],
                    tablefmt=fmt, disable_numparse=True)


def markdown_lines(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> List[str]:
    """A Markdown table as lines, followed by a blank line (for reports assembled line by line)."""
    return table(header, rows, "github").splitlines() + [""]


def clock(seconds: float) -> str:
    """Seconds as m:ss (rounded; never negative): the progress lines' and summaries' durations."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


def fmt_ms(x: Optional[float]) -> str:
    """Milliseconds as reports show them: 3 significant digits below 100 ms, whole milliseconds above; '-' for
    None or NaN."""
    if x is None or x != x:
        return "-"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"
