"""Bedrock model invocation log records, as a CloudWatch Logs subscription delivers them. Pure: no AWS calls.

A subscription event is `{"awslogs": {"data": base64(gzip(JSON))}}`; the JSON holds `messageType`
(`DATA_MESSAGE`, or `CONTROL_MESSAGE` for the delivery check AWS sends when the subscription is created),
`logGroup`, `logStream` and `logEvents[]` (`id`, `timestamp`, `message`). Each message is one invocation record
(docs/aws-behaviour.md "Bedrock model invocation logs").

Every line either becomes an `InvocationRecord` or a `Skipped` with a reason; nothing here raises on bad data,
so one malformed line never costs the rest of the batch.

Token counts: `input.inputTokenCount`, `output.outputTokenCount`; cache counts are read from
`input.cacheReadInputTokenCount` / `input.cacheWriteInputTokenCount` and, failing those, from the Converse usage
block in `output.outputBodyJson.usage` (`cacheReadInputTokens` / `cacheWriteInputTokens`). The field names of the
cache counts in the log schema are unconfirmed, hence both.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from killswitch.tags import AGENT_NAME, AGENT_RUN_ID

SCHEMA_TYPE = "ModelInvocationLog"


@dataclass(frozen=True, slots=True)
class InvocationRecord:
    record_id: str  # the Logs event id (stable across redeliveries), else the Bedrock requestId
    timestamp: datetime
    account_id: str
    region: str
    model_id: str
    caller_arn: str
    operation: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    run_id: str | None = None  # `agent-run-id` from requestMetadata: narrows a kill, never picks the agent
    claimed_agent: str | None = None  # `agent-name` from requestMetadata: caller-supplied, never charged on its own


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str  # short code: malformed_json, not_invocation_log, missing_tokens, missing_caller, ...
    detail: str
    record_id: str | None = None


@dataclass
class LogBatch:
    records: list[InvocationRecord]
    skipped: list[Skipped]
    log_group: str = ""
    control: bool = False  # the Logs delivery check: nothing to price


def decode_subscription_event(event: Any) -> dict[str, Any]:
    """The JSON inside `{"awslogs": {"data": ...}}`. Raises ValueError with what is wrong."""
    if not isinstance(event, Mapping) or not isinstance(event.get("awslogs"), Mapping):
        raise ValueError('not a CloudWatch Logs subscription event (expected {"awslogs": {"data": ...}})')
    data = event["awslogs"].get("data")
    if not isinstance(data, str) or not data:
        raise ValueError("awslogs.data is missing or not a string")
    try:
        raw = base64.b64decode(data, validate=True)
        text = gzip.decompress(raw)
        body = json.loads(text)
    except (binascii.Error, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"awslogs.data is not base64 gzip: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"awslogs.data does not hold JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValueError("awslogs.data does not hold a JSON object")
    return body


def encode_subscription_event(log_events: list[dict[str, Any]], log_group: str = "/bedrock/invocations") -> dict:
    """The inverse, as AWS delivers it (tests, the demo, the benchmark, `killswitch meter --event` fixtures)."""
    body = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": "aws/bedrock/modelinvocations",
        "subscriptionFilters": ["killswitch-meter"],
        "logEvents": log_events,
    }
    data = base64.b64encode(gzip.compress(json.dumps(body).encode("utf-8"))).decode("ascii")
    return {"awslogs": {"data": data}}


def parse_batch(event: Any) -> LogBatch:
    """A subscription event → records and skipped lines. A batch that cannot be decoded at all is one `Skipped`."""
    try:
        body = decode_subscription_event(event)
    except ValueError as exc:
        return LogBatch([], [Skipped("malformed_event", str(exc))])
    if body.get("messageType") == "CONTROL_MESSAGE":
        return LogBatch([], [], str(body.get("logGroup", "")), control=True)
    events = body.get("logEvents")
    if not isinstance(events, list):
        return LogBatch([], [Skipped("malformed_event", "logEvents is missing or not a list")])
    batch = LogBatch([], [], str(body.get("logGroup", "")))
    for i, log_event in enumerate(events):
        parsed = parse_log_event(log_event, i)
        (batch.skipped if isinstance(parsed, Skipped) else batch.records).append(parsed)  # type: ignore[arg-type]
    return batch


def _count(obj: Any, *path: str) -> int | None:
    # JSON objects are plain dicts: `type(...) is dict` is much cheaper than an ABC isinstance per field.
    for key in path:
        if type(obj) is not dict:
            return None
        obj = obj.get(key)
    if type(obj) is int:
        return obj if obj >= 0 else None
    if type(obj) is float and not math.isnan(obj) and obj >= 0:
        return int(obj)
    return None


def _timestamp(record: Mapping[str, Any], log_event: Mapping[str, Any]) -> datetime:
    text = record.get("timestamp")
    if isinstance(text, str):
        try:
            ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        except ValueError:
            pass
    millis = log_event.get("timestamp")
    if isinstance(millis, int | float) and not isinstance(millis, bool):
        return datetime.fromtimestamp(millis / 1000, UTC)
    return datetime.now(UTC)


def parse_log_event(log_event: Any, index: int = 0) -> InvocationRecord | Skipped:
    """One `logEvents[]` entry → a record, or a `Skipped` naming the line and what is wrong."""
    if type(log_event) is not dict:
        return Skipped("malformed_event", f"logEvents[{index}] is not an object")
    event_id = log_event.get("id")
    rid = str(event_id) if event_id else None
    message = log_event.get("message")
    if not isinstance(message, str):
        return Skipped("malformed_event", f"logEvents[{index}].message is missing", rid)
    try:
        record = json.loads(message)
    except ValueError as exc:
        return Skipped("malformed_json", f"logEvents[{index}].message is not JSON: {exc}", rid)
    if type(record) is not dict or record.get("schemaType") != SCHEMA_TYPE:
        return Skipped("not_invocation_log", f"logEvents[{index}] is not a {SCHEMA_TYPE} record", rid)
    rid = rid or (str(record["requestId"]) if record.get("requestId") else None)
    if not rid:
        return Skipped("missing_id", f"logEvents[{index}] has neither an event id nor a requestId")
    identity = record.get("identity")
    caller = identity.get("arn") if type(identity) is dict else None
    if type(caller) is not str or not caller:
        return Skipped("missing_caller", f"logEvents[{index}] has no identity.arn", rid)
    model = record.get("modelId")
    if type(model) is not str or not model:
        return Skipped("missing_model", f"logEvents[{index}] has no modelId", rid)
    input_tokens = _count(record, "input", "inputTokenCount")
    output_tokens = _count(record, "output", "outputTokenCount")
    if input_tokens is None or output_tokens is None:
        return Skipped(
            "missing_tokens", f"logEvents[{index}] lacks input.inputTokenCount or output.outputTokenCount", rid
        )
    inp = record["input"]
    cache_read = _count(inp, "cacheReadInputTokenCount")
    cache_write = _count(inp, "cacheWriteInputTokenCount")
    if cache_read is None or cache_write is None:
        body = record["output"].get("outputBodyJson")
        usage = body.get("usage") if type(body) is dict else None
        if cache_read is None:
            cache_read = _count(usage, "cacheReadInputTokens") or 0
        if cache_write is None:
            cache_write = _count(usage, "cacheWriteInputTokens") or 0
    meta = record.get("requestMetadata")
    meta = meta if type(meta) is dict else {}
    run_id = meta.get(AGENT_RUN_ID)
    claimed = meta.get(AGENT_NAME)
    return InvocationRecord(
        record_id=rid,
        timestamp=_timestamp(record, log_event),
        account_id=str(record.get("accountId", "")),
        region=str(record.get("region", "")),
        model_id=model,
        caller_arn=caller,
        operation=str(record.get("operation", "")),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        run_id=run_id if type(run_id) is str and run_id else None,
        claimed_agent=claimed if type(claimed) is str and claimed else None,
    )


def invocation_log(
    caller_arn: str,
    model_id: str,
    input_tokens: int,
    output_tokens: int,
    *,
    request_id: str,
    timestamp: str = "2026-11-22T10:15:00Z",
    run_id: str | None = None,
    account_id: str = "123456789012",
    region: str = "us-east-1",
    cache_read: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A real-shaped invocation log record (tests, the demo, the benchmark)."""
    meta = dict(metadata or {})
    if run_id:
        meta[AGENT_RUN_ID] = run_id
    record: dict[str, Any] = {
        "schemaType": SCHEMA_TYPE,
        "schemaVersion": "1.0",
        "timestamp": timestamp,
        "accountId": account_id,
        "identity": {"arn": caller_arn},
        "region": region,
        "requestId": request_id,
        "operation": "Converse",
        "modelId": model_id,
        "input": {"inputContentType": "application/json", "inputTokenCount": input_tokens},
        "output": {"outputContentType": "application/json", "outputTokenCount": output_tokens},
    }
    if cache_read is not None:
        record["input"]["cacheReadInputTokenCount"] = cache_read
    if meta:
        record["requestMetadata"] = meta
    return record
