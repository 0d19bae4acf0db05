"""A simulated month in the DynamoDB ledger: the report's figures equal what was written, by the documented rules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
from moto import mock_aws

from killswitch.config import AgentConfig
from killswitch.spend.economics import deviation_series, run_costs
from killswitch.spend.ledger import DynamoSpendStore, SpendLedger
from killswitch.spend.report import build_reports, cents
from tests.aws.spend_support import BEDROCK, EC2, create_table, month_guard_charges, month_services, simulate_month

START, END = date(2026, 10, 1), date(2026, 10, 30)
AGENT = AgentConfig.model_validate({"name": "bot", "budget": {"amount_usd": 250, "warn_at_pct": 80}})


@pytest.fixture(scope="module")
def month() -> Iterator[tuple[SpendLedger, dict]]:
    # module scope runs before conftest's per-test fake AWS env: set the same fakes here
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for name, value in (
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ):
            mp.setenv(name, value)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        ledger = SpendLedger(DynamoSpendStore(create_table()))
        expected = simulate_month(ledger, "bot", START)
        simulate_month(ledger, "other", START, days=5)  # another agent must not leak in
        yield ledger, expected


def test_month_report_matches_the_ledger(month: tuple[SpendLedger, dict]) -> None:
    ledger, expected = month
    [r] = build_reports(ledger, [AGENT], today=END)
    assert (r.since, r.until) == (START, END)
    assert (
        r.cost_explorer_usd == expected["cost_explorer"] == Decimal("183.75")
    )  # EC2 105 + Bedrock 75 + S3 3 + Lambda 0.75
    assert r.guard_usd == expected["guard"] == Decimal("49.8")
    assert r.budget_usd == expected["budget"]  # latest ACTUAL figure (day 20), not a sum, not the FORECASTED one
    assert r.budget_as_of == date(2026, 10, 20)
    assert (r.spend_source, r.spend_usd) == ("cost_explorer", expected["cost_explorer"])
    assert r.pct_of_budget == Decimal("73.5")  # 183.75 / 250
    assert r.state == "ok"
    assert r.runs == expected["runs"] == 30
    assert r.cost_per_run_usd == cents(expected["cost_per_run"]) == Decimal("2.45")
    assert r.top_services == expected["top_services"]
    assert [s for s, _ in r.top_services] == [EC2, BEDROCK, "Amazon Simple Storage Service"]
    # every day of the month is in the daily totals, with the per-source rules
    assert len(r.daily) == 30
    assert r.daily[date(2026, 10, 3)] == {
        "cost_explorer": sum(month_services(2).values()),
        "guard": sum(month_guard_charges(2)),
    }
    assert r.daily[date(2026, 10, 20)]["budget"] == expected["budget"]


def test_month_window_and_deviation(month: tuple[SpendLedger, dict]) -> None:
    ledger, _ = month
    [half] = build_reports(ledger, [AGENT], today=END, since=START, until=date(2026, 10, 15))
    assert half.cost_explorer_usd == sum(sum(month_services(i).values()) for i in range(15))
    assert half.budget_usd == ledger.entries("bot", date(2026, 10, 12), date(2026, 10, 12), "budget")[0].amount_usd
    series = deviation_series(ledger.entries("bot", START, END), services={BEDROCK})
    assert len(series) == 30
    assert series[0].factor == Decimal("1.2048")  # 2.00 Bedrock / 1.66 guard
    assert series[-1].cumulative_factor == Decimal(
        sum(month_services(i)[BEDROCK] for i in range(30)) / Decimal("49.8")
    ).quantize(Decimal("0.0001"))
    runs = run_costs(ledger.entries("bot"))
    assert runs[0].run_id == "run-29" and runs[0].cost_usd == Decimal("3.9")
    assert all(r.charges == 4 and r.guard_usd == Decimal("1.66") for r in runs)
