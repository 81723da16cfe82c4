"""The one progress display: a status line on a stream (stderr), redrawn in place on a terminal and written as
whole lines to a log. `ProgressBar` (``perfsuite run``: weighted steps, ETA from the pace so far) and
`BudgetLine` (the upgrade gate: elapsed time against a time budget) both draw through `StatusLine`."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterator, Optional, Sequence, TextIO

from perfsuite.tables import clock

__all__ = ["StatusLine", "ProgressBar", "BudgetLine"]


class StatusLine:
    """Draws lines on `stream`: on a terminal each one overwrites the last (cut to `cols` characters); in a log each
    is a line of its own, at most one per `min_interval_s` unless forced (final lines always)."""

    def __init__(self, stream: Optional[TextIO] = None, cols: int = 160, min_interval_s: float = 0.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.cols, self.min_interval_s = cols, min_interval_s
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last = float("-inf")

    def emit(self, line: str, final: bool = False) -> None:
        now = time.perf_counter()
        if self.tty:
            self.stream.write("\r" + line[:self.cols].ljust(self.cols) + ("\n" if final else ""))
        elif final or now - self.last >= self.min_interval_s:
            self.stream.write(line + "\n")
            self.last = now
        else:
            return
        self.stream.flush()


class ProgressBar:
    """A text progress bar with ETA: redrawn in place on a terminal, one line per step otherwise. Steps carry
    weights (expected seconds); the ETA scales the remaining weight by the observed pace."""

    def __init__(self, weights: Sequence[float], stream: Optional[TextIO] = None, width: int = 24) -> None:
        self.weights = [max(float(w), 1e-6) for w in weights]
        self.total = sum(self.weights)
        self.out = StatusLine(stream, cols=160)
        self.width = width
        self.done = 0
        self.done_weight = 0.0
        self.start = time.perf_counter()
        self.unpaced_s = 0.0  # time spent in unpaced() blocks: one-off work that says nothing of the pace

    def eta_s(self) -> Optional[float]:
        """Seconds left, from the pace so far (None before the first step ends)."""
        if self.done_weight <= 0:
            return None
        elapsed = max(time.perf_counter() - self.start - self.unpaced_s, 1e-9)
        return elapsed / self.done_weight * (self.total - self.done_weight)

    @contextlib.contextmanager
    def unpaced(self) -> Iterator[None]:
        """Work inside (preparing a path once per run) counts in the elapsed time but not in the pace the ETA
        extrapolates: otherwise the first step, which prepares every path, would make the ETA jump."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.unpaced_s += time.perf_counter() - t0

    def line(self, text: str = "") -> str:
        frac = self.done_weight / self.total if self.total else 1.0
        fill = int(round(frac * self.width))
        eta = self.eta_s()
        return (f"[{'#' * fill}{'.' * (self.width - fill)}] {self.done}/{len(self.weights)} {frac:4.0%} "
                f"elapsed {clock(time.perf_counter() - self.start)} ETA {'?' if eta is None else clock(eta)} {text}")

    def show(self, text: str) -> None:
        """Redraw without advancing, naming the step now running (terminals only: a log gets one line per step)."""
        if self.out.tty:
            self.out.emit(self.line(text))

    def step(self, text: str = "", weight: Optional[float] = None,
             replan: Optional[Sequence[float]] = None) -> None:
        """Mark the next step done. `weight` replaces its planned weight by what it turned out to weigh; `replan`
        gives new weights to the steps left (a better plan, e.g. from the times measured so far)."""
        if self.done < len(self.weights):
            if weight is not None:
                self.weights[self.done] = max(float(weight), 1e-6)
            self.done_weight += self.weights[self.done]
            self.done += 1
        if replan is not None:
            if len(replan) != len(self.weights) - self.done:
                raise ValueError(f"replan needs {len(self.weights) - self.done} weights; got {len(replan)}")
            self.weights[self.done:] = [max(float(w), 1e-6) for w in replan]
        self.total = sum(self.weights)
        self.out.emit(self.line(text), final=self.done == len(self.weights) or not self.out.tty)


class BudgetLine:
    """The gate's status: `[gate m:ss / budget m:ss, m:ss left] text`; in a log at most one line per 15 s unless
    forced (phase changes, decisions)."""

    def __init__(self, stream: TextIO, budget_s: float, start: float) -> None:
        self.out = StatusLine(stream, cols=150, min_interval_s=15.0)
        self.budget, self.start = budget_s, start

    def __call__(self, text: str, force: bool = False) -> None:
        el = time.perf_counter() - self.start
        self.out.emit(f"[gate {clock(el)} / budget {clock(self.budget)}, {clock(max(0.0, self.budget - el))} left] "
                      f"{text}", final=force)
