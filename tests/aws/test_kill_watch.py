"""A kill stays applied: what the killed agent launches or restarts afterwards is stopped by the watch (CloudTrail
events) or the periodic re-check, recorded under the active kill so that restore covers it; events for agents that
are not killed cost one state lookup and nothing else."""

from __future__ import annotations

import json
from typing import Any

from moto.events.models import EventPattern

from killswitch.config import KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.ledger import InMemoryKillLedger
from killswitch.kill.watch import RECHECK_EVENT, event_pattern, tagged_agents
from killswitch.results import Outcome
from killswitch.testing import sim, sim_kinds
from tests.aws.kill_support import AGENT, EAST, OTHER, WEST, aws, build_fleet, engine, instance_state

__all__ = ["aws"]


def test_an_instance_launched_after_the_kill_is_stopped_and_restore_covers_it(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    build_fleet(aws)
    eng, ledger, pub = engine(example_config, aws)
    kill = eng.kill(AGENT)
    new = sim.run_instance(aws, EAST, sim.agent_tags(AGENT, Name="relaunched"))
    other = sim.run_instance(aws, EAST, sim.agent_tags(OTHER))
    event = sim_kinds.cloudtrail_event(
        "ec2.amazonaws.com", "RunInstances", EAST, sim_kinds.run_instances_request(sim.agent_tags(AGENT))
    )

    (report,) = eng.handle_event(event)

    assert report.kill_id == kill.kill_id and report.level == "watch"
    got = {r.resource_id: r for r in report.summary.results}
    assert got[new].outcome is Outcome.SUCCESS
    assert instance_state(aws, EAST, new) == "stopped"
    assert instance_state(aws, EAST, other) == "running"
    assert new in {e.resource.resource_id for e in ledger.resources(str(kill.kill_id))}
    assert pub.events[-1]["kill_id"] == kill.kill_id

    eng.restore(AGENT)
    assert instance_state(aws, EAST, new) == "running"


def test_a_restarted_instance_and_reset_function_are_stopped_again_and_restore_keeps_the_original_settings(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    f = build_fleet(aws)
    fn = sim_kinds.lambda_function(aws, WEST, "summarize", sim.agent_tags(AGENT), reserved=5)
    eng, _, _ = engine(example_config, aws)
    eng.kill(AGENT)
    aws("ec2", EAST).start_instances(InstanceIds=[f["plain"]])  # the agent's CI restarts it
    aws("lambda", WEST).delete_function_concurrency(FunctionName=fn)

    eng.handle_event(sim_kinds.cloudtrail_event("ec2.amazonaws.com", "StartInstances", EAST))
    assert instance_state(aws, EAST, f["plain"]) == "stopped"
    assert sim_kinds.reserved_concurrency(aws, WEST, fn) is None  # another region: not this event's business

    (recheck,) = eng.handle_event(RECHECK_EVENT)  # the periodic re-check covers every region
    assert sim_kinds.reserved_concurrency(aws, WEST, fn) == 0
    assert recheck.status == "done"

    eng.restore(AGENT)
    assert instance_state(aws, EAST, f["plain"]) == "running"
    assert sim_kinds.reserved_concurrency(aws, WEST, fn) == 5  # the value from before the kill, not None


class CountingLedger(InMemoryKillLedger):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def agent_state(self, agent: str) -> dict[str, Any] | None:
        self.calls.append(f"agent_state:{agent}")
        return super().agent_state(agent)

    def list_kills(self, agent: str) -> list[Any]:
        self.calls.append(f"list_kills:{agent}")
        return super().list_kills(agent)


class NoAws:
    def __call__(self, service: str, region: str) -> Any:
        raise AssertionError(f"the watch called {service} in {region} for an agent that is not killed")


def test_an_event_for_an_agent_that_is_not_killed_costs_one_lookup(example_config: KillSwitchConfig) -> None:
    ledger = CountingLedger()
    eng, _, pub = engine(example_config, NoAws(), ledger=ledger)
    event = sim_kinds.cloudtrail_event(
        "ec2.amazonaws.com", "RunInstances", EAST, sim_kinds.run_instances_request(sim.agent_tags(AGENT))
    )
    (report,) = eng.handle_event(event)
    assert report.status == "no_action"
    assert ledger.calls == [f"agent_state:{AGENT}"]
    assert pub.events == []


def test_an_event_in_a_region_outside_the_config_is_ignored(aws: Clients, example_config: KillSwitchConfig) -> None:
    eng, _, _ = engine(example_config, aws)
    eng.kill(AGENT)
    (report,) = eng.handle_event(sim_kinds.cloudtrail_event("ec2.amazonaws.com", "RunInstances", "eu-west-1"))
    assert report.status == "no_action"


def test_pattern_and_tag_extraction() -> None:
    pattern = event_pattern()
    assert {"aws.ec2", "aws.ecs", "aws.lambda", "aws.autoscaling"} <= set(pattern["source"])
    assert {"RunInstances", "StartInstances", "RunTask", "CreateFunction20150331"} <= set(
        pattern["detail"]["eventName"]
    )
    assert tagged_agents(sim_kinds.run_instances_request({"agent-name": "a1"})) == {"a1"}
    assert tagged_agents({"functionName": "x", "tags": {"agent-name": "a2"}}) == {"a2"}
    assert tagged_agents({"tags": [{"key": "agent-name", "value": "a3"}]}) == {"a3"}
    assert tagged_agents({"instancesSet": {"items": [{"instanceId": "i-1"}]}}) == set()


def test_an_event_forwarded_from_another_region_matches_the_home_rule_and_acts_in_its_region(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    """The watch stack of a non-home region forwards the CloudTrail event unchanged to the home bus: the home rule's
    pattern (no region or account in it) matches it, and the kill Lambda acts in the region the call was made in."""
    build_fleet(aws)
    eng, ledger, _ = engine(example_config, aws)
    kill = eng.kill(AGENT)
    west_new = sim.run_instance(aws, WEST, sim.agent_tags(AGENT, Name="relaunched-west"))
    east_new = sim.run_instance(aws, EAST, sim.agent_tags(AGENT, Name="relaunched-east"))
    forwarded = sim_kinds.cloudtrail_event(
        "ec2.amazonaws.com", "RunInstances", WEST, sim_kinds.run_instances_request(sim.agent_tags(AGENT))
    )
    # moto's own EventBridge pattern matcher (TestEventPattern is not implemented in moto): the home rule's pattern
    # matches the forwarded event, and not an event of another source.
    home_rule = EventPattern.load(json.dumps(event_pattern()))
    assert home_rule.matches_event(forwarded)
    assert not home_rule.matches_event({**forwarded, "source": "killswitch.guard"})

    (report,) = eng.handle_event(forwarded)

    assert report.kill_id == kill.kill_id
    assert {r.resource_id for r in report.summary.results if r.outcome is Outcome.SUCCESS} == {west_new}
    assert instance_state(aws, WEST, west_new) == "stopped"
    assert instance_state(aws, EAST, east_new) == "running"  # another region: the re-check or its own event
    assert west_new in {e.resource.resource_id for e in ledger.resources(str(kill.kill_id))}


def test_a_critical_instance_launched_after_the_kill_waits_for_approval_and_the_report_says_so(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    """What the watch finds and may not stop without ops (the criticality tag) is in its report and result event as
    `needs_approval`, as in a kill, not only counted in the message."""
    from killswitch import tags as T

    build_fleet(aws)
    eng, _, pub = engine(example_config, aws)
    kill = eng.kill(AGENT)
    critical = sim.run_instance(aws, EAST, sim.agent_tags(AGENT, **{T.CRITICALITY: "critical"}))
    event = sim_kinds.cloudtrail_event(
        "ec2.amazonaws.com", "RunInstances", EAST, sim_kinds.run_instances_request(sim.agent_tags(AGENT))
    )

    (report,) = eng.handle_event(event)

    assert report.needs_approval == [critical]
    assert f"1 wait for `killswitch approve {kill.kill_id}`" in report.message
    assert instance_state(aws, EAST, critical) == "running"
    assert pub.events[-1]["needs_approval"] == [critical]
