"""Hub and spokes: the `accounts:` config, the spoke StackSet in the management stack, the hub's AssumeRole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template
from pydantic import ValidationError

from infra.constructs.kill_function import kill_statements
from infra.constructs.spokes import spoke_template
from killswitch.config import KillSwitchConfig
from tests.infra.infra_support import (
    MANAGEMENT_ACCOUNT,
    WORKLOAD_ACCOUNT,
    as_list,
    make_config,
    resources,
    statement,
    synth_app,
    write_scps,
)

OU = "ou-ab12-cdef3456"
OU_2 = "ou-ab12-99998888"
ROOT = "r-ab12"
SPOKE_A = "555566667777"
ACCOUNTS = {"organizational_units": [OU, OU_2], "account_ids": [SPOKE_A], "organization_root_id": ROOT}
CONFIG = make_config(accounts={**ACCOUNTS, "external_id": "ks-hub-2026"})
# No sandbox: the management stack exists for the StackSet alone; the hub is the management account itself.
SPOKES_ONLY = make_config(
    prefix="org",
    sandbox=None,
    agents=[{"name": "bot", "budget": {"amount_usd": 5}}],
    accounts={"organizational_units": [OU]},
)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    base = tmp_path_factory.mktemp("spokes")
    _, built = synth_app([CONFIG, SPOKES_ONLY], write_scps(base / "scp"), base / "cdk.out")
    out = {}
    for config, (workload, management) in zip([CONFIG, SPOKES_ONLY], built, strict=True):
        assert management is not None
        out[f"{config.prefix}-workload"] = Template.from_stack(workload)
        out[f"{config.prefix}-management"] = Template.from_stack(management)
    return out


def _stack_set(template: Template, name: str = "spoke") -> dict[str, Any]:
    """The StackSet `<prefix>-<name>` (the spoke role's by default; `spoke-watch`: the watch's)."""
    found = [
        r["Properties"]
        for r in resources(template, "AWS::CloudFormation::StackSet").values()
        if r["Properties"]["StackSetName"].endswith(f"-{name}")
    ]
    assert len(found) == 1, found
    props: dict[str, Any] = found[0]
    return props


def _body(template: Template) -> dict[str, Any]:
    """The spoke template, with the management stack's deploy-time values (partition, its account) filled in."""
    body = _stack_set(template)["TemplateBody"]
    if isinstance(body, dict):
        [sep, parts] = body["Fn::Join"]
        values = {"AWS::Partition": "aws", "AWS::AccountId": "HUB_ACCOUNT"}
        body = sep.join(p if isinstance(p, str) else values[p["Ref"]] for p in parts)
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def test_the_stack_set_is_service_managed_and_follows_the_ous(templates: dict[str, Template]) -> None:
    props = _stack_set(templates["ks-management"])
    assert props["StackSetName"] == "ks-spoke"
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert props["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert props["OperationPreferences"]["FailureTolerancePercentage"] == 100  # one account never stops the rest
    assert props["StackInstancesGroup"] == [
        {"DeploymentTargets": {"OrganizationalUnitIds": [OU, OU_2]}, "Regions": ["us-east-1"]},
        {
            "DeploymentTargets": {
                "OrganizationalUnitIds": [ROOT],
                "Accounts": [SPOKE_A],
                "AccountFilterType": "INTERSECTION",
            },
            "Regions": ["us-east-1"],
        },
    ]
    assert len(json.dumps(_body(templates["ks-management"]))) < 51_200


def test_the_spoke_role_trusts_only_the_hub_kill_role_with_the_external_id(templates: dict[str, Template]) -> None:
    role = _body(templates["ks-management"])["Resources"]["SpokeRole"]["Properties"]
    assert role["RoleName"] == "ks-spoke"
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole" and trust["Effect"] == "Allow"
    assert trust["Principal"] == {"AWS": f"arn:aws:iam::{WORKLOAD_ACCOUNT}:root"}
    assert trust["Condition"] == {
        "StringEquals": {"sts:ExternalId": "ks-hub-2026"},
        "ArnEquals": {"aws:PrincipalArn": [f"arn:aws:iam::{WORKLOAD_ACCOUNT}:role/ks-kill-us-east-1"]},
    }


def test_the_spoke_permissions_are_the_kill_compute_statements_in_the_spoke_account(
    templates: dict[str, Template],
) -> None:
    [policy] = _body(templates["ks-management"])["Resources"]["SpokeRole"]["Properties"]["Policies"]
    stmts = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    source = {s.sid: s for s in kill_statements(org_role_arn=None, direct_org_targets=None)}
    # Every kill statement with a non-IAM action (deny_iam needs the deny policy in the spoke: not there yet).
    assert set(stmts) == {sid for sid, s in source.items() if any(not a.startswith("iam:") for a in s.actions)}
    actions = {a for s in stmts.values() for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith(("organizations:", "sts:", "iam:"))}
    stop = stmts["StopStartTaggedInstances"]
    assert stop["Condition"] == {"Null": {"aws:ResourceTag/agent-name": "false"}}
    partition, account = {"Ref": "AWS::Partition"}, {"Ref": "AWS::AccountId"}  # the spoke's, at its deploy
    assert stop["Resource"] == {"Fn::Join": ["", ["arn:", partition, ":ec2:*:", account, ":instance/*"]]}
    asg = stmts["ScaleTaggedAutoScalingGroups"]
    assert asg["Condition"] == {"Null": {"autoscaling:ResourceTag/agent-name": "false"}}
    for s in stmts.values():  # every ARN is the spoke's own, never the management account's
        assert MANAGEMENT_ACCOUNT not in json.dumps(s) and "Token[" not in json.dumps(s)


def test_the_hub_kill_role_may_assume_the_spoke_role_in_any_account(templates: dict[str, Template]) -> None:
    stmt = statement(templates["ks-workload"], "AssumeSpokeRoles")
    assert stmt["Action"] == "sts:AssumeRole"
    assert stmt["Resource"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::*:role/ks-spoke"]]}
    # Only with this deployment's ExternalId (the spoke checks it too).
    assert stmt["Condition"] == {"StringEquals": {"sts:ExternalId": "ks-hub-2026"}}


def test_the_hub_kill_role_may_list_the_accounts_of_the_ous(templates: dict[str, Template]) -> None:
    stmt = statement(templates["ks-workload"], "ListSpokeAccounts")
    assert sorted(as_list(stmt["Action"])) == [
        "organizations:ListAccountsForParent",
        "organizations:ListOrganizationalUnitsForParent",
    ]
    assert stmt["Resource"] == "*"


def test_without_sandbox_the_management_stack_holds_only_the_stack_set(templates: dict[str, Template]) -> None:
    management = templates["org-management"]
    assert not resources(management, "AWS::Organizations::Policy")
    assert not resources(management, "AWS::Budgets::Budget")
    assert {t["Type"] for t in management.to_json()["Resources"].values()} == {"AWS::CloudFormation::StackSet"}
    props = _stack_set(management)
    assert props["StackInstancesGroup"] == [
        {"DeploymentTargets": {"OrganizationalUnitIds": [OU]}, "Regions": ["us-east-1"]}
    ]
    [trust] = _body(management)["Resources"]["SpokeRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::HUB_ACCOUNT:root"}  # this (management) account at deploy
    assert trust["Condition"]["StringEquals"] == {"sts:ExternalId": "org-hub"}
    assert not resources(templates["ks-workload"], "AWS::CloudFormation::StackSet")


@pytest.mark.parametrize(
    ("accounts", "field", "message"),
    [
        ({"account_ids": [SPOKE_A]}, "accounts.organization_root_id", "account_ids need organization_root_id"),
        ({}, "accounts.organizational_units", "list at least one OU id"),
        ({"organizational_units": ["ou-x"]}, "accounts.organizational_units.0", "string_pattern_mismatch"),
        (
            {"organizational_units": [OU], "organization_id": "org-1"},
            "accounts.organization_id",
            "string_pattern_mismatch",
        ),
        (
            {"organizational_units": [OU, OU]},
            "accounts.organizational_units.1",
            "organizational_units lists ou-ab12-cdef3456 more than once",
        ),
        (
            {"account_ids": [MANAGEMENT_ACCOUNT], "organization_root_id": ROOT},
            "accounts.account_ids.0",
            "StackSets never deploy to it",
        ),
    ],
)
def test_bad_accounts_sections_name_the_field(accounts: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_config(accounts=accounts)
    [error] = info.value.errors()
    cause = (error.get("ctx") or {}).get("error")
    loc = ".".join(str(p) for p in (*error["loc"], *getattr(cause, "loc", ())))
    assert loc == field
    assert message in str(info.value) or error["type"] == message


def test_the_accounts_section_round_trips_through_the_layer_json() -> None:
    assert KillSwitchConfig.from_json(CONFIG.to_json()) == CONFIG
    assert CONFIG.spoke_external_id() == "ks-hub-2026" and CONFIG.spoke_role_name() == "ks-spoke"


def test_config_file_errors_name_file_line_and_field(tmp_path: Path) -> None:
    from killswitch.config import ConfigError, load_config

    path = tmp_path / "killswitch.yaml"
    path.write_text(
        "regions: [us-east-1]\n"
        "agents: [{name: a, budget: {amount_usd: 1}}]\n"
        "accounts:\n"
        "  account_ids: ['555566667777']\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [issue] = info.value.issues
    assert str(issue).startswith(f"{path}:3:1: KS107 accounts.organization_root_id: account_ids need")


def test_ops_roles_are_trusted_exactly_so_a_restore_reaches_every_account() -> None:
    ops = f"arn:aws:iam::{WORKLOAD_ACCOUNT}:role/platform-ops"
    config = make_config(accounts={**ACCOUNTS, "ops_role_arns": [ops]})
    trust = spoke_template(config, hub_account=WORKLOAD_ACCOUNT, statements=[])["Resources"]["SpokeRole"]
    [statement] = trust["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    principals = statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    assert principals[1:] == [ops] and principals[0].endswith(":role/ks-kill-us-east-1")
    with pytest.raises(ValidationError, match="no wildcards"):
        make_config(accounts={**ACCOUNTS, "ops_role_arns": [f"arn:aws:iam::{WORKLOAD_ACCOUNT}:role/ops-*"]})
