"""Cost Explorer ingestion against moto's CE (results injected through moto's API), into a moto DynamoDB ledger."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from killswitch.spend.cost_explorer import CostExplorerIngester
from killswitch.spend.ledger import DynamoSpendStore, InMemorySpendStore, SpendLedger
from tests.aws.spend_support import ce_day, ce_group, ce_page, create_table, inject_ce_results

D1, D2, D3, D4 = (date(2026, 11, d) for d in (1, 2, 3, 4))
AGENTS = ["bot", "crawler"]


def g(agent: str, service: str, amount: str) -> dict[str, Any]:
    return ce_group([f"agent-name${agent}", service], amount)


def r(run: str, service: str, amount: str) -> dict[str, Any]:
    return ce_group([f"agent-run-id${run}", service], amount)


@pytest.fixture
def ledger() -> Iterator[SpendLedger]:
    with mock_aws():
        yield SpendLedger(DynamoSpendStore(create_table()))


def ce_totals(ledger: SpendLedger, agent: str) -> dict[date, Decimal]:
    return {d: s["cost_explorer"] for d, s in ledger.daily_totals(agent).items() if "cost_explorer" in s}


def test_multi_page_ingest_then_revised_reread(ledger: SpendLedger) -> None:
    # Run 1 (today = Nov 4, window Nov 1..3): agents query in two pages, then one runs query per agent (sorted).
    inject_ce_results(
        [
            ce_page(
                [
                    ce_day(D1, [g("bot", "EC2", "4.00"), g("bot", "S3", "1.00"), g("crawler", "EC2", "2.00"),
                                g("", "EC2", "9.00"), g("stranger", "EC2", "3.00")]),
                    ce_day(D2, [g("bot", "EC2", "5.00")]),
                ],
                next_token="page-2",
            ),
            ce_page([ce_day(D2, [g("crawler", "AWS Lambda", "0.50")]), ce_day(D3, [g("bot", "EC2", "6.00")])]),
            ce_page([ce_day(D1, [r("run-a", "EC2", "1.50"), r("", "EC2", "2.50")]),
                     ce_day(D2, [r("run-b", "EC2", "2.00")]), ce_day(D3, [])]),
            ce_page([ce_day(D1, []), ce_day(D2, []), ce_day(D3, [])]),
        ]
    )  # fmt: skip
    ce = boto3.client("ce", region_name="us-east-1")
    first = CostExplorerIngester(ledger, AGENTS, ce_client=ce).ingest(today=D4)
    assert (first.start, first.end, first.pages) == (D1, D4, 4)
    assert first.skipped == {"untagged": 1, "unknown_agent": 1, "runs_untagged": 1}
    assert first.failed_agents == []
    assert (first.agents["bot"].rows_written, first.agents["bot"].runs) == (4, 2)
    assert ce_totals(ledger, "bot") == {D1: Decimal(5), D2: Decimal(5), D3: Decimal(6)}
    assert ce_totals(ledger, "crawler") == {D1: Decimal(2), D2: Decimal("0.5")}
    assert ledger.entries("stranger") == []
    runs = [(e.day, e.run_id, e.amount_usd) for e in ledger.entries("bot", source="cost_explorer") if e.run_id]
    assert runs == [(D1, "run-a", Decimal("1.5")), (D2, "run-b", Decimal(2))]

    # Run 2 (today = Nov 5, window Nov 2..4): Nov 2 revised (bot up, crawler's Lambda gone), Nov 3 gains S3.
    inject_ce_results(
        [
            ce_page([
                ce_day(D2, [g("bot", "EC2", "5.50")]),
                ce_day(D3, [g("bot", "EC2", "6.00"), g("bot", "S3", "0.25")]),
                ce_day(D4, [g("bot", "EC2", "7.00"), g("crawler", "EC2", "1.00")]),
            ]),
            ce_page([ce_day(D2, [r("run-b", "EC2", "2.25")]), ce_day(D3, []), ce_day(D4, [])]),
            ce_page([ce_day(D2, []), ce_day(D3, []), ce_day(D4, [])]),
        ]
    )  # fmt: skip
    second = CostExplorerIngester(ledger, AGENTS, ce_client=ce).ingest(today=date(2026, 11, 5))
    assert second.agents["crawler"].rows_deleted == 1
    assert ce_totals(ledger, "bot") == {D1: Decimal(5), D2: Decimal("5.5"), D3: Decimal("6.25"), D4: Decimal(7)}
    assert ce_totals(ledger, "crawler") == {D1: Decimal(2), D4: Decimal(1)}
    d2 = ledger.entries("bot", D2, D2, source="cost_explorer")
    assert [(e.detail, e.amount_usd) for e in d2] == [("EC2", Decimal("5.5")), ("run:run-b#EC2", Decimal("2.25"))]


def test_same_window_twice_writes_each_fact_once(ledger: SpendLedger) -> None:
    inject_ce_results([ce_page([ce_day(D1, [g("bot", "EC2", "4.00")])])])
    ce = boto3.client("ce", region_name="us-east-1")
    for _ in range(2):  # moto answers the identical request identically: a retry of the same day
        CostExplorerIngester(ledger, ["bot"], ce_client=ce, lookback_days=1).ingest(today=D2)
    assert len(ledger.store.query("SPEND#bot")) == 1
    assert ce_totals(ledger, "bot") == {D1: Decimal(4)}


class FailingFor:
    """Wraps the CE client: the per-run query of one agent raises, everything else goes to moto."""

    def __init__(self, ce: Any, agent: str):
        self.ce, self.agent = ce, agent

    def get_cost_and_usage(self, **kwargs: Any) -> dict[str, Any]:
        if kwargs["GroupBy"][0]["Key"] == "agent-run-id" and kwargs["Filter"]["Tags"]["Values"] == [self.agent]:
            raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "slow down"}}, "GetCostAndUsage")
        return self.ce.get_cost_and_usage(**kwargs)


def test_one_agents_failure_does_not_lose_the_others(ledger: SpendLedger) -> None:
    inject_ce_results(
        [
            ce_page([ce_day(D1, [g("bot", "EC2", "4.00"), g("crawler", "EC2", "2.00")])]),
            ce_page([ce_day(D1, [r("run-c", "EC2", "1.00")])]),  # crawler's runs (bot's query fails first)
        ]
    )
    ce = FailingFor(boto3.client("ce", region_name="us-east-1"), "bot")
    summary = CostExplorerIngester(ledger, AGENTS, ce_client=ce, lookback_days=1).ingest(today=D2)
    assert summary.failed_agents == ["bot"]
    [error] = summary.agents["bot"].errors
    assert error.startswith("runs query: LimitExceededException:")
    assert "LimitExceededException" in summary.to_dict()["agents"]["bot"]["errors"][0]
    assert ce_totals(ledger, "bot") == {D1: Decimal(4)}  # the agents query still landed
    assert [e.run_id for e in ledger.entries("crawler") if e.run_id] == ["run-c"]


class BrokenStore(InMemorySpendStore):
    def put(self, item: dict[str, Any]) -> None:
        if item["pk"] == "SPEND#bot":
            raise RuntimeError("disk on fire")
        super().put(item)


def test_ledger_failure_of_one_agent_is_isolated() -> None:
    with mock_aws():
        inject_ce_results([ce_page([ce_day(D1, [g("bot", "EC2", "4.00"), g("crawler", "EC2", "2.00")])])])
        led = SpendLedger(BrokenStore())
        summary = CostExplorerIngester(
            led, AGENTS, ce_client=boto3.client("ce", region_name="us-east-1"), lookback_days=1
        ).ingest(today=D2)
    assert summary.failed_agents == ["bot"]
    assert summary.agents["bot"].errors == ["ledger: RuntimeError: disk on fire"]
    assert ce_totals(led, "crawler") == {D1: Decimal(2)}


def test_whole_query_failure_is_reported_per_agent() -> None:
    class Down:
        def get_cost_and_usage(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetCostAndUsage")

    summary = CostExplorerIngester(SpendLedger(InMemorySpendStore()), AGENTS, ce_client=Down()).ingest(today=D4)
    assert summary.failed_agents == AGENTS
    assert all(any("AccessDeniedException" in e for e in a.errors) for a in summary.agents.values())
