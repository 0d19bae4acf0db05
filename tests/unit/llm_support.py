"""Offline LLM provider responses for the guard adapters: an httpx2 MockTransport server and canned bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2

HAIKU = "claude-haiku-4-5"  # $1 in / $0.10 cache read / $5 out per 1M tokens


def sse(*events: dict[str, Any], done: bool = False, named: bool = True) -> bytes:
    parts = [(f"event: {e['type']}\n" if named else "") + f"data: {json.dumps(e)}\n\n" for e in events]
    return ("".join(parts) + ("data: [DONE]\n\n" if done else "")).encode()


class Chunked(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A body that arrives in pieces, as from a real connection (a plain `content=` body is read in advance)."""

    def __init__(self, data: bytes, size: int = 64) -> None:
        self.parts = [data[i : i + size] for i in range(0, len(data), size)]

    def __iter__(self) -> Iterator[bytes]:
        yield from self.parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


class Server:
    """Queued responses through httpx2.MockTransport; records the requests that left the client."""

    def __init__(self) -> None:
        self.sent: list[httpx2.Request] = []
        self.replies: list[httpx2.Response] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.sent.append(request)
        return self.replies.pop(0)

    def json(self, body: dict[str, Any], status: int = 200) -> None:
        self.replies.append(httpx2.Response(status, json=body))

    def stream(self, data: bytes) -> None:
        self.replies.append(httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Chunked(data)))

    def chunked_json(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.replies.append(httpx2.Response(200, headers={"content-type": "application/json"}, stream=Chunked(data)))


MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": HAIKU,
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 1000},
}
ANTHROPIC_STREAM = sse(
    {
        "type": "message_start",
        "message": {**MESSAGE, "content": [], "usage": {"input_tokens": 100, "output_tokens": 1}},
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 20},
    },
    {"type": "message_stop"},
)
RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "status": "completed",
    "model": "gpt-4.1-mini",
    "output": [
        {
            "type": "message",
            "id": "m1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hi", "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {
        "input_tokens": 200,
        "output_tokens": 30,
        "total_tokens": 230,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    },
}
