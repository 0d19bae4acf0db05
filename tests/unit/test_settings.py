"""The Lambdas' typed environment: where the config comes from, and what a missing or broken source says."""

from __future__ import annotations

from pathlib import Path

import pytest

from killswitch import settings
from killswitch.config import KillSwitchConfig

CONFIG = KillSwitchConfig.model_validate(
    {"regions": ["us-east-1"], "agents": [{"name": f"a{i}", "budget": {"amount_usd": 1 + i}} for i in range(3)]}
)
BASE = {settings.ENV_TABLE: "t", settings.ENV_EVENTS_TOPIC: "arn:aws:sns:us-east-1:111122223333:ks-events"}


def test_config_is_read_from_the_file_the_stack_ships(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(CONFIG.to_json(), encoding="utf-8")
    env = settings.KillSwitchEnv.from_env({**BASE, settings.ENV_CONFIG_FILE: str(path)})
    assert env.config == CONFIG and env.config_json is None


def test_the_json_variable_still_works_for_local_runs() -> None:
    env = settings.KillSwitchEnv.from_env({**BASE, settings.ENV_CONFIG_JSON: CONFIG.to_json()})
    assert env.config == CONFIG


def test_no_config_source_names_both_variables() -> None:
    with pytest.raises(settings.MissingEnvironment) as info:
        settings.KillSwitchEnv.from_env({settings.ENV_TABLE: "t"})
    assert info.value.names == [settings.ENV_EVENTS_TOPIC, "KILLSWITCH_CONFIG_FILE (or KILLSWITCH_CONFIG_JSON)"]


def test_a_missing_or_invalid_config_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    env = settings.KillSwitchEnv.from_env({**BASE, settings.ENV_CONFIG_FILE: str(missing)})
    with pytest.raises(settings.ConfigUnreadable, match=r"KILLSWITCH_CONFIG_FILE=.*nope\.json: cannot read"):
        _ = env.config
    broken = tmp_path / "broken.json"
    broken.write_text('{"regions": []}', encoding="utf-8")
    env = settings.KillSwitchEnv.from_env({**BASE, settings.ENV_CONFIG_FILE: str(broken)})
    with pytest.raises(settings.ConfigUnreadable, match=r"broken\.json: not a valid config"):
        _ = env.config
