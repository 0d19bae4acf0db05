"""The pure plan function: a table of resources → decisions, the approval rules, the blast-radius limit, and a
property over random fleets that nothing without the agent's tag (or exempt) is ever acted on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from killswitch.config import Action, AgentConfig, Approval, BudgetConfig
from killswitch.kill.model import ACCOUNT, ASG, EC2_INSTANCE, ECS_SERVICE, ECS_TASK, Act, Resource, ScalableTarget
from killswitch.kill.plan import plan_kill

AGENT = "log-summarizer"


def agent(**kw: object) -> AgentConfig:
    return AgentConfig(name=AGENT, budget=BudgetConfig(amount_usd=100), **kw)  # type: ignore[arg-type]


def res(rtype: str = EC2_INSTANCE, rid: str = "i-1", tags: dict[str, str] | None = None, **kw: object) -> Resource:
    base = {"agent-name": AGENT}
    return Resource(rtype, rid, kw.pop("region", "us-east-1"), tags if tags is not None else base, **kw)  # type: ignore[arg-type]


CASES = [
    # (resource, expected act, words in the reason)
    (res(state="running"), Act.STOP, "running"),
    (res(state="pending"), Act.STOP, "pending"),
    (res(state="stopped"), Act.SKIP, "already stopped"),
    (res(state="stopping"), Act.SKIP, "already stopping"),
    (res(state="terminated"), Act.SKIP, "already terminated"),
    (res(state="shutting-down"), Act.SKIP, "already shutting-down"),
    (res(state="running", tags={}), Act.SKIP, "tag mismatch"),
    (res(state="running", tags={"agent-name": "other"}), Act.SKIP, "tag mismatch"),
    (res(state="running", tags={"agent-name": AGENT, "killswitch:exempt": "TRUE"}), Act.SKIP, "exempt"),
    (
        res(state="running", tags={"agent-name": AGENT, "killswitch:criticality": "critical"}),
        Act.NEEDS_APPROVAL,
        "critical",
    ),
    (res(state="running", asg_name="workers"), Act.SKIP, "Auto Scaling group workers"),
    (res(ECS_SERVICE, "arn:svc", state="ACTIVE", desired_count=3), Act.SCALE_TO_ZERO, "desired 3 → 0"),
    (res(ECS_SERVICE, "arn:svc", state="ACTIVE", desired_count=0), Act.SKIP, "already scaled to zero"),
    (res(ECS_SERVICE, "arn:svc", state="DRAINING", desired_count=2), Act.SKIP, "DRAINING"),
    (res(ECS_SERVICE, "arn:svc", state="ACTIVE", scheduling_strategy="DAEMON", desired_count=1), Act.SKIP, "DAEMON"),
    (
        res(ECS_SERVICE, "arn:svc", state="ACTIVE", desired_count=2, scalable_target=ScalableTarget(1, 4)),
        Act.SCALE_TO_ZERO,
        "autoscaling suspended",
    ),
    (res(ECS_TASK, "arn:task", state="RUNNING", task_group="family:worker"), Act.STOP_TASK, "standalone"),
    (res(ECS_TASK, "arn:task", state="RUNNING", task_group="service:api"), Act.SKIP, "belongs to service api"),
    (res(ECS_TASK, "arn:task", state="STOPPED", task_group="family:worker"), Act.SKIP, "already STOPPED"),
    (res(ASG, "workers", desired_count=2, min_size=1, max_size=4), Act.SCALE_TO_ZERO, "processes suspended"),
    (res(ASG, "workers", desired_count=0, min_size=0, max_size=4), Act.SKIP, "already scaled to zero"),
    (res(ACCOUNT, "111122223333", tags={}, region="global", note="sandbox"), Act.ATTACH_SCP, "sandbox"),
    (res("s3:bucket", "b"), Act.SKIP, "unsupported"),
]


@pytest.mark.parametrize(("resource", "act", "words"), CASES)
def test_plan_table(resource: Resource, act: Act, words: str) -> None:
    (d,) = plan_kill(agent(), [resource], limit=100).decisions
    assert d.act is act
    assert words in d.reason


def test_action_not_enabled_is_skipped_with_reason() -> None:
    cfg = agent(actions=[Action.STOP_EC2])
    plan = plan_kill(cfg, [res(ECS_SERVICE, "arn:svc", state="ACTIVE", desired_count=2), res(state="running")], limit=9)
    by_type = {d.resource.resource_type: d for d in plan.decisions}
    assert by_type[ECS_SERVICE].act is Act.SKIP
    assert "scale_ecs is not enabled" in by_type[ECS_SERVICE].reason
    assert by_type[EC2_INSTANCE].act is Act.STOP


def test_manual_approval_makes_everything_wait_and_approved_lifts_it() -> None:
    cfg = agent(approval=Approval.MANUAL)
    fleet = [
        res(state="running"),
        res(ECS_SERVICE, "arn:svc", state="ACTIVE", desired_count=1),
        res(state="stopped", rid="i-2"),
    ]
    plan = plan_kill(cfg, fleet, limit=10)
    acts = sorted(d.act.value for d in plan.decisions)
    assert acts == ["needs_approval", "needs_approval", "skip"]
    assert {d.intended for d in plan.needs_approval} == {Act.STOP, Act.SCALE_TO_ZERO}
    approved = plan_kill(cfg, fleet, limit=10, approved=True)
    assert sorted(d.act.value for d in approved.decisions) == ["scale_to_zero", "skip", "stop"]


def test_exempt_beats_critical_and_manual() -> None:
    tags = {"agent-name": AGENT, "killswitch:exempt": "true", "killswitch:criticality": "critical"}
    (d,) = plan_kill(agent(approval=Approval.MANUAL), [res(state="running", tags=tags)], limit=5).decisions
    assert d.act is Act.SKIP and "exempt" in d.reason


def test_already_handled_by_an_earlier_kill() -> None:
    r = res(state="stopped")
    (d,) = plan_kill(agent(), [r], limit=5, handled={r.key: "k001"}).decisions
    assert d.act is Act.SKIP and d.reason == "already handled by kill k001"


def test_run_scope_only_touches_the_run() -> None:
    in_run = res(rid="i-run", state="running", tags={"agent-name": AGENT, "agent-run-id": "r1"})
    other_run = res(rid="i-other", state="running", tags={"agent-name": AGENT, "agent-run-id": "r2"})
    no_run = res(rid="i-none", state="running")
    account = res(ACCOUNT, "111122223333", tags={}, region="global")
    plan = plan_kill(agent(), [in_run, other_run, no_run, account], limit=10, run_id="r1")
    acts = {d.resource.resource_id: d for d in plan.decisions}
    assert acts["i-run"].act is Act.STOP
    assert acts["i-other"].act is Act.SKIP and "agent-run-id" in acts["i-other"].reason
    assert acts["i-none"].act is Act.SKIP
    assert acts["111122223333"].act is Act.SKIP and "run-scoped" in acts["111122223333"].reason


def test_blast_radius_refuses_whole_plan_unless_forced() -> None:
    fleet = [res(rid=f"i-{n}", state="running") for n in range(4)]
    refused = plan_kill(agent(), fleet, limit=3)
    assert refused.refused and "4 actionable resources exceed the blast-radius limit of 3" in refused.refused
    forced = plan_kill(agent(), fleet, limit=3, force=True)
    assert forced.refused is None and len(forced.to_act) == 4
    # skipped resources do not count...
    ok = plan_kill(agent(), [*fleet[:3], res(rid="i-x", state="stopped")], limit=3)
    assert ok.refused is None


def test_blast_radius_counts_what_waits_for_approval() -> None:
    """A critical resource stopped later by `approve` is part of the blast radius: 3 to stop + 1 waiting > 3."""
    critical = res(rid="i-critical", state="running", tags={"agent-name": AGENT, "killswitch:criticality": "critical"})
    fleet = [*(res(rid=f"i-{n}", state="running") for n in range(3)), critical]
    plan = plan_kill(agent(), fleet, limit=3)
    assert [d.resource.resource_id for d in plan.needs_approval] == ["i-critical"] and len(plan.to_act) == 3
    assert plan.refused and "4 actionable resources exceed the blast-radius limit of 3" in plan.refused
    manual = plan_kill(agent(approval=Approval.MANUAL), [*fleet[:3], res(rid="i-4", state="running")], limit=3)
    assert len(manual.to_act) == 0 and len(manual.needs_approval) == 4  # everything waits: still 4 > 3
    assert manual.refused and "4 actionable resources" in manual.refused


def test_kill_order_groups_and_services_first_scp_last() -> None:
    fleet = [
        res(ACCOUNT, "111122223333", tags={}, region="global"),
        res(state="running"),
        res(ECS_TASK, "arn:task", state="RUNNING", task_group="family:w"),
        res(ECS_SERVICE, "arn:svc", state="ACTIVE", desired_count=1),
        res(ASG, "g", desired_count=1, min_size=1, max_size=2),
    ]
    types = [d.resource.resource_type for d in plan_kill(agent(), fleet, limit=10).to_act]
    assert types == [ASG, ECS_SERVICE, ECS_TASK, EC2_INSTANCE, ACCOUNT]


def test_plan_round_trips_through_json() -> None:
    from killswitch.kill.model import Plan

    fleet = [res(ECS_SERVICE, "arn:svc", state="ACTIVE", desired_count=2, scalable_target=ScalableTarget(1, 4))]
    plan = plan_kill(agent(), fleet, limit=10)
    assert Plan.from_dict(plan.to_dict()) == plan


# -- property: random fleets -------------------------------------------------------------------------------

tag_values = st.sampled_from([AGENT, "research-crawler", "", "log-summarizer2", "LOG-SUMMARIZER"])
resource_st = st.builds(
    lambda rtype, name, exempt, critical, state, idx: Resource(
        rtype,
        f"r-{idx}",
        "us-east-1",
        {
            **({"agent-name": name} if name else {}),
            **({"killswitch:exempt": "true"} if exempt else {}),
            **({"killswitch:criticality": "critical"} if critical else {}),
        },
        state=state,
        desired_count=2,
        min_size=1,
        task_group="family:x",
    ),
    st.sampled_from([EC2_INSTANCE, ECS_SERVICE, ECS_TASK, ASG]),
    tag_values,
    st.booleans(),
    st.booleans(),
    st.sampled_from(["running", "ACTIVE", "RUNNING", "stopped", ""]),
    st.integers(0, 10_000),
)


@settings(max_examples=15, deadline=None)
@given(st.lists(resource_st, max_size=12, unique_by=lambda r: r.resource_id), st.booleans())
def test_untagged_other_agents_and_exempt_are_never_acted_on(fleet: list[Resource], manual: bool) -> None:
    cfg = agent(approval=Approval.MANUAL if manual else Approval.AUTOMATIC)
    plan = plan_kill(cfg, fleet, limit=1000)
    assert len(plan.decisions) == len(fleet)
    for d in plan.decisions:
        tags = d.resource.tags
        if tags.get("agent-name") != AGENT or tags.get("killswitch:exempt") == "true":
            assert d.act is Act.SKIP, d
        if d.changes_aws:
            assert tags.get("killswitch:criticality") != "critical"
            assert not manual


def test_result_event_lists_are_capped_for_sns() -> None:
    import json

    from killswitch.kill.model import KillReport, Operation
    from killswitch.results import Outcome, ResourceResult

    report = KillReport(Operation.KILL, AGENT, kill_id="k1")
    for n in range(1500):
        report.summary.add(ResourceResult(f"i-{n}", EC2_INSTANCE, "us-east-1", "stop", Outcome.ERROR, "X", "m" * 900))
    event = report.to_event()
    assert len(event["failures"]) == 100 and event["failures_total"] == 1500
    assert len(json.dumps(event).encode()) < 256 * 1024


def test_a_kind_can_require_approval_for_its_own_resources_and_approval_lifts_it() -> None:
    from killswitch.kill.kinds.sagemaker import ENDPOINT, NOTEBOOK, TRAINING_JOB

    endpoint = res(
        ENDPOINT,
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/summarizer-ep",
        state="InService",
        name="summarizer-ep",
        extra={
            "endpoint_config": "summarizer-config",
            "variants": [{"instance_type": "ml.g4dn.xlarge", "count": 3}],
            "hourly_usd": "2.2092",
        },
    )
    job = res(TRAINING_JOB, "arn:aws:sagemaker:us-east-1:123456789012:training-job/t1", state="InProgress")
    notebook = res(NOTEBOOK, "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/nb", state="InService")
    a = agent(actions=[Action.STOP_SAGEMAKER])

    plan = plan_kill(a, [endpoint, job, notebook], limit=10)
    acts = {d.resource.resource_type: d for d in plan.decisions}
    assert acts[ENDPOINT].act is Act.NEEDS_APPROVAL and acts[ENDPOINT].intended is Act.DELETE
    assert "$2.21/h (3 × ml.g4dn.xlarge)" in acts[ENDPOINT].reason
    assert "summarizer-config" in acts[ENDPOINT].reason
    assert acts[TRAINING_JOB].act is Act.NEEDS_APPROVAL and "cannot be resumed" in acts[TRAINING_JOB].reason
    assert acts[NOTEBOOK].act is Act.STOP  # restorable: no approval needed

    approved = {
        d.resource.resource_type: d.act for d in plan_kill(a, [endpoint, job], limit=10, approved=True).decisions
    }
    assert approved == {ENDPOINT: Act.DELETE, TRAINING_JOB: Act.STOP}
    exempt = res(TRAINING_JOB, "t2", tags={"agent-name": AGENT, "killswitch:exempt": "true"}, state="InProgress")
    assert plan_kill(a, [exempt], limit=10).decisions[0].act is Act.SKIP  # exempt wins over any approval rule
