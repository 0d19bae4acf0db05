"""Watch stacks: the kill's watch in every configured region other than the home (deploy) region.

CloudTrail delivers a management event to EventBridge in the region where the call was made, so the home stack's
watch rule (`infra.constructs.watch`) only sees calls made in its own region. Each other configured region gets a
small stack `<prefix>-watch-<region>`: one rule with the same pattern (built from the kind registry) whose target is
the home region's default event bus (a cross-region bus target, with a role that may only `events:PutEvents` on that
bus). A forwarded event keeps its `source`, `detail-type` and `detail`, so the home rule matches it and the kill
Lambda acts in the event's region (`detail.awsRegion`). Nobody but AWS can put an `aws.*` event on a bus, so a
forwarded event is still a fact about this account, never a kill order.

Events that cannot be delivered to the home bus go to a regional dead-letter queue (EventBridge's DLQ must be in the
rule's region); the home stack's 15-minute re-check covers whatever a lost event would have caught.
A region removed from `regions` leaves its stack deployed (`cdk deploy` never deletes a stack that left the app):
`cdk destroy <prefix>-watch-<region>` removes it.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Duration, Environment, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import nag
from killswitch.config import KillSwitchConfig
from killswitch.kill.watch import event_pattern


def watch_stack_name(config: KillSwitchConfig, region: str) -> str:
    return f"{config.prefix}-watch-{region}"


def forwarded_regions(config: KillSwitchConfig) -> list[str]:
    """The configured regions whose CloudTrail events must be forwarded to the home region (all but home)."""
    return [r for r in config.regions if r != config.deploy_region]


def home_bus_arn(home_region: str) -> str:
    return f"arn:{Aws.PARTITION}:events:{home_region}:{Aws.ACCOUNT_ID}:event-bus/default"


class WatchForwardStack(Stack):
    """One region's forwarding rule: compute created or restarted here → the home region's default bus."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: KillSwitchConfig, region: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        prefix, home = config.prefix, config.deploy_region
        self.dead_letter_queue = sqs.Queue(
            self,
            "ForwardDeadLetters",
            queue_name=f"{prefix}-watch-forward-dlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        nag.acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the forwarding rule's target",
        )
        # Only EventBridge may use the role, and only to put events on the home region's default bus.
        self.role = iam.Role(
            self,
            "ForwardRole",
            role_name=f"{prefix}-watch-forward-{region}",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description=f"Agent Kill Switch: forward compute-start events from {region} to the {home} default bus",
        )
        home_bus = events.EventBus.from_event_bus_arn(self, "HomeBus", home_bus_arn(home))
        pattern = event_pattern()
        self.rule = events.Rule(
            self,
            "ComputeStarted",
            rule_name=f"{prefix}-watch-forward",
            description=f"Agent Kill Switch: compute created or restarted in {region} (CloudTrail), forwarded to "
            f"the kill switch's watch in {home}",
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
            ),
            targets=[targets.EventBus(home_bus, role=self.role, dead_letter_queue=self.dead_letter_queue)],
        )


def add_watch_stacks(
    scope: Construct, config: KillSwitchConfig, *, account: str | None = None, **kwargs: Any
) -> list[WatchForwardStack]:
    """One forwarding stack per configured region other than home, pinned to its region (and to `account` when the
    config names the workload account)."""
    return [
        WatchForwardStack(
            scope,
            watch_stack_name(config, region),
            config=config,
            region=region,
            env=Environment(account=account, region=region),
            description=f"Agent Kill Switch ({config.prefix}): forward {region}'s compute-start CloudTrail events "
            f"to the watch in {config.deploy_region}",
            **kwargs,
        )
        for region in forwarded_regions(config)
    ]
