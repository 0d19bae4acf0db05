"""`<prefix>-agent-boundary`: the managed policy attached to every agent role so that an agent cannot escape a kill.

Deny-only (it grants nothing, so attaching it is always safe). An agent role carrying it cannot:
- put an `agent-name` other than its own `agent-name` principal tag on anything, nor remove `agent-name` (exact
  comparison: another agent's name, `log-summarizer ` or `Log-Summarizer` are all refused);
- change or remove an existing `agent-run-id`;
- set or remove any `killswitch:*` tag (`killswitch:exempt`, `killswitch:criticality`, ...);
- create or change `<prefix>-*` roles and policies, detach this policy, drop a permissions boundary;
- touch the kill switch's own resources beyond what the guard SDK needs (publish, its own ledger items, the key).

Tag rules use the global condition keys `aws:TagKeys` / `aws:RequestTag` / `aws:ResourceTag` on every action (`*`):
every tagging API that supports them (EC2 `CreateTags`/`DeleteTags`, `*:TagResource`/`*:UntagResource`, IAM
`TagRole`, create-with-tags calls) is covered without listing services; an API that does not support them
ignores the statement (see README: keep such services out of agent roles).
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra import nag
from infra.constructs.guard_policy import AGENT_PRINCIPAL_TAG, GUARD_ITEM_ACTIONS
from killswitch import tags
from killswitch.config import KillSwitchConfig


def boundary_policy_name(prefix: str) -> str:
    return f"{prefix}-agent-boundary"


def boundary_statements(
    config: KillSwitchConfig, *, table_arn: str, key_arn: str, guard_policy_names: list[str]
) -> list[iam.PolicyStatement]:
    prefix = config.prefix
    iam_arn = f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}"
    own_policies = [f"{iam_arn}:policy/{name}" for name in [boundary_policy_name(prefix), *guard_policy_names]]
    budgets = [
        f"arn:{Aws.PARTITION}:budgets::{Aws.ACCOUNT_ID}:budget/{config.budget_name_for(a)}" for a in config.agents
    ]
    return [
        # Any request naming the agent-name tag must carry exactly the caller's own name (creating own resources
        # works); removing it has no request value, so it is refused too.
        iam.PolicyStatement(
            sid="DenyForeignOrRemovedAgentName",
            effect=iam.Effect.DENY,
            actions=["*"],
            resources=["*"],
            conditions={
                "ForAnyValue:StringEquals": {"aws:TagKeys": [tags.AGENT_NAME]},
                "StringNotEquals": {f"aws:RequestTag/{tags.AGENT_NAME}": AGENT_PRINCIPAL_TAG},
            },
        ),
        # A run id is set when the resource is created; afterwards it is neither changed nor removed.
        iam.PolicyStatement(
            sid="DenyChangingAgentRunId",
            effect=iam.Effect.DENY,
            actions=["*"],
            resources=["*"],
            conditions={
                "ForAnyValue:StringEquals": {"aws:TagKeys": [tags.AGENT_RUN_ID]},
                "Null": {f"aws:ResourceTag/{tags.AGENT_RUN_ID}": "false"},
            },
        ),
        iam.PolicyStatement(
            sid="DenyKillSwitchTags",
            effect=iam.Effect.DENY,
            actions=["*"],
            resources=["*"],
            conditions={"ForAnyValue:StringLike": {"aws:TagKeys": ["killswitch:*"]}},
        ),
        iam.PolicyStatement(
            sid="DenyKillSwitchRoles",
            effect=iam.Effect.DENY,
            actions=["iam:*"],
            resources=[f"{iam_arn}:role/{prefix}-*", f"{iam_arn}:policy/{prefix}-*"],
        ),
        iam.PolicyStatement(
            sid="DenyDetachingTheseGuards",
            effect=iam.Effect.DENY,
            actions=["iam:DetachRolePolicy", "iam:DetachUserPolicy", "iam:DetachGroupPolicy"],
            resources=["*"],
            conditions={"ArnEquals": {"iam:PolicyARN": own_policies}},
        ),
        iam.PolicyStatement(
            sid="DenyDroppingBoundaries",
            effect=iam.Effect.DENY,
            actions=["iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary"],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="DenyKillSwitchResources",
            effect=iam.Effect.DENY,
            actions=["lambda:*", "sqs:*", "logs:*", "cloudformation:*", "events:*", "budgets:*"],
            resources=[
                f"arn:{Aws.PARTITION}:lambda:*:{Aws.ACCOUNT_ID}:function:{prefix}-*",
                f"arn:{Aws.PARTITION}:sqs:*:{Aws.ACCOUNT_ID}:{prefix}-*",
                f"arn:{Aws.PARTITION}:logs:*:{Aws.ACCOUNT_ID}:log-group:/aws/lambda/{prefix}-*",
                f"arn:{Aws.PARTITION}:cloudformation:*:{Aws.ACCOUNT_ID}:stack/{prefix}-*/*",
                f"arn:{Aws.PARTITION}:events:*:{Aws.ACCOUNT_ID}:rule/{prefix}-*",
                *budgets,
            ],
        ),
        iam.PolicyStatement(
            sid="DenyKillSwitchTopicsButPublish",
            effect=iam.Effect.DENY,
            not_actions=["sns:Publish"],
            resources=[f"arn:{Aws.PARTITION}:sns:*:{Aws.ACCOUNT_ID}:{prefix}-*"],
        ),
        iam.PolicyStatement(
            sid="DenyLedgerButGuardItems",
            effect=iam.Effect.DENY,
            not_actions=GUARD_ITEM_ACTIONS,
            resources=[table_arn, f"{table_arn}/*"],
        ),
        iam.PolicyStatement(
            sid="DenyKeyButEncryptDecrypt",
            effect=iam.Effect.DENY,
            not_actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=[key_arn],
        ),
    ]


class AgentBoundaryPolicy(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: KillSwitchConfig,
        table: dynamodb.ITable,
        key: kms.IKey,
        guard_policy_names: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=boundary_policy_name(config.prefix),
            description="Attach to every agent role: no agent-name/agent-run-id/killswitch:* tag escape, no "
            "change to the kill switch's roles and resources",
            statements=boundary_statements(
                config, table_arn=table.table_arn, key_arn=key.key_arn, guard_policy_names=guard_policy_names
            ),
        )
        nag.acknowledge(
            self.policy,
            "AwsSolutions-IAM5",
            "Deny-only policy: wildcards widen what is refused, never what is allowed",
        )
