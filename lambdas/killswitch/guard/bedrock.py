"""Bedrock calls metered by the session: `Run.instrument(session)` charges `bedrock-runtime` model calls itself.

botocore event hooks on the session (so on every client it creates afterwards) or on one client:

- `before-parameter-build` (Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream): plan the charge
  from the caller's parameters (model id, `maxTokens`/`max_tokens`, an input estimate: for Converse* taken from the
  serialised body at `before-call`, see `converse_input_tokens`) and add `agent-name` /
  `agent-run-id` to the request metadata (Converse* `requestMetadata`, InvokeModel* the
  `X-Amzn-Bedrock-Request-Metadata` header) so the meter attributes the same calls;
- `before-call`: reserve the worst case after botocore validated the parameters. `BudgetExceeded` (or
  `UnknownModel`) propagates to the caller and no request leaves the process;
- `after-call`: settle from the response's usage (Converse `usage`, InvokeModel's `X-Amzn-Bedrock-*-Token-Count`
  headers or its body's `usage`), or wrap the event stream to settle on its metadata / invocation-metrics event;
  an error response releases the reservation and the caller sees the service's own error;
- `after-call-error` (connection errors, retries exhausted): release.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from killswitch.guard.usage import CHARS_PER_TOKEN, Usage, estimate_tokens
from killswitch.guard.usage import count_of as _count
from killswitch.guard.usage import settle_from_usage as _settle
from killswitch.tags import AGENT_NAME, AGENT_RUN_ID

if TYPE_CHECKING:
    from killswitch.guard.call import Call
    from killswitch.guard.prices import ModelPrice
    from killswitch.guard.run import Run

log = logging.getLogger("killswitch.guard")

OPERATIONS = ("Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream")
_SERVICE = "bedrock-runtime"
_PLAN = "killswitch_guard_plan"
_CALL = "killswitch_guard_call"
# InvokeModel bodies name the output limit differently per model family (Anthropic/Mistral/Cohere, Llama, Titan,
# Nova, OpenAI-compatible).
_MAX_TOKEN_KEYS = ("max_tokens", "max_gen_len", "maxTokenCount", "max_new_tokens", "maxTokens", "max_completion_tokens")
_BINARY_KEY = b'"bytes":'  # Converse image/document/video source blocks, serialised as base64
_HEADER_IN = "x-amzn-bedrock-input-token-count"
_HEADER_OUT = "x-amzn-bedrock-output-token-count"
_HEADER_CACHE_READ = "x-amzn-bedrock-cache-read-input-token-count"
_HEADER_CACHE_WRITE = "x-amzn-bedrock-cache-write-input-token-count"


class BedrockMeter:
    """The hooks of one run. `default_max_tokens` is reserved when a request names no output limit."""

    def __init__(self, run: Run, *, default_max_tokens: int = 4096):
        self.run = run
        self.default_max_tokens = default_max_tokens
        self._prices: dict[str, ModelPrice] = {}  # model id -> price: resolving an id runs several regexes
        self._ours = {AGENT_NAME: run.guard.agent, AGENT_RUN_ID: run.run_id}  # the request metadata we add
        self._ours_member = request_metadata_member(self._ours)

    def register(self, target: Any) -> Any:
        events = getattr(target, "events", None)  # boto3.Session
        if events is None:
            events = target.meta.events  # client
        for op in OPERATIONS:
            # One meter per operation and target: instrumenting again (a new run) replaces the old run's hooks.
            for stage, handler in (
                ("before-parameter-build", self._plan),
                ("before-call", self._reserve),
                ("after-call", self._after_call),
                ("after-call-error", self._after_error),
            ):
                unique_id = f"killswitch-guard-meter-{stage}-{op}"
                events.unregister(f"{stage}.{_SERVICE}.{op}", unique_id=unique_id)
                events.register(f"{stage}.{_SERVICE}.{op}", handler, unique_id=unique_id)
        return target

    # -- hooks --------------------------------------------------------------------------------------------------
    def _plan(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        ours = self._ours
        input_tokens: int | tuple[Any, ...]
        inject = False
        if model.name.startswith("Converse"):
            if "requestMetadata" in params:
                params["requestMetadata"] = {**(params["requestMetadata"] or {}), **ours}
            else:
                inject = True  # into the serialised body at `before-call` (`with_request_metadata`)
            max_tokens = (params.get("inferenceConfig") or {}).get("maxTokens")
            # the prompt parts: counted from the serialised body in `_reserve` (`converse_input_tokens`)
            input_tokens = (params.get("system"), params.get("messages"), params.get("toolConfig"))
        else:
            # InvokeModel*: the X-Amzn-Bedrock-Request-Metadata header, a JSON object of strings
            theirs = _json_body(params.get("requestMetadata"))
            params["requestMetadata"] = json.dumps({**(theirs if isinstance(theirs, dict) else {}), **ours})
            body = _json_body(params.get("body"))
            max_tokens = _find_max_tokens(body) if isinstance(body, dict) else None
            input_tokens = estimate_tokens(body if body is not None else params.get("body"))
        context[_PLAN] = (
            str(params.get("modelId", "")),
            input_tokens,
            int(max_tokens) if max_tokens else self.default_max_tokens,
            inject,
        )

    def _reserve(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        plan = context.pop(_PLAN, None)
        if plan is None:
            return
        model_id, input_tokens, max_tokens, inject = plan
        if inject:
            params["body"] = with_request_metadata(params.get("body"), self._ours, self._ours_member)
        if type(input_tokens) is tuple:
            input_tokens = converse_input_tokens(params.get("body"), input_tokens)
        price = self._prices.get(model_id)
        if price is None:
            price = self._prices[model_id] = self.run.guard.prices.price(model_id)  # UnknownModel: nothing sent
        context[_CALL] = self.run.charge(model_id, input_tokens, max_tokens, price=price)  # BudgetExceeded: idem

    def _after_call(self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any):
        call: Call | None = context.pop(_CALL, None)
        if call is None:
            return
        if http_response.status_code >= 300:
            call.release()
            return
        try:
            op = model.name
            if op == "Converse":
                usage = parsed.get("usage")
                if type(usage) is dict and "outputTokens" in usage:  # the common case, without a Usage object
                    call.settle_tokens(
                        _count(usage.get("outputTokens")),
                        input_tokens=_count(usage.get("inputTokens")),
                        cache_read_tokens=_count(usage.get("cacheReadInputTokens")),
                        cache_write_tokens=_count(usage.get("cacheWriteInputTokens")),
                    )
                else:
                    _settle(call, Usage.from_bedrock(usage))
            elif op == "InvokeModel":
                _settle(call, _invoke_model_usage(http_response.headers, parsed))
            elif op == "ConverseStream" and parsed.get("stream") is not None:
                parsed["stream"] = MeteredEventStream(parsed["stream"], call, _converse_stream_usage)
            elif op == "InvokeModelWithResponseStream" and parsed.get("body") is not None:
                parsed["body"] = MeteredEventStream(parsed["body"], call, _invoke_stream_usage)
            else:
                _settle(call, None)
        except Exception:
            # Never lose the charge over an odd response: the worst case stays on the books.
            log.exception("reading Bedrock usage failed for charge %s; settled at the estimate", call.charge_id)
            _settle(call, None)

    def _after_error(self, context: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.pop(_CALL, None)
        if call is not None:
            call.release()


def request_metadata_member(metadata: dict[str, str]) -> bytes:
    """`"requestMetadata":{...}` as it goes into a JSON body."""
    return b'"requestMetadata":' + json.dumps(metadata, separators=(",", ":")).encode()


def with_request_metadata(body: Any, metadata: dict[str, str], member: bytes | None = None) -> bytes:
    """A serialised Converse* body (a JSON object) with `requestMetadata` added.

    When the caller gave no request metadata the meter adds its own to the body botocore already validated and
    serialised: the same bytes botocore would send, without the cost of validating and serialising the map (a
    quarter of the meter's overhead). Our keys and values are plain strings (agent name, run id).
    """
    member = member or request_metadata_member(metadata)
    if type(body) is bytes:
        if body == b"{}" or not body:
            return b"{" + member + b"}"
        if body[:1] == b"{" and body[-1:] == b"}":
            return body[:-1] + b"," + member + b"}"
    data = json.loads(body) if body else {}  # any other shape: parse and serialise again
    data["requestMetadata"] = metadata
    return json.dumps(data, separators=(",", ":")).encode()


def converse_input_tokens(body: Any, prompt: tuple[Any, ...]) -> int:
    """Input estimate of a Converse* request from its serialised JSON body: one token per `CHARS_PER_TOKEN` bytes.

    The body holds every string of the prompt (system, messages, tool config) with its keys, escaped (never
    shorter) and wrapped in JSON syntax, so it is never below the walk over the prompt parts (`estimate_tokens`),
    at the cost of a `len()`. Binary blocks (`"bytes":`, base64 in the body) would count thousands of tokens per
    image, so a body with one is estimated by the walk: one `BINARY_BLOCK_TOKENS` per block.
    """
    if type(body) is bytes and _BINARY_KEY not in body:
        return -(-len(body) // CHARS_PER_TOKEN)
    return estimate_tokens(prompt)


def meter_bedrock(target: Any, run: Run, *, default_max_tokens: int = 4096) -> Any:
    """Meter the `bedrock-runtime` model calls of a boto3 Session (clients created afterwards) or client."""
    return BedrockMeter(run, default_max_tokens=default_max_tokens).register(target)


class MeteredEventStream:
    """An event stream that settles its charge from the usage event it carries; behaves like the botocore one.

    Settled when the stream ends or is closed: at the reported usage if one arrived, else at the estimate (tokens
    were probably generated, and the guard never under-counts).
    """

    def __init__(self, inner: Any, call: Call, read_usage: Any):
        self._inner = inner
        self._call = call
        self._read_usage = read_usage
        self._usage: Usage | None = None

    def __iter__(self) -> Iterator[Any]:
        try:
            for event in self._inner:
                try:
                    seen = self._read_usage(event, self._usage)
                except Exception:
                    log.exception("reading a Bedrock stream event failed (charge %s)", self._call.charge_id)
                    seen = None
                if seen is not None:
                    self._usage = seen
                yield event
        finally:
            self._finish()

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._call.state == "reserved":  # once: the end of the iteration and close() both land here
            _settle(self._call, self._usage)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _json_body(body: Any) -> Any:
    if isinstance(body, bytes | bytearray | str):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return None


def _find_max_tokens(body: Mapping[str, Any]) -> int | None:
    for scope in (body, body.get("inferenceConfig"), body.get("textGenerationConfig")):
        if isinstance(scope, Mapping):
            for key in _MAX_TOKEN_KEYS:
                value = scope.get(key)
                if isinstance(value, int) and value > 0:
                    return value
    return None


def _invoke_model_usage(headers: Mapping[str, str], parsed: dict[str, Any]) -> Usage | None:
    if headers.get(_HEADER_IN) is not None and headers.get(_HEADER_OUT) is not None:
        return Usage(
            int(headers[_HEADER_IN]),
            int(headers[_HEADER_OUT]),
            int(headers.get(_HEADER_CACHE_READ) or 0),
            int(headers.get(_HEADER_CACHE_WRITE) or 0),
        )
    body = parsed.get("body")
    if body is None or not hasattr(body, "read"):
        return None
    data = body.read()
    from botocore.response import StreamingBody

    parsed["body"] = StreamingBody(io.BytesIO(data), len(data))  # the caller still reads the whole body
    payload = _json_body(data)
    return Usage.from_any(payload.get("usage")) if isinstance(payload, dict) else None


def _converse_stream_usage(event: Mapping[str, Any], seen: Usage | None) -> Usage | None:
    meta = event.get("metadata")
    return Usage.from_bedrock(meta.get("usage")) if isinstance(meta, Mapping) else None


def _invoke_stream_usage(event: Mapping[str, Any], seen: Usage | None) -> Usage | None:
    chunk = event.get("chunk")
    if not isinstance(chunk, Mapping):
        return None
    payload = _json_body(chunk.get("bytes"))
    if not isinstance(payload, dict):
        return None
    metrics = payload.get("amazon-bedrock-invocationMetrics")
    if isinstance(metrics, Mapping):  # Bedrock's own count on the last chunk: authoritative
        return Usage(
            int(metrics.get("inputTokenCount") or 0),
            int(metrics.get("outputTokenCount") or 0),
            int(metrics.get("cacheReadInputTokenCount") or 0),
            int(metrics.get("cacheWriteInputTokenCount") or 0),
        )
    # Anthropic's own events: message_start carries the input, message_delta the cumulative output.
    return Usage.from_anthropic_event(payload, seen)
