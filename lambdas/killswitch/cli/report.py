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
from rich.table import Table

from killswitch import aws
from killswitch.cli.ledger_table import is_missing_table, missing_table_message
from killswitch.cli.render import console
from killswitch.config import ConfigError, load_config
from killswitch.keys import KILL_PREFIX, SK, agent_pk
from killswitch.results import EXIT_AWS, EXIT_REFUSED
from killswitch.settings import ENV_TABLE
from killswitch.spend.ledger import DynamoSpendStore, SpendLedger, SpendStore, read_agent_state
from killswitch.spend.outcomes import OutcomeCost, OutcomeLedger, outcome_costs
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


def kill_state_of(store: SpendStore, agent: str) -> str | None:
    """The kill engine's state of the agent; `restored` when it is back to OK because its last kill was restored
    (so the report can say `over budget, restored` instead of `ok`)."""
    state = read_agent_state(store, agent)
    if state not in (None, "ok"):
        return state
    kills = store.query(agent_pk(agent), KILL_PREFIX)
    latest = max(kills, key=lambda k: (str(k.get("created_at", "")), str(k.get(SK, ""))), default=None)
    if latest is not None and latest.get("status") == "restored":
        return "restored"
    return state


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
        # names and the window never break; the other cells wrap at word boundaries
        table.add_column(col, justify=justify, no_wrap=col in ("agent", "window"))  # type: ignore[arg-type]
    colors = {"ok": "green", "thrift": "yellow", "over budget": "red"}
    for r in reports:
        table.add_row(
            r.agent,
            f"{r.since:%m-%d}..{r.until:%m-%d}",
            f"{_money(r.budget_amount_usd)} {r.period.lower()}",
            _money(r.budget_usd),
            _money(r.cost_explorer_usd),
            _money(r.guard_usd),
            f"{r.pct_of_budget}% ({r.spend_source})" if r.has_data else "-",
            f"[{'red' if r.kill_state == 'killed' else colors.get(r.budget_state, 'white')}]{r.state}[/]",
            str(r.runs),
            _money(r.cost_per_run_usd),
            ", ".join(f"{s} {_money(a)}" for s, a in r.top_services) or "-",
            _accuracy(r),
        )
    return table


def _outcome_table(outcomes: list[OutcomeCost]) -> Table:
    table = Table(title="Cost per outcome (run.outcome)")
    for col in ("agent", "outcome", "count", "cost per outcome"):
        table.add_column(col, justify="left" if col in ("agent", "outcome") else "right")
    for o in outcomes:
        table.add_row(o.agent, o.outcome, str(o.count), f"${o.cost_per_outcome_usd:,.4f}")
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
            ledger, agents, today, since=first, until=last, state_of=lambda a: kill_state_of(store, a)
        )
        outcomes = outcome_costs(OutcomeLedger(store), ((r.agent, r.since, r.until, r.spend_usd) for r in reports))
    except ClientError as exc:
        if is_missing_table(exc):
            raise _fail(missing_table_message(table_name, session.region_name)) from None
        raise _fail(f"AWS error reading {table_name!r}: {aws.error_code(exc)}: {exc}", EXIT_AWS) from None
    except BotoCoreError as exc:
        raise _fail(f"AWS error reading {table_name!r}: {exc}", EXIT_AWS) from None

    if as_json:
        payload = to_json(reports) | {"cost_per_outcome": [o.to_dict() for o in outcomes]}
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    elif as_csv:
        sys.stdout.write(to_csv(reports))
    else:
        # piped or captured output gets a wide table instead of rich's 80-column default
        out = console()
        out.print(_table(reports))
        if outcomes:
            out.print(_outcome_table(outcomes))
    if chart:
        path = render_chart(reports, chart)
        typer.echo(f"chart written to {path}", err=as_json or as_csv)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
