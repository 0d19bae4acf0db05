"""The meter: Bedrock invocation log group (created or adopted) + optional invocation logging, a subscription
filter and a compute schedule into the meter Lambda, which raises its decisions into the kill engine in-process.

Its role holds the kill engine's statements (same tag conditions: the meter kills in-process) plus only what
metering reads: the `agent-name` tags of this account's IAM roles and users, application inference profiles, the
Price List API, and (when logging is turned on here) the Bedrock logging configuration with a pass of exactly the
logging role to Bedrock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Aws, CustomResource, Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as destinations
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import nag
from infra.constructs import kill_function as K
from infra.constructs import lambda_common
from killswitch.config import MeterConfig

METER_HANDLER = "killswitch.handlers.meter.handler"
METER_RESERVED_CONCURRENCY = 5
IAM_PRINCIPALS = ("arn:{partition}:iam::{account}:role/*", "arn:{partition}:iam::{account}:user/*")
APP_PROFILES = "arn:{partition}:bedrock:*:{account}:application-inference-profile/*"
LOGGING_ACTIONS = (
    "bedrock:GetModelInvocationLoggingConfiguration",
    "bedrock:PutModelInvocationLoggingConfiguration",
    "bedrock:DeleteModelInvocationLoggingConfiguration",
)


def meter_role_name(prefix: str, region: str) -> str:
    """The meter Lambda's execution role (it kills in-process, so the org-kill role trusts it too)."""
    return f"{prefix}-meter-{region}"


def default_log_group_name(prefix: str) -> str:
    return f"/{prefix}/bedrock-invocations"


class Meter(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        meter: MeterConfig,
        key: kms.IKey,
        table: dynamodb.ITable,
        events_topic: sns.ITopic,
        environment: Mapping[str, str],
        org_role_arn: str | None = None,
        direct_org_targets: Sequence[str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = lambda_common.function_log_group(self, f"{prefix}-meter")
        # The management account's org-kill role trusts exactly this name (`meter_role_name`).
        self.role = K.function_role(
            self, "Role", role_name=meter_role_name(prefix, Aws.REGION), log_group=self.log_group
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=f"{prefix}-meter",
            description="Agent Kill Switch meter: Bedrock invocation logs and running compute priced per agent",
            runtime=lambda_common.RUNTIME,
            handler=METER_HANDLER,
            code=lambda_common.code_asset(),
            layers=[lambda_common.powertools_layer(self)],
            memory_size=1024,
            timeout=Duration.minutes(3),
            reserved_concurrent_executions=METER_RESERVED_CONCURRENCY,
            environment=dict(environment),
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            retry_attempts=2,
        )
        table.grant_read_write_data(self.role)
        events_topic.grant_publish(self.role)

        if meter.log_group_name:
            self.invocation_logs: logs.ILogGroup = logs.LogGroup.from_log_group_name(
                self, "InvocationLogs", meter.log_group_name
            )
        else:
            # Invocation records hold prompts: encrypted with the stack's key, kept a month.
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowLogsForBedrockInvocations",
                    principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                    actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                    resources=["*"],
                    conditions={
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": (
                                f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:"
                                f"{default_log_group_name(prefix)}"
                            )
                        }
                    },
                )
            )
            self.invocation_logs = logs.LogGroup(
                self,
                "InvocationLogs",
                log_group_name=default_log_group_name(prefix),
                retention=logs.RetentionDays.ONE_MONTH,
                encryption_key=key,
                removal_policy=RemovalPolicy.DESTROY,
            )
        self.subscription = logs.SubscriptionFilter(
            self,
            "Subscription",
            log_group=self.invocation_logs,
            destination=destinations.LambdaDestination(self.function),
            filter_pattern=logs.FilterPattern.all_events(),
            filter_name=f"{prefix}-meter",
        )

        statements = K.kill_statements(
            org_role_arn=org_role_arn, direct_org_targets=direct_org_targets, prefix=prefix, deny_scp_tag=prefix
        )
        statements += [
            iam.PolicyStatement(
                sid="MeterCallerTags",
                actions=["iam:ListRoleTags", "iam:ListUserTags"],
                resources=[nag.arn(p) for p in IAM_PRINCIPALS],
            ),
            iam.PolicyStatement(
                sid="MeterInferenceProfiles", actions=["bedrock:GetInferenceProfile"], resources=[nag.arn(APP_PROFILES)]
            ),
            iam.PolicyStatement(sid="MeterPrices", actions=["pricing:GetProducts"], resources=["*"]),
        ]
        if meter.enable_invocation_logging:
            statements += self._invocation_logging(prefix)
        self.policy = iam.Policy(self, "MeterPolicy", statements=statements)
        self.policy.attach_to_role(self.role)

        self.rule = events.Rule(
            self,
            "ComputeTick",
            description=f"Agent Kill Switch meter: price running compute every {meter.tick_minutes} minutes",
            schedule=events.Schedule.rate(Duration.minutes(meter.tick_minutes)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
            enabled=meter.compute,
        )
        self._acknowledge(direct_org_targets, logging=meter.enable_invocation_logging)

    def _invocation_logging(self, prefix: str) -> list[iam.PolicyStatement]:
        """A role Bedrock assumes to write records into the group, and the custom resource that turns logging on."""
        self.logging_role = iam.Role(
            self,
            "BedrockLoggingRole",
            role_name=f"{prefix}-bedrock-logging-{Aws.REGION}",
            assumed_by=iam.ServicePrincipal(
                "bedrock.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"},
                },
            ),
            description="Bedrock model invocation logging into the meter's log group",
        )
        self.logging_role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{self.invocation_logs.log_group_arn}"],
            )
        )
        self.invocation_logging = CustomResource(
            self,
            "InvocationLogging",
            service_token=self.function.function_arn,
            resource_type="Custom::BedrockInvocationLogging",
            properties={
                "LogGroupName": self.invocation_logs.log_group_name,
                "RoleArn": self.logging_role.role_arn,
            },
        )
        return [
            iam.PolicyStatement(sid="MeterInvocationLogging", actions=list(LOGGING_ACTIONS), resources=["*"]),
            iam.PolicyStatement(
                sid="MeterPassLoggingRole",
                actions=["iam:PassRole"],
                resources=[self.logging_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
            ),
        ]

    def finalize_dependencies(self) -> None:
        default_policy = self.role.node.try_find_child("DefaultPolicy")
        assert isinstance(default_policy, iam.Policy)
        lambda_common.depend_on_policies(self.function, [default_policy, self.policy])
        if hasattr(self, "invocation_logging"):
            self.invocation_logging.node.add_dependency(self.policy)

    def _acknowledge(self, direct_org_targets: Sequence[str] | None, *, logging: bool) -> None:
        nag.acknowledge(
            self.policy,
            "AwsSolutions-IAM5",
            "The meter raises kills in-process with the kill engine's permissions: discovery and Application Auto "
            "Scaling have no resource-level permissions; the Price List API and the Bedrock logging configuration "
            "(one per account and region) only work on *",
            ["Resource::*"],
        )
        K.acknowledge_kind_grants(self.policy)
        nag.acknowledge(
            self.policy,
            "AwsSolutions-IAM5",
            "An agent's caller may be any role or user of this account (only their tags are read); application "
            "inference profile ids are created by teams at any time (only GetInferenceProfile is allowed)",
            [nag.resource_finding(p) for p in (*IAM_PRINCIPALS, APP_PROFILES)],
        )
        if direct_org_targets is not None:
            nag.acknowledge(
                self.policy,
                "AwsSolutions-IAM5",
                "Same SCP targets as the kill Lambda: the organization and SCP ids are only known after deployment",
                [
                    nag.resource_finding(p)
                    for p in K.org_resource_patterns(direct_org_targets, any_scp=True, tagged_accounts=True)
                ],
            )
        if logging:
            nag.acknowledge(
                self.logging_role,
                "AwsSolutions-IAM5",
                "Bedrock creates its own log streams in the meter's log group: streams of that one group only",
            )
        K.acknowledge_key_grants(self.role)
        K.acknowledge_runtime(self.function)
