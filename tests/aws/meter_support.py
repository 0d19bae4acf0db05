"""Helpers for the meter's moto tests: tagged agent roles, a small config, a meter wired to memory stores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3

from killswitch.config import KillSwitchConfig, parse_config
from killswitch.guard.prices import default_prices
from killswitch.kill.engine import KillEngine
from killswitch.kill.ledger import InMemoryKillLedger
from killswitch.kill.publish import MemoryPublisher
from killswitch.kill.wiring import build_engine
from killswitch.meter.callers import CallerDirectory, IamTagReader
from killswitch.meter.compute import Ec2Source, FargateSource, SnapshotPrices
from killswitch.meter.managed import ManagedComputeSource
from killswitch.meter.pricing import RecordPricer, StaticProfileResolver
from killswitch.meter.records import encode_subscription_event, invocation_log
from killswitch.meter.service import Meter
from killswitch.meter.store import LedgerMeterState
from killswitch.spend.ledger import InMemorySpendStore, SpendLedger

ACCOUNT = "123456789012"  # moto's default account
AGENT, OTHER = "log-summarizer", "research-crawler"
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)

CONFIG = """
regions: [us-east-1]
agents:
  - name: log-summarizer
    budget: {amount_usd: 10, period: MONTHLY, warn_at_pct: 80, kill_at_pct: 100}
    actions: [stop_ec2, scale_ecs, stop_ecs_tasks, scale_asg]
  - name: research-crawler
    budget: {amount_usd: 10, period: MONTHLY}
    actions: [stop_ec2]
    burn_rate: {window_minutes: 60, max_pct_of_budget: 50}
meter: {tick_minutes: 5}
"""


def config() -> KillSwitchConfig:
    return parse_config(CONFIG, "meter-test.yaml")


def role(name: str, agent: str | None) -> str:
    """An IAM role (tagged with `agent-name` when `agent` is set); returns an assumed-role caller ARN."""
    tags = [{"Key": "agent-name", "Value": agent}] if agent else []
    boto3.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}", Tags=tags)
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/session-1"


@dataclass
class Wiring:
    meter: Meter
    engine: KillEngine
    spend: SpendLedger
    ledger: InMemoryKillLedger
    publisher: MemoryPublisher


def wire(clients: Any, cfg: KillSwitchConfig | None = None, *, now: datetime = NOW) -> Wiring:
    cfg = cfg or config()
    ledger = InMemoryKillLedger(clock=lambda: now)
    pub = MemoryPublisher()
    counter = iter(range(1, 10_000))
    store = InMemorySpendStore()
    spend = SpendLedger(store, clock=lambda: now)
    engine = build_engine(
        cfg,
        ledger=ledger,
        scp=None,
        clients=clients,
        publisher=pub,
        spend=spend,
        clock=lambda: now,
        kill_ids=lambda _: f"k{next(counter):03d}",
    )
    meter = Meter(
        cfg,
        spend,
        engine,
        pricer=RecordPricer(default_prices(), StaticProfileResolver()),
        callers=CallerDirectory(IamTagReader(boto3.client("iam")), ACCOUNT),
        compute_sources=[Ec2Source(clients), FargateSource(clients), ManagedComputeSource(clients)],
        compute_prices=SnapshotPrices(),
        state=LedgerMeterState(store),
        clock=lambda: now,
    )
    return Wiring(meter, engine, spend, ledger, pub)


def logs_event(*records: dict[str, Any]) -> dict[str, Any]:
    events = [{"id": f"ev-{r['requestId']}", "timestamp": 1763806500000, "message": _dump(r)} for r in records]
    return encode_subscription_event(events)


def _dump(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record)


def call(caller: str, request_id: str, input_tokens: int = 1_000_000, output_tokens: int = 200_000, **kw: Any) -> dict:
    """One Sonnet call: 1M input + 200k output tokens = $6.00 at $3/$15 per million."""
    return invocation_log(caller, SONNET, input_tokens, output_tokens, request_id=request_id, **kw)
