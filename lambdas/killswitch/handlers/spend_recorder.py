"""Spend recorder Lambda (EventBridge schedule): Cost Explorer → ledger, guard reservations of dead agents swept
into the ledger at their estimate, then per-agent spend metrics.

Event: any scheduled event; an optional `detail.lookback_days` (1..90) overrides the re-read window (default 3);
an invalid value is rejected (logged, `{"rejected": reason}` returned, nothing read or written).
Metrics (namespace `AgentKillSwitch`, EMF): `AgentSpendUSD` with dimensions exactly {agent, source}, one per
source that has figures in the agent's current budget period; `AgentBudgetPct` with dimension {agent}.
The returned dict is the ingestion summary plus each agent's period-to-date figures.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from killswitch.guard.dynamo import DynamoLedger
from killswitch.guard.records import spend_ledger_sink
from killswitch.guard.sweeper import sweep_agents
from killswitch.metrics import METRICS_NAMESPACE
from killswitch.settings import SpendRecorderEnv
from killswitch.spend.cost_explorer import DEFAULT_LOOKBACK_DAYS, MAX_LOOKBACK_DAYS, CostExplorerIngester
from killswitch.spend.ledger import (
    SOURCE_BUDGET,
    SOURCE_COST_EXPLORER,
    SOURCE_GUARD,
    DynamoSpendStore,
    SpendLedger,
    money_str,
    read_agent_state,
)
from killswitch.spend.report import AgentReport, build_reports

NAMESPACE = METRICS_NAMESPACE
logger = Logger(service="killswitch-spend-recorder")
# service="" keeps Powertools from adding a `service` dimension: the dashboard matches {agent, source} exactly.
metrics = Metrics(namespace=NAMESPACE, service="")


def _today() -> date:
    return datetime.now(UTC).date()


def _lookback(event: Any) -> int:
    detail = event.get("detail") if isinstance(event, dict) else None
    value = detail.get("lookback_days") if isinstance(detail, dict) else None
    if value is None:
        return DEFAULT_LOOKBACK_DAYS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LOOKBACK_DAYS:
        raise ValueError(f"detail.lookback_days must be an integer in 1..{MAX_LOOKBACK_DAYS} (got {value!r})")
    return value


def publish_metrics(reports: list[AgentReport]) -> int:
    """One EMF document per dimension set (flushed each time, so dimensions never mix). Returns metrics sent."""
    sent = 0
    for r in reports:
        for source, value in (
            (SOURCE_BUDGET, r.budget_usd),
            (SOURCE_COST_EXPLORER, r.cost_explorer_usd),
            (SOURCE_GUARD, r.guard_usd),
        ):
            if value is None:
                continue
            metrics.add_dimension(name="agent", value=r.agent)
            metrics.add_dimension(name="source", value=source)
            metrics.add_metric(name="AgentSpendUSD", unit=MetricUnit.NoUnit, value=float(value))
            metrics.flush_metrics()
            sent += 1
        metrics.add_dimension(name="agent", value=r.agent)
        metrics.add_metric(name="AgentBudgetPct", unit=MetricUnit.Percent, value=float(r.pct_of_budget))
        metrics.flush_metrics()
        sent += 1
        if r.meter_error_pct is not None:  # reconciliation: the meter's estimate against Cost Explorer
            metrics.add_dimension(name="agent", value=r.agent)
            metrics.add_metric(name="MeterErrorPct", unit=MetricUnit.Percent, value=float(r.meter_error_pct))
            metrics.flush_metrics()
            sent += 1
    return sent


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    env = SpendRecorderEnv.from_env()
    config = env.config
    try:
        lookback = _lookback(event)
    except ValueError as exc:  # a bad schedule payload: say so once, do not let EventBridge retry it
        logger.error("event rejected", extra={"reason": str(exc)})
        return {"rejected": str(exc)}
    ledger = SpendLedger(DynamoSpendStore(env.table_name), retention_days=config.ledger_retention_days)
    today = _today()
    summary = CostExplorerIngester(ledger, config.agent_names(), lookback_days=lookback).ingest(today)
    for name in summary.failed_agents:
        logger.error("cost explorer ingestion failed", extra={"agent": name, "errors": summary.agents[name].errors})
    # Agents that died mid-call and never restarted: their reservations count at the estimate (before the figures).
    swept, sweep_errors = sweep_agents(
        DynamoLedger(env.table_name), config.agent_names(), spend_sink=spend_ledger_sink(ledger)
    )
    for name, error in sweep_errors.items():
        logger.error("guard sweep failed", extra={"agent": name, "error": error})

    reports: list[AgentReport] = []
    report_errors: dict[str, str] = {}
    for agent in config.agents:
        try:
            reports.extend(build_reports(ledger, [agent], today, state_of=lambda a: read_agent_state(ledger.store, a)))
        except Exception as exc:  # one agent's ledger trouble must not hide the others' metrics
            report_errors[agent.name] = f"{type(exc).__name__}: {exc}"
            logger.exception("spend figures failed", extra={"agent": agent.name})
    sent = publish_metrics(reports)

    result = summary.to_dict()
    result["metrics_sent"] = sent
    result["report_errors"] = report_errors
    result["guard_swept"] = swept
    result["guard_sweep_errors"] = sweep_errors
    result["figures"] = {
        r.agent: {
            "spend_usd": money_str(r.spend_usd),
            "spend_source": r.spend_source,
            "pct_of_budget": str(r.pct_of_budget),
            "state": r.state,
            **({"meter_error_pct": str(r.meter_error_pct)} if r.meter_error_pct is not None else {}),
        }
        for r in reports
    }
    logger.info(
        "spend recorded",
        extra={
            "window": [result["start"], result["end"]],
            "pages": summary.pages,
            "failed_agents": summary.failed_agents,
            "skipped": summary.skipped,
            "metrics_sent": sent,
        },
    )
    return result
