"""What the guard limits and how: caps, lease policy, the agent's mode, periods and USD amounts."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from killswitch.guard.prices import usd
from killswitch.states import AgentState

Period = Literal["day", "month"]
DAY_SECONDS = 86400


Mode = AgentState  # the guard's name for the one agent state (`Mode.STOPPED` is `AgentState.KILLED`)


@dataclass(frozen=True, init=False)
class Caps:
    """Real-time caps in USD. None = not limited (the agent's period spend is still tracked).

    `per_day_usd` is the config's `caps.per_day_usd`: per agent per period (a UTC day by default, a month with
    `Guard(period="month")`). `per_period_usd=` is its former name, still accepted with a DeprecationWarning.
    """

    per_run_usd: float | None
    per_day_usd: float | None
    per_workflow_usd: Mapping[str, float]  # per workflow label per period
    per_outcome_usd: Mapping[str, float]  # per run, per outcome (`run.outcome`)

    def __init__(
        self,
        per_run_usd: float | None = None,
        per_day_usd: float | None = None,
        per_workflow_usd: Mapping[str, float] | None = None,
        per_outcome_usd: Mapping[str, float] | None = None,
        *,
        per_period_usd: float | None = None,
    ):
        if per_period_usd is not None:
            warnings.warn(
                "Caps(per_period_usd=...) is deprecated: use Caps(per_day_usd=...), the name of the config field",
                DeprecationWarning,
                stacklevel=2,
            )
            if per_day_usd is not None and per_day_usd != per_period_usd:
                raise TypeError("Caps: give per_day_usd or its deprecated alias per_period_usd, not both")
            per_day_usd = per_period_usd
        object.__setattr__(self, "per_run_usd", per_run_usd)
        object.__setattr__(self, "per_day_usd", per_day_usd)
        object.__setattr__(self, "per_workflow_usd", dict(per_workflow_usd or {}))
        object.__setattr__(self, "per_outcome_usd", dict(per_outcome_usd or {}))

    @property
    def per_period_usd(self) -> float | None:
        """Deprecated read alias of `per_day_usd`."""
        return self.per_day_usd

    @classmethod
    def from_config(cls, caps: Any) -> Caps:
        """From `AgentConfig.caps` (`per_run_usd`, `per_day_usd`, `per_workflow_usd`, `per_outcome_usd`)."""
        return cls(
            per_run_usd=caps.per_run_usd,
            per_day_usd=caps.per_day_usd,
            per_workflow_usd=dict(caps.per_workflow_usd),
            per_outcome_usd=dict(getattr(caps, "per_outcome_usd", {}) or {}),
        )


@dataclass(frozen=True)
class LeasePolicy:
    """Budget leases: a run reserves a slice of headroom once and spends it locally.

    Slice = min(`fraction` x the smallest remaining headroom of the shared caps, the run cap's headroom), at least
    the charge at hand and `min_usd`, at most `max_usd`. Unused headroom goes back when the run ends, when a new
    lease is needed, or (at the lease's full amount, conservatively) when the sweeper finds it expired.
    """

    fraction: float = 0.10
    min_usd: float = 0.01
    max_usd: float | None = None
    ttl_seconds: float = 300.0
    uncapped_usd: float = 1.0  # slice when no cap limits the agent at all
    # A lease stops taking charges this long before its deadline; an idle one is then handed back (a daemon timer
    # does it while the run waits), so the sweeper never charges a live run's unused lease in full.
    return_margin_seconds: float = 60.0
    auto_return: bool = True


def dec(value: float | None) -> Decimal | None:
    return None if value is None else usd(value)


_day_cache: tuple[int, str] = (-1, "")


def utc_day(now: float) -> str:
    """UTC day of an epoch time; formatted once per second (it is on every charge's path, strftime is slow)."""
    global _day_cache
    second = int(now // 1)
    cached = _day_cache
    if cached[0] == second:
        return cached[1]
    day = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%d")
    _day_cache = (second, day)
    return day
