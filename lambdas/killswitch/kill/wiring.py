"""The one place that assembles a `KillEngine` (kill Lambda, CLI, demo, benchmarks and tests all call
`build_engine`), so a new engine dependency is wired once.

Defaults are the deployed set-up: a DynamoDB kill ledger and spend ledger on `table`, result events on
`events_topic_arn`, rejected inputs to the DLQ at `dlq_url`, the Organizations deny SCP when the config has
sandbox accounts, and with an `accounts:` section the hub path (`killswitch.kill.accounts`: every organization
account through its `<prefix>-spoke` role). No table means an in-memory ledger (a dry run needs no table). Any
engine part can be passed in instead (`ledger=`, `clients=`, `publisher=`, `scp=`, `spend=`, `dead_letter=`,
`spokes=`) and other `KillEngine` keyword arguments (`clock=`, `kill_ids=`) pass through.
"""

from __future__ import annotations

from typing import Any

import boto3

from killswitch.arns import region_of
from killswitch.config import KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.engine import KillEngine

# Sentinel: "build the default part" (None is a meaningful value for `scp`/`spend`: leave it out).
DEFAULT: Any = object()


def build_engine(
    config: KillSwitchConfig,
    *,
    table: str | None = None,
    events_topic_arn: str | None = None,
    dlq_url: str | None = None,
    scp_policy_name: str | None = None,
    org_role_arn: str | None = None,
    region: str | None = None,
    session: Any = None,
    clients: Any = DEFAULT,
    ledger: Any = DEFAULT,
    publisher: Any = DEFAULT,
    scp: Any = DEFAULT,
    spend: Any = DEFAULT,
    dead_letter: Any = DEFAULT,
    spokes: Any = DEFAULT,
    **engine_options: Any,
) -> KillEngine:
    """A `KillEngine` for `config`. One boto3 session for every client: a session caches the service models
    (a faster cold start). `region` is where the ledger table and the events topic live when the ARN does not say
    (default: the session's region)."""
    session = session or boto3.Session(region_name=region)
    region = region or session.region_name or config.deploy_region
    if clients is DEFAULT:
        clients = Clients(session)
    if ledger is DEFAULT:
        ledger = _kill_ledger(config, table, session, region)
    if spend is DEFAULT:
        spend = _spend_ledger(config, table, session) if table else None
    if publisher is DEFAULT:
        publisher = _publisher(events_topic_arn, clients, region)
    if scp is DEFAULT:
        scp = _org_scp(config, scp_policy_name, org_role_arn, session)
    if dead_letter is DEFAULT:
        dead_letter = _dead_letter(dlq_url, clients, region)
    if spokes is DEFAULT:
        spokes = _spokes(config, clients, region)
    return KillEngine(
        config,
        ledger,
        clients=clients,
        publisher=publisher,
        scp=scp,
        spend=spend,
        dead_letter=dead_letter,
        spokes=spokes,
        **engine_options,
    )


def _kill_ledger(config: KillSwitchConfig, table: str | None, session: Any, region: str) -> Any:
    from killswitch.kill.ledger import DynamoKillLedger, InMemoryKillLedger

    if not table:
        return InMemoryKillLedger()
    return DynamoKillLedger(table, session=session, region=region, retention_days=config.ledger_retention_days)


def _spend_ledger(config: KillSwitchConfig, table: str, session: Any) -> Any:
    from killswitch.spend.ledger import DynamoSpendStore, SpendLedger

    return SpendLedger(DynamoSpendStore(table, session=session), retention_days=config.ledger_retention_days)


def _publisher(topic_arn: str | None, clients: Any, region: str) -> Any:
    from killswitch.kill.publish import NullPublisher, SnsPublisher

    if not topic_arn:
        return NullPublisher()
    return SnsPublisher(topic_arn, client=clients("sns", region_of(topic_arn) or region))


def _org_scp(config: KillSwitchConfig, policy_name: str | None, role_arn: str | None, session: Any) -> Any:
    policy = policy_name or config.scp_policy_name()
    if not policy or not any(a.sandbox_accounts for a in config.agents):
        return None
    from killswitch.kill.scp import OrgScp

    return OrgScp(config, policy, role_arn=role_arn, session=session)


def _dead_letter(queue_url: str | None, clients: Any, region: str) -> Any:
    if not queue_url:
        return None
    from killswitch.kill.publish import SqsDeadLetter

    return SqsDeadLetter(queue_url, client=clients("sqs", region))


def _spokes(config: KillSwitchConfig, clients: Any, region: str) -> Any:
    """Hub and spokes: a `SpokeSessions` factory (new sessions per operation: accounts listed and roles assumed
    once per kill, never kept across warm invocations)."""
    if config.accounts is None:
        return None
    from killswitch.kill.accounts import SpokeSessions

    return lambda: SpokeSessions(config, clients, region=region)
