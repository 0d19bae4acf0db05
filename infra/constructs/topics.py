"""SNS topics: `kill` (the alerts topic: AWS Budgets and Cost Anomaly Detection only) and `events` (results out).
Guard events have their own per-agent topics (`infra.constructs.guard_intake`)."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct


def budgets_source_arn() -> str:
    return f"arn:{Aws.PARTITION}:budgets::{Aws.ACCOUNT_ID}:*"


def anomaly_source_arn() -> str:
    return f"arn:{Aws.PARTITION}:ce::{Aws.ACCOUNT_ID}:anomalysubscription/*"


def alarm_source_arn(prefix: str) -> str:
    return f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:{prefix}-*"


def allow_service_publish(topic: sns.Topic, sid: str, service: str, source_arn: str) -> None:
    """Let an AWS service publish to `topic` for this account's `source_arn` resources only (with a topic policy in
    place, TLS-only, every publisher needs an explicit allow)."""
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal(service)],
            actions=["SNS:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": source_arn},
            },
        )
    )


def only_aws_services_publish(topic: sns.Topic) -> None:
    """Deny every IAM principal: one able to publish to an alerts topic could forge a letter for any agent."""
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="OnlyAwsServicesPublish",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["SNS:Publish"],
            resources=[topic.topic_arn],
            conditions={"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}},
        )
    )


class KillTopic(Construct):
    """Encrypted, SSL-only topic that only AWS Budgets and Cost Anomaly Detection may publish to (this account only).

    No IAM principal may publish, whatever its identity policy says (an explicit deny): an agent able to publish here
    could forge a Budgets letter below the kill threshold whose dedupe key then swallows the real letter."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=f"{prefix}-kill",
            display_name="Agent Kill Switch: kill requests",
            master_key=key,
            enforce_ssl=True,
        )
        allow_service_publish(self.topic, "AllowBudgetsPublish", "budgets.amazonaws.com", budgets_source_arn())
        allow_service_publish(self.topic, "AllowCostAnomalyPublish", "costalerts.amazonaws.com", anomaly_source_arn())
        only_aws_services_publish(self.topic)


class EventsTopic(Construct):
    """Encrypted, SSL-only topic for kill results and alarms; `notify.emails` subscribe to it."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, key: kms.IKey, emails: list[str]) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=f"{prefix}-events",
            display_name="Agent Kill Switch: results",
            master_key=key,
            enforce_ssl=True,
        )
        for email in emails:
            self.topic.add_subscription(subs.EmailSubscription(email))
        # CloudWatch alarms publish as a service principal: with a topic policy in place (TLS-only) they need an
        # explicit allow, limited to this stack's alarms (`<prefix>-*`) in this account.
        allow_service_publish(self.topic, "AllowKillSwitchAlarms", "cloudwatch.amazonaws.com", alarm_source_arn(prefix))
