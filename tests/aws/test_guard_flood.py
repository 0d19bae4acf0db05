"""Issue 15 item 6: 1,000 guard messages from one agent do not delay a budget alert's kill of another agent.

"Delay" is counted in work, not time (no timed assertions): with 1,000 guard messages pending, the budget alert's
invocation makes exactly the AWS calls it makes with none pending, and reads none of them — they wait on their own
queue, which the template drains at a bounded share of the kill function's reserved concurrency
(tests/infra/test_infra_intake.py). Drained as the event source mapping would (batches of 100), the flood costs
one kill — one discovery — for the flooding agent; the other 999 messages collapse into it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from bench.fanout import CallLog, counting
from killswitch.config import KillSwitchConfig
from killswitch.events import KillSwitchEvent
from killswitch.guard.publisher import SnsPublisher
from killswitch.handlers import kill as kill_handler
from killswitch.intakes import guard_queue_name, guard_topic_name
from killswitch.kill.discover import Clients
from killswitch.kill.ledger import DynamoKillLedger
from killswitch.testing import sim
from tests.aws.intake_support import ALERTS_TOPIC, PREFIX, letter, sns_record
from tests.aws.kill_support import AGENT, EAST, OTHER, build_fleet, create_table, instance_state
from tests.aws.test_kill_handler import Context

TABLE = "killswitch-ledger"
FLOOD = 1_000
BATCH = 100  # the guard queue's event source mapping batch size (infra.constructs.guard_intake)


@pytest.fixture
def env(example_config: KillSwitchConfig, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setenv("KILLSWITCH_TABLE", TABLE)
    monkeypatch.setenv("KILLSWITCH_KILL_TOPIC_ARN", ALERTS_TOPIC)
    monkeypatch.setenv("KILLSWITCH_CONFIG_JSON", example_config.to_json())
    kill_handler.reset()
    yield
    kill_handler.reset()


class Deployment:
    """The workload stack's intake on moto: alerts topic, the flooding agent's guard topic → guard intake queue."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clients = Clients()
        self.fleet = build_fleet(self.clients)
        create_table(TABLE)
        sns, self.sqs = boto3.client("sns", EAST), boto3.client("sqs", EAST)
        monkeypatch.setenv("KILLSWITCH_EVENTS_TOPIC_ARN", sns.create_topic(Name="killswitch-events")["TopicArn"])
        assert sns.create_topic(Name=f"{PREFIX}-kill")["TopicArn"] == ALERTS_TOPIC
        self.guard_topic = sns.create_topic(Name=guard_topic_name(PREFIX, OTHER))["TopicArn"]
        self.queue = self.sqs.create_queue(QueueName=guard_queue_name(PREFIX))["QueueUrl"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn = attrs["QueueArn"]
        sns.subscribe(TopicArn=self.guard_topic, Protocol="sqs", Endpoint=self.queue_arn)
        self.sns = sns
        self.backlog: list[str] = []  # queued message bodies, in order
        self.sent = 0

    def flood(self, n: int, *, on_queue: bool = True) -> None:
        """`n` guard kill events of research-crawler on the guard intake queue. The first is published the way its
        guard publishes (SNS → queue, moto writes the envelope); the others are copies of that envelope with their
        own MessageIds, sent straight to the queue (moto's SNS signing is too slow for 1,000 real ones). moto's
        SendMessage is O(queue length): `on_queue=False` keeps the copies in `backlog` only, for the drain tests."""
        SnsPublisher(self.guard_topic, client=self.sns).publish(
            KillSwitchEvent(source="killswitch.guard", action="kill", agent=OTHER, reason="per_day cap crossed")
        )
        (first,) = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=1)["Messages"]
        self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=first["ReceiptHandle"])
        template = json.loads(first["Body"])
        assert template["TopicArn"] == self.guard_topic and template["Type"] == "Notification"
        bodies = [json.dumps({**template, "MessageId": f"flood-{self.sent + i}"}) for i in range(n)]
        self.sent += n
        for start in range(0, n if on_queue else 0, 10):
            chunk = bodies[start : start + 10]
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
            self.sqs.send_message_batch(QueueUrl=self.queue, Entries=entries)
        self.backlog += bodies

    def pending(self) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def next_batch(self) -> list[dict[str, Any]]:
        """Up to BATCH queued messages as the event source mapping hands them to the Lambda (SQS records)."""
        batch, self.backlog = self.backlog[:BATCH], self.backlog[BATCH:]
        return [
            {
                "messageId": f"sqs-{json.loads(body)['MessageId']}",
                "receiptHandle": "rh",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": self.queue_arn,
                "awsRegion": EAST,
            }
            for body in batch
        ]


def budget_alert() -> dict[str, Any]:
    message, subject = letter("killswitch-log-summarizer", 530.0, 500.0, 500.0)
    return {"Records": [sns_record(ALERTS_TOPIC, message, "budget-1", subject)]}


def budget_kill_with_pending(flood: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Counter[str], dict[str, Any]]:
    """A fresh account; `flood` guard messages pending; then the budget alert. (its AWS calls, its result)."""
    log = CallLog()
    with sim.moto_aws(), counting(log):
        kill_handler.reset()
        d = Deployment(monkeypatch)
        d.flood(flood)
        assert d.pending() == flood
        log.active = True
        (result,) = kill_handler.handler(budget_alert(), Context())["results"]
        log.active = False
        assert d.pending() == flood  # the budget path read none of them
        assert instance_state(d.clients, EAST, d.fleet["plain"]) == "stopped"
        assert instance_state(d.clients, EAST, d.fleet["other"]) == "running"
        return log.calls, result


def test_a_thousand_guard_messages_do_not_delay_a_budget_kill(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    quiet_calls, quiet = budget_kill_with_pending(0, monkeypatch)
    flooded_calls, flooded = budget_kill_with_pending(FLOOD, monkeypatch)
    assert quiet["operation"] == flooded["operation"] == "kill"
    assert quiet["counts"] == flooded["counts"] and flooded["counts"]["success"] >= 7
    # The same AWS calls, one for one, whether 1,000 guard messages wait or none: no work stands in front of it.
    # (Except how often StopInstances bisects: that depends on where the stop-protected instance's random id sorts.)
    bisected = "ec2:StopInstances"
    assert flooded_calls[bisected] and quiet_calls[bisected]
    assert {k: v for k, v in flooded_calls.items() if k != bisected} == {
        k: v for k, v in quiet_calls.items() if k != bisected
    }
    assert not any(op.startswith("sqs:") for op in flooded_calls)


def test_the_flood_collapses_into_one_kill_of_the_flooding_agent(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = CallLog()
    with sim.moto_aws(), counting(log):
        d = Deployment(monkeypatch)
        d.flood(FLOOD, on_queue=False)
        operations: Counter[str] = Counter()
        invocations = 0
        log.active = True
        while batch := d.next_batch():
            out = kill_handler.handler({"Records": batch}, Context())  # never raises
            assert out["batchItemFailures"] == []
            assert len(out["results"]) == len(batch)
            operations.update(f"{r['operation']}/{r['status']}" for r in out["results"])
            invocations += 1
        log.active = False
    assert invocations == FLOOD // BATCH
    # research-crawler needs manual approval: its one kill is planned and waits for `killswitch approve`.
    assert operations == Counter({"kill/awaiting_approval": 1, "duplicate/collapsed": FLOOD - 1})
    discovery = {op: n for op, n in log.calls.items() if op.startswith(("tagging:", "resourcegroupstaggingapi:"))}
    assert discovery and all(n <= 2 * 3 for n in discovery.values())  # one kill: regions × resource types, not 1,000×
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    collapsed = sum(sum(doc.get("GuardEventsCollapsed", [])) for doc in emf)
    assert collapsed == FLOOD - 1


def test_after_a_restore_the_next_guard_kill_goes_through(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Collapsing never hides a new kill: ops restore (state OK) ends it at once."""
    with sim.moto_aws():
        d = Deployment(monkeypatch)
        d.flood(3, on_queue=False)
        first = kill_handler.handler({"Records": d.next_batch()}, Context())["results"]
        assert [r["status"] for r in first] == ["awaiting_approval", "collapsed", "collapsed"]
        eng, _ = kill_handler.engine()
        assert eng.restore(OTHER).status == "restored"  # the ops path (`killswitch restore`)
        d.flood(2, on_queue=False)
        again = kill_handler.handler({"Records": d.next_batch()}, Context())["results"]
        assert [r["operation"] for r in again] == ["kill", "duplicate"]
        kills = DynamoKillLedger(TABLE).list_kills(OTHER)
        assert len(kills) == 2
        assert DynamoKillLedger(TABLE).agent_state(AGENT) is None  # the other agent was never involved
