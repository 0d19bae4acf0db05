"""The plan rules of the EKS and Batch kinds: node group and compute environment states, queues already disabled,
and Batch jobs that always wait for approval (the approval lifts it; exempt still wins)."""

from __future__ import annotations

import pytest

from killswitch.config import Action, AgentConfig, Approval, BudgetConfig
from killswitch.kill import kinds
from killswitch.kill.kinds.batch import BATCH_CE, BATCH_JOB, BATCH_QUEUE
from killswitch.kill.kinds.eks import EKS_NODEGROUP
from killswitch.kill.model import Act, Resource
from killswitch.kill.plan import plan_kill

AGENT = "log-summarizer"
MINE = {"agent-name": AGENT}


def agent(**kw: object) -> AgentConfig:
    return AgentConfig(name=AGENT, budget=BudgetConfig(amount_usd=100), **kw)  # type: ignore[arg-type]


def res(rtype: str, tags: dict[str, str] | None = None, **kw: object) -> Resource:
    return Resource(rtype, f"arn:{rtype}:x", "us-east-1", MINE if tags is None else tags, **kw)  # type: ignore[arg-type]


def nodegroup(state: str = "ACTIVE", mn: int = 1, desired: int = 2) -> Resource:
    return res(EKS_NODEGROUP, state=state, name="ng", cluster="c", min_size=mn, max_size=4, desired_count=desired)


def environment(kind: str = "MANAGED", compute: str = "EC2", mn: int = 2, mx: int = 16) -> Resource:
    return res(BATCH_CE, state="ENABLED", min_size=mn, max_size=mx, extra={"type": kind, "compute": compute})


def job(status: str = "RUNNING", tags: dict[str, str] | None = None) -> Resource:
    return res(BATCH_JOB, tags, state=status, extra={"job_id": "j-1", "job_queue": "q"})


CASES = [
    (nodegroup(), Act.SCALE_TO_ZERO, "min 1/desired 2 → 0"),
    (nodegroup("UPDATING"), Act.SCALE_TO_ZERO, "UPDATING"),  # tried: EKS answers with its error code
    (nodegroup("DELETING"), Act.SKIP, "DELETING"),
    (nodegroup(mn=0, desired=0), Act.SKIP, "already scaled to zero"),
    (nodegroup(mn=0, desired=1), Act.SCALE_TO_ZERO, "desired 1 → 0"),
    (res(BATCH_QUEUE, state="ENABLED", extra={"status": "VALID"}), Act.DISABLE, "DISABLED"),
    (res(BATCH_QUEUE, state="DISABLED", extra={"status": "VALID"}), Act.SKIP, "already disabled"),
    (res(BATCH_QUEUE, state="ENABLED", extra={"status": "DELETING"}), Act.SKIP, "DELETING"),
    (environment(), Act.SCALE_TO_ZERO, "min 2/max 16 → 0"),
    (environment(mn=0, mx=0), Act.SKIP, "already scaled to zero"),
    (environment(compute="FARGATE", mn=0, mx=0), Act.SKIP, "already scaled to zero"),
    (environment("UNMANAGED"), Act.SKIP, "stop_ec2"),
    (job("RUNNING"), Act.NEEDS_APPROVAL, "cannot be undone"),
    (job("SUBMITTED"), Act.NEEDS_APPROVAL, "cannot be undone"),
    (job("SUCCEEDED"), Act.SKIP, "already SUCCEEDED"),
    (job("RUNNING", {**MINE, "killswitch:exempt": "true"}), Act.SKIP, "exempt"),
    (job("RUNNING", {"agent-name": "other"}), Act.SKIP, "tag mismatch"),
]


@pytest.mark.parametrize(("resource", "act", "words"), CASES)
def test_plan_rules(resource: Resource, act: Act, words: str) -> None:
    (d,) = plan_kill(agent(), [resource], limit=100).decisions
    assert d.act is act and words in d.reason


def test_a_batch_job_is_terminated_only_once_approved() -> None:
    (waiting,) = plan_kill(agent(), [job()], limit=100).decisions
    assert waiting.act is Act.NEEDS_APPROVAL and waiting.intended is Act.STOP_TASK
    (approved,) = plan_kill(agent(), [job()], limit=100, approved=True).decisions
    assert approved.act is Act.STOP_TASK
    manual = agent(approval=Approval.MANUAL)
    (queue,) = plan_kill(manual, [res(BATCH_QUEUE, state="ENABLED")], limit=100).decisions
    assert queue.act is Act.NEEDS_APPROVAL and "manual" in queue.reason


def test_not_enabled_without_the_action() -> None:
    only_ec2 = agent(actions=[Action.STOP_EC2])
    decisions = plan_kill(only_ec2, [nodegroup(), job(), environment()], limit=100).decisions
    assert {d.act for d in decisions} == {Act.SKIP}
    assert all("is not enabled" in d.reason for d in decisions)


def test_registry_order_watch_events_and_grants() -> None:
    order = kinds.KILL_ORDER
    # No new Batch jobs before anything else is scaled; node groups with the other groups; jobs after services.
    assert order.index(BATCH_QUEUE) < order.index("autoscaling:group") < order.index(EKS_NODEGROUP)
    assert order.index("ecs:task") < order.index(BATCH_JOB) < order.index(BATCH_CE) < order.index("ec2:instance")
    events = kinds.watch_events()
    assert {"CreateNodegroup", "UpdateNodegroupConfig"} <= set(events["eks.amazonaws.com"])
    assert {"CreateJobQueue", "UpdateJobQueue", "SubmitJob", "UpdateComputeEnvironment"} <= set(
        events["batch.amazonaws.com"]
    )
    grants = {g.sid: g for g in kinds.iam_grants()}
    for sid, action in (
        ("ScaleTaggedNodegroups", "eks:UpdateNodegroupConfig"),
        ("DisableTaggedBatch", "batch:UpdateJobQueue"),
        ("ScaleTaggedBatchEnvironments", "batch:UpdateComputeEnvironment"),
    ):
        assert grants[sid].actions == (action,) and grants[sid].conditions, sid
    every = {a for g in grants.values() for a in g.actions}
    assert "batch:TerminateJob" not in every  # approval runs with ops credentials, never the kill Lambda
