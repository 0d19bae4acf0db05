"""EC2 instances: found by DescribeInstances with a server-side tag filter, stopped with bisecting.

Discovery reads DescribeInstances pages of 1,000 filtered on the tag (live state, ASG membership and every tag in the
same page) instead of the shared Tagging API pages (100 per page) followed by a DescribeInstances by id: at 5,000
instances that is 5 calls instead of 50 + 5. Without a run id the filter is `tag-key=agent-name`, so that the same
pages also find the case/whitespace variants of the agent's name (reported by the plan, never stopped).

`StopInstances` takes every instance of a region in one call (1000 per call); a failed batch is bisected down to
single instances so that one bad instance (`OperationNotPermitted` from disableApiStop, `UnsupportedOperation` for
one-time spot, `IncorrectInstanceState`) never blocks the rest. Throttling that outlived botocore's standard
retries fails the whole batch with its code (splitting would only add calls). Restore starts them the same way.
Auto Scaling members are skipped: the group is handled instead (it would relaunch them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from killswitch import aws
from killswitch import tags as T
from killswitch.config import Action
from killswitch.kill.common import ActResult, bisect_call, chunks, with_action
from killswitch.kill.kinds.base import (
    TAG_PRESENT,
    ActContext,
    IamGrant,
    Kind,
    PlanRules,
    RegionScan,
    ids_by_region,
    restore_decision,
)
from killswitch.kill.model import EC2_INSTANCE, Act, Decision, Resource, result_for
from killswitch.results import Outcome, ResourceResult

EC2_BATCH, EC2_FILTER_BATCH, EC2_CALL_BATCH = 1000, 200, 1000
DONE_STATES = {"stopping", "stopped", "terminated", "shutting-down"}
INSTANCES = "arn:{partition}:ec2:*:{account}:instance/*"
KMS_KEYS = "arn:{partition}:kms:*:{account}:key/*"


def instance_pages(ec2: Any, ids: list[str]) -> Iterator[dict[str, Any]]:
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


def describe_instances(ec2: Any, region: str, ids: list[str]) -> list[Resource]:
    return instances_of(instance_pages(ec2, ids), region)


def instances_of(pages: Iterable[dict[str, Any]], region: str) -> list[Resource]:
    out = []
    for page in pages:
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
                        extra={"instance_type": i.get("InstanceType", "")},
                    )
                )
    return out


class Ec2Instances(Kind):
    resource_type = EC2_INSTANCE
    config_action = Action.STOP_EC2
    kill_act = Act.STOP
    restore_action = "start"
    tagging_type = "ec2:instance"
    batched = True
    watch_events = (("ec2.amazonaws.com", "RunInstances"), ("ec2.amazonaws.com", "StartInstances"))

    describe_by_tag = True

    def discover(self, scan: RegionScan) -> list[Resource]:
        if scan.variants is None:  # one run, or variants not wanted: the exact values
            filters = [{"Name": f"tag:{f['Key']}", "Values": list(f["Values"])} for f in scan.tag_filters]
        else:
            filters = [{"Name": "tag-key", "Values": [T.AGENT_NAME]}]
        pages = (
            scan.clients("ec2", scan.region)
            .get_paginator("describe_instances")
            .paginate(Filters=filters, PaginationConfig={"PageSize": EC2_BATCH})
        )
        found = instances_of(pages, scan.region)
        if scan.variants is not None:
            scan.variants += [r for r in found if T.is_name_variant(r.tags.get(T.AGENT_NAME), scan.agent)]
        return found

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        if r.state in DONE_STATES:
            return f"already {r.state}"
        if r.asg_name:
            return f"member of Auto Scaling group {r.asg_name}: handled through the group"
        return None

    def act_reason(self, r: Resource) -> str:
        return f"instance {r.state or 'running'}"

    def _run(self, decisions: Sequence[Decision], ctx: ActContext, op: str, action: str, done: str) -> list[ActResult]:
        by_region: dict[str, list[Decision]] = defaultdict(list)
        for d in decisions:
            by_region[d.resource.region].append(d)
        out: list[ActResult] = []
        for region, ds in by_region.items():
            fn = getattr(ctx.clients("ec2", region), op)
            index = {d.resource.resource_id: d for d in ds}

            def call(ids: list[str], fn: Any = fn) -> Any:
                return fn(InstanceIds=ids)

            for batch in chunks(list(index), EC2_CALL_BATCH):
                res = bisect_call(batch, call, ctx.stats)
                for iid in batch:
                    d, err = index[iid], res[iid]
                    rr = (
                        result_for(d, Outcome.SUCCESS, done)
                        if err is None
                        else result_for(d, Outcome.ERROR, err[1], err[0])
                    )
                    out.append(ActResult(d, with_action(rr, action)))
        return out

    def act(self, decisions: Sequence[Decision], ctx: ActContext) -> list[ActResult]:
        return self._run(decisions, ctx, "stop_instances", Act.STOP.value, "stop requested")

    def restore(self, entries: Sequence[Any], ctx: ActContext) -> list[ResourceResult]:
        decisions = [restore_decision(e) for e in entries]
        return [
            ar.result for ar in self._run(decisions, ctx, "start_instances", self.restore_action, "start requested")
        ]

    def restore_text(self, entry: Any) -> str:
        return "start instance"

    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        for region, ids in ids_by_region(resources).items():
            for r in describe_instances(ctx.clients("ec2", region), region, ids):
                if r.state not in DONE_STATES:
                    out[r.key] = f"instance {r.state}"
        return out

    def grants(self) -> list[IamGrant]:
        return [
            IamGrant("Discover", ("ec2:DescribeInstances",)),
            IamGrant(
                "StopStartTaggedInstances",
                ("ec2:StopInstances", "ec2:StartInstances"),
                (INSTANCES,),
                TAG_PRESENT,
                "Agent resources run in every configured region and have unknown ids; every write is conditioned on "
                "the agent-name resource tag being present (Null: false)",
            ),
            # Restarting an instance with KMS-encrypted EBS volumes needs a grant for EC2 on the volume keys.
            IamGrant(
                "RestartEncryptedVolumes",
                ("kms:CreateGrant",),
                (KMS_KEYS,),
                {"Bool": {"kms:GrantIsForAWSResource": "true"}},
                "EBS volume keys are not known in advance; kms:CreateGrant is limited to grants for AWS resources "
                "(kms:GrantIsForAWSResource) so that EC2 can start instances with encrypted volumes on restore",
            ),
        ]
