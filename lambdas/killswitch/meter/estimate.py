"""One spend estimate per agent, and what it means. Pure: no AWS calls.

Estimate rule (period-to-date, the agent's budget period):
1. Cost Explorer is authoritative for the days it has: every day up to and including the latest day with a
   `cost_explorer` row counts Cost Explorer's per-service rows only (meter and guard facts of those days are ignored,
   so nothing counts twice when Cost Explorer catches up).
2. Each later day counts the meter and the guard per run: for each (day, `agent-run-id`) bucket the larger of the
   meter's total and the guard's total (calls without a run id share one bucket). A call that both the guard charged
   and the meter saw in the Bedrock logs is in both totals of the same bucket and therefore counts once; a run seen by
   one source only counts in full. (The guard also charges non-Bedrock calls the meter cannot see and the meter sees
   compute the guard does not charge: taking the larger bucket can under-count such a mix, never double-count.)
3. Budget alerts are not part of the estimate (they are period-to-date figures from a source hours behind).

Level: estimate / budget amount as a percentage against the agent's `warn_at_pct` / `kill_at_pct`; the meter raises
a METERED alert with the same figures, so `killswitch.kill.levels.decide_level` applies the same rule as for a
budget letter. Dedupe is per agent, period and threshold (`meter_dedupe_key`).

Burn rate (`burn_rate: {window_minutes, max_pct_of_budget}`): meter and guard facts recorded inside the last
`window_minutes` (same per-run larger-of rule) against `max_pct_of_budget` of the budget amount, however far the
period total is from the cap. Dedupe per agent and window (`burn_dedupe_key`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from killswitch.config import AgentConfig
from killswitch.periods import period_key, period_start  # noqa: F401 (re-exported: the meter service calls E.period_*)
from killswitch.spend.ledger import SOURCE_COST_EXPLORER, SOURCE_GUARD, SOURCE_METER, SpendEntry

ZERO = Decimal(0)


@dataclass(frozen=True)
class Estimate:
    agent: str
    total_usd: Decimal
    cost_explorer_usd: Decimal  # authoritative days
    cost_explorer_through: date | None  # the last day Cost Explorer covers
    meter_usd: Decimal  # meter facts after that day (before the larger-of rule)
    guard_usd: Decimal  # guard facts after that day (before the larger-of rule)
    overlap_usd: Decimal  # counted by both sources and therefore left out once

    def to_dict(self) -> dict[str, str | None]:
        return {
            "agent": self.agent,
            "total_usd": str(self.total_usd),
            "cost_explorer_usd": str(self.cost_explorer_usd),
            "cost_explorer_through": self.cost_explorer_through.isoformat() if self.cost_explorer_through else None,
            "meter_usd": str(self.meter_usd),
            "guard_usd": str(self.guard_usd),
            "overlap_usd": str(self.overlap_usd),
        }


def _larger_per_run(entries: Iterable[SpendEntry]) -> tuple[Decimal, Decimal, Decimal]:
    """(sum of per-bucket maxima, meter total, guard total) over (day, run id) buckets."""
    buckets: dict[tuple[date, str | None], dict[str, Decimal]] = {}
    meter = guard = ZERO
    for e in entries:
        if e.source not in (SOURCE_METER, SOURCE_GUARD):
            continue
        b = buckets.setdefault((e.day, e.run_id), {SOURCE_METER: ZERO, SOURCE_GUARD: ZERO})
        b[e.source] += e.amount_usd
        if e.source == SOURCE_METER:
            meter += e.amount_usd
        else:
            guard += e.amount_usd
    total = sum((max(b.values()) for b in buckets.values()), ZERO)
    return total, meter, guard


def estimate(agent: str, entries: Iterable[SpendEntry], since: date, until: date) -> Estimate:
    """The period-to-date estimate for days since..until (inclusive) under the rule in the module doc."""
    rows = [e for e in entries if since <= e.day <= until]
    ce_days = [e.day for e in rows if e.source == SOURCE_COST_EXPLORER]
    through = max(ce_days) if ce_days else None
    ce = sum(
        (e.amount_usd for e in rows if e.source == SOURCE_COST_EXPLORER and not e.is_run_breakdown),
        ZERO,
    )
    later = [e for e in rows if through is None or e.day > through]
    fast, meter, guard = _larger_per_run(later)
    return Estimate(agent, ce + fast, ce, through, meter, guard, meter + guard - fast)


@dataclass(frozen=True)
class Reconciliation:
    day: date
    meter_usd: Decimal
    cost_explorer_usd: Decimal
    error_pct: Decimal | None  # (meter - Cost Explorer) / Cost Explorer, None when Cost Explorer says 0


def reconcile(entries: Iterable[SpendEntry]) -> list[Reconciliation]:
    """Per day where both the meter and Cost Explorer have figures: the meter's error against the bill."""
    meter: dict[date, Decimal] = {}
    ce: dict[date, Decimal] = {}
    for e in entries:
        if e.source == SOURCE_METER:
            meter[e.day] = meter.get(e.day, ZERO) + e.amount_usd
        elif e.source == SOURCE_COST_EXPLORER and not e.is_run_breakdown:
            ce[e.day] = ce.get(e.day, ZERO) + e.amount_usd
    return [Reconciliation(d, meter[d], ce[d], _error_pct(meter[d], ce[d])) for d in sorted(set(meter) & set(ce))]


def meter_error_pct(entries: Iterable[SpendEntry]) -> Decimal | None:
    """The meter's cumulative error (percent) over the days both sources cover; None without such days."""
    days = reconcile(entries)
    if not days:
        return None
    return _error_pct(sum((d.meter_usd for d in days), ZERO), sum((d.cost_explorer_usd for d in days), ZERO))


def _error_pct(meter: Decimal, actual: Decimal) -> Decimal | None:
    if actual <= 0:
        return None
    return ((meter - actual) * 100 / actual).quantize(Decimal("0.01"))


def window_spend(entries: Iterable[SpendEntry], now: datetime, window: timedelta) -> Decimal:
    """Meter and guard spend recorded in (now - window, now], larger-of per (day, run id) bucket."""
    low = now - window
    inside = []
    for e in entries:
        if e.source not in (SOURCE_METER, SOURCE_GUARD) or not e.recorded_at:
            continue
        try:
            at = datetime.fromisoformat(e.recorded_at)
        except ValueError:
            continue
        if low < at <= now:
            inside.append(e)
    return _larger_per_run(inside)[0]


@dataclass(frozen=True)
class Crossing:
    threshold: str  # "kill" | "warn"
    percent: float


def crossing(total: Decimal, agent: AgentConfig) -> Crossing | None:
    """The highest threshold the estimate has reached, or None below `warn_at_pct`."""
    pct = float(total) * 100 / agent.budget.amount_usd
    if pct >= agent.budget.kill_at_pct:
        return Crossing("kill", pct)
    if pct >= agent.budget.warn_at_pct:
        return Crossing("warn", pct)
    return None


def burn_rate_exceeded(spent: Decimal, agent: AgentConfig) -> float | None:
    """The window's share of the budget (percent) when it passes the agent's burn-rate limit, else None."""
    rule = agent.burn_rate
    if rule is None:
        return None
    pct = float(spent) * 100 / agent.budget.amount_usd
    return pct if pct > rule.max_pct_of_budget else None


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def meter_dedupe_key(agent: str, period: str, threshold: str) -> str:
    return f"killswitch.meter:{_sha(agent, period, threshold)}"


def burn_dedupe_key(agent: str, now: datetime, window_minutes: int) -> str:
    """One burn-rate kill per agent per window-long slot (a restored agent can be stopped again next slot)."""
    slot = int(now.timestamp() // (window_minutes * 60))
    return f"killswitch.meter:{_sha(agent, 'burn', str(window_minutes), str(slot))}"
