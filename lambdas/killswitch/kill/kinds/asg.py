"""Auto Scaling groups: the processes that would launch instances are suspended (only those not already suspended
are recorded as ours), then min 0 / desired 0. Restore: min/max/desired as they were, resume only our processes.

The Tagging API does not list groups (neither in moto nor reliably in AWS): `DescribeAutoScalingGroups` with a
server-side `tag:agent-name` filter instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from killswitch import tags as T
from killswitch.config import Action
from killswitch.kill.common import ActResult, AwsError, chunks, error_result, success
from killswitch.kill.kinds.base import ActContext, IamGrant, Kind, PlanRules, RegionScan, ids_by_region
from killswitch.kill.model import ASG, Act, Decision, Resource

# Processes that would launch or replace instances while the group is meant to be at zero.
ASG_NAMES_PER_CALL = 100  # DescribeAutoScalingGroups: up to 100 names (and records) per call
ASG_KILL_PROCESSES = ("Launch", "ReplaceUnhealthy", "AZRebalance", "AlarmNotification", "ScheduledActions")
GROUPS = "arn:{partition}:autoscaling:*:{account}:autoScalingGroup:*:autoScalingGroupName/*"
ASG_TAG_PRESENT = {"Null": {f"autoscaling:ResourceTag/{T.AGENT_NAME}": "false"}}


def group_resource(g: dict[str, Any], region: str) -> Resource:
    return Resource(
        resource_type=ASG,
        resource_id=g["AutoScalingGroupName"],
        region=region,
        tags=T.tag_list_to_dict(g.get("Tags")),
        state=g.get("Status") or "InService",
        name=g["AutoScalingGroupName"],
        desired_count=int(g["DesiredCapacity"]),
        min_size=int(g["MinSize"]),
        max_size=int(g["MaxSize"]),
        suspended_processes=tuple(sorted(p["ProcessName"] for p in g.get("SuspendedProcesses", []))),
    )


class AutoScalingGroups(Kind):
    resource_type = ASG
    config_action = Action.SCALE_ASG
    kill_act = Act.SCALE_TO_ZERO
    restore_action = "restore_group"
    watch_events = (
        ("autoscaling.amazonaws.com", "UpdateAutoScalingGroup"),
        ("autoscaling.amazonaws.com", "CreateAutoScalingGroup"),
        ("autoscaling.amazonaws.com", "SetDesiredCapacity"),
    )

    def discover(self, scan: RegionScan) -> list[Resource]:
        filters = [{"Name": f"tag:{f['Key']}", "Values": f["Values"]} for f in scan.tag_filters]
        pages = scan.clients("autoscaling", scan.region).get_paginator("describe_auto_scaling_groups")
        return [
            group_resource(g, scan.region)
            for page in pages.paginate(Filters=filters)
            for g in page.get("AutoScalingGroups", [])
        ]

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        return "already scaled to zero" if r.desired_count == 0 and r.min_size == 0 else None

    def act_reason(self, r: Resource) -> str:
        return f"min {r.min_size}/desired {r.desired_count} → 0, processes suspended"

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r = d.resource
        asg = ctx.clients("autoscaling", r.region)
        ours = [p for p in ASG_KILL_PROCESSES if p not in r.suspended_processes]
        try:
            if ours:
                asg.suspend_processes(AutoScalingGroupName=r.resource_id, ScalingProcesses=ours)
            asg.update_auto_scaling_group(AutoScalingGroupName=r.resource_id, MinSize=0, DesiredCapacity=0)
        except AwsError as exc:
            return ActResult(d, error_result(d, exc), suspended_by_us=ours)
        return ActResult(d, success(d, f"min {r.min_size}/desired {r.desired_count} → 0"), suspended_by_us=ours)

    def restore_one(self, entry: Any, ctx: ActContext) -> str:
        r = entry.resource
        asg = ctx.clients("autoscaling", r.region)
        asg.update_auto_scaling_group(
            AutoScalingGroupName=r.resource_id,
            MinSize=r.min_size or 0,
            MaxSize=r.max_size or 0,
            DesiredCapacity=r.desired_count or 0,
        )
        if entry.suspended_by_us:
            asg.resume_processes(AutoScalingGroupName=r.resource_id, ScalingProcesses=list(entry.suspended_by_us))
        return f"min {r.min_size}/max {r.max_size}/desired {r.desired_count}" + (
            f", resumed {', '.join(entry.suspended_by_us)}" if entry.suspended_by_us else ""
        )

    def restore_text(self, entry: Any) -> str:
        r = entry.resource
        resumed = f", resume {', '.join(entry.suspended_by_us)}" if entry.suspended_by_us else ""
        return f"min {r.min_size}/max {r.max_size}/desired {r.desired_count}{resumed}"

    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        """Re-read the groups of each region in batches of 100 names (DescribeAutoScalingGroups' maximum)."""
        out: dict[tuple[str, str], str] = {}
        for region, names in ids_by_region(resources).items():
            pages = ctx.clients("autoscaling", region).get_paginator("describe_auto_scaling_groups")
            for batch in chunks(sorted(set(names)), ASG_NAMES_PER_CALL):
                for page in pages.paginate(AutoScalingGroupNames=batch, PaginationConfig={"PageSize": 100}):
                    for g in page.get("AutoScalingGroups", []):
                        if int(g["DesiredCapacity"]) > 0:
                            out[(region, g["AutoScalingGroupName"])] = f"desired capacity {g['DesiredCapacity']}"
        return out

    def grants(self) -> list[IamGrant]:
        return [
            IamGrant("Discover", ("autoscaling:DescribeAutoScalingGroups",)),
            IamGrant(
                "ScaleTaggedAutoScalingGroups",
                (
                    "autoscaling:UpdateAutoScalingGroup",
                    "autoscaling:SuspendProcesses",
                    "autoscaling:ResumeProcesses",
                ),
                (GROUPS,),
                ASG_TAG_PRESENT,
                "Agent resources run in every configured region and have unknown ids; every write is conditioned on "
                "the agent-name resource tag being present (Null: false)",
            ),
        ]
