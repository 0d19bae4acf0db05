"""Organization budget stacks: the management account's budgets per agent (org-wide, and per linked account with
`budget.per_account_usd`), spread over `accounts.budget_stacks` stacks named `<prefix>-org-budgets-N`.

Each budget is one resource, so 1,000 agents × a few accounts need several stacks (at most
`MAX_RESOURCES_PER_STACK` a stack). A budget's stack is `infra.budget_stacks.budget_stack_index` of its own key
(`agent` for the org-wide budget, `agent@account` for a linked-account one) modulo the stack count: adding agents or
accounts never moves another budget. Changing `accounts.budget_stacks` moves budgets; each moved one gets a new name
(the stack is part of the name's hash), so the create in the new stack never collides with the delete in the old.
Every stack is synthesized even when empty, so that its budgets are deleted when the last one goes.

The budgets alert the management stack's `<prefix>-org-alerts` topic (`infra.constructs.org_alerts`), which
delivers to the hub's kill Lambda; the name maps back to (agent, account) through the config
(`killswitch.org_budgets.org_budget_for`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_budgets as budgets
from constructs import Construct

from infra.budget_stacks import MAX_RESOURCES_PER_STACK, BudgetStacksOverfull, budget_stack_index
from infra.constructs.budgets import cost_budget, notifications
from killswitch.budget_names import BudgetSpec
from killswitch.config import KillSwitchConfig
from killswitch.intakes import org_alerts_topic_name
from killswitch.org_budgets import OrgBudgetKey, org_budget_amount, org_budget_keys, org_budget_spec
from killswitch.tags import cost_filter_value

# One resource per budget (no topic or policy of its own), plus the `CDKMetadata` resource `cdk synth` adds.
MAX_ORG_BUDGETS_PER_STACK = MAX_RESOURCES_PER_STACK - 1


def org_budget_stack_name(config: KillSwitchConfig, index: int) -> str:
    return f"{config.prefix}-org-budgets-{index}"


def assign_org_budgets(keys: Sequence[OrgBudgetKey], stack_count: int) -> list[list[OrgBudgetKey]]:
    """Budgets per stack index (every index present, possibly empty), in config order within a stack."""
    stacks: list[list[OrgBudgetKey]] = [[] for _ in range(stack_count)]
    for key in keys:
        stacks[budget_stack_index(key.assignment_key, stack_count)].append(key)
    return stacks


def check_org_capacity(
    keys: Sequence[OrgBudgetKey], stack_count: int, *, limit: int = MAX_ORG_BUDGETS_PER_STACK, config_file: str = ""
) -> None:
    """Refuse a stack over `limit` budgets, naming the smallest `accounts.budget_stacks` that fits."""
    sizes = [len(s) for s in assign_org_budgets(keys, stack_count)]
    if max(sizes, default=0) <= limit:
        return
    needed = stack_count + 1
    while max(len(s) for s in assign_org_budgets(keys, needed)) > limit:
        needed += 1
    fullest = sizes.index(max(sizes))
    where = f"{config_file}: " if config_file else ""
    raise BudgetStacksOverfull(
        f"{where}accounts.budget_stacks: {stack_count} organization budget stack(s) cannot hold {len(keys)} budgets "
        f"(stack {fullest} would hold {sizes[fullest]}, over {limit}); set accounts.budget_stacks to {needed} or "
        "more. Changing it moves budgets between stacks: each moved budget is replaced under a new name and its "
        "history restarts."
    )


def org_cost_filters(key: OrgBudgetKey) -> dict[str, list[str]]:
    """The agent's `agent-name` cost allocation tag, and the linked account for a per-account budget."""
    tag = {"TagKeyValue": [cost_filter_value(key.agent.name)]}
    return {"LinkedAccount": [key.account], **tag} if key.account else tag


class OrgBudgetStack(Stack):
    """One share of the organization budgets, alerting the management stack's org alerts topic (same account and
    region) and `notify.emails`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: KillSwitchConfig,
        keys: Sequence[OrgBudgetKey],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Built from its name, not imported: no cross-stack export pins the topic (same as `BudgetStack`).
        topic_arn = (
            f"arn:{self.partition}:sns:{config.deploy_region}:{self.account}:{org_alerts_topic_name(config.prefix)}"
        )
        emails = list(config.notify.emails)
        self.budgets: dict[tuple[str, str | None], budgets.CfnBudget] = {}
        self.specs: dict[tuple[str, str | None], BudgetSpec] = {}
        for key in keys:
            spec = org_budget_spec(config, key, construct_id)
            ident = (key.agent.name, key.account)
            self.specs[ident] = spec
            self.budgets[ident] = cost_budget(
                self,
                f"Budget-{key.agent.name}-{key.account or 'org'}",
                name=spec.name,
                agent=key.agent,
                cost_filters=org_cost_filters(key),
                notifications_with_subscribers=notifications(key.agent, topic_arn, emails),
                amount_usd=org_budget_amount(key),
            )
        if not keys:
            # A template needs one resource; a wait condition handle is CloudFormation's own no-op.
            CfnResource(self, "Empty", type="AWS::CloudFormation::WaitConditionHandle")


def add_org_budget_stacks(
    scope: Construct, config: KillSwitchConfig, *, config_file: str = "killswitch.yaml", **kwargs: Any
) -> list[OrgBudgetStack]:
    assert config.accounts is not None
    count = config.accounts.budget_stacks
    keys = org_budget_keys(config)
    check_org_capacity(keys, count, config_file=config_file)
    out = []
    for index, share in enumerate(assign_org_budgets(keys, count)):
        out.append(
            OrgBudgetStack(
                scope,
                org_budget_stack_name(config, index),
                config=config,
                keys=share,
                description=f"Agent Kill Switch ({config.prefix}): organization budgets per agent and linked "
                f"account (management account), share {index + 1} of {count}",
                **kwargs,
            )
        )
    return out
