"""Cost per run and the guard-vs-Cost-Explorer deviation factor, over in-memory ledger entries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from killswitch.spend.economics import correction_factor, deviation_series, run_costs, unit_economics
from killswitch.spend.ledger import InMemorySpendStore, SpendLedger

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


def _ledger() -> SpendLedger:
    return SpendLedger(InMemorySpendStore())


def test_run_cost_prefers_cost_explorer_and_falls_back_to_guard() -> None:
    led = _ledger()
    led.record_guard_charge("a", D1, "c1", "0.50", run_id="r1")
    led.record_guard_charge("a", D2, "c2", "0.25", run_id="r1")
    led.record_cost_explorer("a", D1, "EC2", "2.00", run_id="r1")
    led.record_guard_charge("a", D2, "c3", "1.00", run_id="r2")
    led.record_guard_charge("a", D2, "c4", "9.00")  # no run id: not a run
    led.record_cost_explorer("a", D3, "EC2", "4.00", run_id="r3")  # CE only
    runs = run_costs(led.entries("a"))
    assert [(r.run_id, r.cost_usd, r.source) for r in runs] == [
        ("r3", Decimal("4"), "cost_explorer"),
        ("r1", Decimal("2"), "cost_explorer"),
        ("r2", Decimal("1"), "guard"),
    ]
    r1 = runs[1]
    assert (r1.guard_usd, r1.charges, r1.first_day, r1.last_day) == (Decimal("0.75"), 2, D1, D2)
    ue = unit_economics(runs)
    assert (ue.runs, ue.total_usd, ue.mean_usd, ue.median_usd, ue.max_usd) == (
        3, Decimal("7"), Decimal("2.333333"), Decimal("2"), Decimal("4"),
    )  # fmt: skip
    assert ue.runs_from_cost_explorer == 2


def test_no_runs_no_economics() -> None:
    ue = unit_economics([])
    assert (ue.runs, ue.total_usd, ue.mean_usd) == (0, Decimal(0), None)


def test_deviation_series_per_day_and_cumulative() -> None:
    led = _ledger()
    led.record_guard_charge("a", D1, "c1", "2.00")
    led.record_cost_explorer("a", D1, "Amazon Bedrock", "2.50")
    led.record_cost_explorer("a", D1, "EC2", "10")
    led.record_cost_explorer("a", D1, "Amazon Bedrock", "1", run_id="r")  # breakdown: ignored
    led.record_guard_charge("a", D2, "c2", "4.00")
    led.record_cost_explorer("a", D2, "Amazon Bedrock", "4.00")
    led.record_guard_charge("a", D3, "c3", "1.00")  # CE has not caught up: no point
    all_services = deviation_series(led.entries("a"))
    assert [(p.day, p.factor) for p in all_services] == [(D1, Decimal("6.25")), (D2, Decimal("1"))]
    bedrock = deviation_series(led.entries("a"), services={"Amazon Bedrock"})
    assert [(p.estimate_usd, p.actual_usd, p.factor, p.cumulative_factor) for p in bedrock] == [
        (Decimal("2"), Decimal("2.5"), Decimal("1.25"), Decimal("1.25")),
        (Decimal("4"), Decimal("4"), Decimal("1"), Decimal("1.0833")),
    ]
    assert correction_factor(bedrock) == Decimal("1.0833")
    assert correction_factor([]) is None


def test_zero_estimate_has_no_factor() -> None:
    led = _ledger()
    led.record_guard_charge("a", D1, "c1", 0)
    led.record_cost_explorer("a", D1, "S3", "1")
    [point] = deviation_series(led.entries("a"))
    assert point.factor is None and point.cumulative_factor is None
