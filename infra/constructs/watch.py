"""The watch: a kill stays applied (`killswitch.kill.watch`).

- an EventBridge rule on the default bus for the CloudTrail management events that create or restart compute of a
  registered kind (the pattern comes from the kind registry), delivering to the kill Lambda; it also matches the
  events that the other configured regions forward to this bus (`infra.watch_stacks`);
- a schedule (default every 15 minutes) sending `{"killswitch": "recheck"}` for what events miss (RDS restarts a
  stopped database after 7 days; CloudTrail delivery to EventBridge is best effort).
Only AWS can put `aws.*` events on a bus: the rule's events are facts about this account, never kill orders.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from killswitch.kill.watch import DEFAULT_RECHECK_MINUTES, RECHECK_EVENT, event_pattern


class KillWatch(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
        recheck_minutes: int = DEFAULT_RECHECK_MINUTES,
    ) -> None:
        super().__init__(scope, construct_id)
        pattern = event_pattern()
        target = targets.LambdaFunction(function, dead_letter_queue=dead_letter_queue, retry_attempts=2)
        self.rule = events.Rule(
            self,
            "ComputeStarted",
            rule_name=f"{prefix}-watch",
            description="Agent Kill Switch: compute created or restarted (CloudTrail): kill Lambda keeps kills applied",
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
            ),
            targets=[target],
        )
        self.recheck = events.Rule(
            self,
            "Recheck",
            rule_name=f"{prefix}-recheck",
            description="Agent Kill Switch: periodic re-check that every active kill is still applied",
            schedule=events.Schedule.rate(Duration.minutes(recheck_minutes)),
            targets=[
                targets.LambdaFunction(
                    function,
                    event=events.RuleTargetInput.from_object(RECHECK_EVENT),
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=2,
                )
            ],
        )
