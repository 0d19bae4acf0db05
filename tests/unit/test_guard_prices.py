"""The pinned price table and cost arithmetic."""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources

import pytest

from killswitch.guard import Caps, Guard, InMemoryLedger, ModelPrice, UnknownModel, default_prices

D = Decimal


def test_table_is_versioned_dated_and_says_it_holds_list_prices() -> None:
    raw = json.loads(resources.files("killswitch").joinpath("data/prices.json").read_text())
    assert raw["version"] and raw["as_of"] and raw["sources"]
    assert "LIST PRICES" in raw["notice"] and "review" in raw["notice"]
    for name, row in raw["models"].items():
        assert set(row) >= {"input", "output", "cache_read", "cache_write"}, name
        assert row["output"] >= row["input"] > 0 and row["cache_read"] <= row["input"], name


@pytest.mark.parametrize(
    ("model", "canonical"),
    [
        ("anthropic.claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("anthropic.claude-haiku-4-5", "claude-haiku-4-5"),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-nano", "gpt-4.1-nano"),
        ("amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
        ("us.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
    ],
)
def test_model_ids_resolve(model: str, canonical: str) -> None:
    assert default_prices().resolve(model) == canonical
    assert model in default_prices()


def test_unknown_model_is_refused() -> None:
    with pytest.raises(UnknownModel, match="mystery-model"):
        default_prices().price("mystery-model-9")
    assert "mystery-model-9" not in default_prices()


def test_costs_per_million_tokens() -> None:
    sonnet = default_prices().price("anthropic.claude-sonnet-4-5")
    assert sonnet.cost(1_000_000, 0) == D(3)
    assert sonnet.cost(0, 1_000_000) == D(15)
    assert sonnet.cost(1200, 640) == D("0.0132")  # 1200*3/1e6 + 640*15/1e6
    assert sonnet.cost(0, 0, cache_read_tokens=1_000_000, cache_write_tokens=1_000_000) == D("4.05")
    # The reservation is the worst case: every input token at the dearest input rate (a cache write here).
    assert sonnet.worst_case(1200, 800) == D("0.0165")  # 1200*3.75/1e6 + 800*15/1e6
    with pytest.raises(ValueError):
        sonnet.cost(-1, 0)


def test_unknown_model_needs_an_explicit_price_and_charges_nothing_without_one() -> None:
    ledger = InMemoryLedger()
    guard = Guard("a", Caps(per_day_usd=1.0), ledger)
    with guard.run() as run:
        with pytest.raises(UnknownModel):
            run.charge("in-house-llm", 1000, 1000)
        assert guard.spent_usd() == 0 and ledger.all_usages("a") == {}
        with run.charge("in-house-llm", 1000, 1000, price=ModelPrice.of(1, 2)) as call:
            assert call.estimate == D("0.003")
            call.settle(output_tokens=500)
    assert guard.spent_usd() == pytest.approx(0.002)


def test_bedrock_arns_resolve_by_their_model_or_profile_id() -> None:
    prices = default_prices()
    foundation = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0"
    profile = (
        "arn:aws:bedrock:us-east-1:111122223333:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0"
    )
    assert prices.resolve(foundation) == "claude-haiku-4-5"
    assert prices.resolve(profile) == "claude-sonnet-4-5"
    with pytest.raises(UnknownModel):
        prices.resolve("arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6")
