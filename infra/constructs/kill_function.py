"""The kill Lambda: subscribed to the kill topic, least-privilege IAM, dead-letter queue, JSON logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag
from infra.constructs import lambda_common
from killswitch import tags
from killswitch.kill import kinds

KILL_HANDLER = "killswitch.handlers.kill.handler"
# Kills are rare and idempotent; a small cap keeps a flood of alerts from fanning out into thousands of
# concurrent StopInstances calls (SNS retries throttled deliveries, then the DLQ keeps them).
KILL_RESERVED_CONCURRENCY = 5


def kill_role_name(prefix: str, region: str) -> str:
    """The kill Lambda's execution role: the one name the org-kill role trusts (and the SCPs exempt)."""
    return f"{prefix}-kill-{region}"


def dlq_name(prefix: str) -> str:
    return f"{prefix}-kill-dlq"


def dlq_url(prefix: str) -> str:
    """The DLQ's URL, known before the queue exists (so it is in the environment the size check sees)."""
    return f"https://sqs.{Aws.REGION}.{Aws.URL_SUFFIX}/{Aws.ACCOUNT_ID}/{dlq_name(prefix)}"


def function_role(scope: Construct, construct_id: str, *, role_name: str, log_group: logs.ILogGroup) -> iam.Role:
    """Execution role with CloudWatch Logs write on its own log group only (no AWSLambdaBasicExecutionRole)."""
    role = iam.Role(
        scope,
        construct_id,
        role_name=role_name,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"{role_name}: execution role",
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    return role


class KillFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        key: kms.IKey,
        kill_topic: sns.ITopic,
        events_topic: sns.ITopic,
        environment: Mapping[str, str],
        org_role_arn: str | None = None,
        direct_org_targets: Sequence[str] | None = None,
    ) -> None:
        """`org_role_arn`: management-account role to assume for SCP calls. `direct_org_targets`: sandbox account
        ids this function may attach the deny SCP to itself (stack deployed in the management account)."""
        super().__init__(scope, construct_id)
        self.log_group = lambda_common.function_log_group(self, f"{prefix}-kill")
        # The management account's org-kill role trusts exactly this name (`kill_role_name`).
        self.role = function_role(self, "Role", role_name=kill_role_name(prefix, Aws.REGION), log_group=self.log_group)
        self.dlq = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=dlq_name(prefix),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=f"{prefix}-kill",
            description="Agent Kill Switch: stops everything tagged with the alerted agent-name / agent-run-id",
            runtime=lambda_common.RUNTIME,
            handler=KILL_HANDLER,
            code=lambda_common.code_asset(),
            layers=[lambda_common.powertools_layer(self)],
            memory_size=512,
            timeout=Duration.minutes(5),
            reserved_concurrent_executions=KILL_RESERVED_CONCURRENCY,
            environment=dict(environment),
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            dead_letter_queue=self.dlq,
            retry_attempts=2,
        )
        # Only SendMessage (forwarding rejected input); the queue's key through `grant_encrypt_decrypt` below.
        self.dlq.grant(self.role, "sqs:SendMessage")
        key.grant_encrypt_decrypt(self.role)
        kill_topic.add_subscription(subs.LambdaSubscription(self.function, dead_letter_queue=self.dlq))

        self.policy = iam.Policy(
            self,
            "KillPolicy",
            statements=kill_statements(
                org_role_arn=org_role_arn, direct_org_targets=direct_org_targets, prefix=prefix, deny_scp_tag=prefix
            ),
        )
        self.policy.attach_to_role(self.role)
        events_topic.grant_publish(self.role)
        self._acknowledge(direct_org_targets)

    def finalize_dependencies(self) -> None:
        """Call after every grant on the role: the function waits for the role's default policy and ours."""
        default_policy = self.role.node.try_find_child("DefaultPolicy")
        assert isinstance(default_policy, iam.Policy)
        lambda_common.depend_on_policies(self.function, [default_policy, self.policy])

    def _acknowledge(self, direct_org_targets: Sequence[str] | None) -> None:
        acknowledge_kind_grants(self.policy)
        if direct_org_targets is not None:
            nag.acknowledge(
                self.policy,
                "AwsSolutions-IAM5",
                "The organization id (o-...) and the deny SCP id are only known after deployment; targets are "
                "the configured sandbox account ids, or accounts carrying the agent-name tag (condition)",
                [
                    nag.resource_finding(p)
                    for p in org_resource_patterns(direct_org_targets, any_scp=True, tagged_accounts=True)
                ],
            )
        acknowledge_key_grants(self.role)
        acknowledge_runtime(self.function)


SCP_POLICIES = "arn:{partition}:organizations::{account}:policy/o-*/service_control_policy/p-*"
ORG_ACCOUNT = "arn:{partition}:organizations::{account}:account/o-*/%s"
ORG_READ_ACTIONS = (
    "organizations:ListPoliciesForTarget",
    "organizations:ListPolicies",
    "organizations:ListAccounts",
    "organizations:ListTagsForResource",
    "organizations:DescribeOrganization",
)


def acknowledge_key_grants(role: iam.IRole) -> None:
    nag.acknowledge(
        role,
        "AwsSolutions-IAM5",
        "CDK grants (topic publish, table read/write) on the one customer-managed key of this stack: the "
        "kms:GenerateDataKey*/ReEncrypt* action families are scoped to that key's ARN",
        ["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"],
    )


def acknowledge_runtime(function: lambda_.IFunction) -> None:
    nag.acknowledge(
        function,
        "AwsSolutions-L1",
        "python3.13 is pinned to match the Powertools public layer parameter "
        f"({lambda_common.POWERTOOLS_LAYER_PARAM}) and the tested runtime; bump both together",
    )


def acknowledge_kind_grants(policy: iam.Policy) -> None:
    """One acknowledgement per registry statement with a wildcard, with the reason its kind gives."""
    for g in kinds.iam_grants():
        findings = [f"Action::{a}" for a in g.actions if a.endswith("*")]
        findings += ["Resource::*" if r == "*" else nag.resource_finding(r) for r in g.resources if "*" in r]
        if findings:
            why = g.why or (
                "Discovery and Application Auto Scaling have no resource-level permissions; they are read-only or, "
                "for RegisterScalableTarget, only used on ECS services already found by their agent-name tag"
            )
            nag.acknowledge(policy, "AwsSolutions-IAM5", f"{g.sid}: {why}", findings)


def _fill(value: Any, prefix: str) -> Any:
    """Fill `{partition}`, `{account}` and `{prefix}` in a registry condition (nested dicts/lists of strings)."""
    if isinstance(value, str):
        return value.format(partition=Aws.PARTITION, account=Aws.ACCOUNT_ID, prefix=prefix)
    if isinstance(value, Mapping):
        return {k: _fill(v, prefix) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fill(v, prefix) for v in value]
    return value


def kill_statements(
    *,
    org_role_arn: str | None,
    direct_org_targets: Sequence[str] | None,
    prefix: str = "killswitch",
    deny_scp_tag: str = "",
) -> list[iam.PolicyStatement]:
    """The compute permissions come from the kind registry (`killswitch.kill.kinds`): each kind names the actions
    it calls and the tag condition on its writes; the Organizations ones depend on where the stack runs."""
    statements = [
        iam.PolicyStatement(
            sid=g.sid,
            actions=list(g.actions),
            resources=[r if r == "*" else nag.arn(r) for r in g.resources],
            conditions=_fill(g.conditions, prefix) if g.conditions else None,
        )
        for g in kinds.iam_grants()
    ]
    if org_role_arn:
        statements.append(
            iam.PolicyStatement(sid="AssumeOrgKillRole", actions=["sts:AssumeRole"], resources=[org_role_arn])
        )
    if direct_org_targets is not None:
        statements.extend(org_statements(direct_org_targets, policy_arn=None, deny_scp_tag=deny_scp_tag))
    return statements


def org_resource_patterns(targets: Sequence[str], *, any_scp: bool, tagged_accounts: bool) -> list[str]:
    """Wildcard ARN patterns of `org_statements` (for acknowledgements)."""
    return (
        ([SCP_POLICIES] if any_scp else [])
        + [ORG_ACCOUNT % t for t in targets]
        + ([ORG_ACCOUNT % "*"] if tagged_accounts else [])
    )


def org_statements(
    targets: Sequence[str], *, policy_arn: str | None, deny_scp_tag: str = ""
) -> list[iam.PolicyStatement]:
    """Attach/detach the deny SCP on sandbox accounts only, plus the Organizations reads the kill needs.

    Sandbox accounts are the configured ones and the organization's accounts tagged `agent-name` (the kill finds
    both, see `killswitch.sandbox.org`). Organizations authorizes the policy and the target of AttachPolicy as
    separate resources, so the tag condition sits on its own statement, on account ARNs only. ARNs use this
    stack's account (the management account); the organization id (`o-...`) is unknown at synth, hence `o-*`;
    `policy_arn` None means the SCP whose `killswitch:deny-scp` tag is `deny_scp_tag` (it lives in another stack)."""
    accounts = [nag.arn(ORG_ACCOUNT % t) for t in targets]
    attach = ["organizations:AttachPolicy", "organizations:DetachPolicy"]
    if policy_arn:
        policy_statements = [
            iam.PolicyStatement(sid="AttachDenyScp", actions=attach, resources=[policy_arn, *accounts])
        ]
    else:
        # The SCP lives in the management stack (id unknown here): only the one tagged as this kill switch's deny
        # SCP, never any other SCP of the organization. Accounts are authorized separately (no such tag).
        policy_statements = [
            iam.PolicyStatement(
                sid="AttachDenyScp",
                actions=attach,
                resources=[nag.arn(SCP_POLICIES)],
                conditions={"StringEquals": {f"aws:ResourceTag/{tags.DENY_SCP}": deny_scp_tag}},
            ),
            iam.PolicyStatement(sid="AttachDenyScpSandboxAccounts", actions=attach, resources=accounts),
        ]
    return [
        *policy_statements,
        iam.PolicyStatement(
            sid="AttachDenyScpTaggedAccounts",
            actions=attach,
            resources=[nag.arn(ORG_ACCOUNT % "*")],
            conditions={"Null": {f"aws:ResourceTag/{tags.AGENT_NAME}": "false"}},
        ),
        iam.PolicyStatement(sid="OrganizationsRead", actions=list(ORG_READ_ACTIONS), resources=["*"]),
    ]
