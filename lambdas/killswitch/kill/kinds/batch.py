"""AWS Batch (`stop_batch`): queues disabled, compute environments at 0 vCPUs, jobs terminated only with approval.

- Job queues tagged `agent-name` get `UpdateJobQueue(state=DISABLED)`: a disabled queue takes no new jobs. Restore
  enables only the queues this kill disabled (a queue already disabled is skipped, so it is never recorded).
- Jobs of those queues that are not finished (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING: a disabled queue
  still runs what it holds) always wait for `killswitch approve`: terminating a job loses its work and cannot be
  undone (restore resubmits nothing). A job is the agent's when its queue is; its own tags override the queue's
  (`killswitch:exempt`, `killswitch:criticality`, another `agent-name`, the `agent-run-id` of a run-scoped kill).
  The kill Lambda never terminates a job itself (approval runs with ops credentials), so it has no
  `batch:TerminateJob` permission.
- Managed compute environments tagged `agent-name` get min and max vCPUs 0 (restored exactly; see
  `BatchComputeEnvironments`).

Discovery: the shared Resource Groups Tagging API pages (`batch:job-queue`, `batch:compute-environment`: AWS's
`GetResources` lists every resource type), then `DescribeJobQueues` / `DescribeComputeEnvironments` for the listed
ARNs (100 per call) for live state and tags; a region without the agent's Batch resources costs nothing extra.
Jobs cost one `ListJobs` per status and queue of the agent, and one `DescribeJobs` per 100 jobs (for their own
tags). (moto's Tagging API lists no Batch resources: the tests and the bench add them, see
`killswitch.testing.sim_kinds.tagging_with_eks_and_batch`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from killswitch import tags as T
from killswitch.config import Action
from killswitch.kill.common import ActResult, chunks, success
from killswitch.kill.kinds.base import TAG_PRESENT, ActContext, IamGrant, Kind, PlanRules, RegionScan, ids_by_region
from killswitch.kill.model import Act, Decision, Resource

BATCH_QUEUE = "batch:job-queue"
BATCH_JOB = "batch:job"
BATCH_CE = "batch:compute-environment"
QUEUES = "arn:{partition}:batch:*:{account}:job-queue/*"
ENVIRONMENTS = "arn:{partition}:batch:*:{account}:compute-environment/*"
ACTIVE_JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
GONE = {"DELETING", "DELETED"}
DESCRIBE_BATCH = 100  # ARNs per DescribeJobQueues / DescribeComputeEnvironments / DescribeJobs call
SHARED_QUEUES = "batch:agent-queues"
BATCH_WHY = (
    "Agent job queues exist in every configured region and have unknown names; every write is conditioned on the "
    "agent-name resource tag being present (Null: false)"
)


def queue_resource(q: dict[str, Any], region: str) -> Resource:
    return Resource(
        resource_type=BATCH_QUEUE,
        resource_id=q["jobQueueArn"],
        region=region,
        tags=dict(q.get("tags") or {}),
        state=str(q.get("state", "")),
        name=q["jobQueueName"],
        extra={"status": q.get("status", "")},
    )


def describe_queues(client: Any, arns: Sequence[str]) -> list[dict[str, Any]]:
    return [
        q for batch in chunks(arns, DESCRIBE_BATCH) for q in client.describe_job_queues(jobQueues=batch)["jobQueues"]
    ]


def agent_queue_arns(scan: RegionScan) -> list[str]:
    """A run-scoped kill's shared pages hold only what carries the run's id; the run's jobs sit in the agent's queues
    (tagged with the agent, not the run): one Tagging API walk for those queues."""
    pages = scan.clients("resourcegroupstaggingapi", scan.region).get_paginator("get_resources")
    return sorted(
        {
            m["ResourceARN"]
            for page in pages.paginate(
                TagFilters=[{"Key": T.AGENT_NAME, "Values": [scan.agent]}], ResourceTypeFilters=[BATCH_QUEUE]
            )
            for m in page.get("ResourceTagMappingList", [])
        }
    )


def agent_queues(scan: RegionScan) -> list[dict[str, Any]]:
    """The job queues tagged with the agent's name (any run), read once per region scan and shared by both kinds."""
    if SHARED_QUEUES not in scan.shared:
        arns = scan.arns_of(BATCH_QUEUE) if scan.run_id is None else agent_queue_arns(scan)
        found = describe_queues(scan.clients("batch", scan.region), arns) if arns else []
        scan.shared[SHARED_QUEUES] = [q for q in found if (q.get("tags") or {}).get(T.AGENT_NAME) == scan.agent]
    return list(scan.shared[SHARED_QUEUES])


def describe_jobs(client: Any, job_ids: Sequence[str]) -> list[dict[str, Any]]:
    return [j for batch in chunks(job_ids, DESCRIBE_BATCH) for j in client.describe_jobs(jobs=batch)["jobs"]]


class BatchJobQueues(Kind):
    resource_type = BATCH_QUEUE
    config_action = Action.STOP_BATCH
    kill_act = Act.DISABLE
    restore_action = "enable_queue"
    tagging_type = BATCH_QUEUE
    watch_events = (
        ("batch.amazonaws.com", "CreateJobQueue"),
        ("batch.amazonaws.com", "UpdateJobQueue"),
        ("batch.amazonaws.com", "SubmitJob"),
    )

    def discover(self, scan: RegionScan) -> list[Resource]:
        return [queue_resource(q, scan.region) for q in agent_queues(scan)]

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        status = str(r.extra.get("status", ""))
        if status in GONE:
            return f"job queue is {status}"
        return "job queue already disabled" if r.state == "DISABLED" else None

    def act_reason(self, r: Resource) -> str:
        return "job queue ENABLED → DISABLED (takes no new jobs)"

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r = d.resource
        ctx.clients("batch", r.region).update_job_queue(jobQueue=r.resource_id, state="DISABLED")
        return ActResult(d, success(d, "job queue disabled: no new jobs (queued and running jobs need approval)"))

    def restore_one(self, entry: Any, ctx: ActContext) -> str:
        r = entry.resource
        ctx.clients("batch", r.region).update_job_queue(jobQueue=r.resource_id, state="ENABLED")
        return "job queue enabled"

    def restore_text(self, entry: Any) -> str:
        return "enable the job queue"

    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        for region, arns in ids_by_region(resources).items():
            for q in describe_queues(ctx.clients("batch", region), arns):
                if q.get("state") != "DISABLED":
                    out[(region, q["jobQueueArn"])] = f"job queue {q.get('state')}"
        return out

    def grants(self) -> list[IamGrant]:
        return [
            IamGrant("Discover", ("batch:DescribeJobQueues", "batch:ListJobs", "batch:DescribeJobs")),
            IamGrant("DisableTaggedBatch", ("batch:UpdateJobQueue",), (QUEUES,), TAG_PRESENT, BATCH_WHY),
        ]


class BatchJobs(Kind):
    resource_type = BATCH_JOB
    config_action = Action.STOP_BATCH
    kill_act = Act.STOP_TASK
    restore_action = "none"

    def discover(self, scan: RegionScan) -> list[Resource]:
        queues = agent_queues(scan)
        if not queues:
            return []  # and no Batch client: a hub kill would make one per account × region for nothing
        batch = scan.clients("batch", scan.region)
        out = []
        for q in queues:
            queue_tags = dict(q.get("tags") or {})
            ids = [
                s["jobId"]
                for status in ACTIVE_JOB_STATUSES
                for page in batch.get_paginator("list_jobs").paginate(jobQueue=q["jobQueueArn"], jobStatus=status)
                for s in page.get("jobSummaryList", [])
            ]
            for j in describe_jobs(batch, list(dict.fromkeys(ids))):
                out.append(
                    Resource(
                        resource_type=BATCH_JOB,
                        resource_id=j["jobArn"],
                        region=scan.region,
                        tags={**queue_tags, **dict(j.get("tags") or {})},
                        state=str(j.get("status", "")),
                        name=j.get("jobName") or j["jobId"],
                        extra={"job_id": j["jobId"], "job_queue": q["jobQueueName"]},
                    )
                )
        return out

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        return None if r.state in ACTIVE_JOB_STATUSES else f"job already {r.state}"

    def approval_reason(self, r: Resource) -> str | None:
        return (
            f"Batch job {r.state} in queue {r.extra.get('job_queue')}: terminating it loses its work and cannot be "
            "undone, so it waits for `killswitch approve`"
        )

    def act_reason(self, r: Resource) -> str:
        return f"terminate job {r.state}"

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r = d.resource
        ctx.clients("batch", r.region).terminate_job(jobId=str(r.extra["job_id"]), reason=ctx.reason[:1024])
        return ActResult(d, success(d, "job terminated"))

    def not_restorable(self, entry: Any) -> str | None:
        return "a terminated Batch job cannot be restarted: resubmit it"

    def restore_text(self, entry: Any) -> str:
        return "nothing (a terminated Batch job cannot be restarted; resubmit it)"


def environment_resource(ce: dict[str, Any], region: str) -> Resource:
    cr = ce.get("computeResources") or {}
    return Resource(
        resource_type=BATCH_CE,
        resource_id=ce["computeEnvironmentArn"],
        region=region,
        tags=dict(ce.get("tags") or {}),
        state=str(ce.get("state", "")),
        name=ce["computeEnvironmentName"],
        min_size=int(cr.get("minvCpus", 0)),
        max_size=int(cr.get("maxvCpus", 0)),
        desired_count=int(cr.get("desiredvCpus", 0)),
        extra={"type": ce.get("type", ""), "compute": cr.get("type", ""), "status": ce.get("status", "")},
    )


def is_fargate(r: Resource) -> bool:
    return str(r.extra.get("compute", "")).startswith("FARGATE")


class BatchComputeEnvironments(Kind):
    """Managed compute environments tagged `agent-name`: min and max vCPUs 0, so Batch launches nothing (the held
    jobs that wait for approval do not run meanwhile) and scales in what is idle. Restore: min and max as recorded;
    desired vCPUs stay Batch's (the API can raise them but never lower them, and Batch sets them from demand).
    Fargate environments have only max vCPUs. Unmanaged ones are the agent's own instances (`stop_ec2`)."""

    resource_type = BATCH_CE
    config_action = Action.STOP_BATCH
    kill_act = Act.SCALE_TO_ZERO
    restore_action = "restore_vcpus"
    tagging_type = BATCH_CE
    watch_events = (
        ("batch.amazonaws.com", "CreateComputeEnvironment"),
        ("batch.amazonaws.com", "UpdateComputeEnvironment"),
    )

    def _describe(self, client: Any, arns: Sequence[str]) -> list[dict[str, Any]]:
        return [
            ce
            for batch in chunks(arns, DESCRIBE_BATCH)
            for ce in client.describe_compute_environments(computeEnvironments=batch)["computeEnvironments"]
        ]

    def discover(self, scan: RegionScan) -> list[Resource]:
        arns = scan.arns_of(self.tagging_type)
        found = self._describe(scan.clients("batch", scan.region), arns) if arns else []
        return [environment_resource(ce, scan.region) for ce in found]

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        if r.extra.get("type") != "MANAGED":
            return "unmanaged compute environment: its instances are the agent's EC2 instances (stop_ec2)"
        if str(r.extra.get("status", "")) in GONE:
            return f"compute environment is {r.extra['status']}"
        if r.max_size == 0 and (r.min_size == 0 or is_fargate(r)):
            return "already scaled to zero"
        return None

    def act_reason(self, r: Resource) -> str:
        return f"vCPUs min {r.min_size}/max {r.max_size} → 0 (desired {r.desired_count}: Batch scales in)"

    def _vcpus(self, r: Resource, min_vcpus: int, max_vcpus: int) -> dict[str, int]:
        return {"maxvCpus": max_vcpus} if is_fargate(r) else {"minvCpus": min_vcpus, "maxvCpus": max_vcpus}

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r = d.resource
        ctx.clients("batch", r.region).update_compute_environment(
            computeEnvironment=r.resource_id, computeResources=self._vcpus(r, 0, 0)
        )
        return ActResult(d, success(d, f"vCPUs min {r.min_size}/max {r.max_size} → 0"))

    def restore_one(self, entry: Any, ctx: ActContext) -> str:
        r = entry.resource
        ctx.clients("batch", r.region).update_compute_environment(
            computeEnvironment=r.resource_id, computeResources=self._vcpus(r, r.min_size or 0, r.max_size or 0)
        )
        return f"vCPUs min {r.min_size}/max {r.max_size}"

    def restore_text(self, entry: Any) -> str:
        r = entry.resource
        return f"vCPUs min {r.min_size}/max {r.max_size} (desired: Batch's)"

    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        """Max (and min) 0 is the stop; instances still running scale in as they go idle, like EC2 `stopping`."""
        out: dict[tuple[str, str], str] = {}
        for region, arns in ids_by_region(resources).items():
            for ce in self._describe(ctx.clients("batch", region), arns):
                now = environment_resource(ce, region)
                if now.max_size or (now.min_size and not is_fargate(now)):
                    out[now.key] = f"vCPUs min {now.min_size}/max {now.max_size}"
        return out

    def grants(self) -> list[IamGrant]:
        return [
            IamGrant("Discover", ("batch:DescribeComputeEnvironments",)),
            IamGrant(
                "ScaleTaggedBatchEnvironments",
                ("batch:UpdateComputeEnvironment",),
                (ENVIRONMENTS,),
                TAG_PRESENT,
                BATCH_WHY,
            ),
        ]
