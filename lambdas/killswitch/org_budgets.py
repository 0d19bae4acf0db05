"""Management-account (organization) budgets: which exist, what they are called, and the way back from a name.

A budget in a member account sees only that account's spend; only the management account's budgets see every
linked account. With an `accounts:` section the management side therefore gets, per agent:

- an org-wide budget (`<base>-org-<hash>`, tag filter only: the agent's spend in every linked account), unless the
  hub is the management account itself (its workload budgets already see the whole organization) or
  `accounts.org_wide_budgets` is false;
- with `budget.per_account_usd`, a linked-account budget per `accounts.account_ids` entry
  (`<base>-<account>-<hash>`, filters `LinkedAccount` + `TagKeyValue`). Accounts that only an OU brings are unknown
  at synth time (no lookups at synth): the org-wide budget covers them.

They alert the management account's `<prefix>-org-alerts` topic (a budget's SNS subscriber must be in the budget's
account), which delivers to the hub's kill Lambda. The kill Lambda trusts that topic by its exact ARN
(`org_alerts_topic_arn`) and maps a name only through the config: `<base>` or `<base>-<any 8 hex>`, so alerts of a
replaced budget (old hash) and of its replacement (new hash) reach the same agent and account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from killswitch.arns import parse_arn
from killswitch.budget_names import HASH_LENGTH, BudgetSpec, base_name, budget_spec
from killswitch.intakes import org_alerts_topic_name

if TYPE_CHECKING:
    from killswitch.config import AgentConfig, KillSwitchConfig

ORG_WIDE_SUFFIX = "-org"
_HASHED = re.compile(rf"^(?P<base>.+)-[0-9a-f]{{{HASH_LENGTH}}}$")


@dataclass(frozen=True)
class OrgBudgetKey:
    """What an organization budget is for: the agent, and the linked account (None: org-wide)."""

    agent: AgentConfig
    account: str | None

    @property
    def suffix(self) -> str:
        return f"-{self.account}" if self.account else ORG_WIDE_SUFFIX

    @property
    def assignment_key(self) -> str:
        """What the budget's stack is hashed from: stable whatever else is in the config."""
        return f"{self.agent.name}@{self.account}" if self.account else self.agent.name

    def describe(self) -> str:
        where = f"linked account {self.account}" if self.account else "every linked account (org-wide)"
        return f"agent {self.agent.name!r}, {where}"


def management_account(config: KillSwitchConfig) -> str | None:
    """`accounts.management_account_id`, else `sandbox.management_account_id` (None: unknown)."""
    explicit = config.accounts.management_account_id if config.accounts else None
    return explicit or (config.sandbox.management_account_id if config.sandbox else None)


def hub_account(config: KillSwitchConfig) -> str | None:
    """The kill Lambda's account when the config names it: `accounts.hub_account_id`, else
    `sandbox.workload_account_id` (None: the hub is the management account)."""
    explicit = config.accounts.hub_account_id if config.accounts else None
    return explicit or (config.sandbox.workload_account_id if config.sandbox else None)


def hub_is_management(config: KillSwitchConfig) -> bool:
    hub = hub_account(config)
    return hub is None or hub == management_account(config)


def org_alerts_enabled(config: KillSwitchConfig) -> bool:
    """The management side has the org alerts topic and the org budget stacks when there is an organization budget
    (the config refuses one whose management account is unknown). Without any, the management stack stays as it
    was (the spoke StackSet alone): no key, topic or queue for nothing."""
    return bool(org_budget_keys(config))


def org_wide_enabled(config: KillSwitchConfig) -> bool:
    """Org-wide budgets are on by default with `accounts:`: without them the agent's amount holds in the hub account
    only. Not when the hub is the management account: its workload budgets already see every linked account."""
    return config.accounts is not None and config.accounts.org_wide_budgets and not hub_is_management(config)


def org_budget_keys(config: KillSwitchConfig) -> list[OrgBudgetKey]:
    """Every organization budget the management side deploys, in config order (agent, then accounts)."""
    if config.accounts is None:
        return []
    org_wide = org_wide_enabled(config)
    out: list[OrgBudgetKey] = []
    for agent in config.agents:
        if org_wide:
            out.append(OrgBudgetKey(agent, None))
        if agent.budget.per_account_usd is not None:
            out.extend(OrgBudgetKey(agent, account) for account in config.accounts.account_ids)
    return out


def org_budget_amount(key: OrgBudgetKey) -> float:
    per_account = key.agent.budget.per_account_usd
    return per_account if key.account and per_account is not None else key.agent.budget.amount_usd


def org_base_name(config: KillSwitchConfig, key: OrgBudgetKey) -> str:
    return base_name(config, key.agent, key.suffix)


def org_budget_for(config: KillSwitchConfig, budget_name: str) -> OrgBudgetKey | None:
    """The agent and account of an organization budget's name: `<base>` or `<base>-<any 8 hex>`, for every agent ×
    (org-wide, each `accounts.account_ids`), whether or not that budget is deployed right now, so that a late alert of
    a budget that was just replaced or turned off still reaches its agent. None for any other name."""
    if config.accounts is None:
        return None
    bases: dict[str, OrgBudgetKey] = {}
    for agent in config.agents:
        for account in (None, *config.accounts.account_ids):
            key = OrgBudgetKey(agent, account)
            bases.setdefault(org_base_name(config, key), key)
    if budget_name in bases:
        return bases[budget_name]
    match = _HASHED.match(budget_name)
    return bases.get(match["base"]) if match else None


def org_alerts_subscriber(config: KillSwitchConfig) -> str:
    """The org alerts topic, described by what its ARN is made of besides the account (part of the names' hash)."""
    return f"sns:{config.deploy_region}:{org_alerts_topic_name(config.prefix)}"


def org_budget_spec(config: KillSwitchConfig, key: OrgBudgetKey, placement: str) -> BudgetSpec:
    """The budget of `key` as the org budget stack `placement` deploys it (its hashed name among others)."""
    return budget_spec(
        config,
        key.agent,
        sns_subscriber=org_alerts_subscriber(config),
        emails=config.notify.emails,
        placement=placement,
        suffix=key.suffix,
    )


def org_alerts_topic_arn(config: KillSwitchConfig, alerts_topic_arn: str | None) -> str | None:
    """The management account's org alerts topic, as the hub's kill Lambda must see it: the partition of its own
    alerts topic, the home region, the management account (the hub's own account when they are one). None without
    `accounts:`, or without the hub's alerts topic ARN (local runs: names alone decide, see `Intakes`)."""
    home = parse_arn(alerts_topic_arn)
    if not org_alerts_enabled(config) or home is None:
        return None
    account = management_account(config) or home.account
    return f"arn:{home.partition}:sns:{config.deploy_region}:{account}:{org_alerts_topic_name(config.prefix)}"


def org_budget_errors(config: KillSwitchConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """Config mistakes about organization budgets, as (field path, message); the config model raises the first."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    accounts = config.accounts
    for i, agent in enumerate(config.agents):
        if agent.budget.per_account_usd is None:
            continue
        loc: tuple[str | int, ...] = ("agents", i, "budget", "per_account_usd")
        if accounts is None:
            errors.append(
                (
                    loc,
                    "per_account_usd needs an accounts: section with account_ids: the linked-account budgets are made "
                    "in the management account, one for each of accounts.account_ids",
                )
            )
        elif not accounts.account_ids:
            errors.append(
                (
                    loc,
                    "per_account_usd needs accounts.account_ids: the accounts of an OU are unknown at synth time (no "
                    "lookups at synth), so list the accounts that get a per-account budget; the agent's org-wide "
                    "budget covers the OUs' accounts",
                )
            )
    if accounts is None:
        return errors
    sandbox_mgmt = config.sandbox.management_account_id if config.sandbox else None
    mgmt = accounts.management_account_id
    if mgmt and sandbox_mgmt and mgmt != sandbox_mgmt:
        errors.append(
            (
                ("accounts", "management_account_id"),
                f"{mgmt} differs from sandbox.management_account_id {sandbox_mgmt}: one organization, one "
                "management account",
            )
        )
    if mgmt and mgmt in accounts.account_ids:
        errors.append(
            (
                ("accounts", "account_ids", accounts.account_ids.index(mgmt)),
                f"{mgmt} is the management account: StackSets never deploy to it",
            )
        )
    if org_budget_keys(config) and management_account(config) is None and not hub_is_management(config):
        errors.append(
            (
                ("accounts", "management_account_id"),
                f"the hub account {hub_account(config)} is not the management account, whose id is needed: the "
                "organization budgets and their alerts topic live there and the hub's kill Lambda trusts that "
                "topic by its ARN (set accounts.management_account_id or sandbox.management_account_id, or "
                "accounts.org_wide_budgets: false and no budget.per_account_usd)",
            )
        )
    return errors
