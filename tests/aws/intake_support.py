"""Deliveries shaped like the real ones for the intake tests: SNS records from a given topic, SQS records of the
guard intake queue (SNS envelopes, raw delivery off), and the moto topics/queue the stack would create."""

from __future__ import annotations

import json
from typing import Any

import boto3

from killswitch.events import KillSwitchEvent
from killswitch.handlers import kill as kill_handler
from killswitch.intakes import alerts_topic_name, guard_queue_name, guard_topic_name
from killswitch.testing import sim
from tests.aws.test_kill_handler import Context

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
PREFIX = "killswitch"
ALERTS_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:{alerts_topic_name(PREFIX)}"
GUARD_QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{guard_queue_name(PREFIX)}"
TABLE = "killswitch-ledger"  # the ledger table the handler tests create (KILLSWITCH_TABLE)


def run(*records: dict[str, Any]) -> list[dict[str, Any]]:
    """The kill handler's per-record results for one invocation with these records."""
    out = kill_handler.handler({"Records": list(records)}, Context())
    return list(out["results"])


def rejected_items() -> list[dict[str, Any]]:
    """What the handler kept as refused input (`REJECTED#` items of the ledger)."""
    items = boto3.resource("dynamodb", REGION).Table(TABLE).scan()["Items"]
    return [i for i in items if str(i["pk"]).startswith("REJECTED#")]


def guard_topic(agent: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:sns:{REGION}:{account}:{guard_topic_name(PREFIX, agent)}"


def envelope(topic_arn: str | None, message: str, message_id: str, subject: str | None = None) -> dict[str, Any]:
    sns: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id,
        "Subject": subject,
        "Message": message,
        "Timestamp": "2026-11-22T10:15:00.000Z",
        "SignatureVersion": "1",
        "MessageAttributes": {},
    }
    if topic_arn is not None:
        sns["TopicArn"] = topic_arn
    return sns


def sns_record(topic_arn: str | None, message: str, message_id: str = "m-1", subject: str | None = None) -> dict:
    return {"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": envelope(topic_arn, message, message_id, subject)}


def sqs_record(body: dict[str, Any] | str, message_id: str = "q-1", queue_arn: str = GUARD_QUEUE) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def guard_event(agent: str, action: str = "kill", **extra: Any) -> str:
    data = {"source": "killswitch.guard", "action": action, "agent": agent, "reason": "per_day cap crossed", **extra}
    return json.dumps(data)


def guard_message(agent: str, reason: str = "per_day cap $150.00 crossed") -> str:
    return KillSwitchEvent(source="killswitch.guard", action="kill", agent=agent, reason=reason).to_message()


def letter(budget_name: str, amount: float, budgeted: float, threshold: float) -> tuple[str, str]:
    """(message, subject) of a real-format AWS Budgets letter."""
    subject = f"AWS Budgets: {budget_name} has exceeded your alert threshold"
    return sim.budgets_letter(budget_name, amount, budgeted, threshold), subject
