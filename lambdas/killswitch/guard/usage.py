"""Token usage as the providers report it, and the input estimate a reservation is made from.

Shared by the Bedrock meter and the client/framework adapters. Pure functions, no provider imports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from killswitch.guard.call import Call

log = logging.getLogger("killswitch.guard")

# ~3 characters per token is on the dear side of every current tokenizer for English text and code (4 is typical):
# the reservation is a worst case, the settle uses the reported count.
CHARS_PER_TOKEN = 3
# An image or document block counts as this many tokens (Claude caps an image near 1,600 tokens).
BINARY_BLOCK_TOKENS = 1600


@dataclass(frozen=True)
class Usage:
    """Reported usage of one call. `input_tokens` excludes cache reads and writes (they are priced apart)."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @classmethod
    def from_bedrock(cls, usage: Any) -> Usage | None:
        """Converse / ConverseStream `usage` (`inputTokens`, `outputTokens`, `cacheRead/WriteInputTokens`)."""
        if not isinstance(usage, Mapping) or "outputTokens" not in usage:
            return None
        return cls(
            _int(usage.get("inputTokens")),
            _int(usage.get("outputTokens")),
            _int(usage.get("cacheReadInputTokens")),
            _int(usage.get("cacheWriteInputTokens")),
        )

    @classmethod
    def from_anthropic(cls, usage: Any) -> Usage | None:
        """Anthropic Messages `usage` (`input_tokens`, `output_tokens`, `cache_read/creation_input_tokens`)."""
        if not isinstance(usage, Mapping) or "output_tokens" not in usage:
            return None
        return cls(
            _int(usage.get("input_tokens")),
            _int(usage.get("output_tokens")),
            _int(usage.get("cache_read_input_tokens")),
            _int(usage.get("cache_creation_input_tokens")),
        )

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """OpenAI usage: Chat Completions (`prompt_tokens`, `completion_tokens`) or Responses (`input_tokens`,
        `output_tokens`); the cached part of the prompt (`*_tokens_details.cached_tokens`) is priced as cache read."""
        if not isinstance(usage, Mapping):
            return None
        if "completion_tokens" in usage:
            prompt, output = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
            details = usage.get("prompt_tokens_details")
        elif "output_tokens" in usage and "input_tokens" in usage:
            prompt, output = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
            details = usage.get("input_tokens_details")
        else:
            return None
        cached = _int(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
        cached = min(cached, prompt)
        return cls(prompt - cached, output, cached, 0)

    @classmethod
    def from_any(cls, usage: Any) -> Usage | None:
        """Whichever of the shapes above `usage` has (InvokeModel bodies differ per model family)."""
        if not isinstance(usage, Mapping):
            return None
        if "completion_tokens" in usage or "input_tokens_details" in usage:
            return cls.from_openai(usage)
        if "outputTokens" in usage:
            return cls.from_bedrock(usage)
        if "output_tokens" in usage:
            return cls.from_anthropic(usage)
        return None

    @classmethod
    def from_anthropic_event(cls, event: Mapping[str, Any], seen: Usage | None) -> Usage | None:
        """Fold one Anthropic stream event into the usage so far: `message_start` carries the input and cache
        counts, each `message_delta` the cumulative output count."""
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            usage = message.get("usage") if isinstance(message, Mapping) else None
            start = cls.from_anthropic({"output_tokens": 0, **usage}) if isinstance(usage, Mapping) else None
            return start
        if kind == "message_delta":
            usage = event.get("usage")
            if not isinstance(usage, Mapping):
                return None
            base = seen or cls(0, 0)
            return cls(
                _int(usage.get("input_tokens")) or base.input_tokens,
                _int(usage.get("output_tokens")),
                _int(usage.get("cache_read_input_tokens")) or base.cache_read_tokens,
                _int(usage.get("cache_creation_input_tokens")) or base.cache_write_tokens,
            )
        return None


def estimate_tokens(prompt: Any) -> int:
    """A dear estimate of the input tokens of a request's prompt parts (text, JSON structures, binary blocks)."""
    chars, blocks = _size(prompt)
    return -(-chars // CHARS_PER_TOKEN) + blocks * BINARY_BLOCK_TOKENS


def _size(value: Any) -> tuple[int, int]:
    """(characters, binary blocks) of a prompt: every string's length, every mapping key's length, one block per
    bytes value or file-like body, `len(str(x))` for anything else (numbers, framework message objects).

    One pass with an explicit stack (it runs before every metered request): exact `dict`/`list`/`str` types first,
    the abstract types only for what is left.
    """
    chars = blocks = 0
    stack = [value]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        v = pop()
        t = type(v)
        if t is str:
            chars += len(v)
        elif t is dict or (t is not list and t is not tuple and isinstance(v, Mapping)):
            for key, item in v.items():
                chars += len(key) if type(key) is str else len(str(key))
                push(item)
        elif t is list or t is tuple or isinstance(v, list | tuple):
            extend(v)
        elif v is None:
            continue
        elif isinstance(v, str):
            chars += len(v)
        elif isinstance(v, bytes | bytearray) or hasattr(v, "read"):
            blocks += 1  # a binary block, or a file-like body (never consume the caller's stream)
        else:
            chars += len(str(v))
    return chars, blocks


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def count_of(value: Any) -> int:
    """A reported token count: a positive number as an int, anything else 0."""
    return value if type(value) is int and value > 0 else _int(value)


def settle_from_usage(call: Call, usage: Usage | None) -> None:
    """Settle `call` from the reported usage, or at its estimate when none was reported (never under-count)."""
    if usage is None:
        log.warning("no usage reported for charge %s (%s); settled at the estimate", call.charge_id, call.name)
        call.settle_tokens(usd_amount=call.estimate, output_tokens=call.max_output_tokens)
        return
    call.settle_tokens(
        usage.output_tokens,
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
