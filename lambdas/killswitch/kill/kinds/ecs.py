"""ECS services (scaled to zero, Application Auto Scaling held at min 0 and suspended) and standalone tasks.

Stopping a service's tasks is futile (the scheduler replaces them): the service gets `desiredCount=0`, after its
scalable target is suspended (in/out/scheduled) with min 0, or it scales back up. Restore: desired count, then the
target's exact min/max/suspended state. Standalone tasks get `StopTask(reason=...)`; they cannot be restarted (the
agent's launcher starts new ones).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from killswitch import tags as T
from killswitch.config import Action
from killswitch.kill.common import ActResult, AwsError, chunks, error_result, success
from killswitch.kill.kinds.base import TAG_PRESENT, ActContext, IamGrant, Kind, PlanRules, RegionScan
from killswitch.kill.model import ECS_SERVICE, ECS_TASK, Act, Decision, Resource, ScalableTarget

ECS_SERVICE_BATCH, ECS_TASK_BATCH, AAS_BATCH = 10, 100, 50
ECS_DIMENSION = "ecs:service:DesiredCount"
SUSPENDED_KEYS = ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")
TASK_DONE_STATES = {"STOPPED", "STOPPING", "DEPROVISIONING", "DELETED"}
ECS_SCALING_CONDITION = {
    "application-autoscaling:service-namespace": "ecs",
    "application-autoscaling:scalable-dimension": "ecs:service:DesiredCount",
}
SERVICES = "arn:{partition}:ecs:*:{account}:service/*"
TASKS = "arn:{partition}:ecs:*:{account}:task/*"
ECS_WRITE_WHY = (
    "Agent resources run in every configured region and have unknown ids; every write is conditioned on the "
    "agent-name resource tag being present (Null: false)"
)


def service_resource_id(cluster: str, service_name: str) -> str:
    """Application Auto Scaling resource id of an ECS service."""
    return f"service/{cluster}/{service_name}"


def by_cluster(arns: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for arn in arns:
        rest = arn.split(":", 5)[-1].partition("/")[2]
        out[rest.split("/")[0] if "/" in rest else "default"].append(arn)
    return out


def scalable_targets(aas: Any, resource_ids: list[str]) -> dict[str, ScalableTarget]:
    out: dict[str, ScalableTarget] = {}
    for batch in chunks(resource_ids, AAS_BATCH):
        pages = aas.get_paginator("describe_scalable_targets").paginate(
            ServiceNamespace="ecs", ResourceIds=batch, ScalableDimension=ECS_DIMENSION
        )
        for page in pages:
            for t in page.get("ScalableTargets", []):
                s = t.get("SuspendedState") or {}
                out[t["ResourceId"]] = ScalableTarget(
                    int(t["MinCapacity"]),
                    int(t["MaxCapacity"]),
                    {k: bool(s.get(k, False)) for k in SUSPENDED_KEYS},
                )
    return out


class EcsServices(Kind):
    resource_type = ECS_SERVICE
    config_action = Action.SCALE_ECS
    kill_act = Act.SCALE_TO_ZERO
    restore_action = "restore_service"
    tagging_type = "ecs:service"
    watch_events = (("ecs.amazonaws.com", "CreateService"), ("ecs.amazonaws.com", "UpdateService"))

    def discover(self, scan: RegionScan) -> list[Resource]:
        groups = by_cluster(scan.arns_of(self.tagging_type))
        if not groups:
            return []
        ecs = scan.clients("ecs", scan.region)
        described: list[tuple[str, dict[str, Any]]] = []
        for cluster, arns in groups.items():
            for batch in chunks(arns, ECS_SERVICE_BATCH):
                resp = ecs.describe_services(cluster=cluster, services=batch, include=["TAGS"])
                described.extend((cluster, s) for s in resp.get("services", []))
        aas = scan.clients("application-autoscaling", scan.region)
        targets = scalable_targets(aas, [service_resource_id(c, s["serviceName"]) for c, s in described])
        return [
            Resource(
                resource_type=ECS_SERVICE,
                resource_id=s["serviceArn"],
                region=scan.region,
                tags=T.tag_list_to_dict(s.get("tags")),
                state=s.get("status", ""),
                name=s["serviceName"],
                cluster=cluster,
                scheduling_strategy=s.get("schedulingStrategy", "REPLICA"),
                desired_count=int(s.get("desiredCount", 0)),
                scalable_target=targets.get(service_resource_id(cluster, s["serviceName"])),
            )
            for cluster, s in described
        ]

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        if r.state and r.state != "ACTIVE":
            return f"service is {r.state}"
        if (r.scheduling_strategy or "").upper() == "DAEMON":
            return "DAEMON service: one task per container instance, stopped with its instances"
        if r.desired_count == 0:
            return "already scaled to zero"
        return None

    def act_reason(self, r: Resource) -> str:
        extra = " (autoscaling suspended, min 0)" if r.scalable_target else ""
        return f"desired {r.desired_count} → 0{extra}"

    def _target(self, ctx: ActContext, r: Resource, mn: int, mx: int, suspended: dict[str, bool]) -> None:
        ctx.clients("application-autoscaling", r.region).register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=service_resource_id(r.cluster or "default", r.name),
            ScalableDimension=ECS_DIMENSION,
            MinCapacity=mn,
            MaxCapacity=mx,
            SuspendedState=suspended,
        )

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r, st = d.resource, d.resource.scalable_target
        try:
            if st:
                self._target(ctx, r, 0, st.max_capacity, dict.fromkeys(SUSPENDED_KEYS, True))
            try:
                ctx.clients("ecs", r.region).update_service(cluster=r.cluster, service=r.name, desiredCount=0)
            except AwsError:
                if st:  # put autoscaling back as it was: the service was not changed
                    self._target(ctx, r, st.min_capacity, st.max_capacity, dict(st.suspended))
                raise
        except AwsError as exc:
            return ActResult(d, error_result(d, exc))
        return ActResult(d, success(d, f"desired {r.desired_count} → 0"))

    def restore_one(self, entry: Any, ctx: ActContext) -> str:
        r, st = entry.resource, entry.resource.scalable_target
        ctx.clients("ecs", r.region).update_service(
            cluster=r.cluster, service=r.name, desiredCount=r.desired_count or 0
        )
        if st:
            self._target(ctx, r, st.min_capacity, st.max_capacity, dict(st.suspended))
        return f"desired 0 → {r.desired_count}" + (
            f", autoscaling min {st.min_capacity}/max {st.max_capacity}" if st else ""
        )

    def restore_text(self, entry: Any) -> str:
        r = entry.resource
        st = r.scalable_target
        extra = f", autoscaling min {st.min_capacity}/max {st.max_capacity}" if st else ""
        return f"desired count → {r.desired_count}{extra}"

    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        """DescribeServices per cluster, 10 services per call (like discovery)."""
        out: dict[tuple[str, str], str] = {}
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for r in resources:
            groups[(r.region, r.cluster or "default")].append(r.resource_id)
        for (region, cluster), arns in groups.items():
            for batch in chunks(arns, ECS_SERVICE_BATCH):
                resp = ctx.clients("ecs", region).describe_services(cluster=cluster, services=batch)
                for s in resp.get("services", []):
                    if int(s.get("desiredCount", 0)) > 0:
                        out[(region, s["serviceArn"])] = f"desired count {s['desiredCount']}"
        return out

    def grants(self) -> list[IamGrant]:
        return [
            # Exactly the reads the kill makes (IAM coverage trace), no Describe*/List* families.
            IamGrant(
                "Discover",
                ("ecs:DescribeServices", "ecs:DescribeTasks", "application-autoscaling:DescribeScalableTargets"),
            ),
            IamGrant("ScaleStopTaggedEcs", ("ecs:UpdateService",), (SERVICES,), TAG_PRESENT, ECS_WRITE_WHY),
            # Application Auto Scaling identifies a scalable target by namespace/resource id/dimension; the ECS
            # service's tags are not visible to it, so no tag condition can apply. The kill code only calls it for
            # ECS services it has already found through their agent-name tag: only ECS service desired counts.
            # (DescribeScalableTargets is part of Discover.)
            IamGrant(
                "EcsServiceScaling",
                ("application-autoscaling:RegisterScalableTarget",),
                conditions={"StringEquals": ECS_SCALING_CONDITION},
            ),
        ]


class EcsTasks(Kind):
    resource_type = ECS_TASK
    config_action = Action.STOP_ECS_TASKS
    kill_act = Act.STOP_TASK
    restore_action = "none"
    tagging_type = "ecs:task"
    watch_events = (("ecs.amazonaws.com", "RunTask"),)

    def discover(self, scan: RegionScan) -> list[Resource]:
        groups = by_cluster(scan.arns_of(self.tagging_type))
        out = []
        for cluster, arns in groups.items():
            for batch in chunks(arns, ECS_TASK_BATCH):
                resp = scan.clients("ecs", scan.region).describe_tasks(cluster=cluster, tasks=batch, include=["TAGS"])
                for t in resp.get("tasks", []):
                    out.append(
                        Resource(
                            resource_type=ECS_TASK,
                            resource_id=t["taskArn"],
                            region=scan.region,
                            tags=T.tag_list_to_dict(t.get("tags")),
                            state=t.get("lastStatus", ""),
                            name=t["taskArn"].rsplit("/", 1)[-1][:12],
                            cluster=cluster,
                            task_group=t.get("group", ""),
                        )
                    )
        return out

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        if r.state in TASK_DONE_STATES:
            return f"task already {r.state}"
        group = r.task_group or ""
        if group.startswith("service:"):
            return f"belongs to service {group.removeprefix('service:')}: handled through the service"
        return None

    def act_reason(self, r: Resource) -> str:
        return f"standalone task {r.state or 'RUNNING'}"

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r = d.resource
        ctx.clients("ecs", r.region).stop_task(cluster=r.cluster, task=r.resource_id, reason=ctx.reason[:1024])
        return ActResult(d, success(d, "task stopped"))

    def not_restorable(self, entry: Any) -> str | None:
        return "a stopped task cannot be restarted: its launcher starts new ones"

    def restore_text(self, entry: Any) -> str:
        return "nothing (a stopped task cannot be restarted)"

    def grants(self) -> list[IamGrant]:
        return [IamGrant("ScaleStopTaggedEcs", ("ecs:StopTask",), (TASKS,), TAG_PRESENT, ECS_WRITE_WHY)]
