"""Helpers for the kill engine's moto tests: a two-agent, two-region fleet and an engine wired to memory stores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from killswitch.config import KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.engine import KillEngine
from killswitch.kill.ledger import InMemoryKillLedger
from killswitch.kill.publish import MemoryPublisher
from killswitch.kill.wiring import build_engine
from killswitch.testing import sim

AGENT = "log-summarizer"
OTHER = "research-crawler"
RUN = "run-7f3a"
EAST, WEST = "us-east-1", "us-west-2"
REGIONS = (EAST, WEST)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    """moto in-process; ECS tasks stay RUNNING (no automatic state progression); moto's default AMI catalogue is not
    loaded (it costs ~0.2 s per region and backend reset, and the fleet does not need it)."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with sim.moto_aws():
        yield Clients()


@pytest.fixture(scope="module")
def shared_fleet() -> Iterator[tuple[Clients, Fleet]]:
    """One fleet per test module for tests that only read it (building it costs more than most tests do); tests
    that kill, restore or tag use `aws` and their own fleet. Module scope: the fake AWS environment is set here."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
            mp.delenv(name, raising=False)
        for name, value in (
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_DEFAULT_REGION", EAST),
            ("MOTO_EC2_LOAD_DEFAULT_AMIS", "false"),
        ):
            mp.setenv(name, value)
        with sim.moto_aws():
            clients = Clients()
            yield clients, build_fleet(clients)


@dataclass
class Fleet:
    ids: dict[str, str] = field(default_factory=dict)  # label → instance id / ARN / group name

    def __getitem__(self, label: str) -> str:
        return self.ids[label]


def build_fleet(c: Clients) -> Fleet:
    """log-summarizer in both regions (plus edge cases), research-crawler and untagged resources around it."""
    f = Fleet()
    t = sim.agent_tags
    f.ids["plain"] = sim.run_instance(c, EAST, t(AGENT, Name="summarizer-1"))
    f.ids["run"] = sim.run_instance(c, EAST, t(AGENT, RUN, Name="summarizer-run"))
    f.ids["exempt"] = sim.run_instance(c, EAST, t(AGENT, **{"killswitch:exempt": "true"}))
    f.ids["protected"] = sim.run_instance(c, EAST, t(AGENT, Name="protected"), disable_api_stop=True)
    f.ids["critical"] = sim.run_instance(c, EAST, t(AGENT, **{"killswitch:criticality": "critical"}))
    f.ids["other"] = sim.run_instance(c, EAST, t(OTHER))
    f.ids["untagged"] = sim.run_instance(c, EAST, {"Name": "untagged"})
    f.ids["service"] = sim.ecs_service(c, EAST, "agents", "summarizer-api", t(AGENT), desired=2, scaling=(1, 4))
    f.ids["task"] = sim.ecs_task(c, EAST, "agents", t(AGENT))
    f.ids["other_service"] = sim.ecs_service(c, EAST, "agents", "crawler-api", t(OTHER), desired=3)
    f.ids["asg"] = sim.auto_scaling_group(
        c, EAST, "summarizer-workers", t(AGENT), min_size=1, max_size=4, desired=2, suspended=["AZRebalance"]
    )
    f.ids["west"] = sim.run_instance(c, WEST, t(AGENT, Name="summarizer-west"))
    f.ids["west_service"] = sim.ecs_service(c, WEST, "agents-west", "summarizer-west", t(AGENT), desired=1)
    f.ids["west_other"] = sim.run_instance(c, WEST, t(OTHER))
    return f


def engine(
    config: KillSwitchConfig, clients: Any, *, ledger: InMemoryKillLedger | None = None, **kw: Any
) -> tuple[KillEngine, InMemoryKillLedger, MemoryPublisher]:
    ledger = ledger or InMemoryKillLedger()
    pub = MemoryPublisher()
    counter = iter(range(1, 10_000))
    kw.setdefault("scp", None)
    kw.setdefault("spend", None)
    eng = build_engine(
        config, ledger=ledger, clients=clients, publisher=pub, kill_ids=lambda now: f"k{next(counter):03d}", **kw
    )
    return eng, ledger, pub


def instance_state(c: Clients, region: str, instance_id: str) -> str:
    r = c("ec2", region).describe_instances(InstanceIds=[instance_id])
    return str(r["Reservations"][0]["Instances"][0]["State"]["Name"])


class FailingEc2:
    """Wraps an EC2 client: StopInstances fails with `code` whenever the batch holds one of `bad` (like AWS, one bad
    id fails the whole call), or always when `bad` is None. Counts the calls and records the batches."""

    def __init__(self, inner: Any, bad: dict[str, str] | None = None, always: str | None = None):
        self.inner = inner
        self.bad = bad or {}
        self.always = always
        self.stop_calls: list[list[str]] = []

    def stop_instances(self, InstanceIds: list[str], **kw: Any) -> Any:
        self.stop_calls.append(list(InstanceIds))
        if self.always:
            raise ClientError({"Error": {"Code": self.always, "Message": "Rate exceeded"}}, "StopInstances")
        for iid in InstanceIds:
            if iid in self.bad:
                raise ClientError(
                    {"Error": {"Code": self.bad[iid], "Message": f"instance {iid}: {self.bad[iid]}"}}, "StopInstances"
                )
        return self.inner.stop_instances(InstanceIds=InstanceIds, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def budgets_sns_event(budget_name: str, amount: float, budgeted: float, threshold: float, message_id: str) -> dict:
    """A real-format AWS Budgets plain-text alert delivered through SNS to Lambda."""
    body = sim.budgets_letter(budget_name, amount, budgeted, threshold)
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:killswitch-kill:1b2c",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:killswitch-kill",
                    "Subject": f"AWS Budgets: {budget_name} has exceeded your alert threshold",
                    "Message": body,
                    "Timestamp": "2026-11-22T10:15:00.000Z",
                    "SignatureVersion": "1",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def fixed_clock() -> datetime:
    return datetime(2026, 11, 22, 10, 15, tzinfo=UTC)


def session_clients() -> Clients:
    return Clients(session=boto3.Session())


def create_table(name: str = sim.LEDGER_TABLE, region: str = EAST) -> str:
    return sim.create_ledger_table(boto3.client("dynamodb", region_name=region), name)
