"""The one progress display: a terminal gets one redrawn line, a log whole lines (the gate's at most every 15 s)."""

from __future__ import annotations

import io

from perfsuite import progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_whole_lines_and_the_gate_throttles_them(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    log = io.StringIO()
    line = progress.BudgetLine(log, budget_s=600, start=100.0)
    line("session 1")
    now[0] += 5
    line("session 1: pair 3/16")  # within 15 s: not written
    line("decided", force=True)  # forced: written
    now[0] += 20
    line("session 2")
    assert log.getvalue().splitlines() == ["[gate 0:00 / budget 10:00, 10:00 left] session 1",
                                           "[gate 0:05 / budget 10:00, 9:55 left] decided",
                                           "[gate 0:25 / budget 10:00, 9:35 left] session 2"]


def test_a_terminal_gets_one_redrawn_line_and_the_bar_ends_it(monkeypatch):
    tty = _Tty()
    bar = progress.ProgressBar([1.0, 3.0], tty, width=8)
    bar.show("parity")
    bar.step("first")
    assert "\n" not in tty.getvalue() and tty.getvalue().count("\r") == 2
    bar.step("last")
    assert tty.getvalue().endswith("\n") and "2/2 100%" in tty.getvalue()
    log = io.StringIO()
    bar = progress.ProgressBar([1.0, 1.0], log)
    bar.show("not in a log")
    bar.step("a")
    bar.step("b")
    assert len(log.getvalue().splitlines()) == 2 and "not in a log" not in log.getvalue()


def test_one_off_preparation_does_not_set_the_pace_of_the_eta(monkeypatch):
    """perfsuite run prepares every path during its first group: counted in the pace, that 60 s would make the ETA
    after the first step 7x too long; unpaced() leaves it out (issue 19: the ETA must not jump by more than 2x)."""
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    bar = progress.ProgressBar([10.0, 20.0, 40.0], io.StringIO())
    with bar.unpaced():
        now[0] += 60.0  # preparing the paths
    now[0] += 10.0  # timing the first group, at the planned pace
    bar.step("group 1")
    assert bar.eta_s() == 60.0  # the 60 s the other two groups are planned to take
    assert "elapsed 1:10" in bar.line()


def test_a_step_weighs_what_it_took_and_the_rest_is_replanned(monkeypatch):
    """perfsuite run's ETA: a done step weighs its seconds, the steps left the seconds its plan now expects, so the
    ETA is the plan for the rest (here 30 s) whatever the first guess was."""
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    bar = progress.ProgressBar([1.0, 1.0, 1.0], io.StringIO())
    now[0] += 12.0
    bar.step("first", weight=12.0, replan=[10.0, 20.0])
    assert bar.eta_s() == 30.0 and bar.total == 42.0
    try:
        bar.step("second", replan=[1.0, 2.0])
    except ValueError as exc:
        assert "replan needs 1 weights; got 2" in str(exc)
    else:
        raise AssertionError("a replan of the wrong length was accepted")
