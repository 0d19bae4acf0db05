"""What the operator commands print: plan and result tables, headlines whose counts say what happened, the
status tables. Tables follow the terminal width (`COLUMNS`)."""

from __future__ import annotations

import shutil
import textwrap
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from killswitch.arns import ecs_short_name
from killswitch.kill.model import ACCOUNT, ASG, EC2_INSTANCE, ECS_SERVICE, ECS_TASK, Act, KillReport, Operation, Plan
from killswitch.results import Outcome

OUTCOME_STYLE = {"success": "green", "no_action": "dim", "needs_approval": "yellow", "error": "bold red"}
ACT_STYLE = {
    "skip": "dim",
    "needs_approval": "yellow",
    "stop": "red",
    "scale_to_zero": "red",
    "stop_task": "red",
    "attach_scp": "red",
}


# Text wraps at word boundaries (a token longer than its column folds); the resource id never breaks (a folded
# instance id cannot be copied) and free-text columns keep a readable minimum width.
TEXT_COLUMNS = frozenset({"reason", "message", "kills (active)", "restore would", "kill did"})


def add_columns(table: Table, columns: tuple[str, ...]) -> None:
    for col in columns:
        table.add_column(col, no_wrap=col == "resource", min_width=12 if col in TEXT_COLUMNS else None, overflow="fold")


def console() -> Console:
    """Tables follow the terminal width (`COLUMNS` wins; 150 columns when the output is not a terminal)."""
    return Console(width=shutil.get_terminal_size((150, 40)).columns, soft_wrap=False, highlight=False)


def short_id(resource_type: str, resource_id: str) -> str:
    """ARNs shortened for tables: ECS services as cluster/name, tasks as cluster/task-id, other ARNs (IAM roles and
    users, Lambda functions, RDS) as their resource part (`role/name`, `function:name`)."""
    if resource_type in (ECS_SERVICE, ECS_TASK):
        return ecs_short_name(resource_id)
    parts = resource_id.split(":", 5)
    if resource_id.startswith("arn:") and len(parts) == 6:
        return parts[5]
    return resource_id


def plan_table(plan: Plan, title: str = "Plan") -> Table:
    t = Table(title=title, title_justify="left")
    add_columns(t, ("decision", "type", "region", "resource", "name", "reason"))
    for d in plan.decisions:
        r = d.resource
        act = (
            d.act.value
            if d.act is not Act.NEEDS_APPROVAL
            else f"needs_approval ({d.intended.value if d.intended else ''})"
        )
        style = ACT_STYLE.get(d.act.value, "")
        t.add_row(
            f"[{style}]{act}[/]" if style else act,
            r.resource_type,
            where(r.account, r.region),
            short_id(r.resource_type, r.resource_id),
            r.name if r.name != r.resource_id else "",
            d.reason,
        )
    return t


def where(account: str, region: str) -> str:
    """The region column; a hub kill's resource in an organization account reads `<account>/<region>`."""
    return f"{account}/{region}" if account else region


def results_table(report: KillReport, title: str = "Results") -> Table:
    t = Table(title=title, title_justify="left")
    add_columns(t, ("outcome", "action", "type", "region", "resource", "code", "message"))
    for r in report.summary.results:
        style = OUTCOME_STYLE.get(r.outcome.value, "")
        t.add_row(
            f"[{style}]{r.outcome.value}[/]",
            r.action,
            r.resource_type,
            where(r.account, r.region),
            short_id(r.resource_type, r.resource_id),
            r.code or "",
            textwrap.shorten(r.message, 200, placeholder=" …"),
        )
    return t


def headline(report: KillReport) -> str:
    c = report.summary.counts
    who = report.agent or "-"
    parts = [f"[bold]{report.operation.value}[/] {who}"]
    if report.kill_id:
        parts.append(f"kill {report.kill_id}")
    parts.append(f"status [bold]{report.status}[/]")
    counts = ", ".join(f"{k} {v}" for k, v in c.items() if v)
    if counts:
        parts.append(counts)
    text = " · ".join(parts)
    if report.refused:
        text += f"\n[bold red]refused:[/] {report.refused}"
    elif report.operation in (Operation.KILL, Operation.APPROVE) and not report.dry_run and report.summary.results:
        text += f"\n{what_happened(report)}"
    elif report.message:
        text += f"\n{report.message}"
    return text


# What a successful kill action did, per resource type and action: (one, several).
_DONE_PHRASES = {
    (EC2_INSTANCE, "stop"): ("instance stopped", "instances stopped"),
    (ECS_SERVICE, "scale_to_zero"): ("service or group scaled to zero", "services and groups scaled to zero"),
    (ASG, "scale_to_zero"): ("service or group scaled to zero", "services and groups scaled to zero"),
    (ECS_TASK, "stop_task"): ("task stopped", "tasks stopped"),
    (ACCOUNT, "attach_scp"): ("SCP attached", "SCPs attached"),
}


def what_happened(report: KillReport) -> str:
    """Counts that say what happened: `3 instances stopped, 2 services and groups scaled to zero, 1 SCP attached,
    1 failed, 3 skipped, 1 wait for ...` (resource kinds without a phrase read `<n> <type> <action>`)."""
    done: Counter[tuple[str, str]] = Counter()
    for r in report.summary.results:
        if r.outcome is Outcome.SUCCESS:
            generic = f"{r.resource_type} {r.action}"
            done[_DONE_PHRASES.get((r.resource_type, r.action), (generic, generic))] += 1
    c = report.summary.counts
    parts = [f"{n} {one if n == 1 else several}" for (one, several), n in done.items()] or ["nothing stopped"]
    if c.get("error"):
        parts.append(f"{c['error']} failed")
    if c.get("no_action"):
        parts.append(f"{c['no_action']} skipped")
    waiting = len(report.needs_approval)
    if waiting:
        parts.append(f"{waiting} wait for `killswitch approve {report.kill_id}`")
    return ", ".join(parts)


def print_report(
    con: Console, report: KillReport, *, show_plan: bool = False, regions: list[str] | None = None
) -> None:
    if show_plan and report.plan is not None and report.plan.decisions:
        con.print(plan_table(report.plan, plan_title(report.agent, len(report.plan.to_act), regions)))
    elif report.summary.results:
        con.print(results_table(report))
    con.print(headline(report))


def plan_title(agent: str | None, to_act: int, regions: list[str] | None) -> str:
    searched = f" · searched {', '.join(regions)}" if regions else ""
    return f"Plan for {agent} ({to_act} to act on){searched}"


def print_status(con: Console, rows: list[dict[str, Any]]) -> None:
    agents = Table(title="Agents", title_justify="left")
    add_columns(agents, ("agent", "state", "since", "reason", "kills (active)"))
    for row in rows:
        active = [k for k in row["kills"] if k["status"] != "restored"]
        kills = ", ".join(f"{k['kill_id']} ({k['status']})" for k in active) or "-"
        style = {"KILLED": "bold red", "THRIFT": "yellow"}.get(row["state"], "green")
        agents.add_row(row["agent"], f"[{style}]{row['state']}[/]", row["updated_at"], row["state_reason"], kills)
    con.print(agents)
    for row in rows:
        for v in row.get("tag_variants", []):
            con.print(
                f"[yellow]{row['agent']}: {v.get('resource_id')} ({v.get('region')}) is tagged agent-name="
                f"{v.get('agent-name')!r}, a case/whitespace variant: not stopped, fix the tag[/]"
            )
    lines = [(row["agent"], r) for row in rows for r in row["resources"]]
    if not lines:
        con.print("No resource is held by an active kill.")
        return
    t = Table(title="Held by active kills", title_justify="left")
    add_columns(t, ("agent", "kill", "type", "region", "resource", "kill did", "outcome", "restore would"))
    for name, r in lines:
        t.add_row(
            name,
            r["kill_id"],
            r["resource_type"],
            where(r.get("account", ""), r["region"]),
            short_id(r["resource_type"], r["resource_id"]) if r["resource_type"] != ACCOUNT else r["resource_id"],
            r["done"],
            r["outcome"],
            r["restore"],
        )
    con.print(t)
