"""Alarms that page the events topic when kills fail: kill Lambda errors and dead-lettered alerts."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct


class KillAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        function: lambda_.IFunction,
        dlq: sqs.IQueue,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        action = cw_actions.SnsAction(topic)
        self.errors = cloudwatch.Alarm(
            self,
            "KillErrors",
            alarm_name=f"{prefix}-kill-errors",
            alarm_description="The kill Lambda failed: an alert may not have been acted on. Check its logs.",
            metric=function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dlq_depth = cloudwatch.Alarm(
            self,
            "DeadLetters",
            alarm_name=f"{prefix}-kill-dlq-not-empty",
            alarm_description="Kill alerts are in the dead-letter queue: they were not processed. Redrive or "
            "run `killswitch fire` on them.",
            metric=dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.errors, self.dlq_depth):
            alarm.add_alarm_action(action)
