"""DynamoDB single-table ledger (layout in `killswitch.keys`)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from killswitch import keys

# Item actions each Lambda's code calls (the IAM coverage run checks every traced call against these). Streams,
# scans, DescribeTable and condition checks are never used; transactions are authorized as UpdateItem/PutItem.
KILL_LEDGER_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
)
SPEND_LEDGER_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)


def grant_ledger_items(table: dynamodb.ITable, grantee: iam.IGrantable, actions: Sequence[str]) -> None:
    """Exactly `actions` on the table, and use of its key (what `grant_read_write_data` adds, minus the unused)."""
    table.grant(grantee, *actions)
    if table.encryption_key is not None:
        table.encryption_key.grant_encrypt_decrypt(grantee)


class LedgerTable(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=f"{prefix}-ledger",
            partition_key=dynamodb.Attribute(name=keys.PK, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=keys.SK, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            time_to_live_attribute=keys.TTL_ATTR,
            # The ledger is what `restore` undoes a kill from: never delete it with the stack.
            removal_policy=RemovalPolicy.RETAIN,
            deletion_protection=True,
        )
