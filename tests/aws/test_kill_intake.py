"""Issue 15 items 1-3 through the kill Lambda handler on moto: the intake a message came by decides what it may say.

Every refusal is a `rejected` result with its reason, a `REJECTED#` ledger record and an `AlertsRejected` metric,
and never raises (SNS/SQS would retry it forever); the kill stays.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from killswitch.config import KillSwitchConfig
from killswitch.handlers import kill as kill_handler
from killswitch.kill.discover import Clients
from killswitch.kill.ledger import DynamoKillLedger
from killswitch.testing import sim
from tests.aws.intake_support import (
    ALERTS_TOPIC,
    GUARD_QUEUE,
    TABLE,
    envelope,
    guard_event,
    guard_topic,
    letter,
    rejected_items,
    run,
    sns_record,
    sqs_record,
)
from tests.aws.kill_support import AGENT, EAST, OTHER, aws, build_fleet, create_table, instance_state
from tests.aws.test_kill_handler import Context

__all__ = ["aws"]


@pytest.fixture
def handler_env(aws: Clients, example_config: KillSwitchConfig, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    create_table(TABLE)
    events = boto3.client("sns", EAST).create_topic(Name="killswitch-events")["TopicArn"]
    monkeypatch.setenv("KILLSWITCH_TABLE", TABLE)
    monkeypatch.setenv("KILLSWITCH_EVENTS_TOPIC_ARN", events)
    monkeypatch.setenv("KILLSWITCH_KILL_TOPIC_ARN", ALERTS_TOPIC)  # pins account and region of every intake
    monkeypatch.setenv("KILLSWITCH_CONFIG_JSON", example_config.to_json())
    kill_handler.reset()
    yield
    kill_handler.reset()


def budget_kill(amount: float = 530.0, message_id: str = "b-1") -> dict[str, Any]:
    message, subject = letter("killswitch-log-summarizer", amount, 500.0, 500.0)
    return sns_record(ALERTS_TOPIC, message, message_id, subject)


RESTORE_BODIES = [
    {"source": "killswitch.cli", "action": "restore", "agent": AGENT, "reason": "ops said so"},
    {"source": "killswitch.guard", "action": "restore", "agent": AGENT, "reason": "cap raised"},
    {"source": "test", "action": "restore", "agent": AGENT},
    {"source": "killswitch.cli", "action": "approve", "agent": AGENT, "reason": "go", "kill_id": "k1"},
    {"action": "restore", "agent": AGENT, "reason": "no source"},
]


@pytest.mark.parametrize("body", RESTORE_BODIES, ids=lambda b: f"{b.get('source')}-{b['action']}")
@pytest.mark.parametrize("via", ["alerts topic", "own guard topic", "guard queue", "direct"])
def test_no_message_restores_or_approves(
    aws: Clients, handler_env: None, capsys: pytest.CaptureFixture[str], body: dict[str, Any], via: str
) -> None:
    plain = sim.run_instance(aws, EAST, sim.agent_tags(AGENT))  # one instance is enough to hold a kill
    (kill,) = run(budget_kill())
    assert kill["operation"] == "kill" and instance_state(aws, EAST, plain) == "stopped"
    message = json.dumps(body)
    if via == "alerts topic":
        results = run(sns_record(ALERTS_TOPIC, message, "r-1"))
    elif via == "own guard topic":
        results = run(sns_record(guard_topic(AGENT), message, "r-1"))
    elif via == "guard queue":
        results = run(sqs_record(envelope(guard_topic(AGENT), message, "r-1")))
    else:
        results = kill_handler.handler(body, Context())["results"]
    (result,) = results
    assert result["operation"] == "rejected"
    assert "with their own credentials; the kill stays" in result["reason"]
    assert instance_state(aws, EAST, plain) == "stopped"
    assert DynamoKillLedger(TABLE).agent_state(AGENT)["state"] == "KILLED"
    (record,) = rejected_items()
    assert record["reason"] == result["reason"] and record["message_id"] in ("r-1", "")
    assert '"AlertsRejected"' in capsys.readouterr().out


def test_a_forged_letter_on_a_guard_topic_does_not_swallow_the_real_one(aws: Clients, handler_env: None) -> None:
    """Issue 15 item 2: a fake letter below the kill threshold used to be marked handled, and the real letter that
    followed was dropped as its duplicate. Agents can only reach their guard topic, which carries no letters."""
    f = build_fleet(aws)
    fake, subject = letter("killswitch-log-summarizer", 10.0, 500.0, 500.0)
    (forged,) = run(sns_record(guard_topic(AGENT), fake, "fake-1", subject))
    assert forged["operation"] == "rejected" and "guard topics carry guard events only" in forged["reason"]
    (real,) = run(budget_kill())
    assert real["operation"] == "kill" and instance_state(aws, EAST, f["plain"]) == "stopped"


@pytest.mark.parametrize(
    "body",
    [
        {"source": "killswitch.cli", "action": "kill", "agent": AGENT, "reason": "cli"},
        {"source": "killswitch.guard", "action": "kill", "agent": AGENT, "reason": "cap"},
        {"source": "test", "action": "kill", "agent": AGENT},
    ],
)
def test_our_events_are_refused_on_the_alerts_topic(aws: Clients, handler_env: None, body: dict[str, Any]) -> None:
    f = build_fleet(aws)
    (result,) = run(sns_record(ALERTS_TOPIC, json.dumps(body), "e-1"))
    assert result["operation"] == "rejected"
    assert "on the alerts topic (AWS Budgets and Cost Anomaly Detection only)" in result["reason"]
    assert instance_state(aws, EAST, f["plain"]) == "running"
    assert len(rejected_items()) == 1


def test_a_guard_event_speaks_only_for_its_own_agent(aws: Clients, handler_env: None) -> None:
    """Issue 15 item 3: the topic names the agent; a body naming another agent is refused."""
    f = build_fleet(aws)
    (forged,) = run(sns_record(guard_topic(OTHER), guard_event(AGENT), "g-1"))
    assert forged["operation"] == "rejected"
    assert f"guard event for agent '{AGENT}' on the guard topic of agent '{OTHER}'" in forged["reason"]
    (queued,) = run(sqs_record(envelope(guard_topic(OTHER), guard_event(AGENT), "g-2")))
    assert queued["operation"] == "rejected" and "speaks only for its own agent" in queued["reason"]
    assert instance_state(aws, EAST, f["plain"]) == "running"
    assert DynamoKillLedger(TABLE).agent_state(AGENT) is None
    # Through its own topic (here through the guard intake queue, as deployed) the guard kills its agent.
    out = kill_handler.handler(
        {"Records": [sqs_record(envelope(guard_topic(AGENT), guard_event(AGENT), "g-3"))]}, Context()
    )
    ((own,), failures) = out["results"], out["batchItemFailures"]
    assert own["operation"] == "kill" and own["agent"] == AGENT and failures == []
    assert instance_state(aws, EAST, f["plain"]) == "stopped"
    assert instance_state(aws, EAST, f["other"]) == "running"
    assert len(rejected_items()) == 2


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (sns_record(guard_topic(AGENT, account="444455556666"), guard_event(AGENT)), "not one of the kill switch's"),
        (sns_record("arn:aws:sns:us-east-1:123456789012:someone-else", guard_event(AGENT)), "not one of the kill"),
        (sqs_record(envelope(ALERTS_TOPIC, guard_event(AGENT), "q")), "only guard topics feed the queue"),
        (
            sqs_record(envelope(guard_topic(AGENT), guard_event(AGENT), "q"), queue_arn=GUARD_QUEUE + "-x"),
            "not the guard",
        ),
        (sqs_record(json.dumps({"source": "killswitch.guard", "action": "kill", "agent": AGENT})), "not an SNS notif"),
        (sqs_record("not json"), "not an SNS notification"),
    ],
)
def test_unknown_intakes_are_refused(aws: Clients, handler_env: None, record: dict[str, Any], expected: str) -> None:
    out = kill_handler.handler({"Records": [record]}, Context())
    (result,) = out["results"]
    assert result["operation"] == "rejected" and expected in result["reason"]
    assert out.get("batchItemFailures", []) == []  # a refusal never comes back from the queue
    assert len(rejected_items()) == 1


def test_records_of_one_event_are_judged_one_by_one(aws: Clients, handler_env: None) -> None:
    f = build_fleet(aws)
    results = run(
        sns_record(guard_topic(OTHER), guard_event(AGENT), "g-1"),  # refused: another agent's topic
        budget_kill(),  # accepted: a letter on the alerts topic
    )
    assert [r["operation"] for r in results] == ["rejected", "kill"]
    assert instance_state(aws, EAST, f["plain"]) == "stopped"
