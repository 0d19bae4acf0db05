"""Pinned, versioned price table (`killswitch/data/prices.json`) and the cost arithmetic.

Amounts are `Decimal` end to end (DynamoDB numbers), never floats. An unknown model raises `UnknownModel` unless the
caller passes an explicit `ModelPrice`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

from killswitch.guard.errors import UnknownModel

MILLION = Decimal(1_000_000)
# 1e-9 USD resolution: far below a token's price, and DynamoDB numbers keep it exactly.
QUANTUM = Decimal("0.000000001")

# Cross-region inference profile prefixes (us.anthropic..., global.anthropic...) and version/date suffixes.
_PROFILE_PREFIX = re.compile(r"^(us|eu|apac|global|us-gov|jp|au|ca)\.(?=[a-z]+\.)")
_BEDROCK_VERSION = re.compile(r"-v\d+(:\d+)?$")
_DATE_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")
_RESOLVED_MAX = 4096  # distinct model ids remembered per table


def usd(value: float | int | str | Decimal) -> Decimal:
    """A USD amount as a Decimal at the ledger's resolution (rounded up: never under-reserve)."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return d.quantize(QUANTUM, rounding=ROUND_CEILING)


@dataclass(frozen=True)
class ModelPrice:
    """USD per 1M tokens. `cache_read`/`cache_write` default to the input price when a provider has none."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None

    @classmethod
    def of(cls, input: float, output: float, cache_read: float | None = None, cache_write: float | None = None):
        dec = lambda v: None if v is None else Decimal(str(v))  # noqa: E731
        return cls(Decimal(str(input)), Decimal(str(output)), dec(cache_read), dec(cache_write))

    @property
    def read(self) -> Decimal:
        return self.input if self.cache_read is None else self.cache_read

    @property
    def write(self) -> Decimal:
        return self.input if self.cache_write is None else self.cache_write

    @cached_property
    def dearest_input(self) -> Decimal:
        return max(self.input, self.read, self.write)

    def cost(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Decimal:
        if input_tokens < 0 or output_tokens < 0 or cache_read_tokens < 0 or cache_write_tokens < 0:
            raise ValueError("token counts must be >= 0")
        # On every settle: skip the zero terms, and scale by 1e-6 (exact, like the division) instead of dividing.
        total = Decimal(input_tokens) * self.input + Decimal(output_tokens) * self.output
        if cache_read_tokens:
            total += Decimal(cache_read_tokens) * self.read
        if cache_write_tokens:
            total += Decimal(cache_write_tokens) * self.write
        return total.scaleb(-6).quantize(QUANTUM, rounding=ROUND_CEILING)

    def worst_case(self, input_tokens: int, max_output_tokens: int) -> Decimal:
        """Reservation for a call: every input token at the dearest input rate, every allowed output token."""
        if input_tokens < 0 or max_output_tokens < 0:
            raise ValueError("token counts must be >= 0")
        total = Decimal(input_tokens) * self.dearest_input + Decimal(max_output_tokens) * self.output
        return total.scaleb(-6).quantize(QUANTUM, rounding=ROUND_CEILING)


@dataclass(frozen=True)
class PriceTable:
    version: str
    as_of: str
    models: dict[str, ModelPrice]
    aliases: dict[str, str]
    # model id as callers spell it -> its price: resolving runs several regexes, and the Bedrock meter and
    # `run.charge(model, ...)` resolve the same few ids on every call. Successful lookups only, bounded.
    _resolved: dict[str, ModelPrice] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PriceTable:
        models: dict[str, ModelPrice] = {}
        aliases: dict[str, str] = {}
        for name, row in data["models"].items():
            models[name] = ModelPrice.of(row["input"], row["output"], row.get("cache_read"), row.get("cache_write"))
            for alias in row.get("aliases", []):
                aliases[alias] = name
        return cls(version=str(data["version"]), as_of=str(data["as_of"]), models=models, aliases=aliases)

    def resolve(self, model: str) -> str:
        """Canonical table name for a model id (exact, alias, or id minus region prefix / version / date)."""
        candidates = [model]
        if model.startswith("arn:") and "/" in model:
            # foundation-model/<id> and inference-profile/<profile id> ARNs; an application inference profile's
            # random id resolves to nothing (pass a price)
            model = model.rsplit("/", 1)[1]
            candidates.append(model)
        m = _PROFILE_PREFIX.sub("", model)
        candidates.append(m)
        m = _BEDROCK_VERSION.sub("", m)
        candidates.append(m)
        m = _DATE_SUFFIX.sub("", m)
        candidates.append(m)
        if m.startswith("anthropic."):
            candidates.append(m.removeprefix("anthropic."))
        for c in candidates:
            if c in self.models:
                return c
            if c in self.aliases:
                return self.aliases[c]
        raise UnknownModel(model)

    def price(self, model: str) -> ModelPrice:
        cached = self._resolved.get(model)
        if cached is not None:
            return cached
        price = self.models[self.resolve(model)]
        if len(self._resolved) < _RESOLVED_MAX:
            self._resolved[model] = price
        return price

    def __contains__(self, model: object) -> bool:
        if not isinstance(model, str):
            return False
        try:
            self.resolve(model)
        except UnknownModel:
            return False
        return True


@lru_cache(maxsize=1)
def default_prices() -> PriceTable:
    """The table shipped with the package (`killswitch/data/prices.json`)."""
    text = resources.files("killswitch").joinpath("data/prices.json").read_text(encoding="utf-8")
    return PriceTable.from_dict(json.loads(text))
