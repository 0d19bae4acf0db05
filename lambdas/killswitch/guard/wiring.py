"""A guard wired from the config file and the stack's environment: the DynamoDB ledger, the agent's own guard
topic, the spend and outcome sinks, and the agent's throttle, escalation and loop limits."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from killswitch.guard.caps import Caps, LeasePolicy
from killswitch.guard.escalation import EscalatePolicy
from killswitch.guard.loops import LoopLimits
from killswitch.guard.metrics import EmfMetrics
from killswitch.guard.publisher import NullPublisher
from killswitch.guard.records import outcome_ledger_sink, spend_ledger_sink_on_table
from killswitch.guard.stepdown import ThrottlePolicy

if TYPE_CHECKING:
    from killswitch.guard.guard import Guard


def guard_from_config(
    cls: type[Guard],
    agent: str,
    config_path: str | os.PathLike[str] | None = None,
    table_name: str | None = None,
    topic_arn: str | None = None,
    *,
    config: Any = None,
    dynamodb_client: Any = None,
    sns_client: Any = None,
    **overrides: Any,
) -> Guard:
    """See `Guard.from_config`."""
    from killswitch.config import load_config
    from killswitch.guard.dynamo import DynamoLedger
    from killswitch.guard.publisher import SnsPublisher
    from killswitch.intakes import guard_topic_arn
    from killswitch.settings import ENV_GUARD_TOPIC, ENV_KILL_TOPIC, ENV_TABLE, MissingEnvironment

    cfg = config or load_config(config_path)
    agent_cfg = cfg.agent(agent)
    table = table_name or os.environ.get(ENV_TABLE)
    if not table:
        raise MissingEnvironment([ENV_TABLE])
    alerts_topic = os.environ.get(ENV_KILL_TOPIC)
    topic = (
        topic_arn
        or os.environ.get(ENV_GUARD_TOPIC)
        or (guard_topic_arn(alerts_topic, cfg.prefix, agent) if alerts_topic else None)
    )
    ledger = DynamoLedger(table, client=dynamodb_client, region=cfg.deploy_region)
    kwargs: dict[str, Any] = {
        "publisher": SnsPublisher(topic, client=sns_client) if topic else NullPublisher(),
        "warn_at_pct": agent_cfg.budget.warn_at_pct,
        "models": agent_cfg.models,
        "loop": LoopLimits.from_config(agent_cfg.loop),
        "leases": LeasePolicy(),
        "spend_sink": spend_ledger_sink_on_table(table, cfg.deploy_region),
        "outcome_sink": outcome_ledger_sink(table, cfg.deploy_region),
        "throttle": None if agent_cfg.throttle is None else ThrottlePolicy.from_config(agent_cfg.throttle),
        "escalate": None if agent_cfg.escalate is None else EscalatePolicy.from_config(agent_cfg.escalate),
        # In Lambda, EMF lines on stdout become CloudWatch metrics by themselves; elsewhere pass metrics=...
        "metrics": EmfMetrics() if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else None,
    }
    kwargs.update(overrides)
    return cls(agent, Caps.from_config(agent_cfg.caps), ledger, **kwargs)


def models_pair(models: Any) -> tuple[str, str] | None:
    """(cheap, premium) from a `ModelsConfig` or a pair."""
    if models is None:
        return None
    if isinstance(models, tuple | list):
        cheap, premium = models
        return str(cheap), str(premium)
    return str(models.cheap), str(models.premium)
