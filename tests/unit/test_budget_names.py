"""Budget names: hashed over the create-only values, mapped back to agents, unambiguous by validation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from killswitch.budget_names import agent_for_budget, budget_spec, notification_specs
from killswitch.config import KillSwitchConfig


def _config(*agents: dict[str, Any], **top: Any) -> KillSwitchConfig:
    return KillSwitchConfig.model_validate({"prefix": "ks", "regions": ["us-east-1"], "agents": list(agents), **top})


BOT = {"name": "bot", "budget": {"amount_usd": 10}}
CRAWLER = {"name": "crawler", "budget_name": "Crawler Budget", "budget": {"amount_usd": 10, "forecasted": True}}


def _name(config: KillSwitchConfig, agent: str, placement: str = "ks-budgets-0") -> str:
    return budget_spec(
        config,
        config.agent(agent),
        sns_subscriber="sns:us-east-1:ks-kill",
        emails=config.notify.emails,
        placement=placement,
    ).name


def test_plain_and_hashed_names_of_any_generation_map_to_the_agent() -> None:
    config = _config(BOT, CRAWLER)
    bot, crawler = config.agents
    assert agent_for_budget(config, "ks-bot") is bot
    assert agent_for_budget(config, _name(config, "bot")) is bot
    assert agent_for_budget(config, "ks-bot-0123abcd") is bot  # an older generation's hash
    assert agent_for_budget(config, "Crawler Budget-ffffffff") is crawler
    assert config.agent_for_budget("Crawler Budget") is crawler  # the method the alert parser calls
    for unknown in ("ks-bot-0123abcg", "ks-bot-0123abc", "ks-bot-0123abcd-0123abcd", "ks-nobody-0123abcd", "bot"):
        assert agent_for_budget(config, unknown) is None, unknown


def test_the_hash_covers_notifications_subscribers_and_placement_only() -> None:
    config = _config(BOT)
    base = _name(config, "bot")
    assert base.startswith("ks-bot-")
    assert _name(_config({**BOT, "budget": {"amount_usd": 99, "period": "DAILY"}}), "bot") == base
    assert _name(_config({**BOT, "budget": {"amount_usd": 10, "warn_at_pct": 50}}), "bot") != base
    assert _name(_config(BOT, notify={"emails": ["a@example.com"]}), "bot") != base
    assert _name(config, "bot", placement="ks-budgets-1") != base
    assert [(n.kind, n.threshold_pct) for n in notification_specs(config.agents[0])] == [
        ("ACTUAL", 80),
        ("ACTUAL", 100),
    ]


def test_a_budget_name_that_reads_as_another_one_plus_a_hash_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        _config(BOT, {"name": "other", "budget_name": "ks-bot-deadbeef", "budget": {"amount_usd": 1}})
    assert "reads as agents[0]'s budget name plus a hash suffix" in str(info.value)


def test_names_equal_after_the_cut_to_100_characters_are_refused() -> None:
    long = "n" * 95
    with pytest.raises(ValidationError, match="is already used by agents\\[0\\]"):
        _config(
            {"name": "a", "budget_name": long + "A", "budget": {"amount_usd": 1}},
            {"name": "b", "budget_name": long + "B", "budget": {"amount_usd": 1}},
        )
