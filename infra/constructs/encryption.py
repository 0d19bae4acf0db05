"""Customer-managed KMS key shared by the topics, the dead-letter queue and the ledger table."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# Services that publish to our encrypted topics/queues and so must be able to use the key:
# AWS Budgets and Cost Anomaly Detection (kill topic), CloudWatch alarms (events topic), SNS (subscription DLQ).
KEY_USER_SERVICES = (
    "budgets.amazonaws.com",
    "costalerts.amazonaws.com",
    "cloudwatch.amazonaws.com",
    "sns.amazonaws.com",
)


def service_key(
    scope: Construct,
    construct_id: str,
    *,
    alias: str,
    description: str,
    services: tuple[str, ...] = KEY_USER_SERVICES,
) -> kms.Key:
    """A rotating, retained customer-managed key that `services` may use, from this account only (they publish to
    the topics and queues it encrypts)."""
    key = kms.Key(
        scope,
        construct_id,
        alias=alias,
        description=description,
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN,
    )
    for service in services:
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"Allow{service.split('.')[0].capitalize()}",
                principals=[iam.ServicePrincipal(service)],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                # A key policy's "*" means this key only.
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
    return key


class KillSwitchKey(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.key = service_key(
            self,
            "Key",
            alias=f"alias/{prefix}",
            description=f"{prefix}: kill/events topics, dead-letter queue and ledger table",
        )
