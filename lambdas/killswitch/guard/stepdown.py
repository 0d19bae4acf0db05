"""Step-down before the kill: near the cap, slow the agent down instead of cutting it off.

`throttle: {from_pct: 90, max_calls_per_minute: N}`: once the agent's spend this period (committed + reserved)
reaches `from_pct` of its `caps.per_day_usd`, each charge waits until fewer than N charges started in the last
minute (in this process). The spend figure is re-read from the ledger at most every `recheck_seconds`, so the
throttle costs no ledger read per call.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class ThrottlePolicy:
    from_pct: float = 90.0
    max_calls_per_minute: int = 10
    recheck_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.from_pct <= 100:
            raise ValueError(f"throttle.from_pct must be in (0, 100] (got {self.from_pct})")
        if self.max_calls_per_minute < 1:
            raise ValueError(f"throttle.max_calls_per_minute must be >= 1 (got {self.max_calls_per_minute})")

    @classmethod
    def from_config(cls, cfg: Any) -> ThrottlePolicy:
        return cls(from_pct=float(cfg.from_pct), max_calls_per_minute=int(cfg.max_calls_per_minute))


class Throttle:
    """A one-minute sliding window of charge start times, active only while spend is past `from_pct`."""

    def __init__(
        self,
        policy: ThrottlePolicy,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        used_pct: Callable[[], Decimal | None],
    ):
        self.policy = policy
        self.clock = clock
        self.sleep = sleep
        self.used_pct = used_pct  # the agent's period spend in % of its cap (None: no cap)
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()
        self._active = False
        self._checked_at = float("-inf")
        self.waited_seconds = 0.0

    @property
    def active(self) -> bool:
        now = self.clock()
        with self._lock:
            if now - self._checked_at < self.policy.recheck_seconds:
                return self._active
        pct = self.used_pct()
        active = pct is not None and pct >= Decimal(str(self.policy.from_pct))
        with self._lock:
            self._active, self._checked_at = active, now
        return active

    def wait(self) -> float:
        """Block until this charge may start; returns the seconds waited (0 when not throttled)."""
        if not self.active:
            return 0.0
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                while self._starts and self._starts[0] <= now - WINDOW_SECONDS:
                    self._starts.popleft()
                if len(self._starts) < self.policy.max_calls_per_minute:
                    self._starts.append(now)
                    self.waited_seconds += waited
                    return waited
                delay = self._starts[0] + WINDOW_SECONDS - now
            self.sleep(delay)
            waited += delay
