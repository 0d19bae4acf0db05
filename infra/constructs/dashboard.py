"""CloudWatch dashboard `<prefix>-agents`: spend against budget per agent, kills, guard, thrift, rejections.

Metrics are found with SEARCH expressions on property designators (`Namespace="AgentKillSwitch"
MetricName="X" agent="name"`), not on a fixed dimension schema: Powertools adds a `service` dimension whose value
differs per emitter (kill Lambda, spend recorder, every agent's guard), and a search on properties matches every
dimension set that carries them, so new emitters show up without redeploying the dashboard.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from killswitch.config import KillSwitchConfig
from killswitch.metrics import METRICS_NAMESPACE

WIDTH = 24
HALF = 12


def search(
    metric: str, statistic: str, period: Duration, *, agent: str | None = None, label: str = ""
) -> cloudwatch.MathExpression:
    terms = f'Namespace="{METRICS_NAMESPACE}" MetricName="{metric}"'
    if agent is not None:
        terms += f' agent="{agent}"'
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{terms}', '{statistic}', {int(period.to_seconds())})",
        label=label,
        period=period,
        using_metrics={},
    )


class AgentsDashboard(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: KillSwitchConfig) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{config.prefix}-agents",
            default_interval=Duration.days(30),
        )
        day, five = Duration.days(1), Duration.minutes(5)
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# Agent Kill Switch ({config.prefix})\nSpend per agent and source (budget alerts, Cost "
                "Explorer, guard) against the budget amount; kills, stopped resources and failures; guard "
                "denials; agents in thrift mode; rejected alerts. Budgets data lags hours (refreshed up to 3x a "
                "day); the guard's figures are real time.",
                width=WIDTH,
                height=3,
            )
        )
        spend_widgets: list[cloudwatch.IWidget] = []
        for agent in config.agents:
            spend_widgets.append(
                cloudwatch.GraphWidget(
                    title=f"{agent.name}: spend this budget period (USD) vs budget",
                    # The recorder publishes period-to-date figures per source once a day: Maximum per day.
                    left=[search("AgentSpendUSD", "Maximum", day, agent=agent.name, label="")],
                    left_annotations=[
                        cloudwatch.HorizontalAnnotation(
                            value=agent.budget.amount_usd,
                            label=f"budget ${agent.budget.amount_usd:g} {agent.budget.period.value.lower()}",
                            color=cloudwatch.Color.RED,
                        )
                    ],
                    right=[search("AgentBudgetPct", "Maximum", day, agent=agent.name, label="% of budget")],
                    width=HALF,
                    height=6,
                )
            )
        self.dashboard.add_widgets(*spend_widgets)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Kills executed",
                left=[search("KillsExecuted", "Sum", five)],
                width=HALF,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Resources stopped / failures",
                left=[search("ResourcesStopped", "Sum", five)],
                right=[search("ResourceFailures", "Sum", five)],
                width=HALF,
                height=6,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Guard denials", left=[search("GuardDenials", "Sum", five)], width=8, height=6
            ),
            cloudwatch.GraphWidget(
                title="Agents in thrift mode", left=[search("AgentsInThrift", "Maximum", five)], width=8, height=6
            ),
            cloudwatch.GraphWidget(
                title="Alerts rejected", left=[search("AlertsRejected", "Sum", five)], width=8, height=6
            ),
        )
