"""Managed compute for the meter's tick: SageMaker notebook instances and endpoints, RDS DB instances.

One Resource Groups Tagging API walk per region (key `agent-name`, any value; types `sagemaker:notebook-instance`,
`sagemaker:endpoint`, `rds:db`) finds what is tagged for some agent; the kill kinds' own discovery helpers then read
the live state: `ListNotebookInstances` / `ListEndpoints` with `StatusEquals=InService` (server-side), the endpoint's
variants (instance type from its endpoint config × running count), `DescribeDBInstances` by ARN (100 per call).

Price items (USD per hour in `killswitch/data/compute_prices.json`, or the Price List API when it answers):
- `sagemaker:<ml type>`: one notebook instance, or one instance of an endpoint variant (a serverless variant has no
  instance type: `sagemaker:serverless`, unpriced, reported);
- `rds:<db class>` for PostgreSQL / MySQL / MariaDB (Multi-AZ counts 2: a standby instance bills too),
  `rds-aurora:<db class>` for Aurora instances, `rds-<engine>:<db class>` for the rest (licence-dependent: unpriced
  unless the snapshot or the Price List answers).
A stopped notebook, a stopped database and an endpoint that is not InService accrue nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from killswitch import tags as T
from killswitch.kill.discover import arn_type
from killswitch.kill.kinds.rds import RDS_INSTANCE, RdsInstances
from killswitch.kill.kinds.sagemaker import ENDPOINT, NOTEBOOK, endpoint_variants, gone, listed
from killswitch.kill.model import Resource
from killswitch.meter.compute import RunningUnit

SAGEMAKER_NOTEBOOK_KIND = "sagemaker_notebook"
SAGEMAKER_ENDPOINT_KIND = "sagemaker_endpoint"
RDS_INSTANCE_KIND = "rds_instance"
TAGGING_TYPES = [NOTEBOOK, ENDPOINT, RDS_INSTANCE]
RDS_NOT_BILLED = {"stopped", "stopping", "starting", "creating", "deleting", "deleted", "failed"}
OPEN_SOURCE_ENGINES = ("postgres", "mysql", "mariadb")


def rds_item(engine: str, instance_class: str) -> str:
    if engine.startswith("aurora"):
        return f"rds-aurora:{instance_class}"
    if engine in OPEN_SOURCE_ENGINES:
        return f"rds:{instance_class}"
    return f"rds-{engine}:{instance_class}"


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


class ManagedComputeSource:
    """A `ComputeSource` for SageMaker notebooks and endpoints and RDS instances tagged `agent-name`."""

    def __init__(self, clients: Callable[[str, str], Any]):
        self.clients = clients

    def _tagged(self, region: str) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
        by_type: dict[str, list[str]] = defaultdict(list)
        tags: dict[str, dict[str, str]] = {}
        pages = (
            self.clients("resourcegroupstaggingapi", region)
            .get_paginator("get_resources")
            .paginate(TagFilters=[{"Key": T.AGENT_NAME}], ResourceTypeFilters=TAGGING_TYPES, ResourcesPerPage=100)
        )
        for page in pages:
            for m in page.get("ResourceTagMappingList", []):
                arn = m["ResourceARN"]
                by_type[arn_type(arn)].append(arn)
                tags[arn] = T.tag_list_to_dict(m.get("Tags"))
        return by_type, tags

    def running(self, region: str) -> list[RunningUnit]:
        by_type, tags = self._tagged(region)
        out: list[RunningUnit] = []
        if by_type.get(NOTEBOOK) or by_type.get(ENDPOINT):
            out += self._sagemaker(region, by_type, tags)
        if by_type.get(RDS_INSTANCE):
            out += self._rds(region, by_type[RDS_INSTANCE], tags)
        return out

    def _unit(
        self, kind: str, arn: str, region: str, tags: Mapping[str, str], *, items: dict[str, float], at: Any
    ) -> RunningUnit:
        return RunningUnit(
            agent=tags[T.AGENT_NAME],
            kind=kind,
            resource_id=arn,
            region=region,
            items=items,
            run_id=tags.get(T.AGENT_RUN_ID),
            launched_at=_when(at),
        )

    def _sagemaker(
        self, region: str, by_type: Mapping[str, list[str]], tags: Mapping[str, dict[str, str]]
    ) -> list[RunningUnit]:
        client = self.clients("sagemaker", region)
        out = []
        if by_type.get(NOTEBOOK):
            for nb in listed(
                client,
                "list_notebook_instances",
                "NotebookInstances",
                "NotebookInstanceArn",
                by_type[NOTEBOOK],
                StatusEquals="InService",
            ):
                arn = nb["TaggingArn"]
                items = {f"sagemaker:{nb.get('InstanceType', '')}": 1.0}
                # LastModifiedTime: the last start (a notebook cannot be changed while it runs)
                out.append(
                    self._unit(
                        SAGEMAKER_NOTEBOOK_KIND, arn, region, tags[arn], items=items, at=nb.get("LastModifiedTime")
                    )
                )
        if by_type.get(ENDPOINT):
            for ep in listed(
                client, "list_endpoints", "Endpoints", "EndpointArn", by_type[ENDPOINT], StatusEquals="InService"
            ):
                arn = ep["TaggingArn"]
                try:
                    _, variants, _ = endpoint_variants(client, ep["EndpointName"])
                except ClientError as exc:
                    if gone(exc):
                        continue  # deleted since it was listed: nothing runs
                    raise
                per_type: dict[str, float] = defaultdict(float)
                for v in variants:
                    per_type[f"sagemaker:{v['instance_type'] or 'serverless'}"] += float(v["count"])
                out.append(
                    self._unit(
                        SAGEMAKER_ENDPOINT_KIND, arn, region, tags[arn], items=dict(per_type), at=ep.get("CreationTime")
                    )
                )
        return out

    def _rds(self, region: str, arns: list[str], tags: Mapping[str, dict[str, str]]) -> list[RunningUnit]:
        found: list[Resource] = RdsInstances().describe(
            self.clients("rds", region), region, sorted(set(arns)), dict(tags)
        )
        out = []
        for r in found:
            if r.state in RDS_NOT_BILLED or T.AGENT_NAME not in r.tags:
                continue
            item = rds_item(str(r.extra.get("engine", "")), str(r.extra.get("instance_class", "")))
            multi_az = bool(r.extra.get("multi_az")) and not str(r.extra.get("engine", "")).startswith("aurora")
            out.append(
                self._unit(
                    RDS_INSTANCE_KIND,
                    r.resource_id,
                    region,
                    r.tags,
                    items={item: 2.0 if multi_az else 1.0},
                    at=r.extra.get("created"),
                )
            )
        return out
