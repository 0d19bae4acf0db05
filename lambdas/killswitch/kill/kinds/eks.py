"""EKS managed node groups tagged `agent-name` (`scale_eks`): scaled to min 0 / desired 0, restored exactly.

The unit is the node group and its own tags decide: one cluster often hosts several agents (and the kill switch must
not guess from a cluster tag which node groups are the agent's), and EKS does not copy cluster tags to node groups.
The kill records min, max and desired size and calls `UpdateNodegroupConfig` with min 0 / desired 0 (max stays:
EKS requires max ≥ 1); restore puts back min, max and desired exactly as recorded.

Discovery: the shared Resource Groups Tagging API pages (`eks:nodegroup`: AWS's `GetResources` lists every
resource type), then one `DescribeNodegroup` per listed node group for its live size, status and tags; a region
without the agent's node groups costs nothing extra. A listed node group that is gone meanwhile is dropped. (moto's
Tagging API lists no EKS resources: the tests and the bench add them, see
`killswitch.testing.sim_kinds.tagging_with_eks_and_batch`.) A node group EKS cannot update in its current state
(`UPDATING`, `CREATING`, ...) gets its own error result with the AWS code
(`ResourceInUseException`, ...); one being deleted is skipped.

Limits, documented in the README: a cluster autoscaler (or Karpenter) that sees pending pods may raise the node
group's underlying Auto Scaling group again up to max; verify reports it (`not_verified`), and the watch's re-check
scales it down again while the kill is active. Fargate profiles and self-managed nodes are not node groups: tag the
nodes' Auto Scaling group (`scale_asg`) or instances (`stop_ec2`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from killswitch import aws
from killswitch.config import Action
from killswitch.kill.common import ActResult, AwsError, success
from killswitch.kill.kinds.base import TAG_PRESENT, ActContext, IamGrant, Kind, PlanRules, RegionScan
from killswitch.kill.model import Act, Decision, Resource

EKS_NODEGROUP = "eks:nodegroup"
NODEGROUPS = "arn:{partition}:eks:*:{account}:nodegroup/*"
GONE_STATES = {"DELETING"}


def nodegroup_resource(ng: dict[str, Any], region: str) -> Resource:
    scaling = ng.get("scalingConfig") or {}
    return Resource(
        resource_type=EKS_NODEGROUP,
        resource_id=ng["nodegroupArn"],
        region=region,
        tags=dict(ng.get("tags") or {}),
        state=str(ng.get("status", "")),
        name=ng["nodegroupName"],
        cluster=ng["clusterName"],
        desired_count=int(scaling.get("desiredSize", 0)),
        min_size=int(scaling.get("minSize", 0)),
        max_size=int(scaling.get("maxSize", 0)),
    )


def nodegroup_names(arn: str) -> tuple[str, str]:
    """(cluster, node group) of `arn:<partition>:eks:<region>:<account>:nodegroup/<cluster>/<name>/<uuid>`."""
    parts = arn.split(":", 5)[-1].split("/")
    return parts[1], parts[2]


def describe_if_present(client: Any, cluster: str, name: str) -> dict[str, Any] | None:
    """The node group, or None when it is gone (the Tagging API may still list a deleted one)."""
    try:
        return dict(client.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"])
    except AwsError as exc:
        if aws.error_code(exc) == "ResourceNotFoundException":
            return None
        raise


class EksNodegroups(Kind):
    resource_type = EKS_NODEGROUP
    config_action = Action.SCALE_EKS
    kill_act = Act.SCALE_TO_ZERO
    restore_action = "restore_nodegroup"
    tagging_type = EKS_NODEGROUP
    watch_events = (
        ("eks.amazonaws.com", "CreateNodegroup"),
        ("eks.amazonaws.com", "UpdateNodegroupConfig"),
    )

    def discover(self, scan: RegionScan) -> list[Resource]:
        eks = scan.clients("eks", scan.region)
        out = []
        for arn in scan.arns_of(self.tagging_type):
            cluster, name = nodegroup_names(arn)
            ng = describe_if_present(eks, cluster, name)
            if ng is not None:
                out.append(nodegroup_resource(ng, scan.region))
        return out

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        if r.state in GONE_STATES:
            return f"node group is {r.state}"
        return "already scaled to zero" if r.desired_count == 0 and r.min_size == 0 else None

    def act_reason(self, r: Resource) -> str:
        return f"node group min {r.min_size}/desired {r.desired_count} → 0 ({r.state or 'ACTIVE'})"

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r = d.resource
        ctx.clients("eks", r.region).update_nodegroup_config(
            clusterName=r.cluster, nodegroupName=r.name, scalingConfig={"minSize": 0, "desiredSize": 0}
        )
        return ActResult(d, success(d, f"min {r.min_size}/desired {r.desired_count} → 0 (max {r.max_size} kept)"))

    def restore_one(self, entry: Any, ctx: ActContext) -> str:
        r = entry.resource
        ctx.clients("eks", r.region).update_nodegroup_config(
            clusterName=r.cluster,
            nodegroupName=r.name,
            scalingConfig={"minSize": r.min_size or 0, "maxSize": r.max_size or 1, "desiredSize": r.desired_count or 0},
        )
        return f"min {r.min_size}/max {r.max_size}/desired {r.desired_count}"

    def restore_text(self, entry: Any) -> str:
        r = entry.resource
        return f"node group min {r.min_size}/max {r.max_size}/desired {r.desired_count}"

    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        for r in resources:
            ng = describe_if_present(ctx.clients("eks", r.region), r.cluster or "", r.name)
            if ng is None:
                continue  # deleted meanwhile: nothing runs
            desired = int((ng.get("scalingConfig") or {}).get("desiredSize", 0))
            if desired > 0:
                out[r.key] = f"desired size {desired}"
        return out

    def grants(self) -> list[IamGrant]:
        return [
            IamGrant("Discover", ("eks:DescribeNodegroup",)),
            IamGrant(
                "ScaleTaggedNodegroups",
                ("eks:UpdateNodegroupConfig",),
                (NODEGROUPS,),
                TAG_PRESENT,
                "Agent node groups run in every configured region and have unknown names; every write is "
                "conditioned on the agent-name resource tag being present (Null: false)",
            ),
        ]
