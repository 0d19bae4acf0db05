"""The guard SDK benchmarks (`bench.guard_bench`, `bench.guard_calls_bench`, `bench.guard_memory_bench`) as one
section of `python -m bench`."""

from __future__ import annotations

from bench import guard_bench, guard_calls_bench, guard_memory_bench
from bench.common import Section


def run(quick: bool) -> Section:
    section = guard_bench.to_section(guard_bench.run(quick))
    rows, figures, notes = guard_calls_bench.rows_and_figures(guard_calls_bench.run(quick))
    section.rows.extend(rows)
    section.figures.update(figures)
    section.notes.extend(notes)
    rows, figures, notes = guard_memory_bench.rows_and_figures(guard_memory_bench.run(quick))
    section.rows.extend(rows)
    section.figures.update(figures)
    section.notes.extend(notes)
    return section
