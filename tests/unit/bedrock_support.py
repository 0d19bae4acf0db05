"""A mocked HTTP layer for bedrock-runtime clients: real botocore serialisation, parsing, errors and event streams.

`FakeBedrock(client)` answers each request (through botocore's `before-send` hook) with the next queued response
and records the requests that left the client. Nothing touches the network.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

from botocore.awsrequest import AWSResponse
from urllib3 import HTTPResponse


def event_message(event_type: str, payload: dict[str, Any], *, message_type: str = "event") -> bytes:
    """One message in the AWS event stream binary format (prelude, string headers, payload, CRCs)."""
    type_header = ":exception-type" if message_type == "exception" else ":event-type"
    headers = b""
    for name, value in (
        (":message-type", message_type),
        (type_header, event_type),
        (":content-type", "application/json"),
    ):
        n, v = name.encode(), value.encode()
        headers += bytes([len(n)]) + n + b"\x07" + len(v).to_bytes(2, "big") + v
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = total.to_bytes(4, "big") + len(headers).to_bytes(4, "big")
    message = prelude + (binascii.crc32(prelude) & 0xFFFFFFFF).to_bytes(4, "big") + headers + body
    return message + (binascii.crc32(message) & 0xFFFFFFFF).to_bytes(4, "big")


def chunk(payload: dict[str, Any]) -> bytes:
    """An InvokeModelWithResponseStream `chunk` event carrying a model's JSON event."""
    return event_message("chunk", {"bytes": base64.b64encode(json.dumps(payload).encode()).decode()})


class FakeBedrock:
    def __init__(self, client: Any) -> None:
        self.sent: list[Any] = []
        self.responses: list[tuple[int, dict[str, str], bytes]] = []
        client.meta.events.register("before-send.bedrock-runtime", self._send, unique_id="fake-bedrock")

    def reply(self, body: dict[str, Any] | bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs = {"content-type": "application/json", **(headers or {})}
        self.responses.append((status, hdrs, data))

    def reply_stream(self, *messages: bytes) -> None:
        self.responses.append((200, {"content-type": "application/vnd.amazon.eventstream"}, b"".join(messages)))

    def reply_error(self, code: str, message: str, status: int = 400) -> None:
        self.reply({"message": message}, status, {"x-amzn-errortype": code})

    def _send(self, request: Any, **_: Any) -> AWSResponse:
        self.sent.append(request)
        status, headers, data = self.responses.pop(0)
        raw = HTTPResponse(body=io.BytesIO(data), status=status, headers=headers, preload_content=False)
        return AWSResponse(request.url, status, headers, raw)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.sent[index].body)
