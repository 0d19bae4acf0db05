"""Helpers for the spend tests: the stack's table shape on moto, store factories, Cost Explorer result injection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import boto3

from killswitch.testing.sim import create_ledger_table

TABLE = "killswitch-ledger"


def create_table(name: str = TABLE, region: str = "us-east-1") -> str:
    """Same key schema as the stack's table: pk/sk strings, on-demand, TTL on `expires_at`."""
    return create_ledger_table(boto3.client("dynamodb", region_name=region), name)


def inject_ce_results(results: Iterable[Mapping[str, Any]], account_id: str | None = None) -> None:
    """Queue GetCostAndUsage responses through moto's API (in-process, inside `mock_aws`): each distinct request
    takes the next queued response, in the order requests are made."""
    import requests

    body: dict[str, Any] = {"results": list(results)}
    if account_id:
        body["account_id"] = account_id
    resp = requests.post("http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results", json=body)
    assert resp.status_code == 201, resp.text


def ce_group(keys: list[str], amount: str) -> dict[str, Any]:
    return {"Keys": keys, "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}


def ce_day(day: date, groups: list[dict[str, Any]], estimated: bool = False) -> dict[str, Any]:
    return {
        "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
        "Total": {},
        "Groups": groups,
        "Estimated": estimated,
    }


def ce_page(days: list[dict[str, Any]], next_token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {
        "GroupDefinitions": [],
        "ResultsByTime": days,
        "DimensionValueAttributes": [],
    }
    if next_token:
        page["NextPageToken"] = next_token
    return page


# ----------------------------------------------------------------------------------------------------
# A deterministic month of spend for one agent, with the figures the report must show computed independently.
# ----------------------------------------------------------------------------------------------------

EC2 = "Amazon Elastic Compute Cloud - Compute"
BEDROCK = "Amazon Bedrock"
S3 = "Amazon Simple Storage Service"
LAMBDA = "AWS Lambda"


def month_services(i: int) -> dict[str, Decimal]:
    """Cost Explorer per-service cost of day i (0-based)."""
    return {
        EC2: Decimal("3.00") + Decimal("0.25") * (i % 5),
        BEDROCK: Decimal("2.00") + Decimal("0.50") * (i % 3),
        S3: Decimal("0.10"),
        LAMBDA: Decimal("0.05") if i % 2 else Decimal("0.00"),
    }


def month_run_cost(i: int) -> Decimal:
    """Cost Explorer per-run cost of run-<i> (its EC2 share)."""
    return Decimal("1.00") + Decimal("0.10") * i


def month_guard_charges(i: int) -> list[Decimal]:
    """Four guard charges on day i, all for run-<i>."""
    return [Decimal("0.40") + Decimal("0.01") * k for k in range(4)]


def simulate_month(ledger: Any, agent: str, start: date, days: int = 30) -> dict[str, Any]:
    """Write `days` days of CE (per service and per run), guard charges and two ACTUAL budget alerts (plus a
    FORECASTED one that is not spend); return the expected report figures."""
    ce_total = Decimal(0)
    guard_total = Decimal(0)
    by_service: dict[str, Decimal] = {}
    budget_latest = Decimal(0)
    for i in range(days):
        day = start + timedelta(days=i)
        for service, amount in month_services(i).items():
            ledger.record_cost_explorer(agent, day, service, amount)
            by_service[service] = by_service.get(service, Decimal(0)) + amount
            ce_total += amount
        ledger.record_cost_explorer(agent, day, EC2, month_run_cost(i), run_id=f"run-{i:02d}")
        for k, amount in enumerate(month_guard_charges(i)):
            ledger.record_guard_charge(
                agent, day, f"{agent}-{i:02d}-{k}", amount, estimated_usd=Decimal("0.60"), run_id=f"run-{i:02d}",
                workflow="summarize", name="anthropic.claude-haiku-4-5", input_tokens=1000 + k, output_tokens=200,
            )  # fmt: skip
            guard_total += amount
        if i in (11, 19):  # period-to-date figures as of that day
            budget_latest = ce_total
            threshold = Decimal(50 if i == 11 else 80)
            ledger.record_budget_alert(agent, day, f"killswitch-{agent}", "ACTUAL", threshold, ce_total, 500)
        if i == 21:
            ledger.record_budget_alert(agent, day, f"killswitch-{agent}", "FORECASTED", 500, 900, 500)
    runs = [month_run_cost(i) for i in range(days)]
    top = sorted(by_service.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return {
        "cost_explorer": ce_total,
        "guard": guard_total,
        "budget": budget_latest,
        "runs": days,
        "cost_per_run": sum(runs, Decimal(0)) / days,
        "top_services": top,
    }
