"""The kind registry: one entry per resource type, every config action reachable, IAM statements merged by Sid."""

from __future__ import annotations

from killswitch.config import Action
from killswitch.kill import kinds
from killswitch.kill.discover import arn_type
from killswitch.kill.kinds.base import Kind


def test_every_kind_is_registered_once_with_its_own_config_action() -> None:
    types = [k.resource_type for k in kinds.REGISTRY]
    assert len(types) == len(set(types))
    assert {k.config_action for k in kinds.REGISTRY} == set(Action)
    assert kinds.KILL_ORDER[-1] == "organizations:account"  # the SCP last: our own restore is never blocked


def test_kinds_for_selects_by_config_action() -> None:
    assert [k.resource_type for k in kinds.kinds_for([Action.STOP_EC2])] == ["ec2:instance"]
    assert kinds.kinds_for(None) == list(kinds.REGISTRY)


def test_grants_with_the_same_sid_are_merged_and_every_write_is_tag_conditioned() -> None:
    grants = {g.sid: g for g in kinds.iam_grants()}
    assert len(grants) == len(kinds.iam_grants())
    assert {"tag:GetResources", "ec2:DescribeInstances", "ecs:DescribeServices"} <= set(grants["Discover"].actions)
    assert set(grants["ScaleStopTaggedEcs"].actions) == {"ecs:UpdateService", "ecs:StopTask"}
    for g in grants.values():
        writes = [a for a in g.actions if not a.split(":")[1].startswith(("Describe", "List", "Get"))]
        if writes and g.sid not in ("EcsServiceScaling",):
            assert g.conditions, f"{g.sid} grants {writes} without a condition"


def test_tagging_types_are_shared_and_arns_map_back_to_them() -> None:
    assert {"ec2:instance", "ecs:service", "ecs:task"} <= set(kinds.tagging_types())
    assert arn_type("arn:aws:ec2:us-east-1:123456789012:instance/i-0abc") == "ec2:instance"
    assert arn_type("arn:aws:ecs:us-east-1:123456789012:service/agents/api") == "ecs:service"
    assert arn_type("arn:aws:lambda:us-east-1:123456789012:function:summarize") == "lambda:function"
    assert arn_type("arn:aws:rds:us-east-1:123456789012:db:agentdb") == "rds:db"
    assert arn_type("not-an-arn") == ""


def test_watch_events_name_the_calls_that_start_compute() -> None:
    events = kinds.watch_events()
    assert "RunInstances" in events["ec2.amazonaws.com"]
    assert "RunTask" in events["ecs.amazonaws.com"]


def test_a_kind_without_overrides_does_nothing_to_aws() -> None:
    assert Kind().still_running([], None) == {}  # type: ignore[arg-type]
    assert Kind().grants() == []


def test_sagemaker_endpoint_cost_is_unknown_when_a_variant_has_no_priced_instance_type() -> None:
    from decimal import Decimal

    from killswitch.kill.kinds.sagemaker import hourly_usd
    from killswitch.meter.compute import SnapshotPrices

    prices = SnapshotPrices()
    two = [{"instance_type": "ml.m5.large", "count": 2}]
    assert hourly_usd("us-east-1", two, prices) == Decimal("0.230")
    assert hourly_usd("us-east-1", [*two, {"instance_type": "", "count": 0}], prices) is None  # serverless
    assert hourly_usd("us-east-1", [{"instance_type": "ml.unknown", "count": 1}], prices) is None


def test_the_kill_lambda_may_stop_notebooks_but_never_delete_or_create_sagemaker_resources() -> None:
    from killswitch.kill.kinds.sagemaker import OPS_ACTIONS

    granted = {a for g in kinds.iam_grants() for a in g.actions}
    assert "sagemaker:StopNotebookInstance" in granted
    assert granted.isdisjoint(OPS_ACTIONS)
    assert {"CreateNotebookInstance", "StartNotebookInstance", "CreateEndpoint"} <= set(
        kinds.watch_events()["sagemaker.amazonaws.com"]
    )
