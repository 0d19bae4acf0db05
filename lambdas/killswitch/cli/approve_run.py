"""`killswitch approve-run RUN_ID [--agent A] [--yes]`: let a run paused by `escalate` go on.

Ops credentials write one approval item (`APPROVAL#<agent>` / `RUN#<run_id>`, `killswitch.guard.approvals`) that the
agent's guard reads on the paused run's next call; agents may only read their own approvals, never write one.
"""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path

import typer

from killswitch import aws
from killswitch.cli.ops import (
    CliError,
    ConfigOpt,
    JsonOpt,
    TableOpt,
    cli_config,
    refuse_prompt_in_json,
    require_agent,
    require_table,
    run,
    table_name,
)
from killswitch.config import KillSwitchConfig
from killswitch.guard.approvals import new_approval
from killswitch.guard.dynamo import write_approval
from killswitch.results import EXIT_OK, EXIT_REFUSED


def approved_agent(config: KillSwitchConfig, agent: str | None) -> str:
    """The agent whose run is approved: `--agent`, else the only agent that can pause runs (`escalate`)."""
    if agent:
        require_agent(config, agent)
        return agent
    escalating = [a.name for a in config.agents if a.escalate is not None]
    candidates = escalating or config.agent_names()
    if len(candidates) == 1:
        return candidates[0]
    raise CliError(f"pass --agent NAME: more than one agent may have paused this run ({', '.join(candidates)})")


def approve_run(  # noqa: PLR0917 (typer options)
    run_id: str = typer.Argument(..., help="The paused run (agent-run-id; the approval request names it)."),
    agent: str | None = typer.Option(None, "--agent", "-a", help="The run's agent (default: the one with escalate)."),
    note: str = typer.Option("", "--note", help="Why it is approved (kept with the approval)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    json_out: bool = JsonOpt,
    config: Path | None = ConfigOpt,
    table: str | None = TableOpt,
) -> None:
    """Let a run paused by `escalate` go on: its next call goes through and its count of costly calls starts again."""

    def body() -> int:
        cfg = cli_config(config)
        name = approved_agent(cfg, agent)
        ledger = table_name(table)
        region = cfg.deploy_region
        client = aws.client("dynamodb", region)
        require_table(client, ledger, region)
        if not yes:
            refuse_prompt_in_json(json_out)
            if not typer.confirm(f"Approve run {run_id} of {name}? Its next costly call goes through."):
                typer.echo("aborted: nothing was approved")
                return EXIT_REFUSED
        approval = new_approval(name, run_id, approved_by=_operator(), note=note, now=time.time())
        write_approval(client, ledger, approval)
        if json_out:
            typer.echo(json.dumps({"operation": "approve_run", **approval.__dict__}, indent=2))
        else:
            typer.echo(
                f"approved run {run_id} of {name} ({approval.approval_id}): the guard lets it go on at its next call"
            )
        return EXIT_OK

    run(body)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


def register(app: typer.Typer) -> None:
    app.command("approve-run")(approve_run)
