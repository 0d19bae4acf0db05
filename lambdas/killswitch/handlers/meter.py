"""Meter Lambda: Bedrock invocation log batches (CloudWatch Logs subscription) and the compute schedule
(EventBridge, every `meter.tick_minutes`) → spend facts → estimate → the kill engine, in-process.

Thin: the typed environment is the kill Lambda's (`KillSwitchEnv.from_env()` names what is missing), the engine is
built by `killswitch.handlers.kill.engine_for` (the one factory, `killswitch.kill.wiring`), the work is
`killswitch.meter.service.Meter`.

Cold start: the meter runs every minute and most passes raise no alert, so the kill engine (and the kill handler
module) is imported and built on the first alert (`EngineOnFirstAlert`), not at import; it then shares the meter's
session and clients. The price table comes from `killswitch.guard.prices` without the rest of the guard SDK.

Raise rule (like the kill Lambda): bad data never raises (counted, logged, skipped); an event that is neither a
log batch nor a schedule is logged and dropped (nothing to retry); AWS failures (throttling after retries) raise so
that the asynchronous invocation is retried, and a kill that failed transiently raises after it is recorded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from killswitch import aws
from killswitch.arns import account_of
from killswitch.guard.prices import default_prices
from killswitch.kill.common import ClientFactory, Clients
from killswitch.meter import logging_setup
from killswitch.meter.callers import CallerDirectory, IamTagReader
from killswitch.meter.compute import Ec2Source, FargateSource, PriceListPrices
from killswitch.meter.managed import ManagedComputeSource
from killswitch.meter.pricing import BedrockProfileResolver, RecordPricer
from killswitch.meter.service import AlertSink, Meter, MeterReport
from killswitch.meter.store import LedgerMeterState, LedgerPriceCache
from killswitch.metrics import METRICS_NAMESPACE
from killswitch.settings import KillSwitchEnv
from killswitch.spend.ledger import DynamoSpendStore, SpendLedger

if TYPE_CHECKING:  # annotations only: not loaded on the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from killswitch.kill.alerts import Alert
    from killswitch.kill.engine import KillEngine
    from killswitch.kill.model import KillReport

NAMESPACE = METRICS_NAMESPACE
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "killswitch-meter")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE)

_METER: Meter | None = None
_ENV: KillSwitchEnv | None = None


class EngineOnFirstAlert:
    """The meter's `AlertSink`: the kill engine, built by `build` on the first alert and kept for the container."""

    def __init__(self, build: Callable[[], AlertSink]):
        self._build = build
        self.engine: AlertSink | None = None

    def handle_alert(self, alert: Alert, *, dry_run: bool = False) -> KillReport:
        if self.engine is None:
            self.engine = self._build()
        return self.engine.handle_alert(alert, dry_run=dry_run)


def engine_on_first_alert(env: KillSwitchEnv, session: Any, clients: ClientFactory) -> EngineOnFirstAlert:
    def build() -> KillEngine:
        from killswitch.handlers.kill import engine_for  # the kill engine's modules: loaded on the first alert

        return engine_for(env, session=session, clients=clients)

    return EngineOnFirstAlert(build)


def build_meter(env: KillSwitchEnv, account_id: str | None, *, engine: KillEngine | None = None) -> Meter:
    """The meter wired to the ledger table, IAM, Bedrock, the Price List API and the kill engine (`engine`, or
    the deployed one built on the first alert)."""
    config = env.config
    session = boto3.Session()
    clients: ClientFactory = engine.clients if engine is not None else Clients(session)
    sink: AlertSink = engine if engine is not None else engine_on_first_alert(env, session, clients)
    store = DynamoSpendStore(env.table_name, session=session)
    spend = SpendLedger(store, retention_days=config.ledger_retention_days)
    meter_cfg = config.meter
    ttl = meter_cfg.caller_cache_seconds if meter_cfg else 300
    callers = CallerDirectory(IamTagReader(aws.client("iam", session=session)), account_id, ttl_seconds=ttl)
    profiles = BedrockProfileResolver(lambda region: clients("bedrock", region or config.deploy_region))
    prices = None
    if meter_cfg is None or meter_cfg.compute:
        # The Price List API answers from us-east-1 (and a few other regions) for every region's prices.
        prices = PriceListPrices(aws.client("pricing", "us-east-1", session=session), LedgerPriceCache(store))
    return Meter(
        config,
        spend,
        sink,
        pricer=RecordPricer(default_prices(), profiles),
        callers=callers,
        compute_sources=[Ec2Source(clients), FargateSource(clients), ManagedComputeSource(clients)],
        compute_prices=prices,
        state=LedgerMeterState(store),
    )


def meter(account_id: str | None) -> tuple[Meter, KillSwitchEnv]:
    global _METER, _ENV
    if _METER is None or _ENV is None:
        _ENV = KillSwitchEnv.from_env()
        _METER = build_meter(_ENV, account_id)
    return _METER, _ENV


def reset() -> None:
    global _METER, _ENV
    _METER, _ENV = None, None


def is_schedule(event: Any) -> bool:
    return isinstance(event, Mapping) and event.get("detail-type") == "Scheduled Event"


def handle(event: Any, m: Meter, *, dry_run: bool = False) -> MeterReport | None:
    """The handler's work without the Lambda wrapping (also `killswitch meter` and the demo)."""
    if isinstance(event, Mapping) and "awslogs" in event:
        report = m.process_logs(event, dry_run=dry_run)
    elif is_schedule(event):
        at = None
        if isinstance(event.get("time"), str):
            try:
                at = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
            except ValueError:
                at = None
        report = m.tick(at, dry_run=dry_run)
    else:
        logger.warning(
            "not a meter event: dropped",
            extra={"keys": sorted(map(str, event))[:20] if isinstance(event, Mapping) else type(event).__name__},
        )
        return None
    logger.info("meter pass", extra={"result": {k: v for k, v in report.to_dict().items() if k != "facts"}})
    return report


def record_metrics(report: MeterReport) -> None:
    metrics.add_metric("MeterRecords", MetricUnit.Count, report.records)
    metrics.add_metric("MeterRecordsPriced", MetricUnit.Count, report.priced)
    metrics.add_metric("MeterRecordsSkipped", MetricUnit.Count, sum(report.skipped.values()))
    metrics.add_metric("MeterUnknownModels", MetricUnit.Count, sum(report.unknown_models.values()))
    metrics.add_metric("MeterComputeUnits", MetricUnit.Count, report.units)
    metrics.add_metric("MeterDecisions", MetricUnit.Count, len(report.decisions))


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if logging_setup.is_custom_resource(event):  # the stack turning invocation logging on or off
        return logging_setup.handle(event, aws.client("bedrock"))
    arn = getattr(context, "invoked_function_arn", "") or ""
    m, env = meter(account_of(arn))
    report = handle(event, m, dry_run=env.dry_run)
    if report is None:
        return {"dropped": True}
    record_metrics(report)
    transient = [r for r in report.decisions if r.transient_failure]
    if transient:  # a kill ran, so the kill handler module is loaded already
        from killswitch.handlers.kill import TransientKillFailure

        ids = ", ".join(str(r.kill_id) for r in transient)
        raise TransientKillFailure(f"transient AWS failure in kill {ids}; recorded, retry will handle the rest")
    return {k: v for k, v in report.to_dict().items() if k != "facts"}
