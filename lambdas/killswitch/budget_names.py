"""Budget names that never collide on a redeploy, and the way back from a name in an alert to its agent.

CloudFormation replaces an `AWS::Budgets::Budget` when a create-only property changes (`BudgetName`,
`NotificationsWithSubscribers`: thresholds, FORECASTED on/off, emails, the SNS subscriber). It creates the new
budget before deleting the old one, so under a fixed name the create fails on "already exists". The deployed name
is therefore `<base>-<hash>`, the hash taken over exactly those create-only values (and the stack that holds the
budget, since a move between stacks is a replacement too): whatever CloudFormation replaces gets a new name, and
anything it updates in place (amount, period) keeps the name and the budget's history.

`<base>` is `agents[].budget_name` or `<prefix>-<name>`; the config maps any `<base>` or `<base>-<8 hex>` back to
the agent, so alerts of the old and of the new budget both reach the same agent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from killswitch.config import AgentConfig, KillSwitchConfig

# AWS Budgets: budget names are at most 100 characters.
BUDGET_NAME_MAX = 100
HASH_LENGTH = 8
# AWS: one SNS subscriber and up to 10 email subscribers per notification.
MAX_EMAIL_SUBSCRIBERS = 10
_HASHED = re.compile(rf"^(?P<base>.+)-(?P<digest>[0-9a-f]{{{HASH_LENGTH}}})$")


@dataclass(frozen=True)
class NotificationSpec:
    kind: str  # ACTUAL | FORECASTED
    threshold_pct: float


@dataclass(frozen=True)
class BudgetSpec:
    """The create-only values of one budget, as plain data (no deploy-time tokens)."""

    base: str
    notifications: tuple[NotificationSpec, ...]
    # A stable description of the SNS subscriber (region and topic name); the ARN itself is a deploy-time token.
    sns_subscriber: str | None
    emails: tuple[str, ...]
    # Which stack holds the budget: moving it to another stack deletes it there and creates it here.
    placement: str

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]

    @property
    def name(self) -> str:
        """The deployed (physical) budget name: `<base>-<hash>`, at most 100 characters."""
        return f"{self.base}-{self.digest()}"


def base_name(config: KillSwitchConfig, agent: AgentConfig, suffix: str = "") -> str:
    """`<budget_name or prefix-name><suffix>`, the agent part cut so that the hashed name fits in 100 characters."""
    return config.budget_name_for(agent)[: BUDGET_NAME_MAX - HASH_LENGTH - 1 - len(suffix)] + suffix


def notification_specs(agent: AgentConfig) -> tuple[NotificationSpec, ...]:
    """ACTUAL at the warn and kill percentages; FORECASTED at both too when `budget.forecasted`."""
    kinds = ("ACTUAL", "FORECASTED") if agent.budget.forecasted else ("ACTUAL",)
    return tuple(
        NotificationSpec(kind, pct) for kind in kinds for pct in (agent.budget.warn_at_pct, agent.budget.kill_at_pct)
    )


def kill_topic_subscriber(config: KillSwitchConfig) -> str:
    """The workload stack's kill topic, described by what its ARN is made of (besides the account)."""
    return f"sns:{config.deploy_region}:{config.prefix}-kill"


def budget_spec(
    config: KillSwitchConfig,
    agent: AgentConfig,
    *,
    sns_subscriber: str | None,
    emails: Sequence[str],
    placement: str,
    suffix: str = "",
) -> BudgetSpec:
    return BudgetSpec(
        base=base_name(config, agent, suffix),
        notifications=notification_specs(agent),
        sns_subscriber=sns_subscriber,
        emails=tuple(emails[:MAX_EMAIL_SUBSCRIBERS]),
        placement=placement,
    )


def agent_for_budget(config: KillSwitchConfig, budget_name: str) -> AgentConfig | None:
    """The agent a budget name in an alert belongs to: `<base>` (budgets deployed before names were hashed) or
    `<base>-<any 8 hex digits>` (any generation of the hashed name, so an old budget's late alert still counts).

    The config validation refuses bases that would make this ambiguous (`ambiguous_bases`)."""
    bases: dict[str, AgentConfig] = {}
    for agent in config.agents:
        bases.setdefault(config.budget_name_for(agent), agent)
        bases.setdefault(base_name(config, agent), agent)
    if budget_name in bases:
        return bases[budget_name]
    match = _HASHED.match(budget_name)
    return bases.get(match["base"]) if match else None


def ambiguous_bases(bases: Sequence[str]) -> tuple[int, int] | None:
    """(i, j) when base i reads as base j plus a hash suffix (`bot-1234abcd` next to `bot`), else None."""
    index = {b: i for i, b in enumerate(bases)}
    for i, b in enumerate(bases):
        match = _HASHED.match(b)
        if match and match["base"] in index:
            return i, index[match["base"]]
    return None
