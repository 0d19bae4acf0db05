"""The kill engine end to end on moto: kill, ledger, restore exactness, approvals, duplicates, partial failures,
bisect, blast radius, levels wiring through real-format events."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from killswitch.config import KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.ledger import InMemoryKillLedger
from killswitch.kill.model import EC2_INSTANCE, KillStatus, Operation
from killswitch.results import Outcome
from killswitch.testing import sim
from tests.aws.kill_support import (
    AGENT,
    EAST,
    OTHER,
    REGIONS,
    RUN,
    WEST,
    FailingEc2,
    aws,
    budgets_sns_event,
    build_fleet,
    engine,
    instance_state,
)

__all__ = ["aws"]


def outcomes(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {r.resource_id: r.outcome.value for r in report.summary.results}


def test_kill_stops_what_belongs_to_the_agent_and_restore_puts_the_fleet_back(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    f = build_fleet(aws)
    before = sim.snapshot(aws, REGIONS)
    eng, ledger, pub = engine(example_config, aws)

    report = eng.kill(AGENT, reason="test")

    got = outcomes(report)
    for label in ("plain", "run", "west", "service", "west_service", "task", "asg"):
        assert got[f[label]] == "success", label
    assert got[f["exempt"]] == "no_action"
    assert got[f["critical"]] == "needs_approval"
    assert got[f["protected"]] == "error"
    (failure,) = report.summary.failures
    assert failure.code == "OperationNotPermitted"
    for label in ("other", "untagged", "other_service", "west_other"):
        assert f[label] not in got
    mid = sim.snapshot(aws, REGIONS)
    assert mid.instances[f"{EAST}/{f['plain']}"] == "stopped"
    assert mid.instances[f"{WEST}/{f['west']}"] == "stopped"
    assert mid.instances[f"{EAST}/{f['exempt']}"] == "running"
    assert mid.instances[f"{EAST}/{f['critical']}"] == "running"
    assert mid.instances[f"{EAST}/{f['other']}"] == "running"
    assert mid.instances[f"{EAST}/{f['untagged']}"] == "running"
    assert mid.services[f"{EAST}/{f['service']}"] == 0
    assert mid.services[f"{EAST}/{f['other_service']}"] == 3
    assert mid.scalable[f"{EAST}/service/agents/summarizer-api"] == (0, 4, (True, True, True))
    assert mid.groups[f"{EAST}/summarizer-workers"] == (
        0,
        4,
        0,
        ("AZRebalance", "AlarmNotification", "Launch", "ReplaceUnhealthy", "ScheduledActions"),
    )
    assert mid.tasks[f"{EAST}/{f['task']}"] == "STOPPED"

    assert report.status == KillStatus.AWAITING_APPROVAL.value
    assert report.exit_code() == 2
    record = ledger.get_kill(report.kill_id)
    assert record is not None and record.status is KillStatus.AWAITING_APPROVAL and record.plan is not None
    assert ledger.agent_state(AGENT)["state"] == "KILLED"
    event = pub.events[-1]
    assert event["kill_id"] == report.kill_id and event["counts"]["error"] == 1
    assert event["failures"][0]["code"] == "OperationNotPermitted"
    assert event["needs_approval"] == [f["critical"]]
    json.dumps(event)

    restored = eng.restore(AGENT)
    assert restored.summary.failures == []
    after = sim.snapshot(aws, REGIONS)
    assert after.comparable() == before.comparable()
    assert ledger.get_kill(report.kill_id).status is KillStatus.RESTORED
    assert ledger.agent_state(AGENT)["state"] == "OK"

    again = eng.restore(AGENT, kill_id=report.kill_id)
    assert again.summary.results and all(r.outcome is Outcome.NO_ACTION for r in again.summary.results)
    assert sim.snapshot(aws, REGIONS).comparable() == before.comparable()
    assert eng.restore(AGENT).summary.results == []


def test_restore_leaves_instances_the_kill_did_not_stop(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    aws("ec2", EAST).stop_instances(InstanceIds=[f["plain"]])  # stopped before the kill
    eng, _, _ = engine(example_config, aws)
    report = eng.kill(AGENT)
    assert "already stopped" in next(r.message for r in report.summary.results if r.resource_id == f["plain"])
    eng.restore(AGENT)
    assert instance_state(aws, EAST, f["plain"]) == "stopped"
    assert instance_state(aws, EAST, f["run"]) == "running"


def test_duplicate_delivery_is_a_no_op(aws: Clients, example_config: KillSwitchConfig) -> None:
    build_fleet(aws)
    eng, ledger, _ = engine(example_config, aws)
    event = budgets_sns_event("killswitch-log-summarizer", 512.0, 500.0, 500.0, "msg-1")
    (first,) = eng.handle_event(event)
    assert first.operation is Operation.KILL and first.level == "kill" and first.stopped > 0
    # the same budget alert delivered again (new SNS message id, same letter) does nothing
    event2 = budgets_sns_event("killswitch-log-summarizer", 512.0, 500.0, 500.0, "msg-2")
    (second,) = eng.handle_event(event2)
    assert second.operation is Operation.DUPLICATE and second.kill_id == first.kill_id
    assert second.summary.results == []
    assert len(ledger.list_kills(AGENT)) == 1


def test_new_kill_of_a_killed_agent_handles_only_what_is_new(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    eng, _, _ = engine(example_config, aws)
    first = eng.kill(AGENT)
    new = sim.run_instance(aws, WEST, sim.agent_tags(AGENT))
    second = eng.kill(AGENT)
    got = {r.resource_id: r for r in second.summary.results}
    assert got[new].outcome is Outcome.SUCCESS
    assert got[f["plain"]].outcome is Outcome.NO_ACTION
    assert got[f["plain"]].message == f"already handled by kill {first.kill_id}"
    eng.restore(AGENT)
    assert instance_state(aws, WEST, new) == "running" and instance_state(aws, EAST, f["plain"]) == "running"


def test_partial_failures_leave_the_rest_stopped_with_codes_and_bisect(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    ids = [sim.run_instance(aws, EAST, sim.agent_tags(AGENT)) for _ in range(8)]
    ordered = sorted(ids)  # the plan acts in id order
    spot, wrong = ordered[1], ordered[6]  # different halves, different quarters
    wrapped = FailingEc2(aws("ec2", EAST), bad={spot: "UnsupportedOperation", wrong: "IncorrectInstanceState"})
    clients = Clients(overrides={("ec2", EAST): wrapped})
    eng, _, _ = engine(example_config, clients)
    report = eng.kill(AGENT)
    codes = {r.resource_id: r.code for r in report.summary.results}
    assert codes[spot] == "UnsupportedOperation" and codes[wrong] == "IncorrectInstanceState"
    for iid in ids:
        expected = "running" if iid in (spot, wrong) else "stopped"
        assert instance_state(aws, EAST, iid) == expected
    # 8 ids, two bad in different halves: 1 + 2 (halves) + 4 (quarters) + 4 (singles of the 2 bad quarters) = 11
    assert len(wrapped.stop_calls) == 11
    assert wrapped.stop_calls[0] == ordered
    assert [c for c in wrapped.stop_calls if len(c) == 1] == [[ordered[0]], [spot], [wrong], [ordered[7]]]
    assert report.exit_code() == 2 and report.status == "partial"


def test_one_call_per_region_when_nothing_fails(aws: Clients, example_config: KillSwitchConfig) -> None:
    for _ in range(5):
        sim.run_instance(aws, EAST, sim.agent_tags(AGENT))
    wrapped = FailingEc2(aws("ec2", EAST))
    eng, _, _ = engine(example_config, Clients(overrides={("ec2", EAST): wrapped}))
    eng.kill(AGENT)
    assert [len(c) for c in wrapped.stop_calls] == [5]


def test_throttling_after_retries_is_reported_and_releases_the_dedupe_marker(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    ids = [sim.run_instance(aws, EAST, sim.agent_tags(AGENT)) for _ in range(4)]
    wrapped = FailingEc2(aws("ec2", EAST), always="RequestLimitExceeded")
    eng, _, _ = engine(example_config, Clients(overrides={("ec2", EAST): wrapped}))
    report = eng.kill(AGENT, dedupe_key="alert-1")
    assert {r.code for r in report.summary.failures} == {"RequestLimitExceeded"}
    assert len(wrapped.stop_calls) == 1  # throttling is not bisected
    assert report.transient_failure and report.status == "partial"
    # the retry (SNS redelivery) is not a duplicate, and only handles what is left
    wrapped.always = None
    retry = eng.kill(AGENT, dedupe_key="alert-1")
    assert retry.operation is Operation.KILL
    assert all(instance_state(aws, EAST, i) == "stopped" for i in ids)


def test_critical_waits_for_approval_then_approve_stops_it(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    eng, ledger, _ = engine(example_config, aws)
    report = eng.kill(AGENT)
    assert instance_state(aws, EAST, f["critical"]) == "running"
    approved = eng.approve(report.kill_id)
    assert outcomes(approved) == {f["critical"]: "success"}
    assert instance_state(aws, EAST, f["critical"]) == "stopped"
    assert ledger.get_kill(report.kill_id).status is KillStatus.PARTIAL  # the protected instance failed earlier
    assert eng.approve(report.kill_id).refused
    eng.restore(AGENT)
    assert instance_state(aws, EAST, f["critical"]) == "running"


def test_manual_agent_waits_entirely_until_approved(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    eng, _, _ = engine(example_config, aws)
    report = eng.kill(OTHER)
    assert report.status == "awaiting_approval"
    assert set(outcomes(report).values()) == {"needs_approval"}
    assert instance_state(aws, EAST, f["other"]) == "running"
    approved = eng.approve(report.kill_id)
    assert approved.status == "done"
    assert instance_state(aws, EAST, f["other"]) == "stopped"
    assert instance_state(aws, WEST, f["west_other"]) == "stopped"
    assert sim.snapshot(aws, REGIONS).services[f"{EAST}/{f['other_service']}"] == 0
    assert instance_state(aws, EAST, f["plain"]) == "running"  # the other agent is untouched


def test_approve_rediscovers_and_skips_what_is_gone(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    eng, _, _ = engine(example_config, aws)
    report = eng.kill(OTHER)
    aws("ec2", EAST).delete_tags(Resources=[f["other"]], Tags=[{"Key": "agent-name"}])
    approved = eng.approve(report.kill_id)
    assert outcomes(approved)[f["other"]] == "no_action"
    assert instance_state(aws, EAST, f["other"]) == "running"


def test_run_scoped_kill(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    eng, _, _ = engine(example_config, aws)
    report = eng.kill(AGENT, run_id=RUN)
    assert outcomes(report) == {f["run"]: "success"}
    assert instance_state(aws, EAST, f["plain"]) == "running"


def test_guard_event_kills_only_the_run_when_scope_is_run(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    eng, _, _ = engine(example_config, aws)
    msg = {"source": "killswitch.guard", "action": "kill", "agent": AGENT, "run_id": RUN, "reason": "cap $5 crossed"}
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"MessageId": "g-1", "Message": json.dumps(msg)}}]}
    (report,) = eng.handle_event(event)
    assert report.run_id == RUN and outcomes(report) == {f["run"]: "success"}


def test_blast_radius_refusal_and_force(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    cfg = example_config.model_copy(update={"max_resources_per_kill": 3})
    eng, ledger, pub = engine(cfg, aws)
    refused = eng.kill(AGENT)
    assert refused.refused and refused.exit_code() == 1 and refused.summary.results == []
    assert instance_state(aws, EAST, f["plain"]) == "running"
    assert ledger.list_kills(AGENT) == [] and pub.events[-1]["refused"]
    forced = eng.kill(AGENT, force=True)
    assert instance_state(aws, EAST, f["plain"]) == "stopped" and forced.refused is None


def test_dry_run_changes_nothing(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    before = sim.snapshot(aws, REGIONS)
    eng, ledger, _ = engine(example_config, aws)
    report = eng.kill(AGENT, dry_run=True)
    assert report.plan is not None and len(report.plan.to_act) >= 7
    assert sim.snapshot(aws, REGIONS).comparable() == before.comparable()
    assert ledger.list_kills(AGENT) == [] and ledger.agent_state(AGENT) is None
    assert "would stop" in next(r.message for r in report.summary.results if r.resource_id == f["plain"])


def test_levels_wiring_warn_none_kill_and_restore_only_by_ops(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    eng, ledger, pub = engine(example_config, aws)
    (below,) = eng.handle_event(budgets_sns_event("killswitch-log-summarizer", 100.0, 500.0, 50.0, "m-a"))
    assert below.operation is Operation.NONE and below.level == "none"
    assert pub.events[-1]["operation"] == "none" and ledger.agent_state(AGENT) is None
    (warn,) = eng.handle_event(budgets_sns_event("killswitch-log-summarizer", 420.0, 500.0, 400.0, "m-b"))
    assert warn.operation is Operation.WARN and ledger.agent_state(AGENT)["state"] == "THRIFT"
    assert instance_state(aws, EAST, f["plain"]) == "running"
    (kill,) = eng.handle_event(budgets_sns_event("killswitch-log-summarizer", 505.0, 500.0, 500.0, "m-c"))
    assert kill.operation is Operation.KILL and instance_state(aws, EAST, f["plain"]) == "stopped"
    # A restore message is refused whatever it claims to be: the kill stays (issue 15 item 1) ...
    msg = {"source": "killswitch.cli", "action": "restore", "agent": AGENT, "reason": "budget raised"}
    (refused,) = eng.handle_event({"Records": [{"Sns": {"MessageId": "r-1", "Message": json.dumps(msg)}}]})
    assert refused.operation is Operation.REJECTED and "ops run `killswitch restore`" in refused.reason
    assert instance_state(aws, EAST, f["plain"]) == "stopped" and ledger.agent_state(AGENT)["state"] == "KILLED"
    # ... and the ops path (`killswitch restore`, the engine called with ops credentials) restores.
    restore = eng.restore(AGENT)
    assert restore.operation is Operation.RESTORE and instance_state(aws, EAST, f["plain"]) == "running"
    assert ledger.agent_state(AGENT)["state"] == "OK"


def test_budget_alerts_are_recorded_in_the_spend_ledger(aws: Clients, example_config: KillSwitchConfig) -> None:
    calls: list[tuple] = []

    class Spend:
        def record_budget_alert(self, *args: object) -> None:
            calls.append(args)

    eng, _, _ = engine(example_config, aws, spend=Spend())
    eng.handle_event(budgets_sns_event("killswitch-log-summarizer", 100.0, 500.0, 50.0, "m-a"))
    ((agent, day, name, kind, threshold, amount, budgeted),) = calls
    assert (agent, name, kind, threshold, amount, budgeted) == (
        AGENT,
        "killswitch-log-summarizer",
        "ACTUAL",
        50.0,
        100.0,
        500.0,
    )
    assert day.isoformat() == "2026-11-22"


@pytest.mark.parametrize(
    "event",
    [None, "text", [], {}, {"Records": "x"}, {"Records": [{"Sns": {"Message": "hello"}}]}, {"Records": [7]}],
)
def test_malformed_input_is_rejected_recorded_and_never_raises(
    aws: Clients, example_config: KillSwitchConfig, event: object
) -> None:
    eng, ledger, _ = engine(example_config, aws, ledger=InMemoryKillLedger())
    reports = eng.handle_event(event)
    assert reports and all(r.operation is Operation.REJECTED for r in reports)
    assert all(r.exit_code() == 1 for r in reports)
    rejected = [v for v in ledger.store.all_items() if v["pk"].startswith("REJECTED#")]
    assert len(rejected) == len(reports) and all(v["reason"] for v in rejected)


def test_ec2_only_agent_config_skips_other_types(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    agents = [a.model_copy(update={"actions": ["stop_ec2"]}) if a.name == AGENT else a for a in example_config.agents]
    eng, _, _ = engine(example_config.model_copy(update={"agents": agents}), aws)
    report = eng.kill(AGENT)
    got = {r.resource_id: r for r in report.summary.results}
    assert got[f["service"]].outcome is Outcome.NO_ACTION and "scale_ecs is not enabled" in got[f["service"]].message
    assert got[f["plain"]].outcome is Outcome.SUCCESS and got[f["plain"]].resource_type == EC2_INSTANCE


def test_a_kill_that_dies_while_acting_is_recorded_and_restorable(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    """Groups and services are handled first; the crash hits EC2. The ledger says what was done, the dedupe marker
    is freed for SNS's retry, and restore puts everything back (pending entries included)."""
    build_fleet(aws)
    before = sim.snapshot(aws, REGIONS)

    class Crashing(FailingEc2):
        def stop_instances(self, InstanceIds: list[str], **kw: object) -> object:
            raise RuntimeError("Lambda runtime went away")

    clients = Clients(overrides={("ec2", EAST): Crashing(aws("ec2", EAST))})
    eng, ledger, _ = engine(example_config, clients)
    with pytest.raises(RuntimeError):
        eng.kill(AGENT, dedupe_key="alert-9")
    assert ledger.claim("alert-9", "probe") is None  # released
    (kill,) = ledger.list_kills(AGENT)
    entries = ledger.resources(kill.kill_id)
    assert any(e.changed for e in entries) and any(e.pending for e in entries)
    service = next(e.resource for e in entries if e.resource.resource_type == "ecs:service")
    service_key = f"{service.region}/{service.resource_id}"
    assert sim.snapshot(aws, REGIONS).services[service_key] == 0  # done before the crash
    eng.clients = aws
    restored = eng.restore(AGENT)
    assert restored.summary.failures == []
    assert sim.snapshot(aws, REGIONS).comparable() == before.comparable()


def test_a_second_kill_does_not_ask_twice_for_the_same_approval(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    eng, _, _ = engine(example_config, aws)
    first = eng.kill(AGENT)
    second = eng.kill(AGENT)
    got = {r.resource_id: r for r in second.summary.results}
    assert got[f["critical"]].outcome is Outcome.NO_ACTION
    assert got[f["critical"]].message == f"already handled by kill {first.kill_id}"
    approved = eng.approve(first.kill_id)
    assert outcomes(approved) == {f["critical"]: "success"}


fleet_spec = st.lists(
    st.tuples(
        st.sampled_from([EAST, WEST]),
        st.sampled_from([AGENT, OTHER, None, "log-summarizer-2"]),
        st.booleans(),  # exempt
        st.booleans(),  # in the run
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=fleet_spec, run_scoped=st.booleans())
def test_random_fleets_only_the_agents_tagged_resources_stop(
    example_config: KillSwitchConfig, monkeypatch: pytest.MonkeyPatch, spec: list, run_scoped: bool
) -> None:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        c = Clients()
        made = []
        for region, who, exempt, in_run in spec:
            tags = {"Name": "x"}
            if who:
                tags["agent-name"] = who
            if exempt:
                tags["killswitch:exempt"] = "true"
            if in_run:
                tags["agent-run-id"] = RUN
            made.append((region, sim.run_instance(c, region, tags), tags))
        eng, _, _ = engine(example_config, c)
        eng.kill(AGENT, run_id=RUN if run_scoped else None)
        for region, iid, tags in made:
            should_stop = (
                tags.get("agent-name") == AGENT
                and "killswitch:exempt" not in tags
                and (not run_scoped or tags.get("agent-run-id") == RUN)
            )
            assert instance_state(c, region, iid) == ("stopped" if should_stop else "running"), tags


def test_a_refused_alert_is_judged_again_on_redelivery(aws: Clients, example_config: KillSwitchConfig) -> None:
    build_fleet(aws)
    eng, ledger, _ = engine(example_config.model_copy(update={"max_resources_per_kill": 2}), aws)
    first = eng.kill(AGENT, dedupe_key="alert-r")
    second = eng.kill(AGENT, dedupe_key="alert-r")
    assert first.refused and second.refused and second.operation is Operation.KILL
    assert ledger.list_kills(AGENT) == []


def test_throttled_discovery_asks_for_a_retry(aws: Clients, example_config: KillSwitchConfig) -> None:
    from botocore.exceptions import ClientError

    f = build_fleet(aws)

    class Throttled:
        def get_paginator(self, name: str) -> object:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetResources")

    clients = Clients(overrides={("resourcegroupstaggingapi", WEST): Throttled()})
    eng, _, _ = engine(example_config, clients)
    report = eng.kill(AGENT, dedupe_key="alert-t")
    assert report.transient_failure
    assert [(r.resource_id, r.code) for r in report.summary.failures if r.action == "discover"] == [
        (f"region/{WEST}", "ThrottlingException")
    ]
    assert instance_state(aws, EAST, f["plain"]) == "stopped" and instance_state(aws, WEST, f["west"]) == "running"
    eng.clients = aws
    retry = eng.kill(AGENT, dedupe_key="alert-t")
    assert retry.operation is Operation.KILL and instance_state(aws, WEST, f["west"]) == "stopped"


def test_daemon_services_are_skipped_and_partial_suspension_comes_back(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    daemon = sim.ecs_service(aws, EAST, "agents", "log-shipper", sim.agent_tags(AGENT), daemon=True)
    api = sim.ecs_service(aws, EAST, "agents", "api", sim.agent_tags(AGENT), desired=4, scaling=(2, 8))
    aws("application-autoscaling", EAST).register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId="service/agents/api",
        ScalableDimension="ecs:service:DesiredCount",
        SuspendedState={"DynamicScalingInSuspended": True},
    )
    before = sim.snapshot(aws, (EAST,))
    assert before.scalable[f"{EAST}/service/agents/api"] == (2, 8, (True, False, False))
    eng, _, _ = engine(example_config, aws)
    report = eng.kill(AGENT)
    got = {r.resource_id: r for r in report.summary.results}
    assert got[daemon].outcome is Outcome.NO_ACTION and "DAEMON" in got[daemon].message
    assert got[api].outcome is Outcome.SUCCESS
    assert sim.snapshot(aws, (EAST,)).scalable[f"{EAST}/service/agents/api"] == (0, 8, (True, True, True))
    eng.restore(AGENT)
    assert sim.snapshot(aws, (EAST,)).comparable() == before.comparable()


def test_warn_publishes_a_result_event(aws: Clients, example_config: KillSwitchConfig) -> None:
    eng, ledger, pub = engine(example_config, aws)
    (warn,) = eng.handle_event(budgets_sns_event("killswitch-log-summarizer", 410.0, 500.0, 400.0, "m-w"))
    assert warn.operation is Operation.WARN
    assert pub.events[-1]["operation"] == "warn" and pub.events[-1]["agent"] == AGENT
    assert ledger.agent_state(AGENT)["state"] == "THRIFT"
    published = len(pub.events)
    (dup,) = eng.handle_event(budgets_sns_event("killswitch-log-summarizer", 410.0, 500.0, 400.0, "m-w-redelivered"))
    assert dup.status == "duplicate" and len(pub.events) == published  # a redelivery notifies nobody again
    eng.kill(AGENT)
    (again,) = eng.handle_event(budgets_sns_event("killswitch-log-summarizer", 460.0, 500.0, 450.0, "m-w2"))
    assert again.status == "killed" and ledger.agent_state(AGENT)["state"] == "KILLED"
