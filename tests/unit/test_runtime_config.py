"""The Lambdas read the synth-validated config without validating it again (`killswitch.runtime_config`).

`construct_validated` must give exactly what validation gives (same values, same types, same fields set) for every
field of the schema, and a config file that another schema wrote, or that was edited after synth, is refused.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from killswitch import runtime_config, settings
from killswitch.config import KillSwitchConfig, load_config
from tests.conftest import EXAMPLE_CONFIG

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "killswitch.yaml"


def large_config(agents: int = 60) -> KillSwitchConfig:
    """Sets every field of every config model at least once (checked by `test_the_large_config_sets_every_field`)."""
    every = {
        "budget_name": "every-field budget",
        "actions": ["stop_ec2", "deny_iam", "stop_batch"],
        "approval": "manual",
        "sandbox_accounts": ["111122223333", "444455556666"],
        "caps": {
            "per_run_usd": 5,
            "per_day_usd": 50.5,
            "per_workflow_usd": {"deep-research": 60, "triage": 2.5},
            "per_outcome_usd": {"ticket_resolved": 1},
        },
        "models": {"cheap": "anthropic.claude-haiku-4-5", "premium": "anthropic.claude-sonnet-4-5"},
        "loop": {"max_identical_calls": 3, "max_depth": 2, "max_steps_per_run": 50},
        "throttle": {"from_pct": 85, "max_calls_per_minute": 10},
        "escalate": {"tool": "web_search", "after_calls": 3, "over_usd": 2},
        "kill_scope": "agent",
        "max_resources_per_kill": 25,
        "burn_rate": {"window_minutes": 30, "max_pct_of_budget": 40},
    }
    periods = ["DAILY", "MONTHLY", "QUARTERLY", "ANNUALLY"]
    data: dict[str, Any] = {
        "prefix": "ks-big",
        "regions": ["us-east-1", "eu-west-1", "ap-southeast-2"],
        "home_region": "eu-west-1",
        "notify": {"emails": ["finops@example.com", "ops@example.org"]},
        "agents": [
            {
                "name": f"agent-{i}",
                "budget": {
                    "amount_usd": 100 + i,  # an int in the data: validation makes it a float
                    "period": periods[i % 4],
                    "warn_at_pct": 70,
                    "kill_at_pct": 90.5,
                    "forecasted": True,
                    "kill_on_forecast": i % 2 == 0,
                    **({"per_account_usd": 10 + i} if i % 5 == 0 else {}),
                },
                **({**every, "budget_name": f"{every['budget_name']} {i}"} if i % 3 == 0 else {}),
            }
            for i in range(agents)
        ],
        "sandbox": {
            "break_glass_role_arns": ["arn:aws:iam::*:role/BreakGlass"],
            "scp": "scp_policies/deny-agent-compute.json",
            "management_account_id": "999988887777",
            "workload_account_id": "123456789012",
        },
        "max_resources_per_kill": 500,
        "ledger_retention_days": 90,
        "budget_stacks": 3,
        "accounts": {
            "organizational_units": ["ou-ab12-cd34ef56"],
            "account_ids": ["210987654321"],
            "organization_root_id": "r-ab12",
            "hub_account_id": "123456789012",
            "external_id": "ks-hub-external",
            "max_parallel": 8,
            "ops_role_arns": ["arn:aws:iam::123456789012:role/Ops"],
            "management_account_id": "999988887777",
            "org_wide_budgets": False,
            "budget_stacks": 2,
            "organization_id": "o-ab12cd34ef",
        },
        "meter": {
            "log_group_name": "/ks/bedrock",
            "enable_invocation_logging": False,
            "compute": False,
            "tick_minutes": 10,
            "caller_cache_seconds": 60,
        },
    }
    return KillSwitchConfig.model_validate(data)


def typed(value: Any) -> Any:
    """A value with the type of every leaf, so that 500 != 500.0 and "stop_ec2" != Action.STOP_EC2 here."""
    if isinstance(value, BaseModel):
        fields = {name: typed(getattr(value, name)) for name in type(value).model_fields}
        return (type(value).__name__, sorted(value.model_fields_set), fields)
    if isinstance(value, list | tuple):
        return (type(value).__name__, [typed(v) for v in value])
    if isinstance(value, dict):
        return ("dict", {k: typed(v) for k, v in value.items()})
    return (type(value).__name__, value)


def configs() -> dict[str, KillSwitchConfig]:
    return {"shipped": load_config(SHIPPED), "fixture": load_config(EXAMPLE_CONFIG), "large": large_config()}


@pytest.mark.parametrize("name", ["shipped", "fixture", "large"])
def test_construct_gives_what_validation_gives(name: str) -> None:
    cfg = configs()[name]
    data = json.loads(cfg.to_json())  # what synth ships: defaults left out
    built = runtime_config.construct_validated(KillSwitchConfig, data)
    validated = KillSwitchConfig.model_validate(data)
    assert built == validated
    assert typed(built) == typed(validated)
    assert built.to_json() == cfg.to_json()


def test_the_large_config_sets_every_field() -> None:
    """Every field of every config model is set somewhere in `large_config`, so the round trip covers them all."""
    seen: dict[type[BaseModel], set[str]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, BaseModel):
            seen.setdefault(type(value), set()).update(value.model_fields_set)
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(large_config())
    unset = {f"{model.__name__}.{f}" for model, names in seen.items() for f in model.model_fields if f not in names}
    assert not unset
    assert len(seen) >= 13  # every model class of the config is reached


def test_the_runtime_file_reads_back_without_building_schemas(tmp_path: Path) -> None:
    cfg = large_config()
    text = runtime_config.runtime_json(cfg)
    assert runtime_config.read_runtime_json(text) == cfg
    envelope = json.loads(text)
    assert envelope["schema"] == runtime_config.schema_fingerprint() and len(envelope["sha256"]) == 64


def test_enums_and_floats_come_back_typed() -> None:
    cfg = runtime_config.read_runtime_json(runtime_config.runtime_json(large_config()))
    agent = cfg.agents[0]
    assert type(agent.budget.amount_usd) is float and isinstance(agent.actions[0], Enum)
    assert isinstance(agent.approval, Enum) and isinstance(agent.budget.period, Enum)
    assert type(agent.caps.per_workflow_usd["deep-research"]) is float


def test_defaults_are_filled_without_validating_a_model() -> None:
    cfg = runtime_config.construct_validated(
        KillSwitchConfig, {"regions": ["us-east-1"], "agents": [{"name": "a", "budget": {"amount_usd": 1}}]}
    )
    assert cfg.notify.emails == [] and cfg.agents[0].caps.per_day_usd is None
    assert type(cfg.agents[0].budget.amount_usd) is float  # 1 in the data, 1.0 after validation
    assert cfg.agents[0].loop.max_steps_per_run == 200 and cfg.prefix == "killswitch"
    assert cfg.model_fields_set == {"regions", "agents"}


def tampered(text: str, **changes: Any) -> str:
    envelope = json.loads(text)
    envelope.update(changes)
    return json.dumps(envelope)


def test_a_config_edited_after_synth_is_refused() -> None:
    text = runtime_config.runtime_json(large_config())
    config = json.loads(text)["config"]
    config["agents"][0]["budget"]["amount_usd"] = 1_000_000
    with pytest.raises(runtime_config.RuntimeConfigMismatch, match="sha256: the file was changed after synth"):
        runtime_config.read_runtime_json(tampered(text, config=config))


def test_a_config_validated_by_another_schema_is_refused() -> None:
    text = runtime_config.runtime_json(large_config())
    with pytest.raises(runtime_config.RuntimeConfigMismatch, match=r"another version of killswitch/config\.py"):
        runtime_config.read_runtime_json(tampered(text, schema="0" * 64))
    with pytest.raises(runtime_config.RuntimeConfigMismatch, match="envelope version 2"):
        runtime_config.read_runtime_json(tampered(text, killswitch_runtime_config=2))


def test_a_plain_config_json_is_still_validated() -> None:
    cfg = large_config(agents=3)
    assert runtime_config.read_runtime_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="regions"):
        runtime_config.read_runtime_json('{"regions": [], "agents": []}')


def test_the_lambda_environment_names_the_file_it_refuses(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    text = runtime_config.runtime_json(large_config(agents=3))
    path.write_text(tampered(text, schema="f" * 64), encoding="utf-8")
    env = settings.KillSwitchEnv.from_env(
        {
            settings.ENV_TABLE: "t",
            settings.ENV_EVENTS_TOPIC: "arn:aws:sns:us-east-1:111122223333:ks-events",
            settings.ENV_CONFIG_FILE: str(path),
        }
    )
    with pytest.raises(settings.ConfigUnreadable, match=r"config\.json: refused: the config was validated by another"):
        _ = env.config


def test_an_annotation_it_does_not_know_is_an_error_naming_the_field() -> None:
    class Odd(BaseModel):
        value: int | str

    with pytest.raises(TypeError, match=r"Odd\.value: construct_validated reads Optional unions only"):
        runtime_config.construct_validated(Odd, {"value": 1})
