"""Operator commands of the kill engine: fire, kill, restore, approve, status.

They drive `killswitch.kill.engine.KillEngine` against whatever endpoint boto3 is configured for
(`AWS_ENDPOINT_URL` works, so a moto server is fine). Ledger table: `--table` or `$KILLSWITCH_TABLE`; result events
go to `$KILLSWITCH_EVENTS_TOPIC_ARN` when set. Exit codes: 0 done, 1 refused/invalid input, 2 partial failure,
3 AWS error.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table

from killswitch import aws
from killswitch.cli.ledger_table import is_missing_table, missing_table_message, table_exists
from killswitch.cli.render import console, plan_table, plan_title, print_report, print_status, short_id
from killswitch.config import ConfigError, KillSwitchConfig, load_config
from killswitch.kill.engine import KillEngine
from killswitch.kill.model import KillReport, KillStatus
from killswitch.kill.wiring import build_engine
from killswitch.results import EXIT_AWS, EXIT_OK, EXIT_REFUSED
from killswitch.settings import ENV_EVENTS_TOPIC, ENV_ORG_ROLE, ENV_SCP_POLICY_NAME, ENV_TABLE

ConfigOpt = typer.Option(None, "--config", "-c", help="Config file (default $KILLSWITCH_CONFIG or killswitch.yaml).")
TableOpt = typer.Option(None, "--table", help="Ledger DynamoDB table (default $KILLSWITCH_TABLE).")
JsonOpt = typer.Option(False, "--json", help="Print the result as JSON.")


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_REFUSED):
        super().__init__(message)
        self.code = code


def require_agent(config: KillSwitchConfig, agent: str) -> None:
    if agent not in config.agent_names():
        raise CliError(f"agent {agent!r} is not in the config (known: {', '.join(config.agent_names())})")


# The table and region of the last engine built, so that a DynamoDB "not found" raised later still names them.
_LEDGER: dict[str, str | None] = {}


def refuse_prompt_in_json(json_out: bool) -> None:
    """A command that would ask for confirmation cannot ask in JSON mode: `--yes` must say it."""
    if json_out:
        raise CliError("--json needs --yes (no confirmation prompt in JSON mode)")


def cli_config(config_path: Path | None) -> KillSwitchConfig:
    """The config file, or a CliError with every issue (file, line, field)."""
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


def table_name(table: str | None) -> str:
    """`--table`, else `$KILLSWITCH_TABLE`, else a CliError saying how to name it."""
    name = table or os.environ.get(ENV_TABLE)
    if not name:
        raise CliError(f"no ledger table: pass --table or set ${ENV_TABLE}")
    return name


def require_table(client: Any, table: str, region: str) -> None:
    """One clear message naming table and region instead of a raw ResourceNotFoundException later."""
    if not table_exists(client, table):
        raise CliError(missing_table_message(table, region))


def make_engine(
    config_path: Path | None, table: str | None, *, need_table: bool = True, scp: bool = True
) -> tuple[KillEngine, KillSwitchConfig]:
    config = cli_config(config_path)
    table = table_name(table) if need_table else table or os.environ.get(ENV_TABLE)
    # The ledger table lives in the deployment's home region, whatever region the shell defaults to.
    region = config.deploy_region
    session = boto3.Session(region_name=region)
    if table:
        _LEDGER.update(table=table, region=region)
        require_table(aws.client("dynamodb", region, session=session), table, region)
    engine = build_engine(
        config,
        table=table,
        session=session,
        region=region,
        events_topic_arn=os.environ.get(ENV_EVENTS_TOPIC),
        scp_policy_name=os.environ.get(ENV_SCP_POLICY_NAME),
        org_role_arn=os.environ.get(ENV_ORG_ROLE),
        **({} if scp else {"scp": None}),
    )
    return engine, config


def run(fn: Any) -> None:
    """Run a command body; map our errors and AWS errors to exit codes."""
    try:
        code = fn()
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.code) from exc
    except ClientError as exc:
        if is_missing_table(exc) and _LEDGER.get("table"):
            typer.echo(f"error: {missing_table_message(str(_LEDGER['table']), _LEDGER.get('region'))}", err=True)
            raise typer.Exit(EXIT_REFUSED) from exc
        typer.echo(f"AWS error: {exc}", err=True)
        raise typer.Exit(EXIT_AWS) from exc
    except BotoCoreError as exc:
        typer.echo(f"AWS error: {exc}", err=True)
        raise typer.Exit(EXIT_AWS) from exc
    raise typer.Exit(code or EXIT_OK)


def emit(reports: list[KillReport], as_json: bool, *, show_plan: bool = False, regions: list[str] | None = None) -> int:
    if as_json:
        payload: Any = [r.to_dict() for r in reports] if len(reports) != 1 else reports[0].to_dict()
        typer.echo(json.dumps(payload, indent=2, default=str, ensure_ascii=False))
    else:
        con = console()
        for r in reports:
            print_report(con, r, show_plan=show_plan, regions=regions)
    return max((r.exit_code() for r in reports), default=EXIT_OK)


# ----------------------------------------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------------------------------------
def fire(
    event_file: Path = typer.Argument(..., help="Lambda/SNS event JSON file (what the kill topic delivers)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan only: change nothing, write nothing."),
    json_out: bool = JsonOpt,
    config: Path | None = ConfigOpt,
    table: str | None = TableOpt,
) -> None:
    """Run the kill handler locally on an event file."""

    def body() -> int:
        try:
            event = json.loads(event_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read event file {event_file}: {exc}") from exc
        eng, _ = make_engine(config, table, need_table=not dry_run)
        from killswitch.handlers import kill as kill_handler

        kill_handler.logger.setLevel(logging.WARNING)  # the CLI prints the results itself
        reports = kill_handler.handle(event, eng, dry_run=dry_run)
        return emit(reports, json_out, show_plan=dry_run, regions=eng.config.regions)

    run(body)


def kill(  # noqa: PLR0917 (typer options)
    agent: str = typer.Option(..., "--agent", "-a", help="agent-name tag value."),
    run_id: str | None = typer.Option(None, "--run-id", help="Only this run's resources (agent-run-id tag)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    force: bool = typer.Option(False, "--force", help="Go beyond the blast-radius limit."),
    reason: str = typer.Option("manual kill from the CLI", "--reason", help="Recorded in the ledger and event."),
    json_out: bool = JsonOpt,
    config: Path | None = ConfigOpt,
    table: str | None = TableOpt,
) -> None:
    """Stop everything tagged with the agent (or one run) in every configured region."""

    def body() -> int:
        eng, cfg = make_engine(config, table, need_table=not dry_run)
        require_agent(cfg, agent)
        if dry_run:
            report = eng.kill(agent, run_id=run_id, dry_run=True, force=force, reason=reason)
            return emit([report], json_out, show_plan=True, regions=cfg.regions)
        if not yes:
            refuse_prompt_in_json(json_out)
            plan, _ = eng.plan(agent, run_id=run_id, force=force)
            con = console()
            con.print(plan_table(plan, plan_title(agent, len(plan.to_act), cfg.regions)))
            if plan.refused:
                con.print(f"[bold red]refused:[/] {plan.refused}")
                return EXIT_REFUSED
            n, waiting = len(plan.to_act), len(plan.needs_approval)
            if not typer.confirm(f"Stop {n} resources of {agent} ({waiting} more will wait for approval)?"):
                con.print("aborted: nothing was done")
                return EXIT_REFUSED
        return emit([eng.kill(agent, run_id=run_id, force=force, reason=reason)], json_out)

    run(body)


def restore(  # noqa: PLR0917 (typer options)
    agent: str | None = typer.Option(None, "--agent", "-a", help="Restore every active kill of this agent."),
    kill_id: str | None = typer.Option(None, "--kill-id", help="Restore only this kill."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be restored; change nothing."),
    json_out: bool = JsonOpt,
    config: Path | None = ConfigOpt,
    table: str | None = TableOpt,
) -> None:
    """Put back exactly what a kill changed (reverse order), and nothing else."""

    def body() -> int:
        if not agent and not kill_id:
            raise CliError("pass --agent NAME and/or --kill-id ID")
        eng, cfg = make_engine(config, table)
        if agent:
            require_agent(cfg, agent)
        return emit([eng.restore(agent, kill_id=kill_id, dry_run=dry_run)], json_out)

    run(body)


def approve(
    kill_id: str = typer.Argument(..., help="Kill id waiting for approval (see `killswitch status`)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    json_out: bool = JsonOpt,
    config: Path | None = ConfigOpt,
    table: str | None = TableOpt,
) -> None:
    """Carry out what a kill left waiting for approval (re-checks the current state first)."""

    def body() -> int:
        eng, _ = make_engine(config, table)
        if not yes and not confirm_approval(eng, kill_id, json_out):
            return EXIT_REFUSED
        return emit([eng.approve(kill_id)], json_out)

    run(body)


def confirm_approval(eng: KillEngine, kill_id: str, json_out: bool) -> bool:
    """Show what waits for approval and ask, like `kill` does. A kill that waits for nothing goes straight to the
    engine, which refuses it with the reason."""
    record = eng.ledger.get_kill(kill_id)
    if record is None or record.status is not KillStatus.AWAITING_APPROVAL:
        return True
    refuse_prompt_in_json(json_out)
    waiting = [e for e in eng.ledger.resources(kill_id) if e.awaiting_approval]
    con = console()
    t = Table(title=f"Waiting for approval in kill {kill_id} of {record.agent}", title_justify="left")
    for col in ("type", "region", "resource", "name"):
        t.add_column(col, overflow="fold")
    for e in waiting:
        r = e.resource
        t.add_row(r.resource_type, r.region, short_id(r.resource_type, r.resource_id), r.name)
    con.print(t)
    if typer.confirm(f"Stop these {len(waiting)} resources of {record.agent} now?"):
        return True
    con.print("aborted: nothing was done")
    return False


def status(
    agent: str | None = typer.Option(None, "--agent", "-a", help="One agent (default: every agent in the config)."),
    json_out: bool = JsonOpt,
    config: Path | None = ConfigOpt,
    table: str | None = TableOpt,
) -> None:
    """What is stopped, by which kill, and what restore would do."""

    def body() -> int:
        eng, cfg = make_engine(config, table, scp=False)
        if agent:
            require_agent(cfg, agent)
        rows = eng.status(agent)
        if json_out:
            typer.echo(json.dumps(rows, indent=2, default=str, ensure_ascii=False))
            return EXIT_OK
        print_status(console(), rows)
        return EXIT_OK

    run(body)


def register(app: typer.Typer) -> None:
    app.command("fire")(fire)
    app.command("kill")(kill)
    app.command("restore")(restore)
    app.command("approve")(approve)
    app.command("status")(status)
