"""SageMaker resources tagged `agent-name` (`stop_sagemaker`): notebooks stopped, jobs and endpoints after approval.

- Notebook instances (`InService`, or `Pending`: it becomes InService and bills): `StopNotebookInstance`; restore
  runs `StartNotebookInstance` on the ones the kill stopped. A state SageMaker cannot stop from comes back as that
  notebook's error with the AWS code (`ValidationException`).
- Training and processing jobs `InProgress`: `needs_approval` (a stopped job cannot be resumed, so it is never
  stopped without ops); `killswitch approve` stops them (`StopTrainingJob` / `StopProcessingJob`); not restorable.
- Endpoints: cannot be stopped, only deleted. They are `needs_approval` with the hourly cost they keep accruing
  (variant instance type × instance count × the shipped compute price snapshot); approval deletes the endpoint and
  keeps its endpoint config, and restore re-creates the endpoint (same name, config and tags).

Discovery: the ARNs come from the shared Tagging API pages (`sagemaker:notebook-instance`, `training-job`,
`processing-job`, `endpoint`); the live state comes from one paginated List call per kind and region (with the
server-side `StatusEquals=InProgress` filter for jobs), matched to those ARNs. SageMaker lowercases names in some
ARNs, so ARNs are compared case-insensitively and names are taken from the List results.

IAM: approval and restore are ops commands (ops credentials); the kill Lambda's statements are discovery and
`StopNotebookInstance` on notebooks carrying the `agent-name` tag, nothing that deletes or creates (`OPS_ACTIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from killswitch import aws
from killswitch.config import Action
from killswitch.kill.common import ActResult, success
from killswitch.kill.kinds.base import TAG_PRESENT, ActContext, IamGrant, Kind, PlanRules, RegionScan
from killswitch.kill.model import Act, Decision, Resource

if TYPE_CHECKING:  # the price modules load on the first endpoint scan, not with every kill handler cold start
    from killswitch.meter.compute import HourlyPrices

NOTEBOOK = "sagemaker:notebook-instance"
TRAINING_JOB = "sagemaker:training-job"
PROCESSING_JOB = "sagemaker:processing-job"
ENDPOINT = "sagemaker:endpoint"
SOURCE = "sagemaker.amazonaws.com"
NOTEBOOK_STOPPABLE = {"InService", "Pending"}
NOTEBOOK_STOPPED = {"Stopped", "Stopping"}
ENDPOINT_GONE = {"Deleting", "Failed", "Deleted"}
# What `approve` and `restore` call: ops commands run with ops credentials, never in the kill Lambda, so its policy
# holds only discovery and StopNotebookInstance (the README lists these for the ops role).
OPS_ACTIONS = (
    "sagemaker:StartNotebookInstance",
    "sagemaker:StopTrainingJob",
    "sagemaker:StopProcessingJob",
    "sagemaker:DeleteEndpoint",
    "sagemaker:CreateEndpoint",
    "sagemaker:AddTags",
)
SAGEMAKER_WHY = (
    "Agent SageMaker resources run in every configured region and have unknown names; every write is conditioned on "
    "the agent-name resource tag being present (Null: false)"
)


def arn_of(kind: str, name: str) -> str:
    return f"arn:{{partition}}:sagemaker:*:{{account}}:{kind}/{name}"


def listed(client: Any, operation: str, key: str, arn_key: str, arns: Sequence[str], **kw: Any) -> list[dict]:
    """The List summaries (paginated) whose ARN is one of `arns` (compared case-insensitively), each with the ARN
    the Tagging API gave under `TaggingArn`."""
    wanted = {a.lower(): a for a in arns}
    out = []
    for page in client.get_paginator(operation).paginate(**kw):
        for item in page.get(key, []):
            tagging_arn = wanted.get(str(item.get(arn_key, "")).lower())
            if tagging_arn is not None:
                out.append({**item, "TaggingArn": tagging_arn})
    return out


def endpoint_variants(client: Any, endpoint: str) -> tuple[str, list[dict[str, Any]], str]:
    """(endpoint config name, [{instance_type, count}] per variant, status) of one endpoint. The instance type is
    only in the endpoint config; the running count is the endpoint's (the config's initial count as a fallback)."""
    ep = client.describe_endpoint(EndpointName=endpoint)
    config_name = str(ep.get("EndpointConfigName", ""))
    types: dict[str, tuple[str, int]] = {}
    if config_name:
        cfg = client.describe_endpoint_config(EndpointConfigName=config_name)
        for v in cfg.get("ProductionVariants", []):
            types[v["VariantName"]] = (str(v.get("InstanceType", "")), int(v.get("InitialInstanceCount") or 0))
    variants = []
    for v in ep.get("ProductionVariants", []) or [{"VariantName": n} for n in types]:
        instance_type, initial = types.get(v["VariantName"], ("", 0))
        count = v.get("CurrentInstanceCount", v.get("DesiredInstanceCount", initial))
        variants.append({"instance_type": instance_type, "count": int(count or 0)})
    return config_name, variants, str(ep.get("EndpointStatus", ""))


def gone(exc: ClientError) -> bool:
    """SageMaker answers a describe of something deleted with ValidationException "Could not find ...", not NotFound."""
    return "Could not find" in str(exc)


def hourly_usd(region: str, variants: Sequence[Mapping[str, Any]], prices: HourlyPrices) -> Decimal | None:
    """USD per hour of an endpoint's instances; None when a variant has no priced instance type (serverless)."""
    if not variants:
        return None
    total = Decimal(0)
    for v in variants:
        rate = prices.hourly(region, f"sagemaker:{v['instance_type']}") if v["instance_type"] else None
        if rate is None:
            return None
        total += rate * int(v["count"])
    return total


class _SageMaker(Kind):
    config_action = Action.STOP_SAGEMAKER
    kill_act = Act.STOP
    restore_action = "start"
    noun: ClassVar[str]  # what the texts call it

    def _name(self, r: Resource) -> str:
        return r.name or r.resource_id.rsplit("/", 1)[-1]


class SageMakerNotebooks(_SageMaker):
    resource_type = NOTEBOOK
    tagging_type = NOTEBOOK
    noun = "notebook instance"
    watch_events = ((SOURCE, "CreateNotebookInstance"), (SOURCE, "StartNotebookInstance"))

    def discover(self, scan: RegionScan) -> list[Resource]:
        client = scan.clients("sagemaker", scan.region)
        items = listed(
            client, "list_notebook_instances", "NotebookInstances", "NotebookInstanceArn", scan.arns_of(NOTEBOOK)
        )
        return [
            Resource(
                resource_type=NOTEBOOK,
                resource_id=i["TaggingArn"],
                region=scan.region,
                tags=scan.tagged.get(i["TaggingArn"], {}),
                state=str(i.get("NotebookInstanceStatus", "")),
                name=i["NotebookInstanceName"],
                extra={"instance_type": i.get("InstanceType", "")},
            )
            for i in items
        ]

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        return None if r.state in NOTEBOOK_STOPPABLE else f"notebook instance {r.state}: not running"

    def act_reason(self, r: Resource) -> str:
        return f"notebook instance {r.state} ({r.extra.get('instance_type') or 'unknown type'})"

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r = d.resource
        ctx.clients("sagemaker", r.region).stop_notebook_instance(NotebookInstanceName=self._name(r))
        return ActResult(d, success(d, "stop requested (storage kept; restore starts it again)"))

    def restore_one(self, entry: Any, ctx: ActContext) -> str:
        r = entry.resource
        ctx.clients("sagemaker", r.region).start_notebook_instance(NotebookInstanceName=self._name(r))
        return "start requested"

    def restore_text(self, entry: Any) -> str:
        return "start notebook instance"

    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        for r in resources:
            got = ctx.clients("sagemaker", r.region).describe_notebook_instance(NotebookInstanceName=self._name(r))
            state = str(got.get("NotebookInstanceStatus", ""))
            if state not in NOTEBOOK_STOPPED:
                out[r.key] = f"notebook instance {state}"
        return out

    def grants(self) -> list[IamGrant]:
        return [
            IamGrant("Discover", ("sagemaker:ListNotebookInstances", "sagemaker:DescribeNotebookInstance")),
            IamGrant(
                "StopTaggedSageMaker",
                ("sagemaker:StopNotebookInstance",),
                (arn_of("notebook-instance", "*"),),
                TAG_PRESENT,
                SAGEMAKER_WHY,
            ),
        ]


class _SageMakerJobs(_SageMaker):
    """Training or processing jobs in progress: stopped only with approval (a stopped job cannot be resumed)."""

    op: ClassVar[str]  # training_job | processing_job
    api: ClassVar[str]  # TrainingJob | ProcessingJob

    def discover(self, scan: RegionScan) -> list[Resource]:
        client = scan.clients("sagemaker", scan.region)
        items = listed(
            client,
            f"list_{self.op}s",
            f"{self.api}Summaries",
            f"{self.api}Arn",
            scan.arns_of(self.tagging_type),
            StatusEquals="InProgress",
        )
        return [
            Resource(
                resource_type=self.resource_type,
                resource_id=i["TaggingArn"],
                region=scan.region,
                tags=scan.tagged.get(i["TaggingArn"], {}),
                state=str(i.get(f"{self.api}Status", "")),
                name=i[f"{self.api}Name"],
            )
            for i in items
        ]

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        return None if r.state == "InProgress" else f"{self.noun} {r.state}: not running"

    def approval_reason(self, r: Resource) -> str | None:
        return f"{self.noun} in progress: stopped only with approval (a stopped job cannot be resumed)"

    def act_reason(self, r: Resource) -> str:
        return f"{self.noun} in progress (approved)"

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r = d.resource
        getattr(ctx.clients("sagemaker", r.region), f"stop_{self.op}")(**{f"{self.api}Name": self._name(r)})
        return ActResult(d, success(d, f"{self.noun} stop requested (not restorable)"))

    def not_restorable(self, entry: Any) -> str | None:
        return f"a stopped {self.noun} cannot be resumed: start a new one"

    def restore_text(self, entry: Any) -> str:
        return f"nothing (a stopped {self.noun} cannot be resumed)"

    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        for r in resources:
            got = getattr(ctx.clients("sagemaker", r.region), f"describe_{self.op}")(
                **{f"{self.api}Name": self._name(r)}
            )
            if got.get(f"{self.api}Status") == "InProgress":
                out[r.key] = f"{self.noun} InProgress"
        return out


class SageMakerTrainingJobs(_SageMakerJobs):
    resource_type = TRAINING_JOB
    tagging_type = TRAINING_JOB
    noun = "training job"
    op, api = "training_job", "TrainingJob"
    watch_events = ((SOURCE, "CreateTrainingJob"),)

    def grants(self) -> list[IamGrant]:
        return [
            IamGrant("Discover", ("sagemaker:ListTrainingJobs",)),
        ]


class SageMakerProcessingJobs(_SageMakerJobs):
    resource_type = PROCESSING_JOB
    tagging_type = PROCESSING_JOB
    noun = "processing job"
    op, api = "processing_job", "ProcessingJob"
    watch_events = ((SOURCE, "CreateProcessingJob"),)

    def grants(self) -> list[IamGrant]:
        return [
            IamGrant("Discover", ("sagemaker:ListProcessingJobs",)),
        ]


class SageMakerEndpoints(_SageMaker):
    """Endpoints bill per instance hour until deleted: deleted only with approval, re-created by restore."""

    resource_type = ENDPOINT
    tagging_type = ENDPOINT
    kill_act = Act.DELETE
    restore_action = "recreate"
    noun = "endpoint"
    watch_events = ((SOURCE, "CreateEndpoint"),)

    def __init__(self, prices: HourlyPrices | None = None):
        self.prices = prices

    def discover(self, scan: RegionScan) -> list[Resource]:
        from killswitch.meter.compute import SnapshotPrices

        client = scan.clients("sagemaker", scan.region)
        prices = self.prices or SnapshotPrices()
        out = []
        for i in listed(client, "list_endpoints", "Endpoints", "EndpointArn", scan.arns_of(ENDPOINT)):
            name = i["EndpointName"]
            try:
                config_name, variants, state = endpoint_variants(client, name)
            except ClientError as exc:
                if gone(exc):
                    continue  # deleted since it was listed
                # unreadable (permission, config gone): still reported, its cost unknown, never blocks the others
                config_name, variants, state = "", [], f"unreadable ({aws.error_code(exc)})"
            hourly = hourly_usd(scan.region, variants, prices)
            out.append(
                Resource(
                    resource_type=ENDPOINT,
                    resource_id=i["TaggingArn"],
                    region=scan.region,
                    tags=scan.tagged.get(i["TaggingArn"], {}),
                    state=state or str(i.get("EndpointStatus", "")),
                    name=name,
                    extra={
                        "endpoint_config": config_name,
                        "variants": variants,
                        "hourly_usd": None if hourly is None else str(hourly),
                    },
                )
            )
        return out

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        return f"endpoint {r.state}" if r.state in ENDPOINT_GONE else None

    def cost_text(self, r: Resource) -> str:
        sizes = ", ".join(f"{v['count']} × {v['instance_type'] or 'serverless'}" for v in r.extra.get("variants", []))
        hourly = r.extra.get("hourly_usd")
        cost = f"keeps costing ${Decimal(hourly):.2f}/h" if hourly is not None else "keeps costing (price unknown)"
        return f"endpoint {r.state} {cost} ({sizes or 'no variants'})"

    def approval_reason(self, r: Resource) -> str | None:
        return (
            f"{self.cost_text(r)}: an endpoint cannot be stopped, only deleted; deleted only with approval "
            f"(restore re-creates it from endpoint config {r.extra.get('endpoint_config') or '?'})"
        )

    def act_reason(self, r: Resource) -> str:
        return f"{self.cost_text(r)} (approved: delete)"

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r = d.resource
        ctx.clients("sagemaker", r.region).delete_endpoint(EndpointName=self._name(r))
        return ActResult(
            d, success(d, f"endpoint deleted (endpoint config {r.extra.get('endpoint_config')} kept for restore)")
        )

    def restore_one(self, entry: Any, ctx: ActContext) -> str:
        r = entry.resource
        config_name = str(r.extra.get("endpoint_config") or "")
        tags = [{"Key": k, "Value": v} for k, v in sorted(r.tags.items()) if not k.startswith("aws:")]
        ctx.clients("sagemaker", r.region).create_endpoint(
            EndpointName=self._name(r), EndpointConfigName=config_name, Tags=tags
        )
        return f"endpoint re-created from endpoint config {config_name}"

    def not_restorable(self, entry: Any) -> str | None:
        if entry.resource.extra.get("endpoint_config"):
            return None
        return "its endpoint config could not be read when it was deleted: re-create the endpoint by hand"

    def restore_text(self, entry: Any) -> str:
        return f"re-create endpoint from endpoint config {entry.resource.extra.get('endpoint_config') or '?'}"

    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        for r in resources:
            try:
                got = ctx.clients("sagemaker", r.region).describe_endpoint(EndpointName=self._name(r))
            except ClientError as exc:
                if gone(exc):
                    continue
                raise
            state = str(got.get("EndpointStatus", ""))
            if state not in ENDPOINT_GONE:
                out[r.key] = f"endpoint {state}"
        return out

    def grants(self) -> list[IamGrant]:
        return [
            IamGrant(
                "Discover",
                ("sagemaker:ListEndpoints", "sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"),
            ),
        ]
