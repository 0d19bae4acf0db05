"""Discovery: everything tagged with the agent (or one run) in every configured region, with current state.

Per region, one walk of the Resource Groups Tagging API `GetResources` pages (`ResourceTypeFilters` = the tagging
types of every registered kind, 100 per page) is shared by all kinds; each kind then describes its own ARNs in
batches for the live state and the authoritative tags (see `killswitch.kill.kinds`). Kinds whose own describe call
filters on the tag server-side with live state and as many results per page (EC2: DescribeInstances, 1,000 per
page) skip the walk; kinds the Tagging API cannot list read their own service with a server-side tag filter (Auto
Scaling groups). Global kinds (IAM principals) are read once per kill, in the first region.

The same reads find the resources tagged with a case/whitespace variant of the agent's name (`log-summarizer `),
which the exact-value filters of AWS would miss: for an agent-wide kill the walk filters on the `agent-name` key
only and keeps exact matches and variants (the plan reports variants, never acts on them); a run-scoped kill
filters on the exact values. Resources whose live tags no longer match (the Tagging API may list stale or stopped
resources) are dropped here; the plan checks the tags again anyway.

A region (or a kind in a region) that cannot be read (access denied, endpoint down) does not stop the others: it is
reported as a `DiscoveryFailure` and becomes an error result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from killswitch import aws
from killswitch import tags as T
from killswitch.kill.common import ClientFactory, Clients, chunks
from killswitch.kill.kinds import REGISTRY, Kind, RegionScan, tagging_types
from killswitch.kill.kinds.ecs import ECS_DIMENSION, SUSPENDED_KEYS, service_resource_id
from killswitch.kill.model import EC2_INSTANCE, GLOBAL_REGION, Resource

TAGGING_PAGE = 100

__all__ = [
    "ECS_DIMENSION",
    "SUSPENDED_KEYS",
    "ClientFactory",
    "Clients",
    "Discovery",
    "DiscoveryFailure",
    "chunks",
    "discover",
    "discover_region",
    "service_resource_id",
]


@dataclass(frozen=True)
class DiscoveryFailure:
    region: str
    code: str
    message: str


@dataclass
class Discovery:
    resources: list[Resource] = field(default_factory=list)
    failures: list[DiscoveryFailure] = field(default_factory=list)


def tag_filters_for(agent: str, run_id: str | None) -> list[dict[str, object]]:
    filters: list[dict[str, object]] = [{"Key": T.AGENT_NAME, "Values": [agent]}]
    if run_id:
        filters.append({"Key": T.AGENT_RUN_ID, "Values": [run_id]})
    return filters


def discover(
    agent: str,
    regions: Iterable[str],
    clients: ClientFactory,
    *,
    run_id: str | None = None,
    kinds: Sequence[Kind] | None = None,
) -> Discovery:
    """`kinds`: only these kinds (default: every registered kind that a region scan finds)."""
    out = Discovery()
    regions = list(regions)
    chosen = [k for k in (kinds if kinds is not None else REGISTRY) if not k.discovered_by_engine]
    for region in regions:
        try:
            out.resources.extend(
                discover_region(agent, region, clients, run_id=run_id, kinds=[k for k in chosen if not k.is_global])
            )
        except (ClientError, BotoCoreError) as exc:
            out.failures.append(DiscoveryFailure(region, aws.error_code(exc), str(exc)))
    global_kinds = [k for k in chosen if k.is_global]
    if global_kinds and regions:
        scan = RegionScan(
            agent, GLOBAL_REGION, clients, tag_filters_for(agent, run_id), run_id, client_region=regions[0]
        )
        for kind in global_kinds:
            try:
                out.resources.extend(r for r in kind.discover(scan) if _matches(dict(r.tags), agent, run_id))
            except (ClientError, BotoCoreError) as exc:
                out.failures.append(
                    DiscoveryFailure(GLOBAL_REGION, aws.error_code(exc), f"{kind.resource_type}: {exc}")
                )
    return out


def _matches(tags: dict[str, str], agent: str, run_id: str | None) -> bool:
    return tags.get(T.AGENT_NAME) == agent and (run_id is None or tags.get(T.AGENT_RUN_ID) == run_id)


def arn_type(arn: str) -> str:
    """Tagging API resource type of an ARN: `ec2:instance`, `ecs:service`, `lambda:function`, `rds:db`, ..."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return ""
    resource = parts[5]
    cut = min((i for i in (resource.find("/"), resource.find(":")) if i >= 0), default=len(resource))
    return f"{parts[2]}:{resource[:cut]}"


def discover_region(
    agent: str,
    region: str,
    clients: ClientFactory,
    *,
    run_id: str | None = None,
    kinds: Sequence[Kind] | None = None,
) -> list[Resource]:
    """The agent's resources in one region, then (agent-wide only) the variants of its name, unfiltered."""
    chosen = [k for k in (kinds if kinds is not None else REGISTRY) if not (k.is_global or k.discovered_by_engine)]
    scan = RegionScan(agent, region, clients, tag_filters_for(agent, run_id), run_id, client_region=region)
    if run_id is None:
        scan.variants = []
    types = tagging_types([k for k in chosen if not k.describe_by_tag])
    if types:
        # Agent-wide: the key only, so that variants of the name come in the same pages.
        filters = scan.tag_filters if run_id else [{"Key": T.AGENT_NAME}]
        pages = clients("resourcegroupstaggingapi", region).get_paginator("get_resources")
        for page in pages.paginate(TagFilters=filters, ResourceTypeFilters=types, ResourcesPerPage=TAGGING_PAGE):
            for m in page.get("ResourceTagMappingList", []):
                arn, tags = m["ResourceARN"], T.tag_list_to_dict(m.get("Tags"))
                value = tags.get(T.AGENT_NAME)
                if scan.variants is not None and T.is_name_variant(value, agent):
                    rtype = arn_type(arn)
                    rid = arn.rsplit("/", 1)[-1] if rtype == EC2_INSTANCE else arn
                    scan.variants.append(Resource(rtype, rid, region, tags=tags, name=arn))
                elif value == agent:
                    scan.arns.setdefault(arn_type(arn), []).append(arn)
                    scan.tagged[arn] = tags
    found: list[Resource] = []
    for kind in chosen:
        if kind.tagging_type and not kind.describe_by_tag and not scan.arns.get(kind.tagging_type):
            continue  # nothing of this kind is tagged for the agent here: no describe call
        found += kind.discover(scan)
    return [r for r in found if _matches(dict(r.tags), agent, run_id)] + (scan.variants or [])
