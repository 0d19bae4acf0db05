"""Typed Lambda environments, one per Lambda, built once per container (`from_env()` names every missing variable).

`KillSwitchEnv` is the kill Lambda's; `SpendRecorderEnv` the spend recorder's (it reads no topic). The stack sets
exactly these variables (`infra/workload_stack.py`); docs/contracts.md lists them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from killswitch.config import KillSwitchConfig
from killswitch.runtime_config import RuntimeConfigMismatch, read_runtime_json

ENV_TABLE = "KILLSWITCH_TABLE"
ENV_EVENTS_TOPIC = "KILLSWITCH_EVENTS_TOPIC_ARN"
ENV_KILL_TOPIC = "KILLSWITCH_KILL_TOPIC_ARN"
# The agent's own guard topic (guard SDK; default: `<prefix>-guard-<agent>` next to the kill topic).
ENV_GUARD_TOPIC = "KILLSWITCH_GUARD_TOPIC_ARN"
# The deployed Lambdas read the config from a file the stack ships in a layer (`/opt/...`): the 4 KB environment
# holds about 14 agents, the file has no practical limit. The JSON variable stays for local runs (CLI, demo, tests).
ENV_CONFIG_FILE = "KILLSWITCH_CONFIG_FILE"
ENV_CONFIG_JSON = "KILLSWITCH_CONFIG_JSON"
ENV_DRY_RUN = "KILLSWITCH_DRY_RUN"
# Role in the management account that the kill Lambda assumes for Organizations calls (SCP attach/detach).
ENV_ORG_ROLE = "KILLSWITCH_ORG_ROLE_ARN"
# Name of the deny SCP the tag-path kill attaches (created by the management stack).
ENV_SCP_POLICY_NAME = "KILLSWITCH_SCP_POLICY_NAME"
# The kill Lambda's dead-letter queue: unreadable alerts are forwarded there (its depth alarm tells ops).
ENV_DLQ_URL = "KILLSWITCH_DLQ_URL"


class ConfigUnreadable(RuntimeError):
    """The config file named by the environment is missing or invalid (a deploy error: raise, keep the event)."""


class MissingEnvironment(RuntimeError):
    def __init__(self, names: list[str]):
        self.names = names
        super().__init__(f"missing environment variable(s): {', '.join(names)}")


def _require_config(env: Mapping[str, str], required: tuple[str, ...]) -> None:
    """`required` plus the config: the file (deployed functions) or the JSON variable (local runs)."""
    missing = [n for n in required if not env.get(n)]
    if not env.get(ENV_CONFIG_FILE) and not env.get(ENV_CONFIG_JSON):
        missing.append(f"{ENV_CONFIG_FILE} (or {ENV_CONFIG_JSON})")
    if missing:
        raise MissingEnvironment(missing)


def _load_config(config_file: str | None, config_json: str | None) -> KillSwitchConfig:
    """The file wins over the JSON variable: a deployed function only has the file."""
    if config_file:
        return read_config_file(config_file)
    assert config_json is not None  # from_env guarantees one of the two
    return KillSwitchConfig.from_json(config_json)


@dataclass(frozen=True)
class SpendRecorderEnv:
    """The spend recorder Lambda: the ledger table and the config, nothing else."""

    table_name: str
    config_json: str | None = field(default=None, repr=False)
    config_file: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpendRecorderEnv:
        env = os.environ if environ is None else environ
        _require_config(env, (ENV_TABLE,))
        return cls(
            table_name=env[ENV_TABLE],
            config_json=env.get(ENV_CONFIG_JSON) or None,
            config_file=env.get(ENV_CONFIG_FILE) or None,
        )

    @cached_property
    def config(self) -> KillSwitchConfig:
        return _load_config(self.config_file, self.config_json)


@dataclass(frozen=True)
class KillSwitchEnv:
    """The kill Lambda."""

    table_name: str
    events_topic_arn: str
    kill_topic_arn: str | None
    config_json: str | None = field(default=None, repr=False)
    config_file: str | None = None
    dry_run: bool = False
    org_role_arn: str | None = None
    scp_policy_name: str | None = None
    dlq_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KillSwitchEnv:
        env = os.environ if environ is None else environ
        _require_config(env, (ENV_TABLE, ENV_EVENTS_TOPIC))
        return cls(
            table_name=env[ENV_TABLE],
            events_topic_arn=env[ENV_EVENTS_TOPIC],
            kill_topic_arn=env.get(ENV_KILL_TOPIC) or None,
            config_json=env.get(ENV_CONFIG_JSON) or None,
            config_file=env.get(ENV_CONFIG_FILE) or None,
            dry_run=env.get(ENV_DRY_RUN, "").lower() in {"1", "true", "yes"},
            org_role_arn=env.get(ENV_ORG_ROLE) or None,
            scp_policy_name=env.get(ENV_SCP_POLICY_NAME) or None,
            dlq_url=env.get(ENV_DLQ_URL) or None,
        )

    @cached_property
    def config(self) -> KillSwitchConfig:
        return _load_config(self.config_file, self.config_json)


def read_config_file(path: str | Path) -> KillSwitchConfig:
    """The validated config JSON the stack bundled (see `infra.constructs.lambda_common.config_layer`), read without
    validating it again (`killswitch.runtime_config`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigUnreadable(f"{ENV_CONFIG_FILE}={path}: cannot read the config file: {exc.strerror}") from exc
    try:
        return read_runtime_json(text)
    except RuntimeConfigMismatch as exc:
        raise ConfigUnreadable(f"{ENV_CONFIG_FILE}={path}: refused: {exc}") from exc
    except ValueError as exc:  # pydantic's ValidationError and json's JSONDecodeError are ValueErrors
        raise ConfigUnreadable(f"{ENV_CONFIG_FILE}={path}: not a valid config: {exc}") from exc
