"""Typed Lambda environments, one per Lambda, built once per container (`from_env()` names every missing variable).

`KillSwitchEnv` is the kill Lambda's; `SpendRecorderEnv` the spend recorder's (it reads no topic). The stack sets
exactly these variables (`infra/workload_stack.py`); docs/contracts.md lists them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from killswitch.config import KillSwitchConfig

ENV_TABLE = "KILLSWITCH_TABLE"
ENV_EVENTS_TOPIC = "KILLSWITCH_EVENTS_TOPIC_ARN"
ENV_KILL_TOPIC = "KILLSWITCH_KILL_TOPIC_ARN"
# The agent's own guard topic (guard SDK; default: `<prefix>-guard-<agent>` next to the kill topic).
ENV_GUARD_TOPIC = "KILLSWITCH_GUARD_TOPIC_ARN"
ENV_CONFIG_JSON = "KILLSWITCH_CONFIG_JSON"
ENV_DRY_RUN = "KILLSWITCH_DRY_RUN"
# Role in the management account that the kill Lambda assumes for Organizations calls (SCP attach/detach).
ENV_ORG_ROLE = "KILLSWITCH_ORG_ROLE_ARN"
# Name of the deny SCP the tag-path kill attaches (created by the management stack).
ENV_SCP_POLICY_NAME = "KILLSWITCH_SCP_POLICY_NAME"
# The kill Lambda's dead-letter queue: unreadable alerts are forwarded there (its depth alarm tells ops).
ENV_DLQ_URL = "KILLSWITCH_DLQ_URL"


class MissingEnvironment(RuntimeError):
    def __init__(self, names: list[str]):
        self.names = names
        super().__init__(f"missing environment variable(s): {', '.join(names)}")


def _missing(env: Mapping[str, str], required: tuple[str, ...]) -> None:
    missing = [n for n in required if not env.get(n)]
    if missing:
        raise MissingEnvironment(missing)


@dataclass(frozen=True)
class SpendRecorderEnv:
    """The spend recorder Lambda: the ledger table and the config, nothing else."""

    table_name: str
    config_json: str = field(repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpendRecorderEnv:
        env = os.environ if environ is None else environ
        _missing(env, (ENV_TABLE, ENV_CONFIG_JSON))
        return cls(table_name=env[ENV_TABLE], config_json=env[ENV_CONFIG_JSON])

    @cached_property
    def config(self) -> KillSwitchConfig:
        return KillSwitchConfig.from_json(self.config_json)


@dataclass(frozen=True)
class KillSwitchEnv:
    """The kill Lambda."""

    table_name: str
    events_topic_arn: str
    kill_topic_arn: str | None
    config_json: str = field(repr=False)
    dry_run: bool = False
    org_role_arn: str | None = None
    scp_policy_name: str | None = None
    dlq_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KillSwitchEnv:
        env = os.environ if environ is None else environ
        _missing(env, (ENV_TABLE, ENV_EVENTS_TOPIC, ENV_CONFIG_JSON))
        return cls(
            table_name=env[ENV_TABLE],
            events_topic_arn=env[ENV_EVENTS_TOPIC],
            kill_topic_arn=env.get(ENV_KILL_TOPIC) or None,
            config_json=env[ENV_CONFIG_JSON],
            dry_run=env.get(ENV_DRY_RUN, "").lower() in {"1", "true", "yes"},
            org_role_arn=env.get(ENV_ORG_ROLE) or None,
            scp_policy_name=env.get(ENV_SCP_POLICY_NAME) or None,
            dlq_url=env.get(ENV_DLQ_URL) or None,
        )

    @cached_property
    def config(self) -> KillSwitchConfig:
        return KillSwitchConfig.from_json(self.config_json)
