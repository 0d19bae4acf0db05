"""KillLedger contract, the same tests against DynamoDB (moto) and the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from killswitch.kill.ledger import DynamoKillLedger, InMemoryKillLedger, ItemKillLedger, KillRecord, ResourceEntry
from killswitch.kill.model import ASG, AgentState, KillStatus, Plan, Resource, ScalableTarget
from tests.aws.kill_support import create_table


@pytest.fixture(params=["dynamo", "memory"])
def ledger(request: pytest.FixtureRequest) -> Iterator[ItemKillLedger]:
    if request.param == "memory":
        yield InMemoryKillLedger()
        return
    with mock_aws():
        yield DynamoKillLedger(create_table("ledger"), region="us-east-1")


def test_dedupe_marker_is_claimed_once(ledger: ItemKillLedger) -> None:
    assert ledger.claim("alert-1", "k1") is None
    assert ledger.claim("alert-1", "k2") == "k1"
    ledger.release("alert-1")
    assert ledger.claim("alert-1", "k3") is None


def test_kill_record_and_resources_round_trip(ledger: ItemKillLedger) -> None:
    plan = Plan("a", "run-1", (), limit=10).summary()
    rec = KillRecord(
        "k1",
        "a",
        KillStatus.PLANNED,
        "2026-11-22T10:00:00+00:00",
        "2026-11-22T10:00:00+00:00",
        reason="r",
        run_id="run-1",
        alert={"amount_usd": 12.5},
        plan=plan,
    )
    ledger.put_kill(rec)
    ledger.set_status(rec, KillStatus.DONE)
    got = ledger.get_kill("k1")
    assert got is not None and got.status is KillStatus.DONE and got.plan == plan and got.alert == {"amount_usd": 12.5}
    assert [k.kill_id for k in ledger.list_kills("a")] == ["k1"] and ledger.get_kill("nope") is None
    group = Resource(
        ASG,
        "g",
        "us-west-2",
        {"agent-name": "a"},
        desired_count=2,
        min_size=1,
        max_size=4,
        suspended_processes=("AZRebalance",),
        scalable_target=ScalableTarget(1, 4, {"X": True}),
    )
    ledger.put_resource(
        ResourceEntry(
            "k1", group, "scale_to_zero", "why", outcome="success", suspended_by_us=["Launch"], attached_by_us=None
        )
    )
    (entry,) = ledger.resources("k1")
    assert entry.resource == group and entry.suspended_by_us == ["Launch"] and entry.changed and not entry.restored


def test_agent_state_and_rejected(ledger: ItemKillLedger) -> None:
    assert ledger.agent_state("a") is None
    ledger.set_agent_state("a", AgentState.THRIFT, "80% of budget")
    assert ledger.agent_state("a")["state"] == "THRIFT"
    ledger.record_rejected("not an alert", "m-1", "x" * 20_000)
    day = ledger._clock().date().isoformat()
    (item,) = ledger.rejected(day)
    assert item["reason"] == "not an alert" and len(item["raw"]) == 8_000


def test_a_huge_plan_keeps_its_counts_within_the_item_limit(ledger: ItemKillLedger) -> None:
    rows = [["stop", "ec2:instance", "us-east-1", f"i-{n:017d}", "instance running" * 4] for n in range(5000)]
    plan = {"agent": "a", "counts": {"stop": 5000}, "decisions": rows}
    ledger.put_kill(KillRecord("k2", "a", KillStatus.DONE, "t", "t", plan=plan))
    got = ledger.get_kill("k2")
    assert got is not None and got.plan == {"agent": "a", "counts": {"stop": 5000}, "truncated": True}


def test_batched_resource_writes_round_trip(ledger: ItemKillLedger) -> None:
    entries = [
        ResourceEntry("k9", Resource("ec2:instance", f"i-{n:04d}", "us-east-1", {"agent-name": "a"}), "stop", "why")
        for n in range(60)  # more than one BatchWriteItem (25 items)
    ]
    ledger.put_resources(entries)
    ledger.put_resources([])  # nothing to write is not an error
    got = ledger.resources("k9")
    assert sorted(e.resource.resource_id for e in got) == [f"i-{n:04d}" for n in range(60)]
    assert all(e.act == "stop" and e.outcome is None for e in got)


def test_batched_writes_use_batch_write_item() -> None:
    calls: list[str] = []
    with mock_aws():
        ledger = DynamoKillLedger(create_table("ledger"), region="us-east-1")
        client = ledger.store.client
        client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
        entries = [
            ResourceEntry("k1", Resource("ec2:instance", f"i-{n}", "us-east-1", {}), "stop", "r") for n in range(100)
        ]
        ledger.put_resources(entries)
    assert calls == ["BatchWriteItem"] * 4  # 100 items / 25 per call, not 100 PutItem calls
