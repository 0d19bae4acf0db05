"""Read whatever arrives on the kill topic into `Alert`s (or `Rejected`s with a reason). Pure: no AWS calls.

Accepted inputs (a Lambda event, `parse_event`):
- SNS records `{"Records": [{"EventSource": "aws:sns", "Sns": {"Message", "Subject", "MessageId", "Timestamp"}}]}`:
  exactly one result per record (an empty `Records` list gives one `Rejected`);
- an EventBridge `aws.ce` / `Anomaly Detected` event (detail field spelled `dimensionValue`);
- a plain test event: one of our JSON events directly, `{"Message": ..., "Subject": ...}`, a bare `{"Sns": {...}}`
  record or a Cost Anomaly Detection JSON body.
Anything else becomes one `Rejected`. The function never raises.

Message formats (`parse_message`): AWS Budgets plain-text letters (anchored on `AWS Budget Notification <date>`,
read line by line with the prose sentence as fallback), Cost Anomaly Detection JSON, and our own
`killswitch.events.KillSwitchEvent` JSON (plus `"source": "test"` events for manual tests).

Dedupe keys identify the ALERT, not the delivery (SNS is at-least-once): see `budget_dedupe_key`,
`anomaly_dedupe_key` and `event_dedupe_key`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Literal

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from killswitch.config import AgentConfig, KillSwitchConfig, Period
from killswitch.events import KillSwitchEvent
from killswitch.org_budgets import OrgBudgetKey, org_budget_for
from killswitch.periods import period_key

MAX_RAW_BYTES = 64 * 1024
"""`raw` is capped at this many bytes (UTF-8) for the dead-letter record; larger messages are rejected unread."""

logger = Logger(child=True)

OWN_SOURCES = ("killswitch.guard", "killswitch.cli")
# Undoing or releasing a kill is an authority over the agent: only the ops path (the CLI with ops credentials) has it.
OPS_ONLY_ACTIONS = ("restore", "approve")
AGENT_TAG_PREFIXES = ("user:agent-name$", "agent-name$")


class AlertSource(StrEnum):
    BUDGETS = "aws.budgets"
    ANOMALY = "aws.ce"
    GUARD = "killswitch.guard"
    CLI = "killswitch.cli"
    TEST = "test"
    # The meter raises its decisions in-process (a trusted AWS-side source); no message can claim this source:
    # `KillSwitchEvent.source` only admits the guard and the CLI.
    METER = "killswitch.meter"


class AlertKind(StrEnum):
    ACTUAL = "ACTUAL"
    FORECASTED = "FORECASTED"
    ANOMALY = "ANOMALY"
    EXPLICIT = "EXPLICIT"  # our own events / test events: the action is stated, not derived
    METERED = "METERED"  # the meter's period-to-date estimate (compared with the budget like ACTUAL)


# restore/approve are ops commands, never events; `approval_requested` (a guard paused a run) is forwarded to ops.
AlertAction = Literal["kill", "warn", "approval_requested"]


@dataclass(frozen=True)
class Alert:
    source: AlertSource
    kind: AlertKind
    agent: str  # resolved via config (budget name -> agent via config.agent_for_budget)
    reason: str  # human-readable one-liner
    action: AlertAction | None = None  # explicit for our own/test events; None => the level decides
    budget_name: str | None = None
    threshold_usd: float | None = None
    amount_usd: float | None = None  # ACTUAL/FORECASTED amount, anomaly total impact, guard spend_usd
    budgeted_usd: float | None = None
    percent_of_budget: float | None = None  # amount / budgeted * 100
    threshold_pct: float | None = None  # threshold / budgeted * 100
    account_id: str | None = None
    run_id: str | None = None
    cap_usd: float | None = None
    dry_run: bool = False
    alert_date: str | None = None  # ISO date from the letter or the event time
    period: str | None = None  # budget period key: "2022-09" monthly, "2022-09-26" daily, "2022-Q3", "2022"
    message_id: str | None = None  # SNS MessageId / EventBridge id
    dedupe_key: str = ""  # stable identity of the alert: the same alert delivered twice has the same key
    raw: str = field(default="", repr=False)
    anomaly_id: str | None = None
    budget_period: Period | None = None  # DAILY/MONTHLY/... from the letter's wording, else the agent's config
    tool: str | None = None  # approval_requested: the costly tool that paused the run
    calls: int | None = None  # approval_requested: how many calls of it paused the run
    # An organization budget's alert (`killswitch.org_budgets`): only the org alerts topic may carry it.
    org_budget: bool = False
    budget_account: str | None = None  # the linked account of that budget (None: org-wide)


@dataclass(frozen=True)
class Rejected:
    reason: str  # why it could not be read
    message_id: str | None
    raw: str  # kept for the dead-letter record (capped at MAX_RAW_BYTES)


ParseResult = Alert | Rejected


# ----------------------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------------------


def cap_raw(text: str) -> str:
    """`text` cut to at most MAX_RAW_BYTES of UTF-8 (lone surrogates replaced), never splitting a character."""
    data = text.encode("utf-8", "replace")
    if len(data) <= MAX_RAW_BYTES:
        return data.decode("utf-8", "replace")
    return data[:MAX_RAW_BYTES].decode("utf-8", "ignore")


def _dump(value: Any) -> str:
    """Best-effort JSON text of an event for `raw` (never raises)."""
    try:
        return json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        try:
            return repr(value)
        except Exception:  # a __repr__ that raises
            return f"<unprintable {type(value).__name__}>"


def _short(value: Any, limit: int = 80) -> str:
    """repr() of a user-controlled value, cut so that reasons stay one readable line."""
    text = value if isinstance(value, str) else _dump(value)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text)


def _sha(*parts: Any) -> str:
    canonical = json.dumps(list(parts), sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _str_or_none(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _finite(value: Any) -> float | None:
    """A finite float from a JSON number or numeric string; None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace(",", "").lstrip("$"))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _pct(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return round(part * 100 / whole, 6)


_ISO_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_ISO_MINUTE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})")


def _iso_date(text: str | None) -> str | None:
    """`2022-09-26T10:00:00.000Z` -> `2022-09-26` (validated), else None."""
    if not text:
        return None
    m = _ISO_DATE_RE.match(text.strip())
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    except ValueError:
        return None


def _letter_date(text: str) -> str | None:
    """`September 26, 2022` (and close variants) -> `2022-09-26`."""
    cleaned = " ".join(text.replace(",", " , ").split()).replace(" ,", ",").strip(" ,.")
    for fmt in ("%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y"):
        try:
            return datetime.strptime(cleaned, fmt).date().isoformat()
        except ValueError:
            continue
    return _iso_date(cleaned)


def _period_key(iso_day: str | None, period: Period) -> str | None:
    return None if iso_day is None else period_key(period, date.fromisoformat(iso_day[:10]))


def _minute(timestamp: str | None, now: datetime | None) -> str:
    """The minute of the delivery (`2022-09-26T10:04`), from the SNS/EventBridge time, else from `now`."""
    if timestamp:
        m = _ISO_MINUTE_RE.match(timestamp.strip())
        if m:
            return f"{m[1]}T{m[2]}"
    moment = now or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _agent_from_token(value: Any, config: KillSwitchConfig, *, plain_ok: bool) -> tuple[str | None, str | None]:
    """(agent, unknown_name): an agent named by `value` (`name`, `agent-name$name`, `user:agent-name$name`).

    `unknown_name` is set when the value is clearly an agent-name tag but the agent is not in the config.
    """
    if not isinstance(value, str):
        return None, None
    text = value.strip()
    for prefix in AGENT_TAG_PREFIXES:
        if text.startswith(prefix):
            name = text[len(prefix) :]
            return (name, None) if name in config.agent_names() else (None, name)
    if plain_ok and text in config.agent_names():
        return text, None
    return None, None


# ----------------------------------------------------------------------------------------------------------
# dedupe keys
# ----------------------------------------------------------------------------------------------------------


def budget_dedupe_key(
    account_id: str | None, budget_name: str, kind: AlertKind, threshold_usd: float | None, period: str | None
) -> str:
    """Same budget, alert type, threshold and budget period => same alert, whatever the SNS MessageId."""
    threshold = None if threshold_usd is None else f"{threshold_usd:.2f}"
    return f"{AlertSource.BUDGETS}:{_sha(account_id or '', budget_name, str(kind), threshold, period or '')}"


def anomaly_impact_bucket(total_impact: float | None) -> int:
    """Power-of-two bucket of an anomaly's total impact: an update counts as new only once the impact doubles."""
    if total_impact is None or total_impact < 1:
        return 0
    return math.floor(math.log2(total_impact)) + 1


def anomaly_dedupe_key(anomaly_id: str, total_impact: float | None) -> str:
    return f"{AlertSource.ANOMALY}:{_sha(anomaly_id, anomaly_impact_bucket(total_impact))}"


def event_dedupe_key(source: AlertSource, message_id: str | None, canonical: str, minute: str) -> str:
    """Our events: the SNS MessageId when there is one, else the canonical JSON + the minute it was sent."""
    if message_id:
        return f"{source}:{_sha('message-id', message_id)}"
    return f"{source}:{_sha('event', canonical, minute)}"


# ----------------------------------------------------------------------------------------------------------
# parse_event: the Lambda event
# ----------------------------------------------------------------------------------------------------------


def parse_event(event: Any, config: KillSwitchConfig, *, now: datetime | None = None) -> list[ParseResult]:
    """One result per SNS record; one result for any other event. Never raises."""
    try:
        return _parse_event(event, config, now)
    except Exception as exc:  # safety net: a crash here would make SNS redeliver forever
        logger.exception("alert parser failed; the event is rejected")
        return [Rejected(f"internal error while reading the event: {type(exc).__name__}: {exc}", None, _raw_of(event))]


def _raw_of(event: Any) -> str:
    return cap_raw(event if isinstance(event, str) else _dump(event))


def _parse_event(event: Any, config: KillSwitchConfig, now: datetime | None) -> list[ParseResult]:
    if not isinstance(event, Mapping):
        return [Rejected(f"event is not a JSON object (got {type(event).__name__})", None, _raw_of(event))]
    if "Records" in event:
        records = event["Records"]
        if not isinstance(records, list):
            return [Rejected("event 'Records' is not a list", None, _raw_of(event))]
        if not records:
            return [Rejected("event has an empty 'Records' list", None, _raw_of(event))]
        return [_parse_record(i, record, config, now) for i, record in enumerate(records)]
    if isinstance(event.get("Sns"), Mapping):
        return [_parse_record(0, event, config, now)]
    refused = _ops_only(event, _str_or_none(event.get("id")), _raw_of(event))
    if refused:
        return [refused]
    if event.get("source") in (*OWN_SOURCES, AlertSource.TEST.value):
        message_id = _str_or_none(event.get("id"))
        timestamp = _str_or_none(event.get("time"))
        return [_parse_own(event, config, message_id=message_id, timestamp=timestamp, now=now)]
    if "detail-type" in event or event.get("source") == AlertSource.ANOMALY:
        return [_parse_eventbridge(event, config)]
    if "Message" in event:
        return [_parse_sns_like(event, config, now, where="event")]
    if "anomalyId" in event or "monitorArn" in event:
        return [_parse_anomaly(event, config, message_id=None, timestamp=None, raw=_raw_of(event))]
    keys = ", ".join(_short(k, 30) for k in list(event)[:8]) or "none"
    return [
        Rejected(
            "not a recognised alert event (expected SNS 'Records', an EventBridge 'Anomaly Detected' event, "
            f"a kill switch event or a 'Message'); keys: {keys}",
            None,
            _raw_of(event),
        )
    ]


def parse_record(index: int, record: Any, config: KillSwitchConfig, *, now: datetime | None = None) -> ParseResult:
    """Record `index` of an SNS Lambda event (the intake reads records one by one). Never raises."""
    try:
        return _parse_record(index, record, config, now)
    except Exception as exc:  # safety net, see parse_event
        logger.exception("alert parser failed; the record is rejected")
        return Rejected(
            f"internal error while reading record {index}: {type(exc).__name__}: {exc}", None, _raw_of(record)
        )


def _parse_record(index: int, record: Any, config: KillSwitchConfig, now: datetime | None) -> ParseResult:
    if not isinstance(record, Mapping):
        return Rejected(f"record {index} is not a JSON object", None, _raw_of(record))
    sns = record.get("Sns")
    if not isinstance(sns, Mapping):
        source = record.get("EventSource", record.get("eventSource"))
        what = f"its EventSource is {_short(source, 40)}" if source is not None else "it has no 'Sns' object"
        return Rejected(f"record {index} is not an SNS record: {what}", None, _raw_of(record))
    return _parse_sns_like(sns, config, now, where=f"record {index}")


def _parse_sns_like(sns: Mapping[Any, Any], config: KillSwitchConfig, now: datetime | None, where: str) -> ParseResult:
    message_id = _str_or_none(sns.get("MessageId"))
    message = sns.get("Message")
    if isinstance(message, Mapping):  # hand-written test events sometimes inline the JSON
        message = _dump(message)
    if message is None:
        return Rejected(f"{where} has no 'Message'", message_id, _raw_of(sns))
    if not isinstance(message, str):
        return Rejected(f"{where} 'Message' is not text (got {type(message).__name__})", message_id, _raw_of(sns))
    return parse_message(
        message,
        config,
        subject=_str_or_none(sns.get("Subject")),
        message_id=message_id,
        timestamp=_str_or_none(sns.get("Timestamp")),
        now=now,
    )


def _parse_eventbridge(event: Mapping[Any, Any], config: KillSwitchConfig) -> ParseResult:
    raw = _raw_of(event)
    message_id = _str_or_none(event.get("id"))
    source, detail_type = event.get("source"), event.get("detail-type")
    if source == "aws.budgets":
        return Rejected("AWS Budgets sends no EventBridge events: budget alerts arrive as SNS letters", message_id, raw)
    if source != AlertSource.ANOMALY or detail_type != "Anomaly Detected":
        return Rejected(
            f"unsupported EventBridge event (source {_short(source, 40)}, detail-type {_short(detail_type, 40)})",
            message_id,
            raw,
        )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return Rejected("EventBridge 'Anomaly Detected' event has no 'detail' object", message_id, raw)
    body = dict(detail)
    if "dimensionalValue" not in body and "dimensionValue" in body:
        body["dimensionalValue"] = body["dimensionValue"]
    if "accountId" not in body and isinstance(event.get("account"), str):
        body["accountId"] = event["account"]
    return _parse_anomaly(body, config, message_id=message_id, timestamp=_str_or_none(event.get("time")), raw=raw)


# ----------------------------------------------------------------------------------------------------------
# parse_message: the SNS Message text
# ----------------------------------------------------------------------------------------------------------

_BUDGET_ANCHOR_RE = re.compile(r"^[ \t]*AWS Budget Notification\b[ \t:,-]*(?P<date>.*)$", re.M | re.I)
_BUDGET_SUBJECT_RE = re.compile(r"^\s*AWS Budgets:\s*(?P<name>.+?)\s+has exceeded your alert threshold\s*\.?\s*$", re.I)


def parse_message(
    message: str,
    config: KillSwitchConfig,
    *,
    subject: str | None = None,
    message_id: str | None = None,
    timestamp: str | None = None,
    now: datetime | None = None,
) -> ParseResult:
    """One SNS Message (with its Subject/MessageId/Timestamp) -> an Alert or a Rejected with the reason."""
    try:
        return _parse_message(
            message, config=config, subject=subject, message_id=message_id, timestamp=timestamp, now=now
        )
    except Exception as exc:  # safety net, see parse_event
        logger.exception("alert parser failed; the message is rejected", extra={"message_id": message_id})
        text = message if isinstance(message, str) else _dump(message)
        return Rejected(
            f"internal error while reading the message: {type(exc).__name__}: {exc}", message_id, cap_raw(text)
        )


def _parse_message(
    message: Any,
    *,
    config: KillSwitchConfig,
    subject: str | None,
    message_id: str | None,
    timestamp: str | None,
    now: datetime | None,
) -> ParseResult:
    if not isinstance(message, str):
        return Rejected(f"message is not text (got {type(message).__name__})", message_id, _raw_of(message))
    raw = cap_raw(message)
    size = len(message.encode("utf-8", "replace"))
    if size > MAX_RAW_BYTES:
        return Rejected(f"message is {size} bytes; alerts are never larger than 64 KB", message_id, raw)
    text = message.lstrip("\ufeff").strip()
    if not text:
        return Rejected("empty message", message_id, raw)
    if "\x00" in text:
        return Rejected("message is binary, not text", message_id, raw)
    is_letter = _BUDGET_ANCHOR_RE.search(text.replace("\r\n", "\n").replace("\r", "\n")) is not None
    if text.startswith(("{", "[")) and not is_letter:
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return Rejected(f"message looks like JSON but does not parse: {_short(str(exc), 100)}", message_id, raw)
        return _parse_json_message(obj, config=config, message_id=message_id, timestamp=timestamp, now=now, raw=raw)
    if is_letter:
        return _parse_budget_letter(
            text, config=config, subject=subject, message_id=message_id, timestamp=timestamp, now=now, raw=raw
        )
    if subject and _BUDGET_SUBJECT_RE.match(subject):
        return Rejected(
            "subject says AWS Budgets but the message has no 'AWS Budget Notification' line", message_id, raw
        )
    return Rejected(
        "not a recognised alert (neither an AWS Budgets letter, a Cost Anomaly Detection alert "
        "nor a kill switch event)",
        message_id,
        raw,
    )


def _parse_json_message(
    obj: Any,
    *,
    config: KillSwitchConfig,
    message_id: str | None,
    timestamp: str | None,
    now: datetime | None,
    raw: str,
) -> ParseResult:
    if not isinstance(obj, dict):
        return Rejected(f"JSON message is a {type(obj).__name__}, not an object", message_id, raw)
    refused = _ops_only(obj, message_id, raw)
    if refused:
        return refused
    source = obj.get("source")
    if source in (*OWN_SOURCES, AlertSource.TEST.value):
        return _parse_own(obj, config, message_id=message_id, timestamp=timestamp, now=now, raw=raw)
    if source == AlertSource.ANOMALY and "detail" in obj:  # EventBridge -> SNS target
        result = _parse_eventbridge(obj, config)
        if isinstance(result, Alert) and message_id:
            return _replace_message_id(result, message_id)
        return result
    if "anomalyId" in obj or "monitorArn" in obj:
        return _parse_anomaly(obj, config, message_id=message_id, timestamp=timestamp, raw=raw)
    if "action" in obj and "agent" in obj:
        shown = "has no source" if source is None else f"source {_short(source, 40)} is not"
        return Rejected(f"event {shown} (expected one of {', '.join(OWN_SOURCES)})", message_id, raw)
    keys = ", ".join(_short(k, 30) for k in list(obj)[:8]) or "none"
    return Rejected(
        "JSON message is not a recognised alert (not a kill switch event, not a Cost Anomaly Detection alert); "
        f"keys: {keys}",
        message_id,
        raw,
    )


def _replace_message_id(alert: Alert, message_id: str) -> Alert:
    return replace(alert, message_id=message_id)


# ----------------------------------------------------------------------------------------------------------
# our own events
# ----------------------------------------------------------------------------------------------------------


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:4]:
        loc = ".".join(str(p) for p in err["loc"]) or "event"
        got = err.get("input")
        shown = f" (got {_short(got, 40)})" if got is not None and err["type"] != "missing" else ""
        parts.append(f"{loc}: {err['msg'].lower()}{shown}")
    return "; ".join(parts)


def _ops_only(obj: Mapping[Any, Any], message_id: str | None, raw: str) -> Rejected | None:
    """Restore and approve are refused whatever the message claims to be (its source, its wrapping)."""
    action = obj.get("action")
    if not isinstance(action, str) and isinstance(obj.get("detail"), Mapping):
        action = obj["detail"].get("action")
    ops_only = action.strip().lower() if isinstance(action, str) else None
    if ops_only not in OPS_ONLY_ACTIONS:
        return None
    return Rejected(
        f"{ops_only} never arrives as an event, whatever its source ({_short(obj.get('source'), 40)}): "
        f"ops run `killswitch {ops_only}` with their own credentials; the kill stays",
        message_id,
        raw,
    )


def _parse_own(
    obj: Mapping[Any, Any],
    config: KillSwitchConfig,
    *,
    message_id: str | None,
    timestamp: str | None,
    now: datetime | None,
    raw: str | None = None,
) -> ParseResult:
    raw = raw if raw is not None else _raw_of(obj)
    data = {k: v for k, v in obj.items() if isinstance(k, str)}
    detail = data.get("detail")
    if "action" not in data and isinstance(detail, Mapping):  # one of our events routed through EventBridge
        data = {**{k: v for k, v in detail.items() if isinstance(k, str)}, "source": data.get("source")}
    refused = _ops_only(data, message_id, raw)
    if refused:
        return refused
    is_test = data.get("source") == AlertSource.TEST.value
    if is_test:  # manual test events: same fields, source "test", reason optional
        data = {**data, "source": "killswitch.cli"}
        data.setdefault("reason", "test event")
    try:
        event = KillSwitchEvent.model_validate(data)
    except ValidationError as exc:
        return Rejected(f"invalid kill switch event: {_validation_reason(exc)}", message_id, raw)
    for name in ("spend_usd", "cap_usd"):
        value = getattr(event, name)
        if value is not None and (not math.isfinite(value) or value < 0):
            return Rejected(
                f"invalid kill switch event: {name} must be a finite amount ≥ 0 (got {value})", message_id, raw
            )
    if event.agent not in config.agent_names():
        return Rejected(
            f"agent {_short(event.agent, 60)} is not in the config (known: {', '.join(config.agent_names())})",
            message_id,
            raw,
        )
    if event.action == "approval_requested" and (event.source != AlertSource.GUARD.value or not event.run_id):
        return Rejected(
            "invalid kill switch event: approval_requested comes from the guard (source killswitch.guard) and names "
            "the paused run (run_id)",
            message_id,
            raw,
        )
    source = AlertSource.TEST if is_test else AlertSource(event.source)
    canonical = event.model_dump_json(exclude_none=True)
    minute = _minute(timestamp, now)
    return Alert(
        source=source,
        kind=AlertKind.EXPLICIT,
        agent=event.agent,
        reason=" ".join(event.reason.split())[:500],
        action=event.action,
        amount_usd=event.spend_usd,
        cap_usd=event.cap_usd,
        run_id=event.run_id,
        dry_run=event.dry_run,
        alert_date=minute[:10],
        message_id=message_id,
        dedupe_key=event_dedupe_key(source, message_id, canonical, minute),
        raw=raw,
        tool=event.tool,
        calls=event.calls,
    )


# ----------------------------------------------------------------------------------------------------------
# Cost Anomaly Detection
# ----------------------------------------------------------------------------------------------------------


def _anomaly_agent(body: Mapping[Any, Any], config: KillSwitchConfig) -> tuple[str | None, str]:
    """(agent, why-not): from dimensionalValue, else from a tag-like field of the root causes."""
    agent, unknown = _agent_from_token(body.get("dimensionalValue"), config, plain_ok=True)
    if agent:
        return agent, ""
    if unknown is not None:
        return None, f"anomaly is for agent {_short(unknown, 60)}, which is not in the config"
    found: set[str] = set()
    unknowns: set[str] = set()
    causes = body.get("rootCauses")
    for cause in causes if isinstance(causes, list) else []:
        if not isinstance(cause, Mapping):
            continue
        for key, value in cause.items():
            tag_like = isinstance(key, str) and "tag" in key.lower()
            a, u = _agent_from_token(value, config, plain_ok=False)
            if a is None and u is None and tag_like:
                a, u = _agent_from_token(value, config, plain_ok=True)
            if a:
                found.add(a)
            elif u is not None:
                unknowns.add(u)
        # {"tagKey": "agent-name", "tagValue": "<name>"} style
        tag_key = cause.get("tagKey", cause.get("TagKey"))
        tag_value = cause.get("tagValue", cause.get("TagValue"))
        if isinstance(tag_key, str) and tag_key.removeprefix("user:") == "agent-name" and isinstance(tag_value, str):
            if tag_value in config.agent_names():
                found.add(tag_value)
            else:
                unknowns.add(tag_value)
    if len(found) == 1:
        return found.pop(), ""
    if len(found) > 1:
        return None, f"anomaly root causes point at several agents ({', '.join(sorted(found))})"
    if unknowns:
        names = ", ".join(_short(u, 40) for u in sorted(unknowns)[:3])
        return None, f"anomaly is for agent {names}, which is not in the config"
    return None, (
        f"anomaly cannot be attributed to an agent (dimensionalValue {_short(body.get('dimensionalValue'), 60)} "
        "is not an agent name and no root cause carries an agent-name tag)"
    )


def _parse_anomaly(
    body: Mapping[Any, Any],
    config: KillSwitchConfig,
    *,
    message_id: str | None,
    timestamp: str | None,
    raw: str,
) -> ParseResult:
    anomaly_id = _str_or_none(body.get("anomalyId"))
    if anomaly_id is None:
        return Rejected("Cost Anomaly Detection alert has no anomalyId", message_id, raw)
    agent, why_not = _anomaly_agent(body, config)
    if agent is None:
        return Rejected(why_not, message_id, raw)
    impact = body.get("impact")
    impact = impact if isinstance(impact, Mapping) else {}
    total = _finite(impact.get("totalImpact"))
    if total is None:
        total = _finite(impact.get("maxImpact"))
    actual = _finite(impact.get("totalActualSpend"))
    expected = _finite(impact.get("totalExpectedSpend"))
    account = body.get("accountId")
    account_id = account.strip() if isinstance(account, str) and account.strip() else None
    day = (
        _iso_date(_str_or_none(body.get("anomalyEndDate")))
        or _iso_date(_str_or_none(body.get("anomalyStartDate")))
        or _iso_date(timestamp)
    )
    parts = [f"Cost anomaly {anomaly_id} for agent {agent}"]
    if total is not None:
        parts.append(f"total impact ${total:,.2f}")
    if actual is not None and expected is not None:
        parts.append(f"spend ${actual:,.2f} vs ${expected:,.2f} expected")
    return Alert(
        source=AlertSource.ANOMALY,
        kind=AlertKind.ANOMALY,
        agent=agent,
        reason=": ".join(parts[:2]) + (f" ({parts[2]})" if len(parts) > 2 else ""),
        amount_usd=total,
        account_id=account_id,
        alert_date=day,
        message_id=message_id,
        dedupe_key=anomaly_dedupe_key(anomaly_id, total),
        raw=raw,
        anomaly_id=anomaly_id,
    )


# ----------------------------------------------------------------------------------------------------------
# AWS Budgets letters
# ----------------------------------------------------------------------------------------------------------

_LINE_RE = re.compile(r"^(?P<key>[A-Za-z][A-Za-z ]{0,40}?)\s*:\s*(?P<value>.*)$")
_ACCOUNT_RE = re.compile(r"^AWS Account(?: ID)?\s*:?\s*(?P<id>\d{4}-?\d{4}-?\d{4})\b", re.I)
_NUMBER_RE = re.compile(r"[+-]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)")
_TOKEN_RE = re.compile(r"[A-Za-z]+\$|\$|[A-Za-z]+|\d+|[^\sA-Za-z\d]")
_IGNORED_PUNCTUATION = set("><=()[],.:;*-+~")
# AWS prints `$0.59`, `$1,234.56` and thresholds as `> $0.16`: digits grouped by three with commas, or not at all.
_USD_AMOUNT_RE = re.compile(r"^\s*(?:>=?\s*)?\$(?P<number>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s*$")
_PERCENT_RE = re.compile(r"^\s*[>=]*\s*(?P<pct>\d[\d,]*(?:\.\d+)?)\s*%\s*$")
_PROSE_AMOUNT_RE = re.compile(
    r"\bthe (?P<kind>ACTUAL|FORECASTED) (?P<what>Cost|Usage) associated with this budget (?:is|was) "
    r"(?P<amount>\S+?)\.?(?=\s|$)",
    re.I,
)
_PROSE_THRESHOLD_RE = re.compile(
    r"\bassociated with your (?P<name>.+?) budget (?:is|was) greater than (?P<threshold>\S+?)\.?(?=\s|$)", re.I
)
_PROSE_PERIODS = (
    (re.compile(r"\bper day\b|\bYesterday,", re.I), Period.DAILY),
    (re.compile(r"\bcurrent month\b|\bper month\b", re.I), Period.MONTHLY),
    (re.compile(r"\bcurrent quarter\b|\bper quarter\b", re.I), Period.QUARTERLY),
    (re.compile(r"\bcurrent year\b|\bper year\b", re.I), Period.ANNUALLY),
)


@dataclass(frozen=True)
class Money:
    value: float | None  # None: no number at all (treated as a missing line)
    problem: str | None = None  # set when the text is not a USD amount


def parse_money(text: str) -> Money:
    """`$1,234.56`, `$0.59`, `> $0.16` -> USD value; `N/A` (no digit) -> no value. Anything else with a digit is a
    problem, never a guess: `€5`, `5 EUR`, `100 Hrs`, and numbers not in AWS's `$1,234.56` form (`260,0`, `5`,
    `USD 5`, `$1,23.4`), because a misread number decides a kill (`260,0` read as 2600 killed below the threshold)."""
    strict = _USD_AMOUNT_RE.match(text)
    if strict:
        value = float(strict["number"].replace(",", ""))
        return Money(value) if math.isfinite(value) else Money(None, f"{_short(text, 40)} is not a finite amount")
    m = _NUMBER_RE.search(text)
    if m is None:
        return Money(None)
    rest = text[: m.start()] + " " + text[m.end() :]
    currencies: list[str] = []
    units: list[str] = []
    digits = False
    for token in _TOKEN_RE.findall(rest):
        if token in ("$", "US$") or token.upper() == "USD":
            continue
        if token.endswith("$"):
            currencies.append(token)
        elif token.isdigit():
            digits = True
        elif token.isalpha():
            (currencies if len(token) == 3 and token.isupper() else units).append(token)
        elif unicodedata.category(token) == "Sc":
            currencies.append(token)
        elif token not in _IGNORED_PUNCTUATION:
            units.append(token)
    if digits:
        return Money(None, f"cannot read {_short(text, 40)} as one amount")
    if currencies:
        return Money(None, f"{_short(text, 40)} is in {currencies[0]}, not USD")
    if units:
        return Money(None, f"{_short(text, 40)} is not a dollar amount (unit {units[0]!r})")
    return Money(None, f"{_short(text, 40)} is not a dollar amount in AWS's `$1,234.56` form")


# Lines whose value decides the alert: two different values for one of them is a letter that contradicts itself.
_DECIDING_KEYS = (
    "budget name",
    "budget type",
    "budgeted amount",
    "alert type",
    "alert threshold",
    "actual amount",
    "forecasted amount",
)
_KINDS = ("ACTUAL", "FORECASTED")


def _same_money(a: float | None, b: float | None) -> bool:
    return a is None or b is None or abs(a - b) < 0.005


def _read_letter_lines(body_lines: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """(key -> every value it has, in order; account ids): `Key: value` lines and `AWS Account <id>` lines."""
    fields: dict[str, list[str]] = {}
    accounts: list[str] = []
    for line in body_lines:
        acct = _ACCOUNT_RE.match(line)
        if acct:
            accounts.append(acct["id"].replace("-", ""))
            continue
        m = _LINE_RE.match(line)
        if m:
            key = " ".join(m["key"].lower().split())
            fields.setdefault(key, []).append(" ".join(m["value"].split()))
    return fields, accounts


def _letter_contradiction(
    normalized: str, fields: dict[str, list[str]], accounts: list[str], prose: str, subject_name: str | None
) -> str | None:
    """Why the letter contradicts itself (refused, never guessed), or None. Genuine letters hold one of each."""
    letters = len(_BUDGET_ANCHOR_RE.findall(normalized))
    if letters > 1:
        return f"message holds {letters} AWS Budgets letters ('AWS Budget Notification' lines); one letter per message"
    if len(set(accounts)) > 1:
        return f"conflicting 'AWS Account' lines: {', '.join(sorted(set(accounts)))}"
    for key in _DECIDING_KEYS:
        values = list(dict.fromkeys(fields.get(key, [])))
        if len(values) > 1:
            shown = ", ".join(_short(v, 30) for v in values[:3])
            label = key.title().replace("Actual", "ACTUAL").replace("Forecasted", "FORECASTED")
            return f"conflicting '{label}' lines: {shown}"
    line_kind = fields["alert type"][0].upper() if "alert type" in fields else None
    amount_kinds = [k for k in _KINDS if f"{k.lower()} amount" in fields]
    if len(amount_kinds) > 1:
        return "letter has both an 'ACTUAL Amount' and a 'FORECASTED Amount' line"
    if line_kind in _KINDS and amount_kinds and amount_kinds[0] != line_kind:
        return f"'Alert Type: {line_kind}' but the amount line is '{amount_kinds[0]} Amount'"
    prose_amounts = {(m["kind"].upper(), m["amount"].rstrip(".")) for m in _PROSE_AMOUNT_RE.finditer(prose)}
    if len(prose_amounts) > 1:
        return "the letter's sentences state more than one amount: " + ", ".join(
            f"{k} {_short(a, 20)}" for k, a in sorted(prose_amounts)
        )
    prose_kind = next(iter(prose_amounts))[0] if prose_amounts else None
    if prose_kind and line_kind in _KINDS and prose_kind != line_kind:
        return f"'Alert Type: {line_kind}' but the sentence speaks of the {prose_kind} cost"
    names = {" ".join(m["name"].split()) for m in _PROSE_THRESHOLD_RE.finditer(prose)}
    names.update(fields.get("budget name", []))
    if subject_name:
        names.add(" ".join(subject_name.split()))
    if len(names) > 1:
        return "the letter names more than one budget: " + ", ".join(_short(n, 40) for n in sorted(names)[:3])
    thresholds = {m["threshold"].rstrip(".") for m in _PROSE_THRESHOLD_RE.finditer(prose)}
    if len(thresholds) > 1:
        return "the letter's sentences state more than one threshold: " + ", ".join(sorted(thresholds)[:3])
    return None


def _parse_budget_letter(
    text: str,
    *,
    config: KillSwitchConfig,
    subject: str | None,
    message_id: str | None,
    timestamp: str | None,
    now: datetime | None,
    raw: str,
) -> ParseResult:
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    anchor = _BUDGET_ANCHOR_RE.search(normalized)
    if anchor is None:  # the caller checked; kept for the type checker
        return Rejected("no 'AWS Budget Notification' line", message_id, raw)
    body_lines = [line.strip() for line in normalized[anchor.end() :].split("\n")]
    prose = " ".join(" ".join(body_lines).split())
    all_fields, accounts = _read_letter_lines(body_lines)
    fields = {key: values[0] for key, values in all_fields.items()}
    account_id = accounts[0] if accounts else None

    def reject(reason: str) -> Rejected:
        return Rejected(reason, message_id, raw)

    subject_match = _BUDGET_SUBJECT_RE.match(subject) if subject else None
    contradiction = _letter_contradiction(
        normalized, all_fields, accounts, prose, subject_match["name"].strip() if subject_match else None
    )
    if contradiction:
        return reject(f"AWS Budgets letter contradicts itself: {contradiction}")

    # -- budget name: the line, else the subject, else the prose sentence --------------------------------
    threshold_prose = _PROSE_THRESHOLD_RE.search(prose)
    name = (
        fields.get("budget name")
        or (subject_match["name"].strip() if subject_match else None)
        or (threshold_prose["name"].strip() if threshold_prose else None)
    )
    if not name:
        return reject("AWS Budgets letter names no budget (no 'Budget Name:' line, subject or sentence)")

    # -- cost budgets in USD only ------------------------------------------------------------------------
    budget_type = fields.get("budget type")
    amount_prose = _PROSE_AMOUNT_RE.search(prose)
    if budget_type is not None and budget_type.strip().lower() != "cost":
        return reject(f"budget {_short(name, 60)} is a {_short(budget_type, 30)} budget; only Cost budgets are handled")
    if budget_type is None and amount_prose and amount_prose["what"].lower() == "usage":
        return reject(f"budget {_short(name, 60)} is a usage budget; only Cost budgets are handled")

    # -- alert type ----------------------------------------------------------------------------------------
    alert_type = fields.get("alert type", "").strip().upper()
    if not alert_type:
        kinds = [k for k in _KINDS if f"{k.lower()} amount" in fields]
        if len(kinds) == 1:
            alert_type = kinds[0]
        elif amount_prose:
            alert_type = amount_prose["kind"].upper()
    if alert_type not in _KINDS:
        shown = _short(fields.get("alert type"), 30) if fields.get("alert type") else "missing"
        return reject(
            f"AWS Budgets letter for {_short(name, 60)}: alert type is {shown} (expected ACTUAL or FORECASTED)"
        )
    kind = AlertKind(alert_type)

    # -- amounts: the lines and the prose sentence must agree ------------------------------------------------
    def money(label: str, *candidates: str | None) -> float | Rejected | None:
        values: list[float] = []
        for candidate in candidates:
            if candidate is None:
                continue
            parsed = parse_money(candidate)
            if parsed.problem:
                return reject(f"budget {_short(name, 60)}: {label} {parsed.problem}; only USD cost budgets are handled")
            if parsed.value is not None:
                values.append(parsed.value)
        if len(values) > 1 and not _same_money(values[0], values[1]):
            shown = " and ".join(f"${v:,.2f}" for v in values)
            return reject(f"AWS Budgets letter contradicts itself: {label} is {shown} (line and sentence)")
        return values[0] if values else None

    prose_amount = amount_prose["amount"] if amount_prose and amount_prose["kind"].upper() == alert_type else None
    amount = money(f"{alert_type} amount", fields.get(f"{alert_type.lower()} amount"), prose_amount)
    budgeted = money("budgeted amount", fields.get("budgeted amount"))
    # The threshold is printed in dollars even when it was set as a percentage; accept `> 80%` all the same.
    threshold_texts = [fields.get("alert threshold"), threshold_prose["threshold"] if threshold_prose else None]
    threshold_pct: float | None = None
    for i, candidate in enumerate(threshold_texts):
        pct_match = _PERCENT_RE.match(candidate) if candidate else None
        if pct_match:
            threshold_pct = threshold_pct or float(pct_match["pct"].replace(",", ""))
            threshold_texts[i] = None
    threshold = money("alert threshold", threshold_texts[0], threshold_texts[1])
    for figure in (amount, threshold, budgeted):
        if isinstance(figure, Rejected):
            return figure
    assert not isinstance(amount, Rejected) and not isinstance(threshold, Rejected)  # for the type checker
    assert not isinstance(budgeted, Rejected)
    agree = threshold is None or threshold_pct is None or budgeted is None
    if not agree and not _same_money(round(budgeted * threshold_pct / 100, 2), threshold):  # type: ignore[operator]
        return reject(
            f"AWS Budgets letter contradicts itself: threshold ${threshold:,.2f} is not {threshold_pct:g}% "
            f"of the ${budgeted:,.2f} budgeted"
        )
    if threshold is None and threshold_pct is not None and budgeted is not None:
        threshold = round(budgeted * threshold_pct / 100, 2)
    if threshold_pct is None:
        threshold_pct = _pct(threshold, budgeted)
    if amount is None and threshold is None and threshold_pct is None:
        return reject(f"AWS Budgets letter for {_short(name, 60)} has neither an amount nor a threshold")

    # -- agent ---------------------------------------------------------------------------------------------
    agent_cfg: AgentConfig | None = config.agent_for_budget(name)
    org_key = org_budget_for(config, name) if agent_cfg is None else None
    if org_key is not None:
        agent_cfg = org_key.agent
    if agent_cfg is None:
        return reject(f"budget {_short(name, 60)} is not managed by this kill switch")

    # -- dates and period ------------------------------------------------------------------------------------
    alert_date = _letter_date(anchor["date"]) or _iso_date(timestamp)
    budget_period = next((p for rx, p in _PROSE_PERIODS if rx.search(prose)), agent_cfg.budget.period)
    # No date anywhere: the period of processing time, so next period's alert is never swallowed by this one.
    period = _period_key(alert_date or (now or datetime.now(UTC)).astimezone(UTC).date().isoformat(), budget_period)

    pieces = [f"AWS Budgets {alert_type} alert for budget {name!r}{_org_scope(org_key)}"]
    if amount is not None:
        pieces.append(f"{alert_type.lower()} ${amount:,.2f}")
    if budgeted is not None:
        pieces.append(f"budget ${budgeted:,.2f}")
    if threshold is not None:
        pieces.append(f"threshold > ${threshold:,.2f}")
    return Alert(
        source=AlertSource.BUDGETS,
        kind=kind,
        agent=agent_cfg.name,
        reason=pieces[0] + ": " + ", ".join(pieces[1:]),
        budget_name=name,
        threshold_usd=threshold,
        amount_usd=amount,
        budgeted_usd=budgeted,
        percent_of_budget=_pct(amount, budgeted),
        threshold_pct=threshold_pct,
        account_id=account_id,
        alert_date=alert_date,
        period=period,
        message_id=message_id,
        dedupe_key=budget_dedupe_key(account_id, name, kind, threshold, period),
        raw=raw,
        budget_period=budget_period,
        org_budget=org_key is not None,
        budget_account=org_key.account if org_key else None,
    )


def _org_scope(key: OrgBudgetKey | None) -> str:
    if key is None:
        return ""
    return f" (linked account {key.account})" if key.account else " (org-wide: every linked account)"
