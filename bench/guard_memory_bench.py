"""Guard SDK memory in a long-lived run: traced memory after 10k and 100k calls through one run (in memory).

    python -m bench.guard_memory_bench [--quick]

The bounded guard (defaults: `Guard(retry_window=4096)`, `InMemoryLedger(finished_kept=10_000)`) is measured next to
the same guard with windows too large to ever fill, which keeps every call and hold like the guard did before:
flat figures between the two call counts mean the state is bounded.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from typing import Any

from bench.guard_bench import AGENT, UNLIMITED_STEPS, _one_call
from killswitch.guard import Caps, Guard, InMemoryLedger

EVERYTHING = 10**12  # a window that never fills: the unbounded baseline


def _traced_after(counts: tuple[int, ...], retry_window: int | None, finished_kept: int | None) -> dict[str, float]:
    """MiB traced (current, allocated since the guard was made) after each count of calls through one run."""
    out: dict[str, float] = {}
    gc.collect()
    tracemalloc.start()
    try:
        ledger = InMemoryLedger() if finished_kept is None else InMemoryLedger(finished_kept=finished_kept)
        kwargs: dict[str, Any] = {} if retry_window is None else {"retry_window": retry_window}
        guard = Guard(AGENT, Caps(per_day_usd=10**9), ledger, loop=UNLIMITED_STEPS, sweep_interval=0, **kwargs)
        base = tracemalloc.get_traced_memory()[0]
        done = 0
        with guard.run() as run:
            for n in counts:
                for _ in range(n - done):
                    _one_call(run)
                done = n
                gc.collect()
                out[str(n)] = (tracemalloc.get_traced_memory()[0] - base) / 2**20
    finally:
        tracemalloc.stop()
    return out


def run(quick: bool) -> dict[str, Any]:
    counts = (10_000, 20_000) if quick else (10_000, 100_000)  # 10k calls fill both default windows
    return {
        "counts": list(counts),
        "bounded": _traced_after(counts, None, None),
        "keep everything (before)": _traced_after(counts, EVERYTHING, EVERYTHING),
    }


def rows_and_figures(figures: dict[str, Any]) -> tuple[list[list[str]], dict[str, float], list[str]]:
    small, large = (str(n) for n in figures["counts"])
    rows: list[list[str]] = []
    flat: dict[str, float] = {}
    for label in ("bounded", "keep everything (before)"):
        f = figures[label]
        growth = f[large] / f[small] if f[small] > 0 else float("nan")
        rows.append(
            [
                f"memory of one long run (tracemalloc), {label}",
                f"{f[small]:.1f} MiB after {int(small):,} calls, {f[large]:.1f} MiB after {int(large):,} "
                f"({growth:.1f}×)",
            ]
        )
        for n, mib in f.items():
            flat[f"memory.{label}.{n}_calls_mib"] = mib
    notes = [
        "Memory: Python memory traced (tracemalloc, after gc) that one run and its in-memory ledger hold after "
        "that many $0.11-reserve / $0.06-settle calls. Bounded: reserved calls always, the last "
        "`Guard(retry_window=4096)` finished calls per run and the last `InMemoryLedger(finished_kept=10_000)` "
        'finished holds; "keep everything" is the same guard with windows that never fill (the behaviour before '
        "the fix), measured in the same run.",
    ]
    return rows, flat, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.guard_memory_bench")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    rows, _, notes = rows_and_figures(run(args.quick))
    for r in rows:
        print(" | ".join(r))
    for n in notes:
        print("-", n)
    print(f"(guard memory: {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
