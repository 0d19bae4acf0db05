"""The meter on moto: invocation log batches from tagged agent roles stop that agent once its estimate crosses the
budget; other agents, untagged callers and bad lines change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import boto3
import pytest

from killswitch.kill.discover import Clients
from killswitch.meter.records import encode_subscription_event
from killswitch.spend.ledger import SOURCE_METER
from killswitch.testing import sim
from tests.aws import meter_support as M
from tests.aws.kill_support import aws, instance_state  # noqa: F401 (fixture)

EAST = "us-east-1"


@pytest.fixture
def fleet(aws: Clients) -> Iterator[dict[str, str]]:  # noqa: F811
    ids = {
        "mine": sim.run_instance(aws, EAST, sim.agent_tags(M.AGENT, Name="summarizer")),
        "other": sim.run_instance(aws, EAST, sim.agent_tags(M.OTHER)),
        "untagged": sim.run_instance(aws, EAST, {"Name": "untagged"}),
        "caller": M.role("summarizer-role", M.AGENT),
        "other_caller": M.role("crawler-role", M.OTHER),
        "untagged_caller": M.role("plain-role", None),
    }
    yield ids


def test_crossing_the_budget_from_logs_stops_the_agent(aws: Clients, fleet: dict[str, str]) -> None:  # noqa: F811
    w = M.wire(aws)
    first = w.meter.process_logs(M.logs_event(M.call(fleet["caller"], "r1")))
    assert first.priced == 1 and first.metered_usd == Decimal("6")
    assert [d.operation.value for d in first.decisions] == []  # $6 of $10: below warn (80%)
    assert instance_state(aws, EAST, fleet["mine"]) == "running"

    second = w.meter.process_logs(M.logs_event(M.call(fleet["caller"], "r2")))
    assert second.estimates[M.AGENT].total_usd == Decimal("12")
    (decision,) = second.decisions
    assert decision.operation.value == "kill" and decision.level == "kill"
    assert decision.reason == "METERED $12.00 is 120% of $10.00 budget, ≥ kill 100%"
    assert instance_state(aws, EAST, fleet["mine"]) == "stopped"
    assert instance_state(aws, EAST, fleet["other"]) == "running"
    assert instance_state(aws, EAST, fleet["untagged"]) == "running"
    (record,) = w.ledger.list_kills(M.AGENT)
    assert record.source == "killswitch.meter"
    assert w.publisher.events[-1]["operation"] == "kill"


def test_other_agents_and_untagged_callers_change_nothing(aws: Clients, fleet: dict[str, str]) -> None:  # noqa: F811
    w = M.wire(aws)
    records = [M.call(fleet["untagged_caller"], f"u{i}") for i in range(3)]
    # requestMetadata naming the agent is the caller's word: it never charges log-summarizer.
    records += [M.call(fleet["untagged_caller"], "claim", metadata={"agent-name": M.AGENT})]
    records += [M.call("arn:aws:sts::999999999999:assumed-role/summarizer-role/x", "foreign")]
    records += [M.call(fleet["other_caller"], "o1", input_tokens=100_000, output_tokens=0)]  # $0.30
    report = w.meter.process_logs(M.logs_event(*records))
    assert report.skipped["untagged_caller"] == 4 and report.skipped["other_account"] == 1
    assert report.priced == 1
    assert w.spend.entries(M.AGENT) == []
    (crawler_fact,) = w.spend.entries(M.OTHER, source=SOURCE_METER)
    assert crawler_fact.amount_usd == Decimal("0.3")
    assert report.decisions == []
    assert instance_state(aws, EAST, fleet["mine"]) == "running"
    assert instance_state(aws, EAST, fleet["other"]) == "running"


def test_bad_lines_are_counted_and_the_rest_is_priced(aws: Clients, fleet: dict[str, str]) -> None:  # noqa: F811
    w = M.wire(aws)
    good = M.call(fleet["caller"], "good")
    no_tokens = M.call(fleet["caller"], "nt")
    del no_tokens["output"]["outputTokenCount"]
    unknown_model = {**M.call(fleet["caller"], "um"), "modelId": "acme.mystery-model-v1:0"}
    gone = M.call(f"arn:aws:sts::{M.ACCOUNT}:assumed-role/deleted-role/s", "gone")
    event = encode_subscription_event(
        [
            {"id": "e1", "timestamp": 0, "message": "{not json"},
            {"id": "e2", "timestamp": 0, "message": M._dump(no_tokens)},
            {"id": "e3", "timestamp": 0, "message": M._dump(unknown_model)},
            {"id": "e4", "timestamp": 0, "message": M._dump(gone)},
            {"id": "e5", "timestamp": 0, "message": M._dump(good)},
        ]
    )
    report = w.meter.process_logs(event)
    assert report.records == 5 and report.priced == 1
    assert report.skipped == {"malformed_json": 1, "missing_tokens": 1, "unknown_model": 1, "no_such_entity": 1}
    assert report.unknown_models == {"acme.mystery-model-v1:0": 1}
    assert sum(e.amount_usd for e in w.spend.entries(M.AGENT)) == Decimal("6")


def test_a_redelivered_batch_counts_once_and_kills_once(aws: Clients, fleet: dict[str, str]) -> None:  # noqa: F811
    w = M.wire(aws)
    event = M.logs_event(M.call(fleet["caller"], "r1"), M.call(fleet["caller"], "r2"))
    first = w.meter.process_logs(event)
    again = w.meter.process_logs(event)
    assert len(w.spend.entries(M.AGENT, source=SOURCE_METER)) == 1
    assert again.estimates[M.AGENT].total_usd == Decimal("12")
    assert first.decisions[0].operation.value == "kill"
    assert again.decisions[0].operation.value == "duplicate"


def test_dry_run_writes_nothing_and_changes_nothing(aws: Clients, fleet: dict[str, str]) -> None:  # noqa: F811
    w = M.wire(aws)
    report = w.meter.process_logs(
        M.logs_event(M.call(fleet["caller"], "r1"), M.call(fleet["caller"], "r2")), dry_run=True
    )
    assert report.decisions[0].dry_run and report.decisions[0].operation.value == "kill"
    assert w.spend.entries(M.AGENT) == []
    assert instance_state(aws, EAST, fleet["mine"]) == "running"


def test_run_id_from_request_metadata_is_kept_but_never_picks_the_agent(aws: Clients, fleet: dict[str, str]) -> None:  # noqa: F811
    w = M.wire(aws)
    w.meter.process_logs(M.logs_event(M.call(fleet["caller"], "r1", run_id="run-1", input_tokens=1000)))
    (fact,) = w.spend.entries(M.AGENT, source=SOURCE_METER)
    assert fact.run_id == "run-1" and fact.kind == "bedrock" and fact.input_tokens == 1000


def test_a_control_message_is_not_priced(aws: Clients) -> None:  # noqa: F811
    import base64
    import gzip
    import json

    data = base64.b64encode(gzip.compress(json.dumps({"messageType": "CONTROL_MESSAGE", "logEvents": []}).encode()))
    report = M.wire(aws).meter.process_logs({"awslogs": {"data": data.decode()}})
    assert report.records == 0 and "control message" in report.note
    assert boto3.client("iam").list_roles()["Roles"] == []
