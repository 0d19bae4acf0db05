"""Kill Lambda (SNS alerts topic, guard intake queue): thin adapter around `killswitch.kill.engine.KillEngine`.

event → `read_event` (each record through its intake, `killswitch.kill.intake`) → per alert: level → discover →
plan → ledger → act → ledger → result event; returns the result events. Built once per container: the typed
environment, the engine and its boto3 clients.

Raise rule (see `killswitch.kill.engine`): rejected input is recorded in the ledger, forwarded to the DLQ
(`KILLSWITCH_DLQ_URL`, whose depth alarm notifies ops) and never raised (SNS would retry a bad message for
nothing); a transient AWS failure while acting raises `TransientKillFailure` AFTER the ledger and the result event
are written and the dedupe marker is released, so SNS retries the event (the retry only handles what is left) and
the DLQ keeps it in the end. From the guard intake queue (SQS) nothing is raised: the records that failed
transiently are returned as `batchItemFailures` and come back alone. A missing environment variable raises too
(deploy error: the event must not be lost).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from killswitch.intakes import Intakes
from killswitch.kill.engine import KillEngine
from killswitch.kill.model import KillReport, Operation
from killswitch.kill.wiring import build_engine
from killswitch.metrics import METRICS_NAMESPACE
from killswitch.org_budgets import org_alerts_topic_arn
from killswitch.settings import KillSwitchEnv
from killswitch.states import ReportStatus

if TYPE_CHECKING:  # an annotation only: not loaded on the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

NAMESPACE = METRICS_NAMESPACE
# The stack sets POWERTOOLS_SERVICE_NAME (`<prefix>-kill`); the engine's child loggers attach to this logger by name.
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "killswitch-kill")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE)

_ENGINE: KillEngine | None = None
_ENV: KillSwitchEnv | None = None


class TransientKillFailure(RuntimeError):
    """Raised after recording, so that SNS retries the event (and the DLQ keeps it)."""


def engine_for(env: KillSwitchEnv, **parts: Any) -> KillEngine:
    """The engine wired to DynamoDB, the events topic, the DLQ, the spend ledger and (when configured)
    Organizations (`killswitch.kill.wiring.build_engine`; `parts`, e.g. the meter's `session=`/`clients=`, pass
    through)."""
    return build_engine(
        env.config,
        table=env.table_name,
        events_topic_arn=env.events_topic_arn,
        dlq_url=env.dlq_url,
        scp_policy_name=env.scp_policy_name,
        org_role_arn=env.org_role_arn,
        intakes=Intakes(
            env.config.prefix,
            tuple(env.config.agent_names()),
            env.kill_topic_arn,
            org_alerts_topic_arn=org_alerts_topic_arn(env.config, env.kill_topic_arn),
        ),
        **parts,
    )


def engine() -> tuple[KillEngine, KillSwitchEnv]:
    global _ENGINE, _ENV
    if _ENGINE is None or _ENV is None:
        _ENV = KillSwitchEnv.from_env()
        _ENGINE = engine_for(_ENV)
    return _ENGINE, _ENV


def reset() -> None:
    """Forget the per-container engine (tests, the demo)."""
    global _ENGINE, _ENV
    _ENGINE, _ENV = None, None


def record_metrics(reports: list[KillReport]) -> None:
    for r in reports:
        if r.operation is Operation.REJECTED:
            metrics.add_metric("AlertsRejected", MetricUnit.Count, 1)
            continue
        if r.status == ReportStatus.COLLAPSED:
            metrics.add_metric("GuardEventsCollapsed", MetricUnit.Count, 1)
            continue
        metrics.add_metric("AlertsReceived", MetricUnit.Count, 1)
        if r.operation is Operation.WARN and r.status == ReportStatus.THRIFT:
            metrics.add_metric("AgentsInThrift", MetricUnit.Count, 1)
        if r.operation in (Operation.KILL, Operation.APPROVE) and not r.dry_run and not r.refused:
            metrics.add_metric("KillsExecuted", MetricUnit.Count, 1)
            metrics.add_metric("ResourcesStopped", MetricUnit.Count, r.stopped)
            metrics.add_metric("ResourceFailures", MetricUnit.Count, len(r.summary.failures))
            metrics.add_metric("KillDurationMs", MetricUnit.Milliseconds, round(r.duration_ms, 1))


def handle(event: Any, eng: KillEngine, *, dry_run: bool = False) -> list[KillReport]:
    """The handler's work without the Lambda wrapping (also used by `killswitch fire` and the demo)."""
    reports = eng.handle_event(event, dry_run=dry_run)
    for r in reports:
        logger.info("alert handled", extra={"result": r.to_event()})
    return reports


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    eng, env = engine()
    reports = handle(event, eng, dry_run=env.dry_run)
    record_metrics(reports)
    results = [r.to_event() for r in reports]
    queue_ids = sqs_message_ids(event)
    if queue_ids is not None:
        # Guard intake queue: only the records that failed transiently come back (one report per record).
        failed = [{"itemIdentifier": mid} for mid, r in zip(queue_ids, reports, strict=False) if r.transient_failure]
        if failed:
            logger.error("transient failure while acting: these queue messages come back", extra={"failed": failed})
        return {"results": results, "batchItemFailures": failed}
    transient = [r for r in reports if r.transient_failure]
    if transient:
        ids = ", ".join(str(r.kill_id) for r in transient)
        logger.error("transient failure while acting: raising so SNS retries", extra={"kill_ids": ids})
        raise TransientKillFailure(f"transient AWS failure in kill {ids}; recorded, retry will handle the rest")
    return {"results": results}


def sqs_message_ids(event: Any) -> list[str] | None:
    """The message ids of an SQS batch (the guard intake queue), in record order; None for any other event."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        return None
    if not all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records):
        return None
    return [str(r.get("messageId", "")) for r in records]
