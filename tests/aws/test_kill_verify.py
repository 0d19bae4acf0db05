"""Verify after acting: the kill re-describes what it changed and reports what still runs (`verified` /
`not_verified` in the result event and in `status`)."""

from __future__ import annotations

from typing import Any

from killswitch.config import KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.testing import sim, sim_kinds
from tests.aws.kill_support import AGENT, EAST, WEST, aws, build_fleet, engine

__all__ = ["aws"]


def test_a_kill_that_stopped_everything_is_verified(aws: Clients, example_config: KillSwitchConfig) -> None:
    build_fleet(aws)
    sim_kinds.lambda_function(aws, WEST, "summarize", sim.agent_tags(AGENT))
    eng, _, pub = engine(example_config, aws)
    report = eng.kill(AGENT)
    assert report.verification == "verified" and report.still_running == []
    assert pub.events[-1]["verification"] == "verified"
    assert eng.status(AGENT)[0]["kills"][0]["verification"] == "verified"


class IgnoringEc2:
    """StopInstances answers OK but the instance keeps running (what verify exists to catch)."""

    def __init__(self, inner: Any):
        self.inner = inner

    def stop_instances(self, InstanceIds: list[str], **kw: Any) -> dict[str, Any]:
        return {"StoppingInstances": []}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ResettingLambda:
    def __init__(self, inner: Any):
        self.inner = inner

    def put_function_concurrency(self, **kw: Any) -> dict[str, Any]:
        return {"ReservedConcurrentExecutions": 0}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_what_still_runs_after_acting_is_reported_not_verified(aws: Clients, example_config: KillSwitchConfig) -> None:
    f = build_fleet(aws)
    fn = sim_kinds.lambda_function(aws, WEST, "summarize", sim.agent_tags(AGENT), reserved=4)
    clients = Clients(
        overrides={("ec2", EAST): IgnoringEc2(aws("ec2", EAST)), ("lambda", WEST): ResettingLambda(aws("lambda", WEST))}
    )
    eng, _, pub = engine(example_config, clients)
    report = eng.kill(AGENT)
    assert report.verification == "not_verified"
    left = {r["resource_id"]: r["why"] for r in report.still_running}
    assert left[f["plain"]] == "instance running"
    assert left[fn] == "reserved concurrency 4"
    assert f["west"] not in left  # the other region's instance did stop
    assert pub.events[-1]["verification"] == "not_verified"
    assert eng.status(AGENT)[0]["kills"][0]["verification"] == "not_verified"
