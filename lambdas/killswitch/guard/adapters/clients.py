"""`run.wrap(client)`: Anthropic and OpenAI SDK clients (sync and async) whose model calls are charged to a run.

The wrapped client is a copy of the caller's (`client.with_options(...)`) with two hooks:

- its `request()` (every API call of both SDKs goes through it) reserves a model call's worst case from the request
  body (`model`, an input estimate, `max_tokens` / `max_completion_tokens` / `max_output_tokens`) before anything is
  sent: `BudgetExceeded` / `UnknownModel` reach the caller as they are (no retry, no request); if the SDK finally
  raises (an API error after its retries, a connection failure), the reservation is released;
- a metering HTTP transport around the client's own transport (same pool, proxies, mocks) reads the successful
  response body as the SDK reads it and settles the charge from its `usage` (JSON) or the stream's usage events
  (Anthropic `message_start`/`message_delta`, OpenAI's last chunk with `stream_options={"include_usage": True}`,
  Responses `response.completed`) when the body is closed. No usage (an OpenAI chat stream without
  `include_usage`, an unknown content encoding): settled at the estimate, never under-counted.

Model calls: `POST .../messages`, `.../chat/completions`, `.../responses`; everything else passes through.
This module imports `httpx2` (the SDKs' HTTP library); it is loaded only by `run.wrap`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx2

from killswitch.guard.usage import Usage, estimate_tokens, settle_from_usage

if TYPE_CHECKING:
    from killswitch.guard.call import Call
    from killswitch.guard.run import Run

log = logging.getLogger("killswitch.guard")

_MODEL_PATHS = ("/messages", "/chat/completions", "/responses")
_PROMPT_FIELDS = ("system", "messages", "tools", "input", "instructions", "functions", "tool_choice")
_MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
# The charge of the API call in progress in this thread / task, from `request()` down to the transport.
_CURRENT: contextvars.ContextVar[Call | None] = contextvars.ContextVar("killswitch_guard_call", default=None)


def wrap_client(run: Run, client: Any, *, default_max_tokens: int = 4096) -> Any:
    """A copy of `client` (anthropic.Anthropic/AsyncAnthropic, openai.OpenAI/AsyncOpenAI, or the variants built on
    the same base client) whose model calls are charged to `run`."""
    http = getattr(client, "_client", None)
    if not isinstance(http, httpx2.Client | httpx2.AsyncClient) or not callable(getattr(client, "request", None)):
        raise TypeError(
            f"run.wrap() takes an Anthropic or OpenAI SDK client, not {type(client).__module__}.{type(client).__name__}"
        )
    meter = _Meter(run, default_max_tokens)
    inner = http._transport  # the SDK client's own transport: its pool, proxies and mocks stay in use
    common: dict[str, Any] = {"timeout": http.timeout, "follow_redirects": http.follow_redirects}
    if isinstance(http, httpx2.AsyncClient):
        metered: Any = httpx2.AsyncClient(transport=_AsyncTransport(meter, inner), **common)
    else:
        metered = httpx2.Client(transport=_SyncTransport(meter, inner), **common)
    return _install(client.with_options(http_client=metered), meter)


def _install(client: Any, meter: _Meter) -> Any:
    """Hook the copy's `request()` (instance attribute over the class method) and keep its own copies metered."""
    original = client.request
    copy = client.copy
    if isinstance(client._client, httpx2.AsyncClient):

        async def request_async(cast_to: Any, options: Any, **kwargs: Any) -> Any:
            call = meter.reserve(options)
            if call is None:
                return await original(cast_to, options, **kwargs)
            token = _CURRENT.set(call)
            try:
                return await original(cast_to, options, **kwargs)
            except BaseException:
                call.release()  # a no-op once the response settled it
                raise
            finally:
                _CURRENT.reset(token)

        client.request = request_async
    else:

        def request(cast_to: Any, options: Any, **kwargs: Any) -> Any:
            call = meter.reserve(options)
            if call is None:
                return original(cast_to, options, **kwargs)
            token = _CURRENT.set(call)
            try:
                return original(cast_to, options, **kwargs)
            except BaseException:
                call.release()
                raise
            finally:
                _CURRENT.reset(token)

        client.request = request
    client.copy = client.with_options = lambda **kwargs: _install(copy(**kwargs), meter)
    return client


class _Meter:
    """Reserve from a request's options; settle from the bytes of its response."""

    def __init__(self, run: Run, default_max_tokens: int):
        self.run = run
        self.default_max_tokens = default_max_tokens

    def reserve(self, options: Any) -> Call | None:
        body = getattr(options, "json_data", None)
        url = str(getattr(options, "url", ""))
        if str(getattr(options, "method", "")).lower() != "post" or not url.endswith(_MODEL_PATHS):
            return None
        if not isinstance(body, dict) or not body.get("model"):
            return None
        max_tokens = next((body[f] for f in _MAX_TOKENS_FIELDS if isinstance(body.get(f), int)), None)
        input_tokens = estimate_tokens([body.get(f) for f in _PROMPT_FIELDS])
        return self.run.charge(str(body["model"]), input_tokens, max_tokens or self.default_max_tokens)

    def settle(self, call: Call, reader: _UsageReader) -> None:
        settle_from_usage(call, reader.usage())


class _UsageReader:
    """Reads usage out of a response body fed chunk by chunk: one JSON document or a server-sent event stream."""

    def __init__(self, headers: Any, *, decoded: bool = False):
        self.sse = "text/event-stream" in headers.get("content-type", "")
        encoding = "" if decoded else headers.get("content-encoding", "").lower()
        self.broken = encoding not in ("", "identity", "gzip", "deflate")  # e.g. br/zstd: settle at the estimate
        self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding in ("gzip", "deflate") else None
        self._buffer = b""
        self._usage: Usage | None = None

    def feed(self, chunk: bytes) -> None:
        if self.broken:
            return
        try:
            data = self._decoder.decompress(chunk) if self._decoder is not None else chunk
        except zlib.error:
            self.broken = True
            return
        self._buffer += data
        if self.sse:
            *events, self._buffer = self._buffer.replace(b"\r\n", b"\n").split(b"\n\n")
            for event in events:
                self._event(event)

    def usage(self) -> Usage | None:
        if self.broken:
            return None
        if self.sse:
            if self._buffer.strip():
                self._event(self._buffer)
                self._buffer = b""
            return self._usage
        try:
            body = json.loads(self._buffer)
        except ValueError:
            return None
        return _usage_of(body, None) if isinstance(body, dict) else None

    def _event(self, raw: bytes) -> None:
        lines = [line[5:].strip() for line in raw.split(b"\n") if line.startswith(b"data:")]
        if not lines or lines == [b"[DONE]"]:
            return
        try:
            data = json.loads(b"\n".join(lines))
        except ValueError:
            return
        if isinstance(data, dict):
            self._usage = _usage_of(data, self._usage) or self._usage


def _usage_of(data: dict[str, Any], seen: Usage | None) -> Usage | None:
    """Usage from a response body or one stream event of either provider."""
    if data.get("type") in ("message_start", "message_delta"):  # Anthropic stream
        return Usage.from_anthropic_event(data, seen)
    response = data.get("response")
    if isinstance(response, dict) and data.get("type", "").startswith("response."):  # OpenAI Responses stream
        return Usage.from_openai(response.get("usage"))
    return Usage.from_any(data.get("usage"))


# -- transports -----------------------------------------------------------------------------------------------
class _SyncTransport(httpx2.BaseTransport):
    def __init__(self, meter: _Meter, inner: Any):
        self.meter = meter
        self.inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self.inner.handle_request(request)
        call = _CURRENT.get()
        if call is not None and response.status_code < 400:  # an error: the SDK retries or raises (-> released)
            settle = self.meter.settle
            done: Callable[[_UsageReader], None] = lambda reader: settle(call, reader)  # noqa: E731
            if response.is_closed:  # already read in full (a response built from its content): settle now
                _settle_read(response, done)
            else:
                response.stream = _SyncBody(response.stream, _UsageReader(response.headers), done)
        return response

    def close(self) -> None:
        self.inner.close()


class _AsyncTransport(httpx2.AsyncBaseTransport):
    def __init__(self, meter: _Meter, inner: Any):
        self.meter = meter
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        call = _CURRENT.get()
        if call is not None and response.status_code < 400:
            settle = self.meter.settle
            done: Callable[[_UsageReader], None] = lambda reader: settle(call, reader)  # noqa: E731
            if response.is_closed:  # already read in full (a response built from its content): settle now
                _settle_read(response, done)
            else:
                response.stream = _AsyncBody(response.stream, _UsageReader(response.headers), done)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class _SyncBody(httpx2.SyncByteStream):
    """The response byte stream, read through; settles once, when closed (httpx closes it after the last byte)."""

    def __init__(self, inner: Any, reader: _UsageReader, done: Callable[[_UsageReader], None]):
        self._inner = inner
        self._reader = reader
        self._done: Callable[[_UsageReader], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._reader.feed(chunk)
            yield chunk

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            _finish(self)


class _AsyncBody(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, reader: _UsageReader, done: Callable[[_UsageReader], None]):
        self._inner = inner
        self._reader = reader
        self._done: Callable[[_UsageReader], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._reader.feed(chunk)
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            _finish(self)


def _settle_read(response: httpx2.Response, done: Callable[[_UsageReader], None]) -> None:
    reader = _UsageReader(response.headers, decoded=True)
    reader.feed(response.content)
    try:
        done(reader)
    except Exception:
        log.exception("settling a wrapped client's charge failed")


def _finish(body: _SyncBody | _AsyncBody) -> None:
    done, body._done = body._done, None
    if done is None:
        return
    try:
        done(body._reader)
    except Exception:
        log.exception("settling a wrapped client's charge failed")
