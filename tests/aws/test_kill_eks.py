"""scale_eks on moto: the agent's tagged EKS managed node groups go to min 0 / desired 0 (max kept) and restore puts
min, max and desired back exactly; node groups of other agents, untagged, exempt or only in a tagged cluster are left
alone; a node group EKS cannot update gets its own error with the AWS code; what is scaled up after the kill is
scaled down again by the watch."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.resourcegroupstaggingapi import models as tagging_models

from killswitch.config import ALL_ACTIONS, KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.kinds.base import RegionScan
from killswitch.kill.kinds.eks import EKS_NODEGROUP, EksNodegroups
from killswitch.kill.model import Operation
from killswitch.kill.watch import CLOUDTRAIL_DETAIL_TYPE
from killswitch.results import Outcome
from killswitch.testing import sim, sim_kinds
from killswitch.testing.sim_kinds import tagging_with_eks_and_batch
from tests.aws.kill_support import AGENT, EAST, OTHER, WEST, aws, engine

__all__ = ["aws"]


@pytest.fixture(autouse=True)
def _tagging_api_lists_node_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    original = tagging_models.iter_taggable_backends
    monkeypatch.setattr(tagging_models, "iter_taggable_backends", tagging_with_eks_and_batch(original))


def cluster(c: Clients, name: str, region: str = EAST, tags: dict[str, str] | None = None) -> None:
    sim_kinds.eks_cluster(c, region, name, tags)


def nodegroup(c: Clients, cluster_name: str, name: str, tags: dict[str, str], region: str = EAST, **size: int) -> str:
    return sim_kinds.eks_nodegroup(c, region, cluster_name, name, tags, **size)


def scaling(c: Clients, cluster_name: str, name: str, region: str = EAST) -> tuple[int, int, int]:
    s = c("eks", region).describe_nodegroup(clusterName=cluster_name, nodegroupName=name)["nodegroup"]["scalingConfig"]
    return int(s["minSize"]), int(s["maxSize"]), int(s["desiredSize"])


def all_actions(config: KillSwitchConfig) -> KillSwitchConfig:
    agents = [a.model_copy(update={"actions": list(ALL_ACTIONS)}) if a.name == AGENT else a for a in config.agents]
    return config.model_copy(update={"agents": agents})


def test_kill_scales_the_agents_node_groups_to_zero_and_restore_puts_min_max_desired_back(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    t = sim.agent_tags
    cluster(aws, "shared")
    cluster(aws, "summarizer-cluster", tags=t(AGENT))  # a tagged cluster does not make its node groups the agent's
    cluster(aws, "west", WEST)
    mine = nodegroup(aws, "shared", "summarizer-gpu", t(AGENT), min=1, max=5, desired=3)
    west = nodegroup(aws, "west", "summarizer-west", t(AGENT), WEST, min=2, max=2, desired=2)
    other = nodegroup(aws, "shared", "crawler", t(OTHER), min=1, max=3, desired=2)
    exempt = nodegroup(
        aws, "shared", "summarizer-keep", t(AGENT, **{"killswitch:exempt": "true"}), min=1, max=3, desired=1
    )
    untagged = nodegroup(aws, "summarizer-cluster", "system", {}, min=1, max=3, desired=2)
    eng, ledger, _ = engine(all_actions(example_config), aws)

    report = eng.kill(AGENT)

    got = {r.resource_id: r for r in report.summary.results if r.resource_type == EKS_NODEGROUP}
    assert got[mine].outcome is Outcome.SUCCESS and got[mine].action == "scale_to_zero"
    assert got[west].outcome is Outcome.SUCCESS
    assert scaling(aws, "shared", "summarizer-gpu") == (0, 5, 0)  # max kept: EKS requires max >= 1
    assert scaling(aws, "west", "summarizer-west", WEST) == (0, 2, 0)
    assert scaling(aws, "shared", "crawler") == (1, 3, 2)
    assert scaling(aws, "shared", "summarizer-keep") == (1, 3, 1)
    assert scaling(aws, "summarizer-cluster", "system") == (1, 3, 2)
    assert got[exempt].outcome is Outcome.NO_ACTION and got[exempt].message == "killswitch:exempt=true"
    assert other not in got and untagged not in got
    assert report.verification == "verified"
    (line,) = [x for x in eng.status(AGENT)[0]["resources"] if x["resource_id"] == mine]
    assert line["restore"] == "node group min 1/max 5/desired 3"

    again = eng.kill(AGENT)  # a second delivery of the same kill: nothing changes
    assert again.status == "done"
    assert {r.outcome for r in again.summary.results if r.resource_type == EKS_NODEGROUP} == {Outcome.NO_ACTION}
    assert scaling(aws, "shared", "summarizer-gpu") == (0, 5, 0)

    restored = eng.restore(AGENT)
    assert restored.status == "restored"
    assert scaling(aws, "shared", "summarizer-gpu") == (1, 5, 3)
    assert scaling(aws, "west", "summarizer-west", WEST) == (2, 2, 2)
    assert scaling(aws, "shared", "crawler") == (1, 3, 2)
    assert all(e.restored for k in ledger.list_kills(AGENT) for e in ledger.resources(k.kill_id) if e.changed)


def test_a_node_group_eks_cannot_update_gets_its_code_and_the_others_are_scaled(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    cluster(aws, "shared")
    good = nodegroup(aws, "shared", "summarizer-a", sim.agent_tags(AGENT))
    busy = nodegroup(aws, "shared", "summarizer-b", sim.agent_tags(AGENT))
    nodegroup(aws, "shared", "summarizer-zero", sim.agent_tags(AGENT), min=0, max=2, desired=0)
    inner = aws("eks", EAST)

    class UpdatingEks:
        """EKS refuses an update while the node group is UPDATING (moto's node groups are always ACTIVE)."""

        def update_nodegroup_config(self, **kw: Any) -> Any:
            if kw["nodegroupName"] == "summarizer-b":
                msg = "Nodegroup summarizer-b is currently UPDATING"
                raise ClientError(
                    {"Error": {"Code": "ResourceInUseException", "Message": msg}}, "UpdateNodegroupConfig"
                )
            return inner.update_nodegroup_config(**kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

    eng, _, _ = engine(all_actions(example_config), Clients(overrides={("eks", EAST): UpdatingEks()}))
    report = eng.kill(AGENT)

    got = {r.resource_id: r for r in report.summary.results if r.resource_type == EKS_NODEGROUP}
    assert got[busy].outcome is Outcome.ERROR and got[busy].code == "ResourceInUseException"
    assert "UPDATING" in got[busy].message
    assert got[good].outcome is Outcome.SUCCESS and scaling(aws, "shared", "summarizer-a") == (0, 4, 0)
    assert scaling(aws, "shared", "summarizer-b") == (1, 4, 2)
    assert [r.message for r in got.values() if r.outcome is Outcome.NO_ACTION] == ["already scaled to zero"]
    assert report.status == "partial" and report.exit_code() == 2


def test_not_enabled_without_scale_eks(aws: Clients, example_config: KillSwitchConfig) -> None:
    cluster(aws, "shared")
    ng = nodegroup(aws, "shared", "summarizer-a", sim.agent_tags(AGENT))
    eng, _, _ = engine(example_config, aws)  # log-summarizer's actions in the fixture do not list scale_eks
    report = eng.kill(AGENT)
    (r,) = [r for r in report.summary.results if r.resource_id == ng]
    assert r.outcome is Outcome.NO_ACTION and "scale_eks is not enabled" in r.message
    assert scaling(aws, "shared", "summarizer-a") == (1, 4, 2)


def test_a_node_group_scaled_up_after_the_kill_is_scaled_down_again_and_restore_keeps_the_original(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    cluster(aws, "shared")
    nodegroup(aws, "shared", "summarizer-a", sim.agent_tags(AGENT), min=1, max=4, desired=2)
    eng, _, _ = engine(all_actions(example_config), aws)
    eng.kill(AGENT)
    aws("eks", EAST).update_nodegroup_config(  # the agent's CI scales it back up
        clusterName="shared", nodegroupName="summarizer-a", scalingConfig={"minSize": 3, "desiredSize": 3}
    )
    late = nodegroup(aws, "shared", "summarizer-late", sim.agent_tags(AGENT), min=1, max=2, desired=1)
    event = {
        "source": "aws.eks",
        "detail-type": CLOUDTRAIL_DETAIL_TYPE,
        "region": EAST,
        "detail": {
            "eventSource": "eks.amazonaws.com",
            "eventName": "CreateNodegroup",
            "awsRegion": EAST,
            "requestParameters": {"name": "shared", "nodegroupName": "summarizer-late", "tags": {"agent-name": AGENT}},
        },
    }

    (watch,) = eng.handle_event(event)

    assert watch.operation is Operation.KILL and watch.level == "watch"
    assert scaling(aws, "shared", "summarizer-a") == (0, 4, 0)
    assert scaling(aws, "shared", "summarizer-late") == (0, 2, 0)
    assert any(r.resource_id == late and r.outcome is Outcome.SUCCESS for r in watch.summary.results)
    eng.restore(AGENT)
    assert scaling(aws, "shared", "summarizer-a") == (1, 4, 2)  # the values from before the kill
    assert scaling(aws, "shared", "summarizer-late") == (1, 2, 1)


def test_verify_reports_a_node_group_that_is_still_scaled_up_and_skips_one_deleted_meanwhile(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    cluster(aws, "shared")
    ng = nodegroup(aws, "shared", "summarizer-a", sim.agent_tags(AGENT), min=1, max=4, desired=2)
    inner = aws("eks", EAST)

    class IgnoringEks:
        """Answers OK but the node group keeps its size (what verify exists to catch)."""

        def update_nodegroup_config(self, **kw: Any) -> dict[str, Any]:
            return {"update": {}}

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

    eng, _, _ = engine(all_actions(example_config), Clients(overrides={("eks", EAST): IgnoringEks()}))
    report = eng.kill(AGENT)
    assert report.verification == "not_verified"
    assert report.still_running == [{"resource_id": ng, "region": EAST, "why": "desired size 2"}]

    resource = next(r for r in EksNodegroups().discover(scan(aws)) if r.resource_id == ng)
    aws("eks", EAST).delete_nodegroup(clusterName="shared", nodegroupName="summarizer-a")
    assert EksNodegroups().still_running([resource], eng.act_context()) == {}


def scan(c: Clients) -> RegionScan:
    s = RegionScan(AGENT, EAST, c, [{"Key": "agent-name", "Values": [AGENT]}])
    s.arns[EKS_NODEGROUP] = [
        n["nodegroupArn"]
        for n in [c("eks", EAST).describe_nodegroup(clusterName="shared", nodegroupName="summarizer-a")["nodegroup"]]
    ]
    return s
