"""Smoke test of the time-to-kill benchmark: one repetition per path, rows for the guard and AWS Budgets."""

from __future__ import annotations

from bench import time_to_kill


def test_time_to_kill_section_with_one_repetition() -> None:
    section = time_to_kill.run(reps=1)
    assert section.title == "Time to kill"
    assert len(section.rows) == 5
    assert all(len(row) == len(section.headers) for row in section.rows)
    assert section.rows[-1][2] == "$1,440.00" and section.rows[-2][2] == "$480.00"
    f = section.figures
    assert f["budgets_24h.overspend_usd"] == 1440.0
    assert 0 < f["guard_warm.to_raise_median_s"] <= f["guard_warm.to_handler_median_s"]
