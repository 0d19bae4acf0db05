"""The estimate's rules (no double counting), thresholds, burn rate, and compute prices. Pure."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from botocore.stub import ANY, Stubber

from killswitch.config import BudgetConfig, BurnRateConfig, ConfigError, Period, parse_config
from killswitch.meter import estimate as E
from killswitch.meter.compute import MemoryPriceCache, PriceListPrices, RunningUnit, SnapshotPrices, accrue
from killswitch.spend.ledger import SpendEntry

D1, D2, D3 = date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)


def fact(day: date, source: str, amount: str, run: str | None = None, at: str = "", detail: str = "x") -> SpendEntry:
    return SpendEntry("a", day, source, f"{detail}{run}{amount}", Decimal(amount), recorded_at=at, run_id=run)


def test_cost_explorer_days_are_authoritative_and_later_days_take_the_larger_source_per_run() -> None:
    entries = [
        fact(D1, "cost_explorer", "10"),
        fact(D1, "meter", "99"),  # already in Cost Explorer's day: ignored
        fact(D1, "guard", "99"),
        fact(D1, "cost_explorer", "4", run="r0"),  # per-run breakdown: not added again
        fact(D2, "meter", "5", run="r1"),
        fact(D2, "guard", "4", run="r1"),  # the same calls seen by both: counted once (the larger)
        fact(D2, "guard", "2", run="r2"),  # only the guard saw run r2
        fact(D3, "meter", "3"),  # no run id on either side: one bucket
        fact(D3, "guard", "1"),
        fact(D3, "budget", "500"),  # budget alerts are not part of the estimate
    ]
    est = E.estimate("a", entries, date(2026, 11, 1), D3)
    assert est.cost_explorer_through == D1 and est.cost_explorer_usd == Decimal("10")
    assert est.total_usd == Decimal("10") + 5 + 2 + 3
    assert (est.meter_usd, est.guard_usd, est.overlap_usd) == (Decimal(8), Decimal(7), Decimal(5))


def test_without_cost_explorer_every_day_is_meter_and_guard() -> None:
    est = E.estimate("a", [fact(D1, "meter", "1"), fact(D2, "guard", "2", run="r")], D1, D3)
    assert est.cost_explorer_through is None and est.total_usd == Decimal(3)


def test_days_outside_the_period_do_not_count() -> None:
    est = E.estimate("a", [fact(date(2026, 10, 31), "meter", "100"), fact(D1, "meter", "1")], date(2026, 11, 1), D3)
    assert est.total_usd == Decimal(1)


@pytest.mark.parametrize(
    ("period", "day", "start", "key"),
    [
        (Period.MONTHLY, D3, date(2026, 11, 1), "2026-11"),
        (Period.DAILY, D3, D3, "2026-11-22"),
        (Period.QUARTERLY, D3, date(2026, 10, 1), "2026-Q4"),
        (Period.ANNUALLY, D3, date(2026, 1, 1), "2026"),
    ],
)
def test_periods(period: Period, day: date, start: date, key: str) -> None:
    assert E.period_start(period, day) == start and E.period_key(period, day) == key


def _agent(burn: BurnRateConfig | None = None):  # type: ignore[no-untyped-def]
    from killswitch.config import AgentConfig

    return AgentConfig(name="a", budget=BudgetConfig(amount_usd=100, warn_at_pct=80, kill_at_pct=100), burn_rate=burn)


def test_crossing_thresholds() -> None:
    a = _agent()
    assert E.crossing(Decimal("79.99"), a) is None
    assert E.crossing(Decimal("80"), a) == E.Crossing("warn", 80.0)
    assert E.crossing(Decimal("100"), a) == E.Crossing("kill", 100.0)


def test_burn_rate_window_and_limit() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    entries = [
        fact(D3, "meter", "30", at="2026-11-22T11:30:00+00:00"),
        fact(D3, "meter", "25", at="2026-11-22T11:59:00+00:00", detail="y"),
        fact(D3, "guard", "20", at="2026-11-22T11:45:00+00:00"),  # same bucket as the meter: larger-of
        fact(D3, "meter", "90", at="2026-11-22T10:59:59+00:00", detail="z"),  # outside the hour
    ]
    spent = E.window_spend(entries, now, timedelta(minutes=60))
    assert spent == Decimal(55)
    assert E.burn_rate_exceeded(spent, _agent(BurnRateConfig(window_minutes=60, max_pct_of_budget=50))) == 55.0
    assert E.burn_rate_exceeded(spent, _agent(BurnRateConfig(window_minutes=60, max_pct_of_budget=60))) is None
    assert E.burn_rate_exceeded(spent, _agent()) is None  # off by default


def test_dedupe_keys_are_per_agent_period_threshold_and_burn_slot() -> None:
    assert E.meter_dedupe_key("a", "2026-11", "kill") == E.meter_dedupe_key("a", "2026-11", "kill")
    assert (
        len(
            {
                E.meter_dedupe_key(*k)
                for k in [
                    ("a", "2026-11", "kill"),
                    ("a", "2026-11", "warn"),
                    ("a", "2026-12", "kill"),
                    ("b", "2026-11", "kill"),
                ]
            }
        )
        == 4
    )
    t = datetime(2026, 11, 22, 12, 10, tzinfo=UTC)
    assert E.burn_dedupe_key("a", t, 60) == E.burn_dedupe_key("a", t + timedelta(minutes=40), 60)
    assert E.burn_dedupe_key("a", t, 60) != E.burn_dedupe_key("a", t + timedelta(minutes=60), 60)


def test_burn_rate_config_is_validated_with_the_field_path() -> None:
    text = (
        "regions: [us-east-1]\nagents:\n  - name: a\n    budget: {amount_usd: 10}\n    burn_rate: {window_minutes: 1}\n"
    )
    with pytest.raises(ConfigError) as err:
        parse_config(text, "x.yaml")
    assert "agents[0].burn_rate.window_minutes" in str(err.value) and "x.yaml:5" in str(err.value)


def _product(usd: str) -> str:
    return json.dumps({"terms": {"OnDemand": {"T": {"priceDimensions": {"D": {"pricePerUnit": {"USD": usd}}}}}}})


def test_price_list_answers_are_cached_for_a_day_and_the_snapshot_fills_gaps() -> None:
    client = boto3.client("pricing", "us-east-1")
    stub = Stubber(client)
    stub.add_response(
        "get_products",
        {"PriceList": [_product("0.0000000000"), _product("0.1234")]},
        {"ServiceCode": "AmazonEC2", "Filters": ANY, "MaxResults": 10},
    )
    stub.add_response("get_products", {"PriceList": []}, {"ServiceCode": "AmazonEC2", "Filters": ANY, "MaxResults": 10})
    stub.add_response(
        "get_products", {"PriceList": [_product("0.2")]}, {"ServiceCode": "AmazonEC2", "Filters": ANY, "MaxResults": 10}
    )
    now = [datetime(2026, 11, 22, tzinfo=UTC)]
    with stub:
        prices = PriceListPrices(client, MemoryPriceCache(), clock=lambda: now[0])
        assert prices.hourly("us-east-1", "ec2:m5.large") == Decimal("0.1234")
        assert prices.hourly("us-east-1", "ec2:m5.large") == Decimal("0.1234")  # cached
        assert prices.hourly("us-east-1", "ec2:t3.micro") == Decimal("0.0104")  # API silent: snapshot
        now[0] += timedelta(days=1, seconds=1)
        assert prices.hourly("us-east-1", "ec2:m5.large") == Decimal("0.2")  # a day later: asked again
        assert prices.hourly("us-east-1", "sagemaker:ml.inf2.48xlarge") is None  # nothing knows it
    assert prices.calls == 3
    stub.assert_no_pending_responses()


def test_accrual_starts_at_launch_and_skips_unpriced_units() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    units = [
        RunningUnit("a", "ec2_instance", "i-1", "us-east-1", {"ec2:m5.large": 1}),
        RunningUnit(
            "a", "ec2_instance", "i-2", "us-east-1", {"ec2:m5.large": 1}, launched_at=now - timedelta(minutes=15)
        ),
        RunningUnit("a", "fargate_task", "t-1", "us-east-1", {"fargate:vcpu": 1, "fargate:gb": 2}),
        RunningUnit("a", "ec2_instance", "i-3", "us-east-1", {"ec2:x9.mega": 1}),
    ]
    got = accrue(units, SnapshotPrices(), now - timedelta(hours=1), now, timedelta(minutes=5))
    assert [a.amount_usd for a in got] == [
        Decimal("0.096"),
        Decimal("0.024"),
        Decimal("0.04048") + 2 * Decimal("0.004445"),
        None,
    ]


def test_reconciliation_per_day_and_cumulative() -> None:
    entries = [
        fact(D1, "meter", "9"),
        fact(D1, "cost_explorer", "10"),
        fact(D1, "cost_explorer", "99", run="r"),  # per-run breakdown: not the bill
        fact(D2, "meter", "11"),
        fact(D2, "cost_explorer", "10"),
        fact(D3, "meter", "50"),  # Cost Explorer has no figure yet: not compared
    ]
    days = E.reconcile(entries)
    assert [(d.day, d.error_pct) for d in days] == [(D1, Decimal("-10.00")), (D2, Decimal("10.00"))]
    assert E.meter_error_pct(entries) == Decimal("0.00")
    assert E.meter_error_pct([fact(D1, "meter", "1")]) is None


def test_the_report_shows_the_meter_error_next_to_the_guard_factor() -> None:
    from killswitch.cli.report import _accuracy
    from killswitch.spend.report import build_agent_report

    entries = [
        fact(D1, "meter", "12"),
        fact(D1, "guard", "5"),
        fact(D1, "cost_explorer", "10"),
    ]
    r = build_agent_report(_agent(), entries, date(2026, 11, 1), D3)
    assert r.meter_error_pct == Decimal("20.00") and r.to_dict()["meter_error_pct"] == 20.0
    assert _accuracy(r) == "+20.00% · ×2.00"
    assert _accuracy(build_agent_report(_agent(), [], date(2026, 11, 1), D3)) == "- · -"
