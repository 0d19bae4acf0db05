"""`killswitch demo`: the whole story on an embedded moto backend (in-process, no server, no AWS account).

A fleet for two agents in two regions, a real-format AWS Budgets alert through the kill handler path, the plan
with its reasons, the results, the ledger, a duplicate delivery, then restore and a before/after comparison that
proves the fleet is back exactly as it was.
"""

from __future__ import annotations

import json
import logging
import os
import textwrap
from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel
from rich.table import Table

from killswitch.cli.demo_kinds import DemoKinds
from killswitch.cli.ops import ConfigOpt
from killswitch.cli.render import console, headline, plan_table, print_status, results_table, short_id
from killswitch.config import ConfigError, KillSwitchConfig, load_config
from killswitch.testing.sim import budgets_letter, offline_env

EAST, WEST = "us-east-1", "us-west-2"
TABLE = "killswitch-demo-ledger"
REPO_SCP = Path("scp_policies/deny-agent-compute.json")


def sns_event(message: str, subject: str, message_id: str, topic_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:3f1c0f4e",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": topic_arn,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": "2026-11-22T10:15:00.000Z",
                    "MessageAttributes": {},
                },
            }
        ]
    }


class Story:
    """Builds the fleet and remembers a label for every resource (for the before/after table)."""

    def __init__(self, clients: Any, agents: list[str], prefix: str = "killswitch"):
        self.c = clients
        self.labels: dict[str, tuple[str, str]] = {}  # snapshot key → (agent, label)
        self.a, self.b = agents[0], agents[1] if len(agents) > 1 else agents[0]
        self.kinds = DemoKinds(clients, prefix)

    def state(self, regions: list[str]) -> dict[str, str]:
        """Snapshot key → shown state, for every resource of the story."""
        from killswitch.testing import sim

        return {**_flat(sim.snapshot(self.c, regions)), **self.kinds.snapshot()}

    def add(self, key: str, agent: str, label: str) -> None:
        self.labels[key] = (agent, label)

    def build(self) -> None:
        from killswitch.testing import sim

        t, c, a, b = sim.agent_tags, self.c, self.a, self.b
        for region, n in ((EAST, 1), (WEST, 2)):
            i = sim.run_instance(c, region, t(a, Name=f"{a}-{n}"))
            self.add(f"{region}/{i}", a, f"EC2 {a}-{n}")
        i = sim.run_instance(c, EAST, t(a, Name="exempt-db", **{"killswitch:exempt": "true"}))
        self.add(f"{EAST}/{i}", a, "EC2 exempt-db (killswitch:exempt=true)")
        i = sim.run_instance(c, EAST, t(a, Name="stop-protected"), disable_api_stop=True)
        self.add(f"{EAST}/{i}", a, "EC2 stop-protected (disableApiStop)")
        i = sim.run_instance(c, EAST, t(a, Name="critical-index", **{"killswitch:criticality": "critical"}))
        self.add(f"{EAST}/{i}", a, "EC2 critical-index (criticality=critical)")
        arn = sim.ecs_service(c, EAST, "agents", f"{a}-api", t(a), desired=3, scaling=(2, 6))
        self.add(f"{EAST}/{arn}", a, f"ECS service agents/{a}-api (desired)")
        self.add(f"{EAST}/service/agents/{a}-api", a, "  its autoscaling target (min, max, suspended)")
        task = sim.ecs_task(c, EAST, "agents", t(a))
        self.add(f"{EAST}/{task}", a, "ECS standalone task")
        sim.auto_scaling_group(
            c, WEST, f"{a}-workers", t(a), min_size=1, max_size=5, desired=2, suspended=["AZRebalance"]
        )
        self.add(f"{WEST}/{a}-workers", a, f"ASG {a}-workers (min, max, desired, suspended)")
        for region in (EAST, WEST):
            i = sim.run_instance(c, region, t(b, Name=f"{b}-{region}"))
            self.add(f"{region}/{i}", b, f"EC2 {b}-{region}")
        arn = sim.ecs_service(c, EAST, "agents", f"{b}-api", t(b), desired=2)
        self.add(f"{EAST}/{arn}", b, f"ECS service agents/{b}-api (desired)")
        i = sim.run_instance(c, WEST, {"Name": "untagged-bastion"})
        self.add(f"{WEST}/{i}", "-", "EC2 untagged-bastion (no agent-name tag)")
        self.kinds.build(a, b if b != a else None)
        self.labels.update(self.kinds.labels)


def _flat(snap: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, v in snap.instances.items():
        out[key] = v
    for key, v in snap.services.items():
        out[key] = f"desired {v}"
    for key, (lo, hi, susp) in snap.scalable.items():
        out[key] = f"{lo}..{hi} suspended={'yes' if any(susp) else 'no'}"
    for key, (lo, hi, desired, procs) in snap.groups.items():
        out[key] = f"{lo}/{hi}/{desired} [{', '.join(procs) or '-'}]"
    for key, v in snap.tasks.items():
        out[key] = v
    return out


def _org(clients: Any, config: KillSwitchConfig, agent: str) -> tuple[KillSwitchConfig, str | None, str | None]:
    """An organization with one sandbox account and the deny SCP; the agent's configured sandbox accounts are mapped
    to that account (moto makes up account ids)."""
    name = config.scp_policy_name()
    cfg = config.agent(agent)
    if not name or not cfg.sandbox_accounts:
        return config, None, None
    org = clients("organizations", EAST)
    org.create_organization(FeatureSet="ALL")
    account = org.create_account(AccountName=f"{agent}-sandbox", Email="sandbox@example.com")
    account_id = str(account["CreateAccountStatus"]["AccountId"])
    content = (
        REPO_SCP.read_text(encoding="utf-8")
        if REPO_SCP.exists()
        else json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*"}]}
        )
    )
    org.create_policy(
        Name=name,
        Description="deny agent compute",
        Type="SERVICE_CONTROL_POLICY",
        Content=json.dumps(json.loads(content)),
    )
    agents = [a.model_copy(update={"sandbox_accounts": [account_id]}) if a.name == agent else a for a in config.agents]
    return config.model_copy(update={"agents": agents}), account_id, name


def _scp_state(clients: Any, account_id: str | None, policy_name: str | None) -> str:
    if not account_id:
        return "-"
    org = clients("organizations", EAST)
    names = [
        p["Name"]
        for p in org.list_policies_for_target(TargetId=account_id, Filter="SERVICE_CONTROL_POLICY")["Policies"]
    ]
    return ", ".join(sorted(names))


def run_demo(config: KillSwitchConfig, config_path: str) -> int:
    from killswitch.handlers import kill as kill_handler
    from killswitch.kill.discover import Clients
    from killswitch.testing import sim

    con = console()
    agents = config.agent_names()
    agent = agents[0]
    con.print(
        Panel(
            f"Agent Kill Switch demo on an embedded moto backend: no AWS account, nothing leaves this process.\n"
            f"Config: {config_path} · agents: {', '.join(agents)} · regions: {', '.join(config.regions)}",
            title="killswitch demo",
        )
    )
    regions = list(dict.fromkeys([*config.regions, EAST, WEST]))
    with sim.moto_aws():
        try:
            c = Clients()
            cfg, sandbox, policy = _org(c, config.model_copy(update={"regions": regions}), agent)
            story = Story(c, agents, cfg.prefix)
            story.build()
            sim.create_ledger_table(c("dynamodb", EAST), TABLE)
            sns, sqs = c("sns", EAST), c("sqs", EAST)
            kill_topic = sns.create_topic(Name="killswitch-kill")["TopicArn"]
            events_topic = sns.create_topic(Name="killswitch-events")["TopicArn"]
            queue = sqs.create_queue(QueueName="events-inbox")["QueueUrl"]
            q_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(
                TopicArn=events_topic, Protocol="sqs", Endpoint=q_arn, Attributes={"RawMessageDelivery": "true"}
            )
            os.environ.update(
                {
                    "KILLSWITCH_TABLE": TABLE,
                    "KILLSWITCH_EVENTS_TOPIC_ARN": events_topic,
                    "KILLSWITCH_CONFIG_JSON": cfg.to_json(),
                }
            )
            if policy:
                os.environ["KILLSWITCH_SCP_POLICY_NAME"] = policy
            kill_handler.reset()
            kill_handler.logger.setLevel(logging.WARNING)
            eng, _ = kill_handler.engine()

            before = story.state(regions)
            scp_before = _scp_state(c, sandbox, policy)
            con.print(f"\n[bold]1. The fleet[/] — {len(story.labels)} resources in {', '.join(regions)}")
            fleet = Table(title_justify="left")
            for col in ("agent", "resource", "region", "id", "state"):
                fleet.add_column(col, overflow="fold")
            for key, (who, label) in story.labels.items():
                region, rid = key.split("/", 1)
                if region == "iam":
                    region, rid = "global", rid.rsplit("/", 1)[-1]
                fleet.add_row(
                    who, label, region, short_id("ecs:service", rid) if "arn:" in rid else rid, before.get(key, "")
                )
            if sandbox:
                fleet.add_row(agent, "sandbox account (Organizations)", "global", sandbox, f"SCPs: {scp_before}")
            con.print(fleet)
            if sandbox:
                configured = ", ".join(config.agent(agent).sandbox_accounts)
                con.print(f"Sandbox account {configured} of the config stands for moto's account {sandbox}.")
            con.print(
                "moto honours disableApiStop: StopInstances fails with OperationNotPermitted for that instance "
                "(no wrapper needed)."
            )

            budget = cfg.budget_name_for(cfg.agent(agent))
            amount = cfg.agent(agent).budget.amount_usd
            letter = budgets_letter(budget, round(amount * 1.06, 2), amount, amount)
            event = sns_event(
                letter, f"AWS Budgets: {budget} has exceeded your alert threshold", "demo-msg-1", kill_topic
            )
            con.print(f"\n[bold]2. AWS Budgets alert for {agent}[/] (plain text, delivered by SNS to the kill Lambda)")
            con.print(Panel(letter.strip(), title="SNS Message", expand=False))
            (report,) = kill_handler.handle(event, eng)
            con.print(f"Level: [bold]{report.level}[/] — {report.reason}")
            if report.plan is not None:
                con.print(
                    plan_table(report.plan, "\n3. The plan (a pure function of alert + config + discovered resources)")
                )
            con.print(results_table(report, "\n4. What the kill did"))
            con.print(headline(report))
            con.print(f"IAM and Lambda after the kill: {story.kinds.summary(story.kinds.snapshot())}")
            msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            if msgs:
                ev = json.loads(msgs[0]["Body"])
                keep = ("operation", "agent", "kill_id", "status", "counts", "failures", "needs_approval", "dry_run")
                shown = {k: ev[k] for k in keep if k in ev}
                for f in shown.get("failures", []):
                    f["message"] = textwrap.shorten(f["message"], 70, placeholder=" …")  # whole words only
                event_json = json.dumps(shown, indent=2, ensure_ascii=False)  # "…", not a raw \u2026 escape
                con.print(Panel(event_json, title="5. Result event on the events topic", expand=False))
            con.print("\n[bold]6. Ledger status[/] (`killswitch status`)")
            print_status(con, eng.status())

            (dup,) = kill_handler.handle(sns_event(letter, "AWS Budgets", "demo-msg-2", kill_topic), eng)
            con.print(f"\n[bold]7. The same alert delivered again[/] → {dup.operation.value}: {dup.message}")

            during = story.state(regions)
            scp_during = _scp_state(c, sandbox, policy)
            restored = eng.restore(agent)
            con.print(results_table(restored, f"\n8. Restore {agent} (reverse order: SCP first, groups last)"))
            con.print(headline(restored))
            con.print(f"IAM and Lambda after restore: {story.kinds.summary(story.kinds.snapshot())}")
            after = story.state(regions)
            scp_after = _scp_state(c, sandbox, policy)

            cmp = Table(title="\n9. Before / after the kill / after restore", title_justify="left")
            for col in ("agent", "resource", "before", "after kill", "after restore", "same as before"):
                cmp.add_column(col, overflow="fold")
            equal = True
            for key, (who, label) in story.labels.items():
                if key not in before:
                    continue
                same = before[key] == after.get(key) or "ECS standalone task" in label
                if "ECS standalone task" not in label:
                    equal = equal and same
                mark = (
                    "[green]yes[/]"
                    if before[key] == after.get(key)
                    else ("[dim]n/a (a stopped task is not restarted)[/]" if "task" in label else "[bold red]NO[/]")
                )
                cmp.add_row(who, label, before[key], during.get(key, "-"), after.get(key, "-"), mark)
            if sandbox:
                same_scp = scp_before == scp_after
                equal = equal and same_scp
                cmp.add_row(
                    agent,
                    f"SCPs on sandbox {sandbox}",
                    scp_before,
                    scp_during,
                    scp_after,
                    "[green]yes[/]" if same_scp else "[bold red]NO[/]",
                )
            con.print(cmp)
            if equal:
                con.print(
                    "[bold green]The fleet is back exactly as it was; the other agent and untagged resources "
                    "were never touched.[/]"
                )
            else:
                con.print("[bold red]The fleet differs after restore.[/]")
            return 0 if equal else 1
        finally:
            kill_handler.reset()


def demo(config: Path | None = ConfigOpt) -> None:
    """The whole kill/restore story on an embedded moto backend (no AWS account needed)."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    with offline_env(EAST):
        code = run_demo(cfg, str(config or os.environ.get("KILLSWITCH_CONFIG") or "killswitch.yaml"))
        if code == 0:
            from killswitch.cli.demo_meter import run_meter_step

            code = run_meter_step(console(), cfg)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
