"""Running compute → hourly price → spend accrued since the last tick (every `meter.tick_minutes`, default 5).

Two small interfaces keep the kinds pluggable (the kill engine's resource-kind registry adds SageMaker, RDS, ...
later: each new kind is one more `ComputeSource` and price items in the snapshot):
- `ComputeSource.running(region)` → `RunningUnit`s: what runs now, for which agent (its `agent-name` tag), and the
  price items it consumes per hour (`{"ec2:t3.micro": 1}`, `{"fargate:vcpu": 0.25, "fargate:gb": 0.5}`);
- `HourlyPrices.hourly(region, item)` → USD per hour of one item, or None when unknown (the unit is counted and
  reported as unpriced, never guessed).

Sources use server-side tag filters: EC2 `DescribeInstances` with `tag-key=agent-name` and
`instance-state-name=running`; ECS tasks through the Resource Groups Tagging API (`ecs:task`, key `agent-name`),
then `DescribeTasks` (100 per call) for launch type, cpu and memory (Fargate only: EC2-backed tasks run on
instances that are already priced).

Prices: `SnapshotPrices` reads `killswitch/data/compute_prices.json` (shipped, offline, on-demand Linux);
`PriceListPrices` asks the Price List API (`pricing:GetProducts`, served from us-east-1) and keeps each answer in a
`PriceCache` for a day, falling back to the snapshot when the API has no answer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any, Protocol

from killswitch import tags as T
from killswitch.kill.common import chunks

EC2_INSTANCE_KIND = "ec2_instance"
FARGATE_TASK_KIND = "fargate_task"
PRICE_TTL = timedelta(days=1)
ZERO = Decimal(0)


@dataclass(frozen=True)
class RunningUnit:
    agent: str
    kind: str
    resource_id: str
    region: str
    items: Mapping[str, float]  # price item → quantity per hour
    run_id: str | None = None
    launched_at: datetime | None = None


class ComputeSource(Protocol):
    def running(self, region: str) -> list[RunningUnit]: ...


class HourlyPrices(Protocol):
    def hourly(self, region: str, item: str) -> Decimal | None: ...


# ----------------------------------------------------------------------------------------------------------
# sources
# ----------------------------------------------------------------------------------------------------------
class Ec2Source:
    def __init__(self, clients: Callable[[str, str], Any]):
        self.clients = clients

    def running(self, region: str) -> list[RunningUnit]:
        out = []
        pages = (
            self.clients("ec2", region)
            .get_paginator("describe_instances")
            .paginate(
                Filters=[
                    {"Name": "tag-key", "Values": [T.AGENT_NAME]},
                    {"Name": "instance-state-name", "Values": ["running"]},
                ]
            )
        )
        for page in pages:
            for reservation in page.get("Reservations", []):
                for i in reservation.get("Instances", []):
                    tags = T.tag_list_to_dict(i.get("Tags"))
                    out.append(
                        RunningUnit(
                            agent=tags[T.AGENT_NAME],
                            kind=EC2_INSTANCE_KIND,
                            resource_id=i["InstanceId"],
                            region=region,
                            items={f"ec2:{i['InstanceType']}": 1.0},
                            run_id=tags.get(T.AGENT_RUN_ID),
                            launched_at=i.get("LaunchTime"),
                        )
                    )
        return out


class FargateSource:
    def __init__(self, clients: Callable[[str, str], Any]):
        self.clients = clients
        self._sizes: dict[str, tuple[str | None, str | None]] = {}

    def _definition_size(self, ecs: Any, arn: str) -> tuple[str | None, str | None]:
        if arn and arn not in self._sizes:
            d = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            self._sizes[arn] = (d.get("cpu"), d.get("memory"))
        return self._sizes.get(arn, (None, None))

    def running(self, region: str) -> list[RunningUnit]:
        by_cluster: dict[str, list[str]] = defaultdict(list)
        for page in (
            self.clients("resourcegroupstaggingapi", region)
            .get_paginator("get_resources")
            .paginate(TagFilters=[{"Key": T.AGENT_NAME}], ResourceTypeFilters=["ecs:task"], ResourcesPerPage=100)
        ):
            for m in page.get("ResourceTagMappingList", []):
                arn = m["ResourceARN"]
                rest = arn.split(":", 5)[-1].partition("/")[2]
                by_cluster[rest.split("/")[0] if "/" in rest else "default"].append(arn)
        out = []
        ecs = self.clients("ecs", region) if by_cluster else None
        for cluster, arns in by_cluster.items():
            for batch in chunks(sorted(set(arns)), 100):
                for t in ecs.describe_tasks(cluster=cluster, tasks=batch, include=["TAGS"]).get("tasks", []):  # type: ignore[union-attr]
                    tags = T.tag_list_to_dict(t.get("tags"))
                    if t.get("launchType") != "FARGATE" or t.get("lastStatus") != "RUNNING":
                        continue
                    if T.AGENT_NAME not in tags:
                        continue
                    cpu, memory = t.get("cpu"), t.get("memory")
                    if not cpu or not memory:  # AWS reports both for Fargate; else the task definition's
                        cpu, memory = self._definition_size(ecs, t.get("taskDefinitionArn", ""))
                    vcpu = float(cpu or 0) / 1024
                    gb = float(memory or 0) / 1024
                    out.append(
                        RunningUnit(
                            agent=tags[T.AGENT_NAME],
                            kind=FARGATE_TASK_KIND,
                            resource_id=t["taskArn"],
                            region=region,
                            items={"fargate:vcpu": vcpu, "fargate:gb": gb},
                            run_id=tags.get(T.AGENT_RUN_ID),
                            launched_at=t.get("startedAt") or t.get("createdAt"),
                        )
                    )
        return out


# ----------------------------------------------------------------------------------------------------------
# prices
# ----------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def snapshot_data() -> dict[str, Any]:
    text = resources.files("killswitch").joinpath("data/compute_prices.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


class SnapshotPrices:
    """The shipped snapshot: `regions.<region>.<item>` USD per hour."""

    def __init__(self, data: Mapping[str, Any] | None = None):
        self.data = data if data is not None else snapshot_data()

    def hourly(self, region: str, item: str) -> Decimal | None:
        value = self.data.get("regions", {}).get(region, {}).get(item)
        return None if value is None else Decimal(str(value))


class PriceCache(Protocol):
    def get(self, key: str) -> tuple[Decimal | None, datetime] | None: ...

    def put(self, key: str, value: Decimal | None, fetched_at: datetime) -> None: ...


class MemoryPriceCache:
    def __init__(self) -> None:
        self.items: dict[str, tuple[Decimal | None, datetime]] = {}

    def get(self, key: str) -> tuple[Decimal | None, datetime] | None:
        return self.items.get(key)

    def put(self, key: str, value: Decimal | None, fetched_at: datetime) -> None:
        self.items[key] = (value, fetched_at)


def _on_demand_usd(price_item: str) -> Decimal | None:
    """USD per unit of the first OnDemand price dimension of one Price List product (a JSON string)."""
    product = json.loads(price_item)
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dim in term.get("priceDimensions", {}).values():
            usd = dim.get("pricePerUnit", {}).get("USD")
            if usd is not None and Decimal(usd) > 0:
                return Decimal(usd)
    return None


def price_list_filters(region: str, item: str) -> tuple[str, list[dict[str, str]]] | None:
    """(ServiceCode, Filters) of `pricing:GetProducts` for one price item, or None for an item it cannot ask."""

    def f(field_name: str, value: str) -> dict[str, str]:
        return {"Type": "TERM_MATCH", "Field": field_name, "Value": value}

    kind, _, spec = item.partition(":")
    if kind == "ec2":
        return "AmazonEC2", [
            f("regionCode", region),
            f("instanceType", spec),
            f("operatingSystem", "Linux"),
            f("tenancy", "Shared"),
            f("preInstalledSw", "NA"),
            f("capacitystatus", "Used"),
            f("licenseModel", "No License required"),
        ]
    if kind == "fargate" and spec in ("vcpu", "gb"):
        usage = "Fargate-vCPU-Hours:perCPU" if spec == "vcpu" else "Fargate-GB-Hours"
        return "AmazonECS", [f("regionCode", region), f("usagetype", _fargate_usage_type(region, usage))]
    return None


def _fargate_usage_type(region: str, usage: str) -> str:
    # Price List usage types carry a region code prefix except in us-east-1 (e.g. USW2-Fargate-GB-Hours).
    prefixes = snapshot_data().get("usage_type_prefixes", {})
    prefix = prefixes.get(region, "")
    return f"{prefix}-{usage}" if prefix else usage


@dataclass
class PriceListPrices:
    """`pricing:GetProducts` with a day-long cache; the snapshot answers what the API does not."""

    pricing: Any  # boto3 "pricing" client (us-east-1)
    cache: PriceCache
    fallback: HourlyPrices = field(default_factory=SnapshotPrices)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now().astimezone())
    calls: int = 0

    def hourly(self, region: str, item: str) -> Decimal | None:
        key = f"{region}#{item}"
        now = self.clock()
        hit = self.cache.get(key)
        if hit is not None and now - hit[1] < PRICE_TTL:
            return hit[0] if hit[0] is not None else self.fallback.hourly(region, item)
        query = price_list_filters(region, item)
        value: Decimal | None = None
        if query is not None:
            self.calls += 1
            resp = self.pricing.get_products(ServiceCode=query[0], Filters=query[1], MaxResults=10)
            for price_item in resp.get("PriceList", []):
                value = _on_demand_usd(price_item)
                if value is not None:
                    break
        self.cache.put(key, value, now)
        return value if value is not None else self.fallback.hourly(region, item)


# ----------------------------------------------------------------------------------------------------------
# accrual
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Accrual:
    unit: RunningUnit
    hours: float
    amount_usd: Decimal | None  # None: an item had no price


def accrue(
    units: list[RunningUnit], prices: HourlyPrices, since: datetime | None, now: datetime, default: timedelta
) -> list[Accrual]:
    """Each unit's spend over (since, now], starting no earlier than its launch; `default` when there is no
    previous tick (the first tick counts one interval, not the instance's whole life)."""
    start_all = since if since is not None else now - default
    out = []
    for u in units:
        start = max(start_all, u.launched_at) if u.launched_at else start_all
        hours = max((now - start).total_seconds(), 0) / 3600
        total = ZERO
        priced = True
        for item, qty in u.items.items():
            rate = prices.hourly(u.region, item)
            if rate is None:
                priced = False
                break
            total += rate * Decimal(str(qty)) * Decimal(str(hours))
        out.append(Accrual(u, hours, total if priced else None))
    return out
