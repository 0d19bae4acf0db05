"""`killswitch report`: per-agent spend from the ledger table (rich table, JSON, CSV, optional PNG chart)."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, date, datetime
from decimal import Decimal

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table

from killswitch import aws
from killswitch.config import ConfigError, load_config
from killswitch.results import EXIT_AWS, EXIT_REFUSED
from killswitch.settings import ENV_TABLE
from killswitch.spend.ledger import DynamoSpendStore, SpendLedger, read_agent_state
from killswitch.spend.report import AgentReport, build_reports, cents, render_chart, to_csv, to_json


def _fail(message: str, code: int = EXIT_REFUSED) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None


def _money(v: Decimal | None) -> str:
    return "-" if v is None else f"${cents(v):,.2f}"


def _accuracy(r: AgentReport) -> str:
    """The meter's error against Cost Explorer next to the guard's correction factor (each where known)."""
    meter = "-" if r.meter_error_pct is None else f"{r.meter_error_pct:+}%"
    guard = "-" if r.correction_factor is None else f"×{r.correction_factor:.2f}"
    return f"{meter} · {guard}"


def _table(reports: list[AgentReport]) -> Table:
    table = Table(title="Agent spend", show_lines=False)
    for col, justify in (
        ("agent", "left"),
        ("window", "left"),
        ("budget", "right"),
        ("budget alert", "right"),
        ("cost explorer", "right"),
        ("guard", "right"),
        ("% of budget", "right"),
        ("state", "left"),
        ("runs", "right"),
        ("per run", "right"),
        ("top services", "left"),
        ("meter err · guard ×", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    colors = {"ok": "green", "thrift": "yellow", "killed": "red"}
    for r in reports:
        table.add_row(
            r.agent,
            f"{r.since:%m-%d}..{r.until:%m-%d}",
            f"{_money(r.budget_amount_usd)} {r.period.lower()}",
            _money(r.budget_usd),
            _money(r.cost_explorer_usd),
            _money(r.guard_usd),
            f"{r.pct_of_budget}% ({r.spend_source or 'no data'})",
            f"[{colors.get(r.state, 'white')}]{r.state}[/]",
            str(r.runs),
            _money(r.cost_per_run_usd),
            ", ".join(f"{s} {_money(a)}" for s, a in r.top_services) or "-",
            _accuracy(r),
        )
    return table


def report(
    *,
    agent: str | None = typer.Option(None, "--agent", help="Only this agent (default: every agent in the config)."),
    since: str | None = typer.Option(None, "--since", help="First day, YYYY-MM-DD (default: budget period start)."),
    until: str | None = typer.Option(None, "--until", help="Last day, YYYY-MM-DD, inclusive (default: today, UTC)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV on stdout."),
    chart: str | None = typer.Option(None, "--chart", help="Also write a PNG chart of cumulative spend vs budget."),
    config: str | None = typer.Option(
        None, "--config", help="Config file (default: $KILLSWITCH_CONFIG, ./killswitch.yaml)."
    ),
    table: str | None = typer.Option(None, "--table", help=f"Ledger table name (default: ${ENV_TABLE})."),
) -> None:
    """Per-agent spend: budget alerts, Cost Explorer and guard figures, % of budget, state, cost per run."""
    if as_json and as_csv:
        raise _fail("--json and --csv are mutually exclusive")
    first, last = _parse_day(since, "--since"), _parse_day(until, "--until")
    if first and last and first > last:
        raise _fail(f"--since {first} is after --until {last}")
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    agents = list(cfg.agents)
    if agent:
        try:
            agents = [cfg.agent(agent)]
        except KeyError as exc:
            raise _fail(str(exc.args[0])) from None
    table_name = table or os.environ.get(ENV_TABLE)
    if not table_name:
        raise _fail(f"no ledger table: pass --table NAME or set {ENV_TABLE}")

    # The table lives in the deployment region: use it when boto3 has no region configured.
    session = boto3.Session()
    if not session.region_name:
        session = boto3.Session(region_name=cfg.deploy_region)
    store = DynamoSpendStore(table_name, session=session)
    ledger = SpendLedger(store)
    today = datetime.now(UTC).date()
    try:
        reports = build_reports(
            ledger, agents, today, since=first, until=last, state_of=lambda a: read_agent_state(store, a)
        )
    except ClientError as exc:
        if aws.error_code(exc) == "ResourceNotFoundException":
            hint = f"check --table / ${ENV_TABLE} and the region"
            raise _fail(f"ledger table {table_name!r} not found ({hint})") from None
        raise _fail(f"AWS error reading {table_name!r}: {aws.error_code(exc)}: {exc}", EXIT_AWS) from None
    except BotoCoreError as exc:
        raise _fail(f"AWS error reading {table_name!r}: {exc}", EXIT_AWS) from None

    if as_json:
        typer.echo(json.dumps(to_json(reports), indent=2))
    elif as_csv:
        sys.stdout.write(to_csv(reports))
    else:
        # piped or captured output gets a wide table instead of rich's 80-column default
        Console(width=None if sys.stdout.isatty() else 200).print(_table(reports))
    if chart:
        path = render_chart(reports, chart)
        typer.echo(f"chart written to {path}", err=as_json or as_csv)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
