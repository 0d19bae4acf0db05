"""`killswitch meter [--event FILE] [--dry-run]`: one meter pass locally, like `fire` for the kill handler.

With `--event`: a CloudWatch Logs subscription event file (`{"awslogs": {"data": ...}}`, gzip + base64 as AWS
delivers it) of Bedrock invocation logs. Without it: one compute tick now. Decisions go through the same kill
engine as `fire` (ledger `--table`, result events to `$KILLSWITCH_EVENTS_TOPIC_ARN`). Compute prices come from the
shipped snapshot unless `--price-list` asks the Price List API (`pricing:GetProducts`, cached in the ledger).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import boto3
import typer
from rich.table import Table

from killswitch import aws
from killswitch.cli.ops import CliError, ConfigOpt, JsonOpt, TableOpt, console, make_engine, print_report, run
from killswitch.guard.prices import default_prices
from killswitch.meter.callers import CallerDirectory, IamTagReader
from killswitch.meter.compute import Ec2Source, FargateSource, HourlyPrices, PriceListPrices, SnapshotPrices
from killswitch.meter.managed import ManagedComputeSource
from killswitch.meter.pricing import BedrockProfileResolver, RecordPricer
from killswitch.meter.service import Meter, MeterReport
from killswitch.meter.store import LedgerMeterState, LedgerPriceCache
from killswitch.results import EXIT_OK
from killswitch.spend.ledger import DynamoSpendStore, InMemorySpendStore, SpendLedger, SpendStore


def build_cli_meter(config_path: Path | None, table: str | None, *, dry_run: bool, price_list: bool) -> Meter:
    eng, config = make_engine(config_path, table, need_table=not dry_run)
    session = boto3.Session(region_name=config.deploy_region)
    store: SpendStore = DynamoSpendStore(table, session=session) if table else InMemorySpendStore()
    account = aws.client("sts", config.deploy_region, session=session).get_caller_identity()["Account"]
    ttl = config.meter.caller_cache_seconds if config.meter else 300
    prices: HourlyPrices = SnapshotPrices()
    if price_list:
        prices = PriceListPrices(aws.client("pricing", "us-east-1", session=session), LedgerPriceCache(store))
    return Meter(
        config,
        SpendLedger(store, retention_days=config.ledger_retention_days),
        eng,
        pricer=RecordPricer(
            default_prices(), BedrockProfileResolver(lambda r: eng.clients("bedrock", r or config.deploy_region))
        ),
        callers=CallerDirectory(IamTagReader(aws.client("iam", session=session)), account, ttl_seconds=ttl),
        compute_sources=[Ec2Source(eng.clients), FargateSource(eng.clients), ManagedComputeSource(eng.clients)],
        compute_prices=prices,
        state=LedgerMeterState(store),
    )


def print_meter(report: MeterReport) -> None:
    con = console()
    what = f"{report.records} records, {report.priced} priced" if report.kind == "logs" else f"{report.units} units"
    con.print(f"meter {report.kind}{' (dry run)' if report.dry_run else ''} · {what} · ${report.metered_usd:.6f}")
    if report.note:
        con.print(report.note)
    if report.skipped:
        con.print("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items())))
    if report.unknown_models:
        con.print("unknown models: " + ", ".join(f"{k} ×{v}" for k, v in sorted(report.unknown_models.items())))
    if report.estimates:
        t = Table(title="Estimates (period to date)")
        for col in ("agent", "estimate", "Cost Explorer", "through", "meter", "guard", "counted once"):
            t.add_column(col)
        for name, e in sorted(report.estimates.items()):
            t.add_row(
                name,
                f"${e.total_usd:.2f}",
                f"${e.cost_explorer_usd:.2f}",
                e.cost_explorer_through.isoformat() if e.cost_explorer_through else "-",
                f"${e.meter_usd:.2f}",
                f"${e.guard_usd:.2f}",
                f"${e.overlap_usd:.2f}",
            )
        con.print(t)
    for r in report.decisions:
        con.print(f"decision: {r.level} · {r.reason}")
        print_report(con, r)


def meter(  # noqa: PLR0917 (typer options)
    event: Path | None = typer.Option(None, "--event", help="CloudWatch Logs subscription event file (awslogs)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Price and decide only: write nothing, change nothing."),
    price_list: bool = typer.Option(False, "--price-list", help="Compute prices from pricing:GetProducts."),
    json_out: bool = JsonOpt,
    config: Path | None = ConfigOpt,
    table: str | None = TableOpt,
) -> None:
    """Run one meter pass locally: a Bedrock invocation log event file, or one compute tick."""

    def body() -> int:
        payload: Any = None
        if event is not None:
            try:
                payload = json.loads(event.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CliError(f"cannot read event file {event}: {exc}") from exc
            if not isinstance(payload, dict) or "awslogs" not in payload:
                raise CliError(
                    f'{event}: not a CloudWatch Logs subscription event (expected {{"awslogs": {{"data": ...}}}})'
                )
        m = build_cli_meter(config, table, dry_run=dry_run, price_list=price_list)
        from killswitch.handlers import meter as meter_handler

        meter_handler.logger.setLevel(logging.WARNING)  # the CLI prints the results itself
        report = m.process_logs(payload, dry_run=dry_run) if payload is not None else m.tick(dry_run=dry_run)
        if json_out:
            typer.echo(json.dumps(report.to_dict(), indent=2, default=str, ensure_ascii=False))
        else:
            print_meter(report)
        return max((r.exit_code() for r in report.decisions), default=EXIT_OK)

    run(body)


def register(app: typer.Typer) -> None:
    app.command("meter")(meter)
