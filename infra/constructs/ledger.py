"""DynamoDB single-table ledger (layout in `killswitch.keys`)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from killswitch import keys


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
