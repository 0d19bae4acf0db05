"""The watch in every configured region: a forwarding stack per region other than home (`infra.watch_stacks`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template

from infra.watch_stacks import watch_stack_name
from killswitch.kill.watch import event_pattern
from tests.infra.infra_support import WORKLOAD_ACCOUNT, make_config, only, resources, synth_app, write_scps

CONFIG = make_config(regions=["us-east-1", "eu-west-1", "ap-southeast-2"])
HOME_BUS = {
    "Fn::Join": [
        "",
        ["arn:", {"Ref": "AWS::Partition"}, ":events:us-east-1:", {"Ref": "AWS::AccountId"}, ":event-bus/default"],
    ]
}


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stack]:
    base = tmp_path_factory.mktemp("watch-regions")
    app, [(workload, _)] = synth_app([CONFIG], write_scps(base / "scp"), base / "cdk.out")
    out: dict[str, Stack] = {s.stack_name: s for s in app.node.children if isinstance(s, Stack)}
    assert workload.watch_stacks == [out["ks-watch-eu-west-1"], out["ks-watch-ap-southeast-2"]]
    return out


def _rule(template: Template) -> dict[str, Any]:
    return dict(only(template, "AWS::Events::Rule")["Properties"])


def test_one_forwarding_stack_per_region_other_than_home(stacks: dict[str, Stack]) -> None:
    watch = sorted(n for n in stacks if n.startswith("ks-watch-"))
    assert watch == [watch_stack_name(CONFIG, "ap-southeast-2"), watch_stack_name(CONFIG, "eu-west-1")]
    assert "ks-watch-us-east-1" not in stacks  # the home region's rule lives in the workload stack
    for name in watch:
        stack = stacks[name]
        assert stack.region == name.removeprefix("ks-watch-")
        assert stack.account == WORKLOAD_ACCOUNT  # pinned like the workload stack
        assert stacks["ks-workload"] in stack.dependencies


@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-2"])
def test_rule_forwards_the_registry_pattern_to_the_home_default_bus(stacks: dict[str, Stack], region: str) -> None:
    template = Template.from_stack(stacks[f"ks-watch-{region}"])
    rule = _rule(template)
    assert rule["EventPattern"] == event_pattern()  # the same pattern as the home rule, from the kind registry
    [target] = rule["Targets"]
    assert target["Arn"] == HOME_BUS
    role_id = next(iter(resources(template, "AWS::IAM::Role")))
    assert target["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    dlq_id = next(iter(resources(template, "AWS::SQS::Queue")))
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}


def test_forward_role_is_trusted_by_eventbridge_and_may_only_put_events_on_the_home_bus(
    stacks: dict[str, Stack],
) -> None:
    template = Template.from_stack(stacks["ks-watch-eu-west-1"])
    role = only(template, "AWS::IAM::Role")["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert role["RoleName"] == "ks-watch-forward-eu-west-1"  # IAM is global: one name per region
    statements = [
        s
        for p in resources(template, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements == [{"Action": "events:PutEvents", "Effect": "Allow", "Resource": HOME_BUS}]
    assert not resources(template, "AWS::Lambda::Function")  # nothing runs in the region: the home Lambda acts


def test_home_rule_matches_forwarded_events(stacks: dict[str, Stack]) -> None:
    """A forwarded event keeps its source/detail-type/detail: the home rule's pattern names no region or account."""
    home = Template.from_stack(stacks["ks-workload"])
    rules = {r["Properties"].get("Name"): r["Properties"] for r in resources(home, "AWS::Events::Rule").values()}
    pattern = rules["ks-watch"]["EventPattern"]
    assert pattern == event_pattern()
    assert not {"region", "account"} & set(pattern)


def test_single_region_config_has_no_forwarding_stack(tmp_path: Path) -> None:
    config = make_config(prefix="solo", regions=["eu-west-1"], home_region="eu-west-1")
    app, [(workload, _)] = synth_app([config], write_scps(tmp_path / "scp"), tmp_path / "cdk.out", nag=False)
    assert workload.watch_stacks == []
    assert not [s for s in app.node.children if isinstance(s, Stack) and "-watch-" in s.stack_name]


def test_home_region_other_than_the_first_is_not_forwarded(tmp_path: Path) -> None:
    config = make_config(prefix="h2", regions=["us-east-1", "eu-west-1"], home_region="eu-west-1")
    _, [(workload, _)] = synth_app([config], write_scps(tmp_path / "scp"), tmp_path / "cdk.out", nag=False)
    assert [s.stack_name for s in workload.watch_stacks] == ["h2-watch-us-east-1"]
    rule = _rule(Template.from_stack(workload.watch_stacks[0]))
    assert ":events:eu-west-1:" in str(rule["Targets"][0]["Arn"])
