"""One AWS Budget per agent, filtered on its `agent-name` cost allocation tag, alerting the kill topic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import aws_budgets as budgets
from constructs import Construct

from killswitch.budget_names import (
    MAX_EMAIL_SUBSCRIBERS,
    BudgetSpec,
    budget_spec,
    kill_topic_subscriber,
    notification_specs,
)
from killswitch.config import AgentConfig, KillSwitchConfig
from killswitch.tags import cost_filter_value


def subscribers(sns_topic_arn: str | None, emails: Sequence[str]) -> list[budgets.CfnBudget.SubscriberProperty]:
    out = (
        [budgets.CfnBudget.SubscriberProperty(address=sns_topic_arn, subscription_type="SNS")] if sns_topic_arn else []
    )
    out += [
        budgets.CfnBudget.SubscriberProperty(address=e, subscription_type="EMAIL")
        for e in emails[:MAX_EMAIL_SUBSCRIBERS]
    ]
    return out


def notifications(
    agent: AgentConfig, sns_topic_arn: str | None, emails: Sequence[str]
) -> list[budgets.CfnBudget.NotificationWithSubscribersProperty]:
    """ACTUAL at warn and kill percentages, FORECASTED at both too when `budget.forecasted` (the same list the
    budget name's hash is taken over, `killswitch.budget_names.notification_specs`)."""
    subs = subscribers(sns_topic_arn, emails)
    return [
        budgets.CfnBudget.NotificationWithSubscribersProperty(
            notification=budgets.CfnBudget.NotificationProperty(
                comparison_operator="GREATER_THAN",
                notification_type=spec.kind,
                threshold=spec.threshold_pct,
                threshold_type="PERCENTAGE",
            ),
            subscribers=subs,
        )
        for spec in notification_specs(agent)
    ]


def cost_budget(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    agent: AgentConfig,
    cost_filters: dict[str, Any],
    notifications_with_subscribers: list[budgets.CfnBudget.NotificationWithSubscribersProperty] | None,
    amount_usd: float | None = None,
) -> budgets.CfnBudget:
    """`amount_usd` overrides the agent's `budget.amount_usd` (per-account budgets: `budget.per_account_usd`)."""
    return budgets.CfnBudget(
        scope,
        construct_id,
        budget=budgets.CfnBudget.BudgetDataProperty(
            budget_name=name,
            budget_type="COST",
            time_unit=agent.budget.period.value,
            budget_limit=budgets.CfnBudget.SpendProperty(
                amount=agent.budget.amount_usd if amount_usd is None else amount_usd, unit="USD"
            ),
            cost_filters=cost_filters,
        ),
        notifications_with_subscribers=notifications_with_subscribers,
    )


class AgentBudgets(Construct):
    """The budgets of `agents`, alerting the workload stack's kill topic (and `notify.emails`).

    `placement` names the stack that holds them; it is part of each name's hash (see `killswitch.budget_names`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: KillSwitchConfig,
        agents: Sequence[AgentConfig],
        kill_topic_arn: str,
        placement: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.budgets: dict[str, budgets.CfnBudget] = {}
        self.specs: dict[str, BudgetSpec] = {}
        emails = config.notify.emails
        for agent in agents:
            spec = budget_spec(
                config, agent, sns_subscriber=kill_topic_subscriber(config), emails=emails, placement=placement
            )
            self.specs[agent.name] = spec
            self.budgets[agent.name] = cost_budget(
                self,
                f"Budget-{agent.name}",
                name=spec.name,
                agent=agent,
                cost_filters={"TagKeyValue": [cost_filter_value(agent.name)]},
                notifications_with_subscribers=notifications(agent, kill_topic_arn, emails),
            )
