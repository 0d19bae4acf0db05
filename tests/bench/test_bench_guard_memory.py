"""Smoke test of the guard memory benchmark: figures for both guards at both call counts, rendered as rows."""

from __future__ import annotations

from bench import guard_memory_bench


def test_memory_rows_show_the_bounded_guard_next_to_the_one_that_keeps_everything() -> None:
    counts = (300, 3_000)
    bounded = guard_memory_bench._traced_after(counts, 10, 10)
    everything = guard_memory_bench._traced_after(counts, guard_memory_bench.EVERYTHING, guard_memory_bench.EVERYTHING)
    assert set(bounded) == set(everything) == {"300", "3000"}
    assert everything["3000"] > bounded["3000"]  # 3,000 calls and holds kept against 10 of each
    rows, figures, notes = guard_memory_bench.rows_and_figures(
        {"counts": list(counts), "bounded": bounded, "keep everything (before)": everything}
    )
    assert [r[0] for r in rows] == [
        "memory of one long run (tracemalloc), bounded",
        "memory of one long run (tracemalloc), keep everything (before)",
    ]
    assert "after 3,000" in rows[0][1]
    assert figures["memory.bounded.3000_calls_mib"] == bounded["3000"]
    assert notes and "retry_window" in notes[0]
