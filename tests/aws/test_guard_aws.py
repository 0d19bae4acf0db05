"""The guard against moto: DynamoDB caps under threads (with and without leases), sweeping, the kill event on SNS,
tagging through botocore hooks, and `Guard.from_config` wiring (table, kill topic, spend ledger)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from killswitch.config import KillSwitchConfig
from killswitch.events import KillSwitchEvent
from killswitch.guard import (
    BudgetExceeded,
    Caps,
    ChargeRecord,
    DynamoLedger,
    Guard,
    LeasePolicy,
    LoopDetected,
    LoopLimits,
    Mode,
    ModelPrice,
    SnsPublisher,
)
from killswitch.guard.instrument import TAGGERS
from killswitch.tags import tag_list_to_dict
from killswitch.testing.sim import serialized
from tests.aws.guard_support import InvariantWatch, cap_items, create_table, run_threads

pytestmark = pytest.mark.aws

D = Decimal
TOKEN = ModelPrice.of(0, 10_000)  # $0.01 per output token


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def ddb(aws: None) -> Any:
    client = serialized(boto3.client("dynamodb", region_name="us-east-1"))
    create_table(client)
    return client


class WriteCounter:
    def __init__(self, client: Any) -> None:
        self.writes = 0
        client.meta.events.register("before-call.dynamodb.TransactWriteItems", self._count)

    def _count(self, **_: Any) -> None:
        self.writes += 1


@pytest.mark.parametrize("leases", [None, LeasePolicy()], ids=["direct", "leases"])
def test_guard_threads_on_dynamodb_never_overspend(ddb: Any, leases: LeasePolicy | None) -> None:
    records: list[ChargeRecord] = []
    guard = Guard(
        "busy-agent",
        Caps(per_day_usd=0.8),
        DynamoLedger("killswitch-ledger", client=ddb),
        leases=leases,
        spend_sink=records.append,
        loop=LoopLimits(max_steps_per_run=10_000),
    )
    watch = InvariantWatch()
    counter = WriteCounter(ddb)
    calls = [0]
    lock = threading.Lock()

    def worker(n: int) -> None:
        with guard.run() as run:
            for _ in range(6):
                try:
                    with run.charge("tok", 0, 2, price=TOKEN) as call:  # reserve 0.02
                        call.settle(output_tokens=1 + n % 2)  # 0.01 or 0.02
                        with lock:
                            calls[0] += 1
                except BudgetExceeded:
                    pass
                caps = guard.cap_limits(run.run_id, None, guard.clock())
                for cap, usage in zip(caps, guard.ledger.usages("busy-agent", caps), strict=True):
                    watch.check(usage.used, cap.cap_usd, cap.sk)

    assert run_threads(16, worker) == []
    rows = cap_items(ddb, "busy-agent")
    agent_row = rows[f"CAP#agent#{guard.period_key()}"]
    assert watch.violations == [] and watch.checks >= 16 * 6
    assert agent_row["reserved"] == 0
    assert agent_row["committed"] <= D("0.8")
    assert agent_row["committed"] == sum((r.amount_usd for r in records), D(0))
    assert calls[0] == len(records) and calls[0] < 16 * 6  # the cap denied some calls
    assert counter.writes > 0


def test_leases_cut_ledger_writes_per_call(ddb: Any) -> None:
    writes = {}
    for name, leases in (("direct", None), ("leases", LeasePolicy())):
        guard = Guard(name, Caps(per_run_usd=5, per_day_usd=50), DynamoLedger("killswitch-ledger", client=ddb))
        guard.leases = leases
        counter = WriteCounter(ddb)

        def worker(n: int, guard: Guard = guard) -> None:
            with guard.run() as run:
                for _ in range(10):
                    with run.charge("tok", 0, 2, price=TOKEN) as call:
                        call.settle(output_tokens=1)

        assert run_threads(4, worker) == []
        writes[name] = counter.writes
        ddb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", counter._count)
        assert guard.spent_usd() == pytest.approx(0.4)
    assert writes["direct"] == 80  # reserve + settle for each of the 40 calls
    assert writes["leases"] <= 8  # one lease and its settlement per run


def test_crashed_reservation_on_dynamodb_is_swept_after_expiry(ddb: Any) -> None:
    now = [1_795_000_000.0]
    guard = Guard(
        "crashy",
        Caps(per_day_usd=1.0),
        DynamoLedger("killswitch-ledger", client=ddb),
        clock=lambda: now[0],
        reservation_ttl=120,
        sweep_interval=0,
    )
    run = guard.start_run()
    run.charge("tok", 0, 30, price=TOKEN)  # 0.30 reserved; the process dies
    now[0] += 60
    assert guard.sweep() == []
    now[0] += 61
    assert [h.amount for h in guard.sweep()] == [D("0.3")]
    row = cap_items(ddb, "crashy")[f"CAP#agent#{guard.period_key()}"]
    assert (row["committed"], row["reserved"]) == (D("0.3"), D(0))


def test_kill_event_reaches_the_sns_topic(aws: None) -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="killswitch-kill")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="kill-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    guard = Guard("log-summarizer", Caps(per_day_usd=0.5), publisher=SnsPublisher(topic))
    with guard.run() as run:
        run.charge_usd(0.4)
        for _ in range(2):
            with pytest.raises(BudgetExceeded):
                run.charge_usd(0.2)
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert len(messages) == 1  # once per cause, not on every denied call
    envelope = json.loads(messages[0]["Body"])
    event = KillSwitchEvent.model_validate_json(envelope["Message"])
    assert (event.source, event.action, event.agent, event.run_id) == (
        "killswitch.guard",
        "kill",
        "log-summarizer",
        run.run_id,
    )
    assert event.cap_usd == 0.5 and event.spend_usd == pytest.approx(0.4)


def test_loop_kill_reaches_the_sns_topic(aws: None) -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="killswitch-kill")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="kill-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    guard = Guard("a", publisher=SnsPublisher(topic), loop=LoopLimits(max_identical_calls=2))
    with guard.run() as run:
        run.tool_call("fetch", {"u": 1})
        with pytest.raises(LoopDetected):
            run.tool_call("fetch", {"u": 1})
    body = sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["Body"]
    event = KillSwitchEvent.model_validate_json(body)
    assert event.run_id == run.run_id and "identical_calls" in event.reason


def test_instrumented_session_tags_run_instances(aws: None) -> None:
    guard = Guard("log-summarizer")
    session = boto3.Session(region_name="us-east-1")
    with guard.run() as run:
        run.instrument(session)
        ec2 = session.client("ec2")
        # moto accepts any AMI id; its default AMIs are missing when another test built the EC2 backend with
        # MOTO_EC2_LOAD_DEFAULT_AMIS=false (testing.sim.offline_env), so do not depend on them.
        image = "ami-0123456789abcdef0"
        reservation = ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "data"}]}],
        )
    instance_id = reservation["Instances"][0]["InstanceId"]
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    tags = tag_list_to_dict(described["Tags"])
    assert tags == {"team": "data", "agent-name": "log-summarizer", "agent-run-id": run.run_id}
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["Volumes"]
    assert all(tag_list_to_dict(v.get("Tags"))["agent-run-id"] == run.run_id for v in volumes)


def test_instrumented_client_tags_lambda_functions_and_a_new_run_replaces_the_tags(aws: None) -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = boto3.client("lambda", region_name="us-east-1")
    guard = Guard("log-summarizer")
    arns = []
    for name in ("fn-1", "fn-2"):
        with guard.run() as run:
            run.instrument(lam)
            fn = lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="x.handler",
                Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
                Tags={"team": "data"},
            )
            arns.append((fn["FunctionArn"], run.run_id))
    for arn, run_id in arns:
        assert lam.list_tags(Resource=arn)["Tags"] == {
            "team": "data",
            "agent-name": "log-summarizer",
            "agent-run-id": run_id,
        }


@pytest.mark.parametrize(
    ("event", "params", "expected"),
    [
        ("ecs.RunTask", {"tags": [{"key": "t", "value": "1"}]}, {"tags": [{"key": "t", "value": "1"}]}),
        ("ecs.CreateService", {}, {"tags": []}),
        ("batch.SubmitJob", {"tags": {"t": "1"}}, {"tags": {"t": "1"}}),
        ("sagemaker.CreateTrainingJob", {}, {"Tags": []}),
    ],
)
def test_taggers_merge_into_each_operation_shape(event: str, params: dict[str, Any], expected: dict[str, Any]) -> None:
    ours = {"agent-name": "a", "agent-run-id": "r"}
    TAGGERS[event](params, ours)
    field = next(iter(expected))
    if isinstance(params[field], dict):
        assert params[field] == {**expected[field], **ours}
    else:
        k, v = ("key", "value") if event.startswith("ecs") else ("Key", "Value")
        assert params[field] == [*expected[field], *({k: a, v: b} for a, b in ours.items())]


def test_auto_scaling_groups_propagate_the_tags_at_launch() -> None:
    params: dict[str, Any] = {"Tags": [{"Key": "agent-name", "Value": "spoofed", "PropagateAtLaunch": False}]}
    TAGGERS["auto-scaling.CreateAutoScalingGroup"](params, {"agent-name": "a", "agent-run-id": "r"})
    assert params["Tags"] == [
        {"Key": "agent-name", "Value": "a", "PropagateAtLaunch": True},
        {"Key": "agent-run-id", "Value": "r", "PropagateAtLaunch": True},
    ]


def test_from_config_wires_table_topic_caps_thrift_and_spend_ledger(
    ddb: Any, example_config: KillSwitchConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name="kill")["TopicArn"]
    monkeypatch.setenv("KILLSWITCH_TABLE", "killswitch-ledger")
    monkeypatch.setenv("KILLSWITCH_KILL_TOPIC_ARN", topic)
    guard = Guard.from_config("log-summarizer", config=example_config)
    assert isinstance(guard.ledger, DynamoLedger) and guard.ledger.table_name == "killswitch-ledger"
    # The guard publishes to its own agent's guard topic next to the kill topic, never to the kill topic itself.
    own_topic = topic.rsplit(":", 1)[0] + ":killswitch-guard-log-summarizer"
    assert isinstance(guard.publisher, SnsPublisher) and guard.publisher.topic_arn == own_topic
    monkeypatch.setenv("KILLSWITCH_GUARD_TOPIC_ARN", topic + "-explicit")
    assert Guard.from_config("log-summarizer", config=example_config).publisher.topic_arn == topic + "-explicit"  # type: ignore[attr-defined]
    monkeypatch.delenv("KILLSWITCH_GUARD_TOPIC_ARN")
    assert (guard.caps.per_run_usd, guard.caps.per_day_usd) == (5, 50)
    assert guard.warn_at_pct == 80 and guard.leases is not None
    assert guard.route("high") == "anthropic.claude-sonnet-4-5"
    with guard.run(workflow="triage") as run:
        with run.charge("anthropic.claude-haiku-4-5", 1200, 800, charge_id="charge-1") as call:
            call.settle(output_tokens=640)
        with pytest.raises(BudgetExceeded):
            run.charge_usd(6.0)  # over the $5 run cap
    assert guard.spent_usd() == pytest.approx(0.0044)
    assert guard.mode is Mode.OK
    items = ddb.query(
        TableName="killswitch-ledger",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :day)",  # the agent's own partition: guard spend
        ExpressionAttributeValues={":pk": {"S": "GUARD#log-summarizer"}, ":day": {"S": "DAY#"}},
    )["Items"]
    assert len(items) == 1
    item = items[0]
    assert item["sk"]["S"] == f"DAY#{guard.period_key()}#guard#charge-1"
    assert D(item["amount_usd"]["N"]) == D("0.0044")
    assert item["run_id"]["S"] == run.run_id


def test_from_config_needs_a_table(example_config: KillSwitchConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    from killswitch.settings import MissingEnvironment

    monkeypatch.delenv("KILLSWITCH_TABLE", raising=False)
    with pytest.raises(MissingEnvironment, match="KILLSWITCH_TABLE"):
        Guard.from_config("log-summarizer", config=example_config)


def test_from_config_emits_emf_metrics_inside_lambda(
    ddb: Any, example_config: KillSwitchConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from killswitch.guard import EmfMetrics

    monkeypatch.setenv("KILLSWITCH_TABLE", "killswitch-ledger")
    monkeypatch.delenv("KILLSWITCH_KILL_TOPIC_ARN", raising=False)
    assert Guard.from_config("research-crawler", config=example_config).metrics is None
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "agent-fn")
    guard = Guard.from_config("research-crawler", config=example_config)
    assert isinstance(guard.metrics, EmfMetrics)
    assert guard.caps.per_workflow_usd == {"deep-research": 60}
    assert guard.models is None
