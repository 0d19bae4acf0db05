"""Daily spend recorder: Cost Explorer by `agent-name` tag → ledger + `AgentSpendUSD` metrics."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import nag
from infra.constructs import lambda_common
from infra.constructs.kill_function import acknowledge_key_grants, acknowledge_runtime, function_role
from infra.constructs.ledger import SPEND_LEDGER_ACTIONS, grant_ledger_items

SPEND_RECORDER_HANDLER = "killswitch.handlers.spend_recorder.handler"
# Cost Explorer data for a day settles over the following hours; 06:00 UTC reads a mostly complete yesterday.
SCHEDULE = events.Schedule.cron(minute="0", hour="6")


class SpendRecorder(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        table: dynamodb.ITable,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = lambda_common.function_log_group(self, f"{prefix}-spend-recorder")
        self.role = function_role(self, "Role", role_name=f"{prefix}-spend-{Aws.REGION}", log_group=self.log_group)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=f"{prefix}-spend-recorder",
            description="Agent Kill Switch: records yesterday's spend per agent from Cost Explorer",
            runtime=lambda_common.RUNTIME,
            handler=SPEND_RECORDER_HANDLER,
            code=lambda_common.code_asset(),
            layers=[lambda_common.powertools_layer(self)],
            memory_size=512,
            timeout=Duration.minutes(5),
            environment=dict(environment),
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            retry_attempts=2,
        )
        grant_ledger_items(table, self.role, SPEND_LEDGER_ACTIONS)
        self.cost_policy = iam.Policy(
            self,
            "CostExplorerPolicy",
            statements=[
                # Cost Explorer has no resource-level permissions: GetCostAndUsage only works on "*".
                iam.PolicyStatement(sid="ReadCosts", actions=["ce:GetCostAndUsage"], resources=["*"])
            ],
        )
        self.cost_policy.attach_to_role(self.role)
        nag.acknowledge(
            self.cost_policy,
            "AwsSolutions-IAM5",
            "Cost Explorer has no resource-level permissions: ce:GetCostAndUsage needs Resource *",
            ["Resource::*"],
        )
        acknowledge_key_grants(self.role)
        default_policy = self.role.node.try_find_child("DefaultPolicy")
        assert isinstance(default_policy, iam.Policy)
        lambda_common.depend_on_policies(self.function, [default_policy, self.cost_policy])
        acknowledge_runtime(self.function)
        self.rule = events.Rule(
            self,
            "Daily",
            description="Agent Kill Switch: record spend per agent daily at 06:00 UTC",
            schedule=SCHEDULE,
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
