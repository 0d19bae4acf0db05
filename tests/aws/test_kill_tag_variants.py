"""A resource whose `agent-name` differs from the agent only by case or whitespace (`log-summarizer `) is an escape
or a typo, invisible to the budget's exact tag filter too: the kill leaves it alone and reports it (issue 15)."""

from __future__ import annotations

from killswitch.config import KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.model import Resource
from killswitch.kill.plan import plan_kill
from killswitch.testing import sim, sim_kinds
from tests.aws.kill_support import AGENT, EAST, aws, engine, instance_state

__all__ = ["aws"]


def test_variants_are_reported_in_the_plan_and_the_result_event_and_left_running(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    real = sim.run_instance(aws, EAST, sim.agent_tags(AGENT))
    spaced = sim.run_instance(aws, EAST, {"agent-name": f"{AGENT} "})
    upper = sim.run_instance(aws, EAST, {"agent-name": AGENT.upper()})
    other = sim.run_instance(aws, EAST, {"agent-name": "research-crawler"})
    function = sim_kinds.lambda_function(aws, EAST, "summarize-variant", {"agent-name": f" {AGENT.title()}"})
    eng, _, pub = engine(example_config, aws)

    report = eng.kill(AGENT, reason="test")

    assert instance_state(aws, EAST, real) in ("stopping", "stopped")
    for instance in (spaced, upper, other):
        assert instance_state(aws, EAST, instance) == "running"
    assert report.plan is not None
    variants = {v["resource_id"]: v["agent-name"] for v in report.plan.to_dict()["tag_variants"]}
    assert variants == {spaced: f"{AGENT} ", upper: AGENT.upper(), function: f" {AGENT.title()}"}
    event = pub.events[-1]
    assert {v["resource_id"] for v in event["tag_variants"]} == {spaced, upper, function}
    # `killswitch status` lists them too, from the kill record, for as long as the kill is active.
    [row] = eng.status(AGENT)
    assert {v["resource_id"]: v["agent-name"] for v in row["tag_variants"]} == variants


def test_plan_skips_a_variant_with_its_reason(example_config: KillSwitchConfig) -> None:
    agent = example_config.agent(AGENT)
    variant = Resource("ec2:instance", "i-1", EAST, tags={"agent-name": f" {AGENT}"}, state="running")
    plan = plan_kill(agent, [variant], limit=10)
    [decision] = plan.decisions
    assert decision.act.value == "skip"
    assert "variant" in decision.reason and "only by case or whitespace" in decision.reason
    assert [d.resource.resource_id for d in plan.tag_variants] == ["i-1"]
