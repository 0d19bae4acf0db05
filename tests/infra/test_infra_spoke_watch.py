"""The kill's watch in spoke accounts: the `<prefix>-spoke-watch` StackSet of the management stack (a rule per spoke
account × configured region forwarding to the hub's default bus) and the hub bus policy that admits those events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs, lint

from killswitch.kill.watch import event_pattern
from tests.infra.infra_support import WORKLOAD_ACCOUNT, make_config, resources, synth_app, write_scps

OU, OU_2 = "ou-ab12-cdef3456", "ou-ab12-99998888"
ORG = "o-a1b2c3d4e5"
SPOKE_A, SPOKE_B = "555566667777", "666677778888"
REGIONS = ["us-east-1", "eu-west-1"]
# The hub is the workload account (sandbox.workload_account_id of the test config).
CONFIG = make_config(
    regions=REGIONS,
    accounts={
        "organizational_units": [OU, OU_2],
        "account_ids": [SPOKE_A, SPOKE_B],
        "organization_root_id": "r-ab12",
        "organization_id": ORG,
    },
)
# No sandbox, no organization id: the hub is the management account itself; OUs only.
OUS_ONLY = make_config(
    prefix="org",
    sandbox=None,
    agents=[{"name": "bot", "budget": {"amount_usd": 5}}],
    accounts={"organizational_units": [OU]},
)
NO_HUB = make_config(prefix="solo")
HUB_BUS = f"arn:aws:events:us-east-1:{WORKLOAD_ACCOUNT}:event-bus/default"
HUB_BUS_TOKENS = {
    "Fn::Join": [
        "",
        ["arn:", {"Ref": "AWS::Partition"}, ":events:us-east-1:", {"Ref": "AWS::AccountId"}, ":event-bus/default"],
    ]
}


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    base = tmp_path_factory.mktemp("spoke-watch")
    configs = [CONFIG, OUS_ONLY, NO_HUB]
    _, built = synth_app(configs, write_scps(base / "scp"), base / "cdk.out")
    out = {}
    for config, (workload, management) in zip(configs, built, strict=True):
        out[f"{config.prefix}-workload"] = Template.from_stack(workload)
        if management is not None:
            out[f"{config.prefix}-management"] = Template.from_stack(management)
    return out


def stack_set(template: Template) -> dict[str, Any]:
    [props] = [
        r["Properties"]
        for r in resources(template, "AWS::CloudFormation::StackSet").values()
        if r["Properties"]["StackSetName"].endswith("-spoke-watch")
    ]
    return dict(props)


def body(template: Template, hub: str = "HUB_ACCOUNT") -> dict[str, Any]:
    """The spoke-watch template, the management stack's own partition and account filled in."""
    text = stack_set(template)["TemplateBody"]
    if isinstance(text, dict):
        [sep, parts] = text["Fn::Join"]
        values = {"AWS::Partition": "aws", "AWS::AccountId": hub}
        text = sep.join(p if isinstance(p, str) else values[p["Ref"]] for p in parts)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def test_the_watch_stack_set_covers_every_configured_region_of_the_spoke_accounts(
    templates: dict[str, Template],
) -> None:
    props = stack_set(templates["ks-management"])
    assert props["StackSetName"] == "ks-spoke-watch"
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert props["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert props["OperationPreferences"]["FailureTolerancePercentage"] == 100
    assert props["StackInstancesGroup"] == [
        {
            # The hub (a known account id) keeps its own watch rules: left out of the OUs' instances.
            "DeploymentTargets": {
                "OrganizationalUnitIds": [OU, OU_2],
                "Accounts": [WORKLOAD_ACCOUNT],
                "AccountFilterType": "DIFFERENCE",
            },
            "Regions": REGIONS,
        },
        {
            "DeploymentTargets": {
                "OrganizationalUnitIds": ["r-ab12"],
                "Accounts": [SPOKE_A, SPOKE_B],
                "AccountFilterType": "INTERSECTION",
            },
            "Regions": REGIONS,
        },
    ]
    # The role StackSet stays single-region (IAM is global).
    roles = next(
        r["Properties"]
        for r in resources(templates["ks-management"], "AWS::CloudFormation::StackSet").values()
        if r["Properties"]["StackSetName"] == "ks-spoke"
    )
    assert {tuple(g["Regions"]) for g in roles["StackInstancesGroup"]} == {("us-east-1",)}


def test_the_spoke_rule_forwards_the_registry_pattern_to_the_hub_bus_with_a_dead_letter_queue(
    templates: dict[str, Template],
) -> None:
    spoke = body(templates["ks-management"])["Resources"]
    rule = spoke["ComputeStarted"]["Properties"]
    assert rule["EventPattern"] == event_pattern()
    assert rule["EventBusName"] == "default"
    [target] = rule["Targets"]
    assert target["Arn"] == HUB_BUS
    assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardRole", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetters", "Arn"]}}
    queue = spoke["DeadLetters"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and queue["QueueName"] == "ks-spoke-watch-dlq"
    allow, tls = spoke["DeadLettersPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ComputeStarted", "Arn"]}}}
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_forward_role_may_only_put_events_on_the_hub_bus(templates: dict[str, Template]) -> None:
    role = body(templates["ks-management"])["Resources"]["ForwardRole"]["Properties"]
    assert role["RoleName"] == {"Fn::Join": ["", ["ks-spoke-watch-", {"Ref": "AWS::Region"}]]}
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    [policy] = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": HUB_BUS}
    ]


def test_a_management_account_hub_is_the_bus_of_the_management_stacks_own_account(
    templates: dict[str, Template],
) -> None:
    props = stack_set(templates["org-management"])
    assert props["StackInstancesGroup"] == [
        {"DeploymentTargets": {"OrganizationalUnitIds": [OU]}, "Regions": ["us-east-1", "eu-west-1"]}
    ]
    [target] = body(templates["org-management"])["Resources"]["ComputeStarted"]["Properties"]["Targets"]
    assert target["Arn"] == "arn:aws:events:us-east-1:HUB_ACCOUNT:event-bus/default"


def bus_policies(template: Template) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["StatementId"]: r["Properties"]
        for r in resources(template, "AWS::Events::EventBusPolicy").values()
    }


ROLES = {
    "ArnLike": {
        "aws:PrincipalArn": {
            "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::*:role/ks-spoke-watch-*"]],
        }
    }
}


def test_the_hub_bus_admits_only_the_spokes_forwarding_roles(templates: dict[str, Template]) -> None:
    policies = bus_policies(templates["ks-workload"])
    assert set(policies) == {"ks-spoke-watch-accounts", "ks-spoke-watch-ous"}
    for p in policies.values():
        assert p["EventBusName"] == "default"
        assert (p["Statement"]["Action"], p["Statement"]["Resource"]) == ("events:PutEvents", HUB_BUS_TOKENS)
    listed = policies["ks-spoke-watch-accounts"]["Statement"]
    assert listed["Principal"] == {
        "AWS": [
            {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":iam::{account}:root"]]}
            for account in (SPOKE_A, SPOKE_B)
        ]
    }
    assert listed["Condition"] == ROLES
    ous = policies["ks-spoke-watch-ous"]["Statement"]
    assert ous["Principal"] == "*"
    assert ous["Condition"] == {
        **ROLES,
        "ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": [f"{ORG}/*/{OU}/*", f"{ORG}/*/{OU_2}/*"]},
        "StringEquals": {"aws:PrincipalOrgID": ORG},
    }


def test_without_an_organization_id_the_ou_paths_match_any_organization_and_no_org_id_is_required(
    templates: dict[str, Template],
) -> None:
    [ous] = bus_policies(templates["org-workload"]).values()
    condition = ous["Statement"]["Condition"]
    assert condition["ForAnyValue:StringLike"] == {"aws:PrincipalOrgPaths": [f"o-*/*/{OU}/*"]}
    assert "StringEquals" not in condition
    assert "org-spoke-watch-*" in json.dumps(condition["ArnLike"])


def test_without_accounts_there_is_no_spoke_watch(templates: dict[str, Template]) -> None:
    assert not resources(templates["solo-workload"], "AWS::Events::EventBusPolicy")
    assert "solo-management" not in templates or not resources(
        templates["solo-management"], "AWS::CloudFormation::StackSet"
    )


def test_the_spoke_watch_template_passes_cfn_lint(templates: dict[str, Template]) -> None:
    """cfn-lint reads `cdk.out` but not the text inside a StackSet's TemplateBody: lint it on its own."""
    text = json.dumps(body(templates["ks-management"], hub=WORKLOAD_ACCOUNT))
    matches = lint(text, config=ManualArgs(regions=REGIONS))
    assert [str(m) for m in matches] == []


def test_a_bad_organization_id_names_file_line_and_field(tmp_path: Path) -> None:
    from killswitch.config import ConfigError, load_config

    path = tmp_path / "killswitch.yaml"
    path.write_text(
        "regions: [us-east-1]\n"
        "agents: [{name: a, budget: {amount_usd: 1}}]\n"
        "accounts:\n"
        f"  organizational_units: [{OU}]\n"
        "  organization_id: org-12345\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [issue] = info.value.issues
    assert str(issue).startswith(f"{path}:5:")
    assert "accounts.organization_id" in str(issue) and "not an organization id like o-a1b2c3d4e5" in str(issue)


def test_too_many_listed_accounts_for_the_bus_policy_fail_synth_with_the_field(tmp_path: Path) -> None:
    from infra.workload_stack import StackConfigError

    many = [f"{100000000000 + i}" for i in range(300)]
    config = make_config(prefix="many", accounts={"account_ids": many, "organization_root_id": "r-ab12"})
    with pytest.raises(StackConfigError, match=r"accounts\.account_ids: the hub bus policy .* over EventBridge's"):
        synth_app([config], write_scps(tmp_path / "scp"), tmp_path / "cdk.out", nag=False)
    fits = make_config(prefix="fits", accounts={"account_ids": many[:100], "organization_root_id": "r-ab12"})
    synth_app([fits], write_scps(tmp_path / "scp2"), tmp_path / "cdk2.out", nag=False)
