"""The ledger's behaviour, run identically on the in-memory store and on the DynamoDB store (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from moto import mock_aws

from killswitch.spend.ledger import (
    DynamoSpendStore,
    InMemorySpendStore,
    SpendLedger,
    SpendStore,
    read_agent_state,
)
from tests.aws.spend_support import create_table

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "dynamo"])
def store(request: pytest.FixtureRequest) -> Iterator[SpendStore]:
    if request.param == "memory":
        yield InMemorySpendStore()
        return
    with mock_aws():
        yield DynamoSpendStore(create_table())


@pytest.fixture
def ledger(store: SpendStore) -> SpendLedger:
    return SpendLedger(store, clock=lambda: NOW)


def test_budget_alert_item_matches_key_contract(store: SpendStore, ledger: SpendLedger) -> None:
    ledger.record_budget_alert("bot", D1, "killswitch-bot", "ACTUAL", 400.0, 412.37, 500.0)
    [item] = store.query("SPEND#bot")
    assert item["sk"] == "DAY#2026-11-01#budget#killswitch-bot#ACTUAL#400"
    assert item["amount_usd"] == Decimal("412.37")
    assert item["budgeted_usd"] == Decimal("500")
    assert item["threshold_usd"] == Decimal("400")
    assert item["currency"] == "USD"
    assert item["recorded_at"] == "2026-11-03T12:00:00+00:00"
    assert item["expires_at"] == int(datetime(2027, 12, 7, tzinfo=UTC).timestamp())


def test_same_alert_twice_is_one_item_with_latest_figure(store: SpendStore, ledger: SpendLedger) -> None:
    for amount in (410.0, 412.5):
        ledger.record_budget_alert("bot", D1, "b", "ACTUAL", 400, amount, 500)
    ledger.record_budget_alert("bot", D1, "b", "ACTUAL", 400.00, 412.5, 500)  # 400 vs 400.00: same fact
    [entry] = ledger.entries("bot")
    assert entry.amount_usd == Decimal("412.5")
    assert len(store.query("SPEND#bot")) == 1


def test_guard_charge_retry_overwrites_and_keeps_genai_attributes(store: SpendStore, ledger: SpendLedger) -> None:
    for _ in range(3):
        ledger.record_guard_charge(
            "bot", D2, "ch-1", 0.0123, estimated_usd=0.02, run_id="r1", workflow="wf",
            name="claude", input_tokens=1200, output_tokens=300,
        )  # fmt: skip
    [item] = store.query("GUARD#bot", "DAY#2026-11-02#guard#")  # the agent-writable partition
    assert item["sk"] == "DAY#2026-11-02#guard#ch-1"
    assert item["gen_ai.usage.input_tokens"] == 1200
    assert item["gen_ai.usage.output_tokens"] == 300
    assert item["model"] == "claude"
    assert item["estimated_usd"] == Decimal("0.02")
    [entry] = ledger.entries("bot", source="guard")
    assert (entry.run_id, entry.workflow, entry.kind, entry.input_tokens) == ("r1", "wf", "llm", 1200)


def test_cost_explorer_reread_overwrites(store: SpendStore, ledger: SpendLedger) -> None:
    ledger.record_cost_explorer("bot", D1, "Amazon EC2", 10.0)
    ledger.record_cost_explorer("bot", D1, "Amazon EC2", 12.75)
    ledger.record_cost_explorer("bot", D1, "Amazon EC2", 3.0, run_id="r1")
    entries = ledger.entries("bot", source="cost_explorer")
    assert [(e.detail, e.amount_usd) for e in entries] == [
        ("Amazon EC2", Decimal("12.75")),
        ("run:r1#Amazon EC2", Decimal("3")),
    ]


def test_sources_are_kept_apart_and_daily_totals_follow_the_rules(ledger: SpendLedger) -> None:
    ledger.record_cost_explorer("bot", D1, "EC2", "5.10")
    ledger.record_cost_explorer("bot", D1, "Bedrock", "2.00")
    ledger.record_cost_explorer("bot", D1, "Bedrock", "1.50", run_id="r1")  # breakdown: not added again
    ledger.record_guard_charge("bot", D1, "a", 1.25)
    ledger.record_guard_charge("bot", D1, "b", 0.75)
    ledger.record_budget_alert("bot", D1, "b", "ACTUAL", 50, 60.0, 100)
    ledger.record_budget_alert("bot", D1, "b", "ACTUAL", 80, 81.0, 100)
    ledger.record_budget_alert("bot", D1, "b", "FORECASTED", 100, 140.0, 100)  # not spend
    ledger.record_guard_charge("bot", D2, "c", 4)
    assert ledger.daily_totals("bot", D1, D3) == {
        D1: {"cost_explorer": Decimal("7.1"), "guard": Decimal("2"), "budget": Decimal("81")},
        D2: {"guard": Decimal("4")},
    }


def test_entries_date_range_is_inclusive_and_agents_are_isolated(ledger: SpendLedger) -> None:
    for d in (D1, D2, D3):
        ledger.record_guard_charge("bot", d, f"c-{d.day}", d.day)
        ledger.record_guard_charge("other", d, f"c-{d.day}", 100)
    assert [e.day for e in ledger.entries("bot", since=D2)] == [D2, D3]
    assert [e.day for e in ledger.entries("bot", until=D2)] == [D1, D2]
    assert [e.day for e in ledger.entries("bot", D2, D2)] == [D2]
    assert [e.day for e in ledger.entries("bot", D1, D3, source="guard")] == [D1, D2, D3]
    assert ledger.entries("bot", D1, D3, source="budget") == []
    assert sum(e.amount_usd for e in ledger.entries("bot")) == Decimal(6)


def test_sync_cost_explorer_day_drops_services_a_revision_removed(ledger: SpendLedger) -> None:
    ledger.sync_cost_explorer_day("bot", D1, {(None, "EC2"): "4", (None, "S3"): "1"})
    ledger.sync_cost_explorer_day("bot", D1, {("r1", "EC2"): "2"}, runs=True)
    written, deleted = ledger.sync_cost_explorer_day("bot", D1, {(None, "EC2"): "4.5"})
    assert (written, deleted) == (1, 1)
    assert [(e.detail, e.amount_usd) for e in ledger.entries("bot")] == [
        ("EC2", Decimal("4.5")),
        ("run:r1#EC2", Decimal("2")),
    ]


def test_sync_refuses_mixed_rows_before_writing(store: SpendStore, ledger: SpendLedger) -> None:
    with pytest.raises(ValueError, match="run_id"):
        ledger.sync_cost_explorer_day("bot", D1, {(None, "EC2"): "1", ("r1", "EC2"): "2"})
    with pytest.raises(ValueError, match="run_id"):
        ledger.sync_cost_explorer_day("bot", D1, {(None, "EC2"): "1"}, runs=True)
    assert store.query("SPEND#bot") == []


def test_query_follows_every_page(store: SpendStore) -> None:
    """Both the table and its twin page (`Limit`, `LastEvaluatedKey`): the ledger reads every page of either."""
    calls: list[int] = []
    store.page_size = 4  # 25 items -> 7 pages through LastEvaluatedKey
    real_query = store.client.query

    def counting_query(**kwargs: object) -> dict[str, object]:
        calls.append(1)
        return real_query(**kwargs)  # type: ignore[no-any-return]

    store.client.query = counting_query
    ledger = SpendLedger(store)
    for i in range(25):
        ledger.record_guard_charge("bot", D1 if i % 2 else D2, f"charge-{i:03d}", "0.001")
    assert len(store.query("GUARD#bot")) == 25
    assert len(calls) >= 7
    assert len(ledger.entries("bot", D1, D2)) == 25
    assert ledger.daily_totals("bot", D1, D1) == {D1: {"guard": Decimal("0.012")}}


def test_agent_state_item_is_read_when_present(store: SpendStore) -> None:
    assert read_agent_state(store, "bot") is None
    store.put({"pk": "AGENT#bot", "sk": "STATE", "state": "KILLED"})
    store.put({"pk": "AGENT#bot", "sk": "STATEMENT", "state": "ok"})
    assert read_agent_state(store, "bot") == "killed"


def test_sort_key_over_dynamodb_limit_is_refused(store: SpendStore, ledger: SpendLedger) -> None:
    with pytest.raises(ValueError, match="1024"):
        ledger.record_guard_charge("bot", D1, "c" * 1100, 1)
    assert store.query("GUARD#bot") == []


def test_floats_never_reach_the_store(store: SpendStore) -> None:
    with pytest.raises(TypeError):
        store.put({"pk": "SPEND#x", "sk": "DAY#2026-11-01#guard#c", "amount_usd": 0.1})


def test_guard_charges_live_in_the_agents_guard_partition_and_read_back_in_order(
    store: SpendStore, ledger: SpendLedger
) -> None:
    """The agent's role may only write `GUARD#<agent>` (LeadingKeys): its charges go there, the facts that decide a
    kill (budget, Cost Explorer) stay in `SPEND#<agent>`, and the ledger reads both back as one ordered list."""
    ledger.record_guard_charge("bot", D2, "ch-1", "0.5")
    ledger.record_budget_alert("bot", D1, "killswitch-bot", "ACTUAL", 400, 410, 500)
    ledger.record_cost_explorer("bot", D2, "EC2", "3")
    assert [i["sk"] for i in store.query("GUARD#bot")] == ["DAY#2026-11-02#guard#ch-1"]
    assert {i["source"] for i in store.query("SPEND#bot")} == {"budget", "cost_explorer"}
    assert [(e.day, e.source) for e in ledger.entries("bot")] == [
        (D1, "budget"),
        (D2, "cost_explorer"),
        (D2, "guard"),
    ]
    assert [e.detail for e in ledger.entries("bot", D2, D2, source="guard")] == ["ch-1"]
    assert ledger.daily_totals("bot", D2, D2) == {D2: {"cost_explorer": Decimal("3"), "guard": Decimal("0.5")}}
