"""Result events: one JSON message per kill/warn/restore/approve on the events topic (email, Slack, Chatbot)."""

from __future__ import annotations

import json
from typing import Any, Protocol

from killswitch import aws


class EventPublisher(Protocol):
    def publish(self, event: dict[str, Any]) -> None: ...


def subject_for(event: dict[str, Any]) -> str:
    """SNS subjects: ASCII, at most 100 characters."""
    text = f"killswitch {event.get('operation')} {event.get('agent') or ''}: {event.get('status') or ''}".strip()
    return text.encode("ascii", "replace").decode()[:100]


class SnsPublisher:
    def __init__(self, topic_arn: str, client: Any = None):
        self.topic_arn = topic_arn
        region = topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else None
        self.client = client or aws.client("sns", region)

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
