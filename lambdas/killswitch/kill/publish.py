"""Result events (one JSON message per kill/warn/restore/approve on the events topic: email, Slack, Chatbot) and
dead letters (inputs the kill Lambda cannot read, forwarded to its DLQ instead of being retried)."""

from __future__ import annotations

import json
from typing import Any, Protocol

from killswitch import aws
from killswitch.arns import region_of


class EventPublisher(Protocol):
    def publish(self, event: dict[str, Any]) -> None: ...


def subject_for(event: dict[str, Any]) -> str:
    """SNS subjects: ASCII, at most 100 characters."""
    text = f"killswitch {event.get('operation')} {event.get('agent') or ''}: {event.get('status') or ''}".strip()
    return text.encode("ascii", "replace").decode()[:100]


class SnsPublisher:
    def __init__(self, topic_arn: str, client: Any = None):
        self.topic_arn = topic_arn
        self.client = client or aws.client("sns", region_of(topic_arn))

    def publish(self, event: dict[str, Any]) -> None:
        self.client.publish(
            TopicArn=self.topic_arn,
            Subject=subject_for(event),
            Message=json.dumps(event, sort_keys=True, default=str),
            MessageAttributes={
                "operation": {"DataType": "String", "StringValue": str(event.get("operation") or "none")},
                "agent": {"DataType": "String", "StringValue": str(event.get("agent") or "-")},
            },
        )


class MemoryPublisher:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)


class NullPublisher:
    def publish(self, event: dict[str, Any]) -> None:
        return None


class DeadLetterSink(Protocol):
    def send(self, reason: str, message_id: str | None, raw: str) -> None: ...


class SqsDeadLetter:
    """Forwards a rejected input to the kill Lambda's dead-letter queue, whose depth alarm notifies ops.

    Returning normally (instead of raising) keeps SNS from retrying a message that can never be read; sending it
    to the DLQ keeps it where ops look for what the kill switch could not process.
    """

    MAX_BODY = 200_000  # SQS bodies are limited to 256 KiB; the raw input is already capped at 64 KB

    def __init__(self, queue_url: str, client: Any = None):
        self.queue_url = queue_url
        # https://sqs.<region>.amazonaws.com/<account>/<name>
        parts = queue_url.split("/")
        region = parts[2].split(".")[1] if len(parts) > 2 and parts[2].startswith("sqs.") else None
        self.client = client or aws.client("sqs", region)

    def send(self, reason: str, message_id: str | None, raw: str) -> None:
        body = json.dumps({"rejected": reason, "message_id": message_id, "raw": raw}, default=str)
        self.client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body[: self.MAX_BODY],
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:256] or "rejected"}},
        )


class MemoryDeadLetter:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, reason: str, message_id: str | None, raw: str) -> None:
        self.sent.append({"rejected": reason, "message_id": message_id, "raw": raw})
