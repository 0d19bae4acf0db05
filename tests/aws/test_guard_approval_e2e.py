"""Escalation end to end on moto: a run that keeps calling a costly tool pauses, its `approval_requested` event
goes guard topic → guard intake queue → kill Lambda → events topic (with the command to run), ops run
`killswitch approve-run`, and the paused run's next call goes through. An approval for another agent's run does
nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from infra.constructs.guard_policy import APPROVAL_ITEM_ACTIONS
from killswitch.cli.main import app
from killswitch.config import load_config
from killswitch.guard import ApprovalRequired, Caps, DynamoLedger, EscalatePolicy, Guard, SnsPublisher
from killswitch.handlers import kill as kill_handler
from killswitch.intakes import guard_queue_name, guard_topic_name
from killswitch.keys import approval_pk
from killswitch.kill.discover import Clients
from tests.aws.intake_support import ALERTS_TOPIC, PREFIX, sqs_record
from tests.aws.kill_support import AGENT, EAST, OTHER, aws, create_table
from tests.aws.test_kill_handler import Context
from tests.iam_coverage.policy import iam_actions
from tests.iam_coverage.recorder import Recorder

__all__ = ["aws"]
TABLE = "killswitch-ledger"
TOOL = "web-search"
CONFIG = f"""
prefix: {PREFIX}
regions: [us-east-1]
agents:
  - name: {AGENT}
    budget: {{amount_usd: 500}}
    caps: {{per_day_usd: 50}}
    escalate: {{tool: {TOOL}, after_calls: 2}}
  - name: {OTHER}
    budget: {{amount_usd: 1200}}
    escalate: {{tool: {TOOL}, after_calls: 2}}
"""


class Stack:
    """The moto side of the stack: ledger table, events topic (captured by a queue), the agent's guard topic feeding
    the guard intake queue."""

    def __init__(self, config_path: Path):
        self.config_path = config_path
        self.sns = boto3.client("sns", EAST)
        self.sqs = boto3.client("sqs", EAST)
        create_table(TABLE)
        self.events_topic = self.sns.create_topic(Name=f"{PREFIX}-events")["TopicArn"]
        self.events_queue = self._queue_on(self.events_topic, "events-capture")
        self.guard_topic = self.sns.create_topic(Name=guard_topic_name(PREFIX, AGENT))["TopicArn"]
        self.intake_queue = self._queue_on(self.guard_topic, guard_queue_name(PREFIX))

    def _queue_on(self, topic: str, name: str) -> str:
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return url

    def drain(self, url: str) -> list[dict[str, Any]]:
        out = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        for m in out:
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return out

    def deliver_guard_events(self) -> list[dict[str, Any]]:
        """What the kill Lambda returns for the guard intake queue's pending messages (as Lambda's SQS poller
        would hand them over)."""
        records = [sqs_record(m["Body"], m["MessageId"]) for m in self.drain(self.intake_queue)]
        assert records, "the guard published nothing on its guard topic"
        return list(kill_handler.handler({"Records": records}, Context())["results"])

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(json.loads(m["Body"])["Message"]) for m in self.drain(self.events_queue)]

    def approve_run(self, run_id: str, *args: str, input: str | None = None) -> Any:
        argv = ["approve-run", run_id, *args, "--config", str(self.config_path), "--table", TABLE]
        return CliRunner().invoke(app, argv, input=input)


@pytest.fixture
def stack(aws: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    path = tmp_path / "killswitch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    s = Stack(path)
    monkeypatch.setenv("KILLSWITCH_TABLE", TABLE)
    monkeypatch.setenv("KILLSWITCH_EVENTS_TOPIC_ARN", s.events_topic)
    monkeypatch.setenv("KILLSWITCH_KILL_TOPIC_ARN", ALERTS_TOPIC)
    monkeypatch.setenv("KILLSWITCH_CONFIG_JSON", load_config(path).to_json())
    kill_handler.reset()
    yield s
    kill_handler.reset()


def agent_guard(stack: Stack) -> Guard:
    return Guard(
        AGENT,
        Caps(per_day_usd=50.0),
        DynamoLedger(TABLE, region=EAST),
        publisher=SnsPublisher(stack.guard_topic),
        escalate=EscalatePolicy(tool=TOOL, after_calls=2),
    )


def pause(run: Any) -> ApprovalRequired:
    run.charge_usd(0.01, name=TOOL)
    run.charge_usd(0.01, name=TOOL)
    with pytest.raises(ApprovalRequired) as paused:
        run.charge_usd(0.01, name=TOOL)
    return paused.value


def test_escalate_request_on_the_events_topic_then_approve_run_lets_the_next_call_through(stack: Stack) -> None:
    guard = agent_guard(stack)
    with guard.run() as run:
        pause(run)
        [result] = stack.deliver_guard_events()
        assert result["operation"] == "approval_requested", result
        [event] = stack.events()
        command = f"killswitch approve-run {run.run_id} --agent {AGENT}"
        assert event["operation"] == "approval_requested" and event["agent"] == AGENT
        assert event["detail"] == {
            "agent": AGENT,
            "run_id": run.run_id,
            "tool": TOOL,
            "calls": 2,
            "spend_usd": 0.02,
            "command": command,
        }
        assert command in event["message"]
        with pytest.raises(ApprovalRequired):  # still paused: nothing approved it yet
            run.charge_usd(0.01, name=TOOL)

        res = stack.approve_run(run.run_id, "--agent", AGENT, "--yes")
        assert res.exit_code == 0, res.output
        assert f"approved run {run.run_id} of {AGENT}" in res.output

        run.charge_usd(0.01, name=TOOL)  # resumed: the count starts again
        run.charge_usd(0.01, name=TOOL)
        with pytest.raises(ApprovalRequired):  # one approval resumes once: the next pause needs a new one
            run.charge_usd(0.01, name=TOOL)
        assert run.spent_usd == pytest.approx(0.04)
    [again] = stack.deliver_guard_events()  # the second pause asks again
    assert again["operation"] == "approval_requested"


def test_an_approval_for_another_agents_run_does_nothing(stack: Stack) -> None:
    guard = agent_guard(stack)
    with guard.run() as run:
        pause(run)
        res = stack.approve_run(run.run_id, "--agent", OTHER, "--yes")
        assert res.exit_code == 0, res.output  # ops may approve OTHER's run of that id: it is not this agent's
        with pytest.raises(ApprovalRequired):
            run.charge_usd(0.01, name=TOOL)


def test_approve_run_asks_first_and_needs_the_agent_when_several_escalate(stack: Stack) -> None:
    guard = agent_guard(stack)
    with guard.run() as run:
        pause(run)
        res = stack.approve_run(run.run_id)
        assert res.exit_code == 1 and "pass --agent NAME" in res.output and AGENT in res.output
        res = stack.approve_run(run.run_id, "--agent", AGENT, input="n\n")
        assert res.exit_code == 1 and "nothing was approved" in res.output
        with pytest.raises(ApprovalRequired):
            run.charge_usd(0.01, name=TOOL)
        res = stack.approve_run(run.run_id, "--agent", "nobody", "--yes")
        assert res.exit_code == 1 and "not in the config" in res.output


def test_a_redelivered_approval_request_reaches_ops_once(stack: Stack) -> None:
    guard = agent_guard(stack)
    with guard.run() as run:
        pause(run)
    [message] = stack.drain(stack.intake_queue)
    record = sqs_record(message["Body"], message["MessageId"])
    first = kill_handler.handler({"Records": [record]}, Context())["results"]
    second = kill_handler.handler({"Records": [record]}, Context())["results"]
    assert [r["operation"] for r in (*first, *second)] == ["approval_requested", "duplicate"]
    assert len(stack.events()) == 1


def test_the_guard_reads_approvals_only_as_its_policy_allows(stack: Stack) -> None:
    """What the paused run's approval check sends is exactly what `ReadOwnRunApprovals` grants: GetItem on
    `APPROVAL#<its own agent>`."""
    recorder = Recorder(attribute=lambda: "agent")
    with recorder.recording():
        guard = agent_guard(stack)  # its clients are created while recording
        with guard.run() as run:
            pause(run)
            before = len(recorder.calls)
            stack.approve_run(run.run_id, "--agent", AGENT, "--yes")  # ops, not the agent: left out below
            after = len(recorder.calls)
            run.charge_usd(0.01, name=TOOL)
    calls = recorder.calls[:before] + recorder.calls[after:]
    reads = [
        (f"dynamodb:{action}", params.get("LeadingKey"))
        for c in calls
        if c.service == "dynamodb"
        for action, params in iam_actions(c)
        if str(params.get("LeadingKey", "")).startswith("APPROVAL#")
    ]
    assert reads and set(reads) == {(a, approval_pk(AGENT)) for a in APPROVAL_ITEM_ACTIONS}
