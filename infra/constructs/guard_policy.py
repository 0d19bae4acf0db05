"""`<prefix>-guard-publisher`: the managed policy agent roles attach so the guard SDK can work."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import nag

# The guard only touches its own items: headroom/charges/leases, spend facts and per-run spend (killswitch.keys).
GUARD_LEADING_KEYS = ["GUARD#*", "SPEND#*", "RUN#*"]
GUARD_ITEM_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
]


class GuardPublisherPolicy(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        guard_topics: Sequence[sns.ITopic],
        table: dynamodb.ITable,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=f"{prefix}-guard-publisher",
            description="Attach to agent roles (tagged agent-name): publish guard events, keep guard/spend items",
            statements=[
                # Every agent's guard topic; each topic's policy lets only principals tagged with its agent through.
                iam.PolicyStatement(
                    sid="PublishGuardEvents", actions=["sns:Publish"], resources=[t.topic_arn for t in guard_topics]
                ),
                iam.PolicyStatement(
                    sid="GuardLedgerItems",
                    actions=GUARD_ITEM_ACTIONS,
                    resources=[table.table_arn],
                    conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": GUARD_LEADING_KEYS}},
                ),
                # Topic and table are encrypted with the kill switch key.
                iam.PolicyStatement(
                    sid="UseKillSwitchKey",
                    actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                    resources=[key.key_arn],
                ),
            ],
        )
        nag.acknowledge(
            self.policy,
            "AwsSolutions-IAM5",
            "kms:GenerateDataKey* on the one customer-managed key that encrypts the kill topic and the ledger",
            ["Action::kms:GenerateDataKey*"],
        )
