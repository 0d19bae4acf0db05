"""RDS DB instances and Aurora clusters tagged `agent-name` (`stop_rds`): stopped, started again on restore.

Found through the shared Tagging API pages (`rds:db`, `rds:cluster`), described in batches of 100 ARNs. Instances of
an Aurora cluster are handled through the cluster. AWS starts a stopped instance or cluster again after 7 days with
no API call of the agent: the watch's periodic re-check stops it again (`killswitch.kill.watch`). A state RDS
cannot stop from (read replica, creating, ...) comes back as that resource's error with the AWS code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from killswitch import tags as T
from killswitch.config import Action
from killswitch.kill.common import ActResult, chunks, success
from killswitch.kill.kinds.base import TAG_PRESENT, ActContext, IamGrant, Kind, PlanRules, RegionScan, ids_by_region
from killswitch.kill.model import Act, Decision, Resource

RDS_INSTANCE = "rds:db"
RDS_CLUSTER = "rds:cluster"
DONE_STATES = {"stopped", "stopping", "deleting", "deleted"}
RDS_WHY = (
    "Agent databases run in every configured region and have unknown names; every write is conditioned on the "
    "agent-name resource tag being present (Null: false)"
)


def _instance_extra(item: dict[str, Any]) -> dict[str, Any]:
    """The cluster an instance belongs to (handled through it), and what the meter prices it by."""
    return {
        "cluster": item.get("DBClusterIdentifier"),
        "instance_class": item.get("DBInstanceClass", ""),
        "engine": item.get("Engine", ""),
        "multi_az": bool(item.get("MultiAZ")),
        "created": str(item.get("InstanceCreateTime") or ""),
    }


class _Rds(Kind):
    config_action = Action.STOP_RDS
    kill_act = Act.STOP
    restore_action = "start"
    noun: ClassVar[str]  # DBInstance | DBCluster
    filter_name: ClassVar[str]
    id_key: ClassVar[str]
    status_key: ClassVar[str]

    def describe(self, client: Any, region: str, arns: list[str], tagged: dict[str, dict[str, str]]) -> list[Resource]:
        out = []
        for batch in chunks(arns, 100):
            resp = getattr(client, f"describe_{self._op()}s")(Filters=[{"Name": self.filter_name, "Values": batch}])
            for item in resp.get(f"{self.noun}s", []):
                arn = item[f"{self.noun}Arn"]
                tags = T.tag_list_to_dict(item.get("TagList")) or tagged.get(arn, {})
                out.append(
                    Resource(
                        resource_type=self.resource_type,
                        resource_id=arn,
                        region=region,
                        tags=tags,
                        state=str(item.get(self.status_key, "")),
                        name=item[self.id_key],
                        extra=_instance_extra(item) if self.noun == "DBInstance" else {},
                    )
                )
        return out

    def discover(self, scan: RegionScan) -> list[Resource]:
        arns = scan.arns_of(self.tagging_type)
        return self.describe(scan.clients("rds", scan.region), scan.region, arns, scan.tagged) if arns else []

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        if r.state in DONE_STATES:
            return f"already {r.state}"
        if r.extra.get("cluster"):
            return f"member of Aurora cluster {r.extra['cluster']}: handled through the cluster"
        return None

    def act_reason(self, r: Resource) -> str:
        return f"database {r.state or 'available'}"

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r = d.resource
        getattr(ctx.clients("rds", r.region), f"stop_{self._op()}")(**{self.id_key: r.name})
        return ActResult(d, success(d, "stop requested (AWS starts it again after 7 days; the re-check stops it)"))

    def restore_one(self, entry: Any, ctx: ActContext) -> str:
        r = entry.resource
        getattr(ctx.clients("rds", r.region), f"start_{self._op()}")(**{self.id_key: r.name})
        return "start requested"

    def _op(self) -> str:
        return "db_instance" if self.noun == "DBInstance" else "db_cluster"

    def restore_text(self, entry: Any) -> str:
        return f"start {'database' if self.noun == 'DBInstance' else 'cluster'}"

    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        for region, arns in ids_by_region(resources).items():
            for r in self.describe(ctx.clients("rds", region), region, arns, {}):
                if r.state not in DONE_STATES:
                    out[r.key] = f"database {r.state}"
        return out


class RdsInstances(_Rds):
    resource_type = RDS_INSTANCE
    tagging_type = RDS_INSTANCE
    noun = "DBInstance"
    filter_name = "db-instance-id"
    id_key = "DBInstanceIdentifier"
    status_key = "DBInstanceStatus"
    watch_events = (("rds.amazonaws.com", "StartDBInstance"), ("rds.amazonaws.com", "CreateDBInstance"))

    def grants(self) -> list[IamGrant]:
        return [
            IamGrant("Discover", ("rds:DescribeDBInstances", "rds:DescribeDBClusters")),
            IamGrant(
                "StopStartTaggedDatabases",
                ("rds:StopDBInstance", "rds:StartDBInstance", "rds:StopDBCluster", "rds:StartDBCluster"),
                ("arn:{partition}:rds:*:{account}:db:*", "arn:{partition}:rds:*:{account}:cluster:*"),
                TAG_PRESENT,
                RDS_WHY,
            ),
        ]


class RdsClusters(_Rds):
    resource_type = RDS_CLUSTER
    tagging_type = RDS_CLUSTER
    noun = "DBCluster"
    filter_name = "db-cluster-id"
    id_key = "DBClusterIdentifier"
    status_key = "Status"
    watch_events = (("rds.amazonaws.com", "StartDBCluster"), ("rds.amazonaws.com", "CreateDBCluster"))
