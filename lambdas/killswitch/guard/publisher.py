"""Where kill events go: the kill topic (SNS) in production, a list in tests. Never raises into the agent."""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from killswitch import aws
from killswitch.arns import region_of
from killswitch.events import KillSwitchEvent

log = logging.getLogger("killswitch.guard")


class Publisher(Protocol):
    def publish(self, event: KillSwitchEvent) -> None:
        """Deliver one event. May raise: the guard logs failures and carries on."""
        ...


class SnsPublisher:
    """Publishes `event.to_message()` to the kill topic; the region is taken from the topic ARN."""

    def __init__(self, topic_arn: str, client: Any | None = None):
        self.topic_arn = topic_arn
        self.client = client or aws.client("sns", region_of(topic_arn))

    def publish(self, event: KillSwitchEvent) -> None:
        self.client.publish(
            TopicArn=self.topic_arn,
            Subject=f"killswitch {event.action}: {event.agent}"[:100],
            Message=event.to_message(),
            MessageAttributes={
                "source": {"DataType": "String", "StringValue": event.source},
                "agent": {"DataType": "String", "StringValue": event.agent},
            },
        )


class InMemoryPublisher:
    """Collects events (tests, dry runs)."""

    def __init__(self) -> None:
        self.events: list[KillSwitchEvent] = []
        self._lock = threading.Lock()

    def publish(self, event: KillSwitchEvent) -> None:
        with self._lock:
            self.events.append(event)


class NullPublisher:
    """No kill topic configured: the event is only logged."""

    def publish(self, event: KillSwitchEvent) -> None:
        log.warning("no kill topic configured; kill event not published: %s", event.to_message())
