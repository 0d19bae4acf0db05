"""`killswitch demo`, last step: an agent with no guard, stopped from its Bedrock invocation logs by the meter.

Runs on its own embedded moto backend: the agent's IAM role (tagged `agent-name`), its instances, another agent's
instance, an untagged caller; three CloudWatch Logs subscription batches of real-shaped invocation records an hour
apart go through `Meter.process_logs`, which raises its decisions into the kill engine in-process.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from moto import mock_aws
from rich.console import Console
from rich.table import Table

from killswitch.config import KillSwitchConfig
from killswitch.guard.prices import default_prices
from killswitch.kill.discover import Clients
from killswitch.kill.wiring import build_engine
from killswitch.meter.callers import CallerDirectory, IamTagReader
from killswitch.meter.pricing import RecordPricer
from killswitch.meter.records import encode_subscription_event, invocation_log
from killswitch.meter.service import Meter
from killswitch.spend.ledger import InMemorySpendStore, SpendLedger
from killswitch.testing import sim, sim_kinds

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
CALL_TOKENS = (200_000, 20_000)  # $0.60 + $0.30 = $0.90 per call at $3 / $15 per million


def _batch(caller: str, first: int, count: int, at: datetime, junk: bool = False) -> dict[str, Any]:
    import json

    events = [
        {
            "id": f"demo-{i}",
            "timestamp": int(at.timestamp() * 1000),
            "message": json.dumps(
                invocation_log(caller, MODEL, *CALL_TOKENS, request_id=f"req-{i}", timestamp=at.isoformat())
            ),
        }
        for i in range(first, first + count)
    ]
    if junk:
        events.append({"id": "demo-bad", "timestamp": 0, "message": "{truncated"})
    return encode_subscription_event(events)


def run_meter_step(con: Console, config: KillSwitchConfig, number: int = 10) -> int:
    import logging

    from killswitch.handlers import meter as meter_handler
    from killswitch.meter import service

    for log in (meter_handler.logger, service.logger):  # the demo prints the results itself
        log.setLevel(logging.ERROR)
    agent = config.agents[0]
    con.rule(f"{number}. The meter: {agent.name} without the guard, stopped from its Bedrock invocation logs")
    with mock_aws():
        c = Clients()
        iam = boto3.client("iam")
        iam.create_role(
            RoleName="agent-role", AssumeRolePolicyDocument="{}", Tags=[{"Key": "agent-name", "Value": agent.name}]
        )
        iam.create_role(RoleName="ci-runner", AssumeRolePolicyDocument="{}")
        sim_kinds.deny_policy(c, config.prefix)  # the deny policy the workload stack deploys (`deny_iam`)
        caller = f"arn:aws:sts::{ACCOUNT}:assumed-role/agent-role/run-42"
        untagged = f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-runner/build"
        mine = [sim.run_instance(c, REGION, sim.agent_tags(agent.name)) for _ in range(2)]
        others = [sim.run_instance(c, REGION, sim.agent_tags(a.name)) for a in config.agents[1:2]]
        now = [datetime(2026, 11, 22, 8, 0, tzinfo=UTC)]
        spend = SpendLedger(InMemorySpendStore())
        engine = build_engine(config, clients=c, spend=spend, scp=None, clock=lambda: now[0])
        meter = Meter(
            config,
            spend,
            engine,
            pricer=RecordPricer(default_prices()),
            callers=CallerDirectory(IamTagReader(iam), ACCOUNT),
            clock=lambda: now[0],
        )
        per_call = 0.9
        budget = agent.budget.amount_usd
        sizes = [int(budget * 0.45 / per_call), int(budget * 0.40 / per_call), int(budget * 0.20 / per_call)]
        table = Table(title="Log batches (CloudWatch Logs subscription → meter Lambda)")
        for col in ("time", "records", "priced", "skipped", "estimate", "% of budget", "decision"):
            table.add_column(col)
        first = 0
        for k, size in enumerate(sizes):
            now[0] = datetime(2026, 11, 22, 8, 0, tzinfo=UTC) + timedelta(minutes=75 * k)
            event = _batch(caller, first, size, now[0], junk=k == 0)
            first += size
            if k == 1:  # a build job with no agent tag calls Bedrock too: counted, never charged to an agent
                extra = _batch(untagged, 10_000, 5, now[0])
                meter.process_logs(extra)
            report = meter.process_logs(event)
            est = report.estimates.get(agent.name)
            decision = ", ".join(f"{d.level}: {d.status}" for d in report.decisions) or "none"
            table.add_row(
                f"{now[0]:%H:%M}",
                str(report.records),
                str(report.priced),
                ", ".join(f"{r} {n}" for r, n in report.skipped.items()) or "-",
                f"${est.total_usd:,.2f}" if est else "-",
                f"{float(est.total_usd) * 100 / budget:.0f}%" if est else "-",
                decision,
            )
        con.print(table)
        states = {i: _state(c, i) for i in mine + others}
        stopped = all(states[i] in ("stopping", "stopped") for i in mine)
        untouched = all(states[i] == "running" for i in others)
        con.print(
            f"{agent.name}'s instances: {', '.join(states[i] for i in mine)}; other agent's: "
            f"{', '.join(states[i] for i in others) or '-'} (source killswitch.meter, no agent code changed)"
        )
        return 0 if stopped and untouched else 1


def _state(c: Clients, instance_id: str) -> str:
    r = c("ec2", REGION).describe_instances(InstanceIds=[instance_id])
    return str(r["Reservations"][0]["Instances"][0]["State"]["Name"])
