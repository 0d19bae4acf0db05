"""Discovery: everything tagged with the agent (or one run) in every configured region, with current state.

Per region:
1. Resource Groups Tagging API `GetResources` (paginated, `TagFilters` agent-name [+ agent-run-id],
   `ResourceTypeFilters` ec2:instance, ecs:service, ecs:task). moto 5.2 returns ECS services and tasks through it,
   so no ListClusters/ListServices fallback is needed offline; real AWS returns them too.
2. Auto Scaling groups through `DescribeAutoScalingGroups(Filters=[tag:agent-name])`: the tagging API does not
   list ASGs (neither in moto nor reliably in AWS).
3. Describe calls in batches for the live state and the authoritative tags: EC2 `DescribeInstances` (1000 ids
   per call; a batch that names a vanished instance is re-read with an `instance-id` filter), ECS
   `DescribeServices` (10 per cluster) and `DescribeTasks` (100 per cluster) with `include=TAGS`, Application
   Auto Scaling `DescribeScalableTargets` (50 per call) for the services.
Resources whose live tags no longer match (the tagging API may list stale or stopped resources) are dropped here;
the plan checks the tags again anyway.

A region that cannot be read (access denied, endpoint down) does not stop the others: it is reported as a
`DiscoveryFailure` and becomes an error result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from killswitch import aws
from killswitch import tags as T
from killswitch.kill.model import ASG, EC2_INSTANCE, ECS_SERVICE, ECS_TASK, Resource, ScalableTarget

ClientFactory = Callable[[str, str], Any]
TAGGING_TYPES = ["ec2:instance", "ecs:service", "ecs:task"]
EC2_BATCH, EC2_FILTER_BATCH, ECS_SERVICE_BATCH, ECS_TASK_BATCH, AAS_BATCH = 1000, 200, 10, 100, 50
ECS_DIMENSION = "ecs:service:DesiredCount"
SUSPENDED_KEYS = ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")

X = TypeVar("X")


class Clients:
    """boto3 clients per (service, region), cached; `overrides` lets tests and the demo wrap one client."""

    def __init__(self, session: Any = None, overrides: dict[tuple[str, str], Any] | None = None):
        # One session for all clients: a session caches the service models (loading them costs ~50 ms each).
        self._session = session or boto3.Session()
        self._cache: dict[tuple[str, str], Any] = dict(overrides or {})

    def __call__(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._cache:
            self._cache[key] = aws.client(service, region, session=self._session)
        return self._cache[key]


def chunks(items: Sequence[X], size: int) -> Iterator[list[X]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


@dataclass(frozen=True)
class DiscoveryFailure:
    region: str
    code: str
    message: str


@dataclass
class Discovery:
    resources: list[Resource] = field(default_factory=list)
    failures: list[DiscoveryFailure] = field(default_factory=list)


def discover(agent: str, regions: Iterable[str], clients: ClientFactory, *, run_id: str | None = None) -> Discovery:
    out = Discovery()
    for region in regions:
        try:
            out.resources.extend(discover_region(agent, region, clients, run_id=run_id))
            if run_id is None:
                out.resources.extend(tag_variants(agent, region, clients))
        except (ClientError, BotoCoreError) as exc:
            out.failures.append(DiscoveryFailure(region, aws.error_code(exc), str(exc)))
    return out


def tag_variants(agent: str, region: str, clients: ClientFactory) -> list[Resource]:
    """Resources tagged with a case/whitespace variant of `agent` (`log-summarizer `): GetResources matches values
    exactly, so every `agent-name` value is read once and the variants kept. The plan reports them, never acts."""
    kinds = {"instance": EC2_INSTANCE, "service": ECS_SERVICE, "task": ECS_TASK}
    out: list[Resource] = []
    for page in (
        clients("resourcegroupstaggingapi", region)
        .get_paginator("get_resources")
        .paginate(TagFilters=[{"Key": T.AGENT_NAME}], ResourceTypeFilters=TAGGING_TYPES, ResourcesPerPage=100)
    ):
        for mapping in page.get("ResourceTagMappingList", []):
            tags = T.tag_list_to_dict(mapping.get("Tags"))
            if T.is_name_variant(tags.get(T.AGENT_NAME), agent):
                arn = mapping["ResourceARN"]
                kind, _, rest = arn.split(":", 5)[-1].partition("/")
                rid = rest if kind == "instance" else arn
                out.append(Resource(kinds.get(kind, kind), rid, region, tags=tags, name=arn))
    return out


def _matches(tags: dict[str, str], agent: str, run_id: str | None) -> bool:
    return tags.get(T.AGENT_NAME) == agent and (run_id is None or tags.get(T.AGENT_RUN_ID) == run_id)


def discover_region(agent: str, region: str, clients: ClientFactory, *, run_id: str | None = None) -> list[Resource]:
    tag_filters = [{"Key": T.AGENT_NAME, "Values": [agent]}]
    if run_id:
        tag_filters.append({"Key": T.AGENT_RUN_ID, "Values": [run_id]})
    tagging = clients("resourcegroupstaggingapi", region)
    arns: list[str] = []
    for page in tagging.get_paginator("get_resources").paginate(
        TagFilters=tag_filters, ResourceTypeFilters=TAGGING_TYPES, ResourcesPerPage=100
    ):
        arns.extend(m["ResourceARN"] for m in page.get("ResourceTagMappingList", []))

    instance_ids: list[str] = []
    services: dict[str, list[str]] = defaultdict(list)
    tasks: dict[str, list[str]] = defaultdict(list)
    for arn in arns:
        kind, _, rest = arn.split(":", 5)[-1].partition("/")
        if kind == "instance":
            instance_ids.append(rest)
        elif kind in ("service", "task"):
            cluster = rest.split("/")[0] if "/" in rest else "default"
            (services if kind == "service" else tasks)[cluster].append(arn)

    found: list[Resource] = []
    found += _describe_instances(clients("ec2", region), region, instance_ids)
    if services or tasks:
        ecs = clients("ecs", region)
        found += _describe_services(ecs, clients("application-autoscaling", region), region, services)
        found += _describe_tasks(ecs, region, tasks)
    found += _describe_groups(clients("autoscaling", region), region, tag_filters)
    return [r for r in found if _matches(dict(r.tags), agent, run_id)]


def _instance_pages(ec2: Any, ids: list[str]) -> Iterator[dict[str, Any]]:
    """DescribeInstances by id, 1000 per call; a batch naming an instance that no longer exists fails as a whole
    (`InvalidInstanceID.NotFound`), so that batch is read again with an `instance-id` filter (200 values per
    filter), which simply leaves missing ids out."""
    for batch in chunks(sorted(set(ids)), EC2_BATCH):
        try:
            yield ec2.describe_instances(InstanceIds=batch)
        except ClientError as exc:
            if not aws.error_code(exc).startswith("InvalidInstanceID"):
                raise
            for sub in chunks(batch, EC2_FILTER_BATCH):
                paginator = ec2.get_paginator("describe_instances")
                yield from paginator.paginate(Filters=[{"Name": "instance-id", "Values": sub}])


def _describe_instances(ec2: Any, region: str, ids: list[str]) -> list[Resource]:
    out = []
    for page in _instance_pages(ec2, ids):
        for reservation in page.get("Reservations", []):
            for i in reservation.get("Instances", []):
                tags = T.tag_list_to_dict(i.get("Tags"))
                out.append(
                    Resource(
                        resource_type=EC2_INSTANCE,
                        resource_id=i["InstanceId"],
                        region=region,
                        tags=tags,
                        state=i.get("State", {}).get("Name", ""),
                        name=tags.get("Name", ""),
                        asg_name=tags.get("aws:autoscaling:groupName"),
                        note=i.get("InstanceLifecycle", ""),
                    )
                )
    return out


def _scalable_targets(aas: Any, resource_ids: list[str]) -> dict[str, ScalableTarget]:
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


def service_resource_id(cluster: str, service_name: str) -> str:
    """Application Auto Scaling resource id of an ECS service."""
    return f"service/{cluster}/{service_name}"


def _describe_services(ecs: Any, aas: Any, region: str, by_cluster: dict[str, list[str]]) -> list[Resource]:
    described: list[tuple[str, dict[str, Any]]] = []
    for cluster, arns in by_cluster.items():
        for batch in chunks(sorted(set(arns)), ECS_SERVICE_BATCH):
            resp = ecs.describe_services(cluster=cluster, services=batch, include=["TAGS"])
            described.extend((cluster, s) for s in resp.get("services", []))
    targets = _scalable_targets(aas, [service_resource_id(c, s["serviceName"]) for c, s in described])
    out = []
    for cluster, s in described:
        tags = T.tag_list_to_dict(s.get("tags"))
        out.append(
            Resource(
                resource_type=ECS_SERVICE,
                resource_id=s["serviceArn"],
                region=region,
                tags=tags,
                state=s.get("status", ""),
                name=s["serviceName"],
                cluster=cluster,
                scheduling_strategy=s.get("schedulingStrategy", "REPLICA"),
                desired_count=int(s.get("desiredCount", 0)),
                scalable_target=targets.get(service_resource_id(cluster, s["serviceName"])),
            )
        )
    return out


def _describe_tasks(ecs: Any, region: str, by_cluster: dict[str, list[str]]) -> list[Resource]:
    out = []
    for cluster, arns in by_cluster.items():
        for batch in chunks(sorted(set(arns)), ECS_TASK_BATCH):
            resp = ecs.describe_tasks(cluster=cluster, tasks=batch, include=["TAGS"])
            for t in resp.get("tasks", []):
                tags = T.tag_list_to_dict(t.get("tags"))
                out.append(
                    Resource(
                        resource_type=ECS_TASK,
                        resource_id=t["taskArn"],
                        region=region,
                        tags=tags,
                        state=t.get("lastStatus", ""),
                        name=t["taskArn"].rsplit("/", 1)[-1][:12],
                        cluster=cluster,
                        task_group=t.get("group", ""),
                    )
                )
    return out


def _describe_groups(autoscaling: Any, region: str, tag_filters: list[dict[str, Any]]) -> list[Resource]:
    filters = [{"Name": f"tag:{f['Key']}", "Values": f["Values"]} for f in tag_filters]
    out = []
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate(Filters=filters):
        for g in page.get("AutoScalingGroups", []):
            tags = T.tag_list_to_dict(g.get("Tags"))
            out.append(
                Resource(
                    resource_type=ASG,
                    resource_id=g["AutoScalingGroupName"],
                    region=region,
                    tags=tags,
                    state=g.get("Status") or "InService",
                    name=g["AutoScalingGroupName"],
                    desired_count=int(g["DesiredCapacity"]),
                    min_size=int(g["MinSize"]),
                    max_size=int(g["MaxSize"]),
                    suspended_processes=tuple(sorted(p["ProcessName"] for p in g.get("SuspendedProcesses", []))),
                )
            )
    return out
