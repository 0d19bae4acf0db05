"""The kill Lambda handler on moto: DynamoDB ledger, SNS result events, spend ledger, EMF metrics, raise rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from killswitch.config import KillSwitchConfig
from killswitch.handlers import kill as kill_handler
from killswitch.kill.discover import Clients
from killswitch.kill.ledger import DynamoKillLedger
from tests.aws.kill_support import (
    AGENT,
    EAST,
    FailingEc2,
    aws,
    budgets_sns_event,
    build_fleet,
    create_table,
    instance_state,
)

__all__ = ["aws"]
TABLE = "killswitch-ledger"


@dataclass
class Context:
    function_name: str = "killswitch-kill"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:killswitch-kill"
    aws_request_id: str = "req-1"


@pytest.fixture
def lambda_env(aws: Clients, example_config: KillSwitchConfig, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    create_table(TABLE)
    sns, sqs = boto3.client("sns", EAST), boto3.client("sqs", EAST)
    topic = sns.create_topic(Name="killswitch-events")["TopicArn"]
    queue = sqs.create_queue(QueueName="events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    monkeypatch.setenv("KILLSWITCH_TABLE", TABLE)
    monkeypatch.setenv("KILLSWITCH_EVENTS_TOPIC_ARN", topic)
    monkeypatch.setenv("KILLSWITCH_CONFIG_JSON", example_config.to_json())
    kill_handler.reset()
    yield queue
    kill_handler.reset()


def events_on(queue: str) -> list[dict[str, Any]]:
    msgs = boto3.client("sqs", EAST).receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in msgs]


def test_budget_alert_through_the_handler(aws: Clients, lambda_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    f = build_fleet(aws)
    event = budgets_sns_event("killswitch-log-summarizer", 530.0, 500.0, 500.0, "m-1")
    out = kill_handler.handler(event, Context())
    (result,) = out["results"]
    assert result["operation"] == "kill" and result["level"] == "kill" and result["counts"]["success"] >= 7
    assert instance_state(aws, EAST, f["plain"]) == "stopped"
    ledger = DynamoKillLedger(TABLE)
    record = ledger.get_kill(result["kill_id"])
    assert record is not None and record.plan is not None and record.alert["budget_name"] == "killswitch-log-summarizer"
    assert any(e.resource.resource_id == f["plain"] and e.changed for e in ledger.resources(result["kill_id"]))
    assert ledger.agent_state(AGENT)["state"] == "KILLED"
    (published,) = events_on(lambda_env)
    assert published["kill_id"] == result["kill_id"] and published["failures"][0]["code"] == "OperationNotPermitted"
    spend = (
        boto3.resource("dynamodb", EAST)
        .Table(TABLE)
        .get_item(Key={"pk": f"SPEND#{AGENT}", "sk": "DAY#2026-11-22#budget#killswitch-log-summarizer#ACTUAL#500"})
    )
    assert float(spend["Item"]["amount_usd"]) == 530.0
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for doc in emf for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"AlertsReceived", "KillsExecuted", "ResourcesStopped", "ResourceFailures", "KillDurationMs"} <= names
    stopped = next(doc["ResourcesStopped"] for doc in emf if "ResourcesStopped" in doc)
    assert stopped == [float(result["counts"]["success"])]

    again = kill_handler.handler(budgets_sns_event("killswitch-log-summarizer", 530.0, 500.0, 500.0, "m-2"), Context())
    assert again["results"][0]["operation"] == "duplicate"
    assert len(ledger.list_kills(AGENT)) == 1


@pytest.mark.parametrize("event", [{}, {"Records": [{"Sns": {"MessageId": "x", "Message": "not an alert"}}]}, []])
def test_malformed_input_never_raises_and_is_kept(
    aws: Clients, lambda_env: str, event: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = kill_handler.handler(event, Context())
    assert [r["operation"] for r in out["results"]] == ["rejected"]
    items = boto3.resource("dynamodb", EAST).Table(TABLE).scan()["Items"]
    rejected = [i for i in items if i["pk"].startswith("REJECTED#")]
    assert len(rejected) == 1 and rejected[0]["reason"]
    assert '"AlertsRejected"' in capsys.readouterr().out


def test_rejected_input_is_forwarded_to_the_dlq(aws: Clients, lambda_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sqs = boto3.client("sqs", EAST)
    dlq = sqs.create_queue(QueueName="killswitch-kill-dlq")["QueueUrl"]
    monkeypatch.setenv("KILLSWITCH_DLQ_URL", dlq)
    kill_handler.reset()
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"MessageId": "bad-1", "Message": "hello there"}}]}
    out = kill_handler.handler(event, Context())
    assert [r["operation"] for r in out["results"]] == ["rejected"]
    (msg,) = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(msg["Body"])
    assert body["message_id"] == "bad-1" and "hello there" in body["raw"] and body["rejected"]
    # A DLQ that cannot be reached is logged, never raised: the ledger still has the record.
    monkeypatch.setenv("KILLSWITCH_DLQ_URL", dlq.replace("killswitch-kill-dlq", "missing-queue"))
    kill_handler.reset()
    again = kill_handler.handler(event, Context())
    assert [r["operation"] for r in again["results"]] == ["rejected"]
    items = boto3.resource("dynamodb", EAST).Table(TABLE).scan()["Items"]
    assert len([i for i in items if i["pk"].startswith("REJECTED#")]) == 2


def test_transient_failure_raises_after_recording(aws: Clients, lambda_env: str) -> None:
    f = build_fleet(aws)
    eng, _ = kill_handler.engine()
    eng.clients = Clients(overrides={("ec2", EAST): FailingEc2(aws("ec2", EAST), always="Throttling")})
    event = budgets_sns_event("killswitch-log-summarizer", 530.0, 500.0, 500.0, "m-1")
    with pytest.raises(kill_handler.TransientKillFailure):
        kill_handler.handler(event, Context())
    ledger = DynamoKillLedger(TABLE)
    (kill,) = ledger.list_kills(AGENT)
    assert kill.status.value == "awaiting_approval"  # the critical instance waits; the rest was recorded
    assert events_on(lambda_env)[0]["failures"]
    # SNS retries: the marker was released, the retry handles what is left
    eng.clients = aws
    out = kill_handler.handler(event, Context())
    assert out["results"][0]["operation"] == "kill"
    assert instance_state(aws, EAST, f["plain"]) == "stopped"


def test_missing_environment_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILLSWITCH_TABLE", raising=False)
    kill_handler.reset()
    with pytest.raises(Exception, match="KILLSWITCH_TABLE"):
        kill_handler.handler({}, Context())
