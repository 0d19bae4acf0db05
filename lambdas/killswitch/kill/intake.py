"""Read a Lambda event through the intake each record came by: the intake, not the message, says who may speak.

- alerts topic: AWS Budgets letters and Cost Anomaly Detection only; our own JSON there is refused (an agent that
  could publish there could forge a letter that marks the real one as a duplicate);
- an agent's guard topic (directly, or through the guard intake queue): guard events (`kill`/`warn`) for that agent
  only; a body naming another agent, a letter or a CLI event is refused;
- a direct invoke (no topic: ops, `killswitch fire`): any alert;
- restore and approve are refused everywhere by the parser (ops commands, never events).

`read_event` never raises and gives exactly one result per record (the handler maps results back to SQS message
ids). `GuardCollapse` folds repeated guard events per agent so that a flood costs one kill, not one per message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from killswitch.config import KillSwitchConfig
from killswitch.intakes import Intake, Intakes, Origin
from killswitch.kill.alerts import Alert, AlertSource, ParseResult, Rejected, cap_raw, parse_event, parse_record
from killswitch.kill.ledger import KillLedger, KillRecord
from killswitch.kill.model import AgentState, KillReport, KillStatus, Operation
from killswitch.org_budgets import org_budget_for
from killswitch.states import ReportStatus

logger = Logger(child=True)

AWS_SOURCES = (AlertSource.BUDGETS, AlertSource.ANOMALY)


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, default=str, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def read_event(
    event: Any, config: KillSwitchConfig, intakes: Intakes, *, now: datetime | None = None
) -> list[ParseResult]:
    """One result per record (SNS or SQS), one for any other event; unauthorised alerts become `Rejected`."""
    try:
        records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(records, list) or not records:
            return [authorize(r, Origin(Intake.DIRECT)) for r in parse_event(event, config, now=now)]
        return [_read_record(i, record, config, intakes, now) for i, record in enumerate(records)]
    except Exception as exc:  # a crash here would make SNS/SQS redeliver forever
        logger.exception("intake failed; the event is rejected")
        return [
            Rejected(
                f"internal error while reading the event: {type(exc).__name__}: {exc}", None, cap_raw(_dump(event))
            )
        ]


def _read_record(
    index: int, record: Any, config: KillSwitchConfig, intakes: Intakes, now: datetime | None
) -> ParseResult:
    if isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs":
        return _read_queue_record(index, record, config, intakes, now)
    sns = record.get("Sns") if isinstance(record, Mapping) else None
    origin = intakes.of_topic(sns.get("TopicArn")) if isinstance(sns, Mapping) else Origin(Intake.DIRECT)
    result = parse_record(index, record, config, now=now)
    if origin.intake is Intake.ORG_ALERTS:
        return org_budget_alert(result, config, origin)
    return authorize(result, origin)


def org_budget_alert(result: ParseResult, config: KillSwitchConfig, origin: Origin) -> ParseResult:
    """What the org alerts topic carries: AWS Budgets letters of the management account's organization budgets, the
    name mapped to (agent, account) through the config alone (`killswitch.org_budgets.org_budget_for`), even where
    a workload budget's name reads the same. Anything else is refused with the reason (logged, recorded, kept)."""
    if isinstance(result, Rejected):
        return result
    if result.source is not AlertSource.BUDGETS or result.budget_name is None:
        return Rejected(
            f"{result.source.value} alert on {origin.describe()}: it carries organization budget letters only",
            result.message_id,
            result.raw,
        )
    key = org_budget_for(config, result.budget_name)
    if key is None:
        logger.error(
            "org alerts topic: budget name maps to no agent and account",
            extra={"budget_name": result.budget_name, "topic": origin.arn},
        )
        return Rejected(
            f"budget {result.budget_name!r} on {origin.describe()} is not an organization budget of this kill "
            "switch: the config maps no agent and account to that name",
            result.message_id,
            result.raw,
        )
    scope = f"linked account {key.account}" if key.account else "org-wide: every linked account"
    reason = result.reason
    if not result.org_budget:  # the name also reads as a workload budget's: the org reading wins on this topic
        head, _, rest = reason.partition(": ")
        reason = f"{head} ({scope}): {rest}"
    return replace(result, agent=key.agent.name, org_budget=True, budget_account=key.account, reason=reason)


def _read_queue_record(
    index: int, record: Mapping[str, Any], config: KillSwitchConfig, intakes: Intakes, now: datetime | None
) -> ParseResult:
    message_id = record.get("messageId") if isinstance(record.get("messageId"), str) else None
    raw = cap_raw(_dump(record))
    source_arn = record.get("eventSourceARN")
    if not intakes.is_guard_queue(source_arn):
        return Rejected(f"record {index} comes from queue {source_arn!r}, not the guard intake queue", message_id, raw)
    body = record.get("body")
    try:
        envelope = json.loads(body) if isinstance(body, str) else None
    except (ValueError, RecursionError):
        envelope = None
    if not isinstance(envelope, dict) or envelope.get("Type") != "Notification" or "TopicArn" not in envelope:
        return Rejected(
            f"record {index} on the guard intake queue is not an SNS notification (only guard topics feed the queue)",
            message_id,
            raw,
        )
    origin = intakes.of_topic(envelope.get("TopicArn"))
    if origin.intake is not Intake.GUARD:
        return Rejected(
            f"record {index} on the guard intake queue came from {origin.describe()}; only guard topics feed the queue",
            message_id,
            raw,
        )
    return authorize(parse_record(index, {"EventSource": "aws:sns", "Sns": envelope}, config, now=now), origin)


def authorize(result: ParseResult, origin: Origin) -> ParseResult:
    """The alert if its intake may carry it, else a `Rejected` that says why."""
    if isinstance(result, Rejected):
        return result

    def refuse(reason: str) -> Rejected:
        return Rejected(reason, result.message_id, result.raw)

    if origin.intake is Intake.UNKNOWN:
        return refuse(f"{result.source.value} alert arrived through {origin.describe()}")
    if origin.intake is Intake.ALERTS and result.org_budget:
        return refuse(
            f"organization budget {result.budget_name!r} on {origin.describe()}: organization budgets alert the "
            "org alerts topic of the management account"
        )
    if origin.intake is Intake.ALERTS and result.source not in AWS_SOURCES:
        return refuse(
            f"{result.source.value} event on {origin.describe()}: agents publish to their own guard topic, "
            "ops use the CLI"
        )
    if origin.intake is Intake.GUARD:
        if result.source is not AlertSource.GUARD:
            return refuse(f"{result.source.value} alert on {origin.describe()}: guard topics carry guard events only")
        if result.agent != origin.agent:
            return refuse(
                f"guard event for agent {result.agent!r} on {origin.describe()}: a guard event speaks only for its "
                "own agent"
            )
    return result


# A repeated guard event collapses into the agent's kill (or warning) of the last few minutes; past that, a new guard
# kill discovers again (and stops what the agent may have started since).
COLLAPSE_WINDOW = timedelta(minutes=5)
_COLLAPSIBLE_KILLS = (KillStatus.DONE, KillStatus.AWAITING_APPROVAL)  # not PARTIAL: its retry must go through


@dataclass
class GuardCollapse:
    """Repeated guard events of one agent collapse into what the agent's state already says, so that a flood of
    1,000 guard messages costs one kill (one discovery) per agent, not 1,000: a guard `kill` while the agent is
    KILLED by a finished kill (DONE or awaiting approval) of the last `COLLAPSE_WINDOW` that covers its scope (the
    whole agent, or the same run), a guard `warn` while the agent is THRIFT or KILLED since less than the window.
    A restore (state OK) ends it at once. One state read per agent and event, one kill read per kill."""

    ledger: KillLedger
    config: KillSwitchConfig
    now: datetime
    _states: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _kills: dict[str, KillRecord | None] = field(default_factory=dict)

    def into(self, alert: Alert) -> str | None:
        """None when this alert goes ahead; else what it collapsed into."""
        if alert.source is not AlertSource.GUARD or alert.action is None:
            return None
        if alert.agent not in self._states:
            self._states[alert.agent] = self.ledger.agent_state(alert.agent)
        state = self._states[alert.agent] or {}
        try:
            age = self.now - datetime.fromisoformat(str(state.get("updated_at")))
        except ValueError:
            return None
        if age > COLLAPSE_WINDOW:
            return None
        current = state.get("state")
        if alert.action == "warn" and current in (AgentState.THRIFT.value, AgentState.KILLED.value):
            return f"agent already {current} since {state.get('updated_at')}"
        kill_id = state.get("kill_id")
        if alert.action != "kill" or current != AgentState.KILLED.value or not isinstance(kill_id, str):
            return None
        if kill_id not in self._kills:
            self._kills[kill_id] = self.ledger.get_kill(kill_id)
        record = self._kills[kill_id]
        if record is None or record.status not in _COLLAPSIBLE_KILLS:
            return None
        try:
            scope_run = alert.run_id if self.config.agent(alert.agent).kill_scope == "run" else None
        except KeyError:
            return None
        if record.run_id is not None and record.run_id != scope_run:
            return None
        return f"kill {kill_id}"

    def forget(self, agent: str) -> None:
        """The agent's state changed (a kill or a warning went ahead): read it again next time."""
        self._states.pop(agent, None)


def collapsed_report(alert: Alert, into: str) -> KillReport:
    scope = f" run {alert.run_id}" if alert.run_id else ""
    message = f"collapsed: repeated guard {alert.action} for agent {alert.agent}{scope} folded into {into}"
    return KillReport(
        Operation.DUPLICATE,
        alert.agent,
        run_id=alert.run_id,
        reason=alert.reason,
        status=ReportStatus.COLLAPSED,
        message=message,
    )
