"""The management account's `<prefix>-org-alerts` topic: the organization budgets' alerts, delivered to the hub's kill
Lambda in another account (or the same one).

A budget's SNS subscriber must be in the budget's account, so the organization budgets (`infra.org_budget_stacks`)
alert this topic, and this topic delivers to the hub:

- only this account's AWS Budgets may publish (`aws:SourceAccount` / `aws:SourceArn`), no IAM principal at all;
- the SNS→Lambda subscription is created here, by the topic owner, with the hub kill function's ARN built from
  prefix, hub account and home region (`<prefix>-kill`, see `infra.constructs.kill_function`); the hub grants
  `lambda:InvokeFunction` to `sns.amazonaws.com` for exactly this topic (`allow_org_alerts`). Lambda endpoints need
  no subscription confirmation, so the topic owner's subscription is live at once (unconfirmed on a real account:
  AWS's tutorial subscribes from the function's account; should delivery fail, the DLQ below keeps the alerts);
- never lost: SNS retries a Lambda delivery it cannot make (function missing, permission not deployed yet,
  throttled) and then moves the message to this subscription's dead-letter queue (an SNS redrive DLQ must be in the
  subscription's account and region: this one); once the Lambda has it, its own retries and dead-letter queue in
  the hub take over (`KillFunction`). A queue in the hub would need a confirmed cross-account SQS subscription,
  which a topic owner cannot confirm on its own.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag
from infra.constructs.encryption import service_key
from infra.constructs.topics import allow_service_publish, budgets_source_arn, only_aws_services_publish
from killswitch.config import KillSwitchConfig
from killswitch.intakes import org_alerts_topic_name

# Who uses the topic's key: AWS Budgets (publishing) and SNS (writing the subscription's dead-letter queue).
KEY_USER_SERVICES = ("budgets.amazonaws.com", "sns.amazonaws.com")


def hub_kill_function_arn(config: KillSwitchConfig, hub_account: str) -> str:
    """The hub's kill Lambda (`<prefix>-kill` in the home region of the hub account), known before it exists."""
    return f"arn:{Aws.PARTITION}:lambda:{config.deploy_region}:{hub_account}:function:{config.prefix}-kill"


def org_alerts_dlq_name(prefix: str) -> str:
    return f"{prefix}-org-alerts-dlq"


class OrgAlertsTopic(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: KillSwitchConfig, hub_account: str) -> None:
        super().__init__(scope, construct_id)
        prefix = config.prefix
        self.key = service_key(
            self,
            "Key",
            alias=f"alias/{prefix}-org-alerts",
            description=f"{prefix}: organization budgets' alerts topic and its dead-letter queue",
            services=KEY_USER_SERVICES,
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=org_alerts_topic_name(prefix),
            display_name="Agent Kill Switch: organization budget alerts",
            master_key=self.key,
            enforce_ssl=True,
        )
        allow_service_publish(self.topic, "AllowBudgetsPublish", "budgets.amazonaws.com", budgets_source_arn())
        # An IAM principal able to publish here could forge a letter for any agent in the organization.
        only_aws_services_publish(self.topic)
        self.dlq = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=org_alerts_dlq_name(prefix),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        nag.acknowledge(
            self.dlq,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the org alerts topic's Lambda subscription (SNS redrive policy)",
        )
        self.function_arn = hub_kill_function_arn(config, hub_account)
        self.subscription = sns.Subscription(
            self,
            "HubKill",
            topic=self.topic,
            protocol=sns.SubscriptionProtocol.LAMBDA,
            endpoint=self.function_arn,
            dead_letter_queue=self.dlq,
        )
        # An alert that could not be delivered waits in the queue: tell whoever watches the alarms of this account.
        self.dlq_alarm = cloudwatch.Alarm(
            self,
            "UndeliveredAlerts",
            alarm_name=f"{prefix}-org-alerts-undelivered",
            alarm_description="Organization budget alerts SNS could not deliver to the hub kill Lambda: they wait in "
            f"{org_alerts_dlq_name(prefix)}; fix the hub, then redrive them",
            metric=self.dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


def allow_org_alerts(function: lambda_.IFunction, *, topic_arn: str, management_account: str) -> None:
    """The hub side: `sns.amazonaws.com` may invoke the kill Lambda for the org alerts topic and nothing else."""
    function.add_permission(
        "OrgAlertsInvoke",
        principal=iam.ServicePrincipal("sns.amazonaws.com"),
        action="lambda:InvokeFunction",
        source_arn=topic_arn,
        source_account=management_account,
    )
