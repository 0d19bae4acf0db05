"""The guard SDK benchmark (`bench.guard_bench`) as a section of `python -m bench`."""

from __future__ import annotations

from bench import guard_bench
from bench.common import Section


def run(quick: bool) -> Section:
    return guard_bench.to_section(guard_bench.run(quick))
