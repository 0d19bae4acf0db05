"""`killswitch.kill.wiring.build_engine`: the one factory (handler, CLI, demo, benchmarks) wires the deployed
parts from plain settings, and any part can be passed in instead."""

from __future__ import annotations

import boto3
from moto import mock_aws

from killswitch.config import KillSwitchConfig
from killswitch.kill.ledger import DynamoKillLedger, InMemoryKillLedger
from killswitch.kill.publish import MemoryPublisher, NullPublisher, SnsPublisher, SqsDeadLetter
from killswitch.kill.scp import OrgScp
from killswitch.kill.wiring import build_engine
from killswitch.spend.ledger import SpendLedger

CONFIG = KillSwitchConfig.model_validate(
    {
        "prefix": "ks",
        "regions": ["us-east-1"],
        "agents": [
            {"name": "a", "budget": {"amount_usd": 10}, "sandbox_accounts": ["111122223333"]},
        ],
        "sandbox": {"break_glass_role_arns": ["arn:aws:iam::*:role/BreakGlass"]},
    }
)


def test_without_a_table_the_engine_is_in_memory_and_publishes_nothing() -> None:
    eng = build_engine(CONFIG, scp=None)
    assert isinstance(eng.ledger, InMemoryKillLedger) and isinstance(eng.publisher, NullPublisher)
    assert eng.spend is None and eng.dead_letter is None and eng.scp is None


def test_deployed_wiring_from_the_lambda_settings() -> None:
    with mock_aws():
        eng = build_engine(
            CONFIG,
            table="ks-ledger",
            events_topic_arn="arn:aws:sns:eu-west-1:123456789012:ks-events",
            dlq_url="https://sqs.us-east-1.amazonaws.com/123456789012/ks-kill-dlq",
            scp_policy_name="ks-deny",
            session=boto3.Session(region_name="us-east-1"),
        )
    assert isinstance(eng.ledger, DynamoKillLedger) and isinstance(eng.spend, SpendLedger)
    assert isinstance(eng.publisher, SnsPublisher)
    # The topic's client is in the topic's region, not the session's.
    assert eng.publisher.client.meta.region_name == "eu-west-1"
    assert isinstance(eng.dead_letter, SqsDeadLetter)
    assert isinstance(eng.scp, OrgScp) and eng.scp.policy_name == "ks-deny"


def test_parts_passed_in_replace_the_defaults_and_options_reach_the_engine() -> None:
    pub = MemoryPublisher()
    eng = build_engine(CONFIG, publisher=pub, scp=None, kill_ids=lambda now: "fixed")
    assert eng.publisher is pub and eng.kill_ids(None) == "fixed"  # type: ignore[arg-type]
