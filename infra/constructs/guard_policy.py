"""`<prefix>-guard-publisher`: the managed policy agent roles attach so the guard SDK can work."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra import nag
from infra.constructs.guard_intake import guard_topic_arn_pattern
from killswitch import tags
from killswitch.intakes import guard_topic_pattern
from killswitch.keys import approval_pk, guard_pk

# IAM resolves the variable from the caller's `agent-name` principal tag; a role without the tag matches nothing.
AGENT_PRINCIPAL_TAG = "${aws:PrincipalTag/" + tags.AGENT_NAME + "}"
# The guard keeps everything (headroom, charges, leases, its spend facts) in one partition per agent
# (killswitch.keys): exactly `GUARD#<own agent-name>`, so an agent never reaches another agent's items, nor the
# budget / Cost Explorer facts (`SPEND#<agent>`), kill records or agent state that decide its kill.
GUARD_LEADING_KEYS = [guard_pk(AGENT_PRINCIPAL_TAG)]
# Ops approvals of the agent's paused runs (`killswitch approve-run`): the guard may only read them, in its own
# approval partition; no write action is granted there, so an agent never approves its own run.
APPROVAL_LEADING_KEYS = [approval_pk(AGENT_PRINCIPAL_TAG)]
APPROVAL_ITEM_ACTIONS = ["dynamodb:GetItem"]
# What `killswitch.guard.dynamo` and the guard's spend sink call (TransactWriteItems is authorized per item as
# UpdateItem / PutItem); no deletes, no batch writes, no condition checks.
GUARD_ITEM_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
]


def guard_policy_name(prefix: str) -> str:
    return f"{prefix}-guard-publisher"


class GuardPublisherPolicy(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        table: dynamodb.ITable,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=guard_policy_name(prefix),
            description="Attach to agent roles (tagged agent-name): publish guard events, keep guard/spend items",
            statements=[
                # Every agent's guard topic, by name pattern (a list of 1,000 ARNs would pass the 6,144-character
                # managed policy limit); each topic's own policy lets only principals tagged with its agent through.
                iam.PolicyStatement(
                    sid="PublishGuardEvents", actions=["sns:Publish"], resources=[guard_topic_arn_pattern(prefix)]
                ),
                iam.PolicyStatement(
                    sid="GuardLedgerItems",
                    actions=GUARD_ITEM_ACTIONS,
                    resources=[table.table_arn],
                    conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": GUARD_LEADING_KEYS}},
                ),
                iam.PolicyStatement(
                    sid="ReadOwnRunApprovals",
                    actions=APPROVAL_ITEM_ACTIONS,
                    resources=[table.table_arn],
                    conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": APPROVAL_LEADING_KEYS}},
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
            "kms:GenerateDataKey* on the one customer-managed key that encrypts the kill topic and the ledger; "
            "sns:Publish on the `<prefix>-guard-*` topics, each of which denies every principal not tagged with its "
            "own agent",
            [
                "Action::kms:GenerateDataKey*",
                f"Resource::arn:<AWS::Partition>:sns:<AWS::Region>:<AWS::AccountId>:{guard_topic_pattern(prefix)}",
            ],
        )
