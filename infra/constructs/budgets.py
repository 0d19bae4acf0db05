"""One AWS Budget per agent, filtered on its `agent-name` cost allocation tag, alerting the kill topic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import aws_budgets as budgets
from constructs import Construct

from killswitch.config import AgentConfig, KillSwitchConfig
from killswitch.tags import cost_filter_value

# AWS: one SNS subscriber and up to 10 email subscribers per notification.
MAX_EMAIL_SUBSCRIBERS = 10


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
    """ACTUAL at warn and kill percentages, FORECASTED at both too when `budget.forecasted`."""
    kinds = ["ACTUAL", "FORECASTED"] if agent.budget.forecasted else ["ACTUAL"]
    subs = subscribers(sns_topic_arn, emails)
    return [
        budgets.CfnBudget.NotificationWithSubscribersProperty(
            notification=budgets.CfnBudget.NotificationProperty(
                comparison_operator="GREATER_THAN",
                notification_type=kind,
                threshold=pct,
                threshold_type="PERCENTAGE",
            ),
            subscribers=subs,
        )
        for kind in kinds
        for pct in (agent.budget.warn_at_pct, agent.budget.kill_at_pct)
    ]


def cost_budget(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    agent: AgentConfig,
    cost_filters: dict[str, Any],
    notifications_with_subscribers: list[budgets.CfnBudget.NotificationWithSubscribersProperty] | None,
) -> budgets.CfnBudget:
    return budgets.CfnBudget(
        scope,
        construct_id,
        budget=budgets.CfnBudget.BudgetDataProperty(
            budget_name=name,
            budget_type="COST",
            time_unit=agent.budget.period.value,
            budget_limit=budgets.CfnBudget.SpendProperty(amount=agent.budget.amount_usd, unit="USD"),
            cost_filters=cost_filters,
        ),
        notifications_with_subscribers=notifications_with_subscribers,
    )


class AgentBudgets(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: KillSwitchConfig, kill_topic_arn: str) -> None:
        super().__init__(scope, construct_id)
        self.budgets: dict[str, budgets.CfnBudget] = {}
        for agent in config.agents:
            self.budgets[agent.name] = cost_budget(
                self,
                f"Budget-{agent.name}",
                name=config.budget_name_for(agent),
                agent=agent,
                cost_filters={"TagKeyValue": [cost_filter_value(agent.name)]},
                notifications_with_subscribers=notifications(agent, kill_topic_arn, config.notify.emails),
            )
