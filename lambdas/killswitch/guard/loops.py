"""Loop breaker: identical tool calls in a row, A→B→A→B ping-pong, call depth, and a step cap per run.

Depth and the agent chain travel between agents in HTTP-style headers (`X-Agent-Run-ID`, `X-Agent-Depth`,
`X-Agent-Chain`), so a sub-agent in another process or service sees where it sits in the call graph.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from killswitch.guard.errors import LoopDetected

HEADER_RUN_ID = "X-Agent-Run-ID"
HEADER_DEPTH = "X-Agent-Depth"
HEADER_CHAIN = "X-Agent-Chain"
HEADER_AGENT = "X-Agent-Name"
MAX_CHAIN = 32  # entries kept in the propagated chain header


@dataclass(frozen=True)
class LoopLimits:
    max_identical_calls: int = 5
    max_depth: int = 4
    max_steps_per_run: int = 200
    ping_pong_cycles: int = 2  # A→B→A→B = 2 cycles

    @classmethod
    def from_config(cls, loop: Any) -> LoopLimits:
        return cls(
            max_identical_calls=loop.max_identical_calls,
            max_depth=loop.max_depth,
            max_steps_per_run=loop.max_steps_per_run,
        )


@dataclass(frozen=True)
class Lineage:
    """Where a run sits in the agent call graph, parsed from incoming headers."""

    run_id: str | None = None
    depth: int = 0
    chain: tuple[str, ...] = ()

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None) -> Lineage:
        if not headers:
            return cls()
        h = {k.lower(): v for k, v in headers.items()}
        raw_depth = h.get(HEADER_DEPTH.lower(), "0").strip() or "0"
        try:
            depth = max(0, int(raw_depth))
        except ValueError:
            depth = 0
        chain = tuple(p.strip() for p in h.get(HEADER_CHAIN.lower(), "").split(",") if p.strip())
        return cls(run_id=h.get(HEADER_RUN_ID.lower()) or None, depth=depth, chain=chain)


def signature(name: str, args: Any = None) -> str:
    """Stable fingerprint of a tool call: name + canonical JSON of its arguments."""
    body = json.dumps(args, sort_keys=True, default=str, separators=(",", ":"))
    return name + ":" + hashlib.sha256(body.encode()).hexdigest()[:16]


def check_lineage(agent: str, lineage: Lineage, limits: LoopLimits, run_id: str) -> tuple[str, ...]:
    """The chain including this agent; raises LoopDetected on excessive depth or an A→B→A→B ping-pong."""
    chain = (*lineage.chain, agent)[-MAX_CHAIN:]
    if lineage.depth > limits.max_depth:
        raise LoopDetected(
            "depth",
            f"call depth {lineage.depth} exceeds max_depth {limits.max_depth} (chain {'→'.join(chain)})",
            run_id,
        )
    n = 2 * limits.ping_pong_cycles
    if len(chain) >= n:
        tail = chain[-n:]
        a, b = tail[0], tail[1]
        if a != b and all(x == (a if i % 2 == 0 else b) for i, x in enumerate(tail)):
            raise LoopDetected("ping_pong", f"ping-pong between {a} and {b}: {'→'.join(tail)}", run_id)
    return chain


class StepTracker:
    """Per-run counters: steps and the current run of identical calls (thread-safe)."""

    def __init__(self, limits: LoopLimits, run_id: str):
        self.limits = limits
        self.run_id = run_id
        self.steps = 0
        self._last: str | None = None
        self._repeats = 0
        self._lock = threading.Lock()

    def step(self, sig: str | None) -> None:
        """Count one step; `sig` (tool-call signature) also feeds the identical-calls detector."""
        with self._lock:
            self.steps += 1
            if self.steps > self.limits.max_steps_per_run:
                raise LoopDetected(
                    "steps", f"run exceeded max_steps_per_run {self.limits.max_steps_per_run}", self.run_id
                )
            if sig is None:
                return
            if sig == self._last:
                self._repeats += 1
            else:
                self._last, self._repeats = sig, 1
            if self._repeats >= self.limits.max_identical_calls:
                name = sig.rsplit(":", 1)[0]
                raise LoopDetected(
                    "identical_calls", f"{self._repeats} identical calls to {name!r} in a row", self.run_id
                )
