"""`run.wrap(client)`: the real Anthropic and OpenAI SDK clients over a mocked HTTP transport (no network)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from killswitch.guard import BudgetExceeded, Caps, ChargeRecord, Guard, InMemoryLedger
from tests.unit.llm_support import ANTHROPIC_STREAM, MESSAGE, RESPONSE, Server, sse

HAIKU = "claude-haiku-4-5"  # $1 in / $0.10 cache read / $5 out per 1M tokens
MINI = "gpt-4o-mini"  # $0.15 in / $0.60 out
Handler = Callable[[httpx2.Request], httpx2.Response]


def setup(caps: Caps | None = None) -> tuple[Guard, Any, Server, list[ChargeRecord]]:
    records: list[ChargeRecord] = []
    guard = Guard("support-bot", caps or Caps(per_run_usd=1.0), InMemoryLedger(), spend_sink=records.append)
    return guard, guard.start_run(run_id="run-1"), Server(), records


def anthropic_client(server: Server) -> anthropic.Anthropic:
    http = httpx2.Client(transport=httpx2.MockTransport(server))
    return anthropic.Anthropic(api_key="test", http_client=http, max_retries=0)


def openai_client(server: Server) -> openai.OpenAI:
    http = httpx2.Client(transport=httpx2.MockTransport(server))
    return openai.OpenAI(api_key="test", http_client=http, max_retries=0)


def reserved(guard: Guard) -> Any:
    return guard.ledger.usage("support-bot", "agent", guard.period_key()).reserved


USER = [{"role": "user", "content": "triage this ticket"}]


def test_anthropic_call_is_charged_from_usage() -> None:
    guard, run, server, records = setup()
    server.chunked_json(MESSAGE)  # read from the connection piece by piece, as the SDK does
    client = run.wrap(anthropic_client(server))
    reply = client.messages.create(model=HAIKU, max_tokens=500, messages=USER)
    assert reply.content[0].text == "hi"
    assert run.spent_usd == pytest.approx((100 * 1 + 1000 * 0.1 + 20 * 5) / 1e6)
    assert records[0].name == HAIKU and records[0].estimated_usd >= 500 * 5 / 1e6 and reserved(guard) == 0
    assert json.loads(server.sent[0].content)["max_tokens"] == 500  # the request went out as the caller wrote it


def test_anthropic_refused_before_the_request_when_the_cap_would_be_crossed() -> None:
    guard, run, server, records = setup(Caps(per_run_usd=0.001))
    client = run.wrap(anthropic_client(server))
    with pytest.raises(BudgetExceeded):
        client.messages.create(model=HAIKU, max_tokens=500, messages=USER)  # $0.0025 worst case
    assert server.sent == [] and records == [] and reserved(guard) == 0


@pytest.mark.parametrize("style", ["create", "helper"])
def test_anthropic_stream_settles_from_the_stream_usage(style: str) -> None:
    guard, run, server, records = setup()
    server.stream(ANTHROPIC_STREAM)
    client = run.wrap(anthropic_client(server))
    if style == "create":
        text = "".join(
            e.delta.text
            for e in client.messages.create(model=HAIKU, max_tokens=500, messages=USER, stream=True)
            if e.type == "content_block_delta"
        )
    else:
        with client.messages.stream(model=HAIKU, max_tokens=500, messages=USER) as stream:
            text = "".join(stream.text_stream)
    assert text == "hi"
    assert run.spent_usd == pytest.approx((100 + 20 * 5) / 1e6)
    assert records[0].output_tokens == 20 and reserved(guard) == 0


def test_an_error_response_releases_and_the_caller_sees_the_api_error() -> None:
    guard, run, server, records = setup()
    server.json({"type": "error", "error": {"type": "invalid_request_error", "message": "bad model"}}, status=400)
    client = run.wrap(anthropic_client(server))
    with pytest.raises(anthropic.BadRequestError, match="bad model"):
        client.messages.create(model=HAIKU, max_tokens=500, messages=USER)
    assert len(server.sent) == 1 and records == [] and reserved(guard) == 0 and run.spent_usd == 0


def test_other_endpoints_pass_through_uncharged() -> None:
    _, run, server, records = setup()
    server.json({"input_tokens": 12})
    client = run.wrap(anthropic_client(server))
    assert client.messages.count_tokens(model=HAIKU, messages=USER).input_tokens == 12
    assert records == []


def test_openai_chat_completion_is_charged_with_cached_tokens_apart() -> None:
    guard, run, server, records = setup()
    server.json(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": MINI,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 1000,
                "completion_tokens": 100,
                "total_tokens": 1100,
                "prompt_tokens_details": {"cached_tokens": 400},
            },
        }
    )
    client = run.wrap(openai_client(server))
    reply = client.chat.completions.create(model=MINI, messages=USER, max_completion_tokens=300)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "hi"
    assert records[0].input_tokens == 600 and records[0].cache_read_tokens == 400 and records[0].output_tokens == 100
    assert run.spent_usd == pytest.approx((600 * 0.15 + 400 * 0.075 + 100 * 0.6) / 1e6)  # cached at the cache price
    assert reserved(guard) == 0


def _chunk(**extra: Any) -> dict[str, Any]:
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": MINI, "choices": []}
    return {**base, **extra}


def test_openai_chat_stream_settles_from_the_final_usage_chunk() -> None:
    _, run, server, records = setup()
    delta = {"index": 0, "delta": {"content": "hi"}, "finish_reason": None}
    usage = {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}
    server.stream(sse(_chunk(choices=[delta]), _chunk(usage=usage), done=True, named=False))
    client = run.wrap(openai_client(server))
    chunks = client.chat.completions.create(
        model=MINI,
        messages=USER,  # type: ignore[arg-type]
        max_tokens=200,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hi"
    assert records[0].output_tokens == 10 and run.spent_usd == pytest.approx((50 * 0.15 + 10 * 0.6) / 1e6)


def test_openai_chat_stream_without_usage_settles_at_the_estimate() -> None:
    _, run, server, records = setup()
    delta = {"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}
    server.stream(sse(_chunk(choices=[delta]), done=True, named=False))
    client = run.wrap(openai_client(server))
    list(client.chat.completions.create(model=MINI, messages=USER, max_tokens=200, stream=True))  # type: ignore[arg-type]
    assert records[0].amount_usd == records[0].estimated_usd > 0


def test_openai_responses_api_and_its_stream() -> None:
    _, run, server, records = setup()
    server.json(RESPONSE)
    server.stream(
        sse(
            {"type": "response.created", "sequence_number": 0, "response": {**RESPONSE, "usage": None}},
            {"type": "response.completed", "sequence_number": 1, "response": RESPONSE},
        )
    )
    client = run.wrap(openai_client(server))
    assert client.responses.create(model="gpt-4.1-mini", input="hello", max_output_tokens=100).output_text == "hi"
    events = list(client.responses.create(model="gpt-4.1-mini", input="hello", max_output_tokens=100, stream=True))
    assert events[-1].type == "response.completed"
    assert [r.output_tokens for r in records] == [30, 30]
    assert run.spent_usd == pytest.approx(2 * (200 * 0.4 + 30 * 1.6) / 1e6)


def test_async_clients_are_charged_and_refused_the_same_way() -> None:
    guard, run, server, records = setup(Caps(per_run_usd=0.004))

    async def main() -> None:
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(server))
        client = run.wrap(anthropic.AsyncAnthropic(api_key="test", http_client=http, max_retries=0))
        server.stream(ANTHROPIC_STREAM)
        stream = await client.messages.create(model=HAIKU, max_tokens=500, messages=USER, stream=True)
        async for _ in stream:
            pass
        with pytest.raises(BudgetExceeded):
            await client.messages.create(model=HAIKU, max_tokens=800, messages=USER)  # $0.0040 + input > the rest

    asyncio.run(main())
    assert len(server.sent) == 1 and records[0].output_tokens == 20 and reserved(guard) == 0


def test_wrap_refuses_what_it_cannot_meter() -> None:
    _, run, _, _ = setup()
    with pytest.raises(TypeError, match="Anthropic or OpenAI SDK client"):
        run.wrap(object())
