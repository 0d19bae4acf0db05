"""Unit economics over ledger entries (pure functions, no AWS).

Cost per run: a run is any `run_id` seen on a guard charge or on a Cost Explorer per-run row. Its cost is the
Cost Explorer figure when Cost Explorer has one (billed, authoritative), else the guard's sum of charges (the run's
resources were not tagged with `agent-run-id`, or Cost Explorer has not caught up yet: it lags about a day).
Both figures are kept on each `RunCost`.

Deviation factor: per day, actual / estimate where actual = Cost Explorer's per-service total of the agent
(optionally only some services, e.g. `Amazon Bedrock`, to compare like with like) and estimate = the sum of the
guard's charges (what the guard priced the calls at). Days where either side is missing, or the estimate is zero,
have no factor. The cumulative factor (all actuals so far / all estimates so far) is the number to multiply
future guard estimates by.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from statistics import median

from killswitch.spend.ledger import SOURCE_COST_EXPLORER, SOURCE_GUARD, SpendEntry

FACTOR_QUANT = Decimal("0.0001")
USD_QUANT = Decimal("0.000001")


def _factor(actual: Decimal, estimate: Decimal) -> Decimal | None:
    if estimate <= 0:
        return None
    return (actual / estimate).quantize(FACTOR_QUANT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class RunCost:
    run_id: str
    guard_usd: Decimal
    cost_explorer_usd: Decimal | None
    charges: int
    first_day: date
    last_day: date

    @property
    def cost_usd(self) -> Decimal:
        return self.cost_explorer_usd if self.cost_explorer_usd is not None else self.guard_usd

    @property
    def source(self) -> str:
        return SOURCE_COST_EXPLORER if self.cost_explorer_usd is not None else SOURCE_GUARD


@dataclass(frozen=True)
class UnitEconomics:
    runs: int
    total_usd: Decimal
    mean_usd: Decimal | None
    median_usd: Decimal | None
    max_usd: Decimal | None
    runs_from_cost_explorer: int


def run_costs(entries: Iterable[SpendEntry]) -> list[RunCost]:
    """Every run seen in the entries, most expensive first (ties by run id)."""
    guard: dict[str, Decimal] = defaultdict(Decimal)
    charges: dict[str, int] = defaultdict(int)
    ce: dict[str, Decimal] = {}
    days: dict[str, list[date]] = defaultdict(list)
    for e in entries:
        if not e.run_id:
            continue
        if e.source == SOURCE_GUARD:
            guard[e.run_id] += e.amount_usd
            charges[e.run_id] += 1
        elif e.is_run_breakdown:
            ce[e.run_id] = ce.get(e.run_id, Decimal(0)) + e.amount_usd
        else:
            continue
        days[e.run_id].append(e.day)
    runs = [
        RunCost(
            run_id=r,
            guard_usd=guard.get(r, Decimal(0)),
            cost_explorer_usd=ce.get(r),
            charges=charges.get(r, 0),
            first_day=min(days[r]),
            last_day=max(days[r]),
        )
        for r in days
    ]
    runs.sort(key=lambda rc: (-rc.cost_usd, rc.run_id))
    return runs


def unit_economics(runs: Collection[RunCost]) -> UnitEconomics:
    costs = [r.cost_usd for r in runs]
    total = sum(costs, Decimal(0))
    if not costs:
        return UnitEconomics(0, total, None, None, None, 0)
    q = USD_QUANT
    return UnitEconomics(
        runs=len(costs),
        total_usd=total,
        mean_usd=(total / len(costs)).quantize(q, rounding=ROUND_HALF_EVEN),
        median_usd=Decimal(median(costs)).quantize(q, rounding=ROUND_HALF_EVEN),
        max_usd=max(costs),
        runs_from_cost_explorer=sum(1 for r in runs if r.cost_explorer_usd is not None),
    )


@dataclass(frozen=True)
class DeviationPoint:
    day: date
    estimate_usd: Decimal
    actual_usd: Decimal
    factor: Decimal | None  # actual / estimate that day
    cumulative_factor: Decimal | None  # sum(actual) / sum(estimate) up to and including that day


def deviation_series(entries: Iterable[SpendEntry], services: Collection[str] | None = None) -> list[DeviationPoint]:
    """Days where both the guard and Cost Explorer have figures, in day order."""
    estimate: dict[date, Decimal] = defaultdict(Decimal)
    actual: dict[date, Decimal] = defaultdict(Decimal)
    for e in entries:
        if e.source == SOURCE_GUARD:
            estimate[e.day] += e.amount_usd
        elif (
            e.source == SOURCE_COST_EXPLORER and not e.is_run_breakdown and (services is None or e.service in services)
        ):
            actual[e.day] += e.amount_usd
    out: list[DeviationPoint] = []
    total_a = total_e = Decimal(0)
    for day in sorted(set(estimate) & set(actual)):
        total_a += actual[day]
        total_e += estimate[day]
        out.append(
            DeviationPoint(
                day, estimate[day], actual[day], _factor(actual[day], estimate[day]), _factor(total_a, total_e)
            )
        )
    return out


def correction_factor(series: list[DeviationPoint]) -> Decimal | None:
    """The latest cumulative factor: multiply guard estimates by it to approximate the bill."""
    return series[-1].cumulative_factor if series else None
