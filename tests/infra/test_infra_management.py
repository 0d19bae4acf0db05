"""Management stack template: SCPs (minified, named), budget actions per agent and sandbox account, roles."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.infra.infra_support import (
    DENY_POLICY,
    FREEZE_POLICY,
    MANAGEMENT_ACCOUNT,
    SANDBOX_A,
    SANDBOX_B,
    WORKLOAD_ACCOUNT,
    as_list,
    logical_id,
    make_config,
    render,
    resources,
    synth_app,
    write_scps,
)

CONFIG = make_config()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    base = tmp_path_factory.mktemp("management")
    _, [(_, management)] = synth_app([CONFIG], write_scps(base / "scp"), base / "cdk.out")
    assert management is not None
    assert management.account == MANAGEMENT_ACCOUNT  # pinned: deploying with other credentials is refused
    return Template.from_stack(management)


def _deny_id(template: Template) -> str:
    return logical_id(template, "AWS::Organizations::Policy", Name="ks-deny-agent-compute")


def test_one_scp_per_file_with_minified_content_and_prefixed_name(template: Template) -> None:
    policies = {
        p["Properties"]["Name"]: p["Properties"] for p in resources(template, "AWS::Organizations::Policy").values()
    }
    assert set(policies) == {"ks-deny-agent-compute", "ks-hard-freeze"}
    assert CONFIG.scp_policy_name() == "ks-deny-agent-compute"
    assert policies["ks-deny-agent-compute"]["Content"] == json.dumps(DENY_POLICY, separators=(",", ":"))
    assert policies["ks-hard-freeze"]["Content"] == json.dumps(FREEZE_POLICY, separators=(",", ":"))
    for props in policies.values():
        assert props["Type"] == "SERVICE_CONTROL_POLICY"
        assert " " not in props["Content"] and "\n" not in props["Content"]  # the files are indented
        assert "TargetIds" not in props  # the stack never attaches a policy; the kill and budget actions do


def _actions(template: Template) -> dict[str, dict[str, Any]]:
    """Budget actions by their budget's name without the hash suffix."""
    return {
        a["Properties"]["BudgetName"].rsplit("-", 1)[0]: a
        for a in resources(template, "AWS::Budgets::BudgetsAction").values()
    }


def test_one_linked_account_budget_and_action_per_agent_and_sandbox_account(template: Template) -> None:
    budgets = {
        b["Properties"]["Budget"]["BudgetName"].rsplit("-", 1)[0]: b["Properties"]
        for b in resources(template, "AWS::Budgets::Budget").values()
    }
    expected = {
        f"ks-summarizer-{SANDBOX_A}": SANDBOX_A,
        f"ks-summarizer-{SANDBOX_B}": SANDBOX_B,
        f"Crawler Budget-{SANDBOX_A}": SANDBOX_A,
    }
    assert {name: b["Budget"]["CostFilters"] for name, b in budgets.items()} == {
        name: {"LinkedAccount": [acct]} for name, acct in expected.items()
    }
    assert set(_actions(template)) == set(expected)
    budget_ids = {
        b["Properties"]["Budget"]["BudgetName"]: lid for lid, b in resources(template, "AWS::Budgets::Budget").items()
    }
    for action in _actions(template).values():
        assert budget_ids[action["Properties"]["BudgetName"]] in as_list(action["DependsOn"])


@pytest.mark.parametrize(
    ("budget", "account", "approval", "pct"),
    [
        (f"ks-summarizer-{SANDBOX_A}", SANDBOX_A, "AUTOMATIC", 100),
        (f"ks-summarizer-{SANDBOX_B}", SANDBOX_B, "AUTOMATIC", 100),
        (f"Crawler Budget-{SANDBOX_A}", SANDBOX_A, "MANUAL", 95),
    ],
)
def test_budget_action_applies_the_deny_scp_to_that_account(
    template: Template, budget: str, account: str, approval: str, pct: int
) -> None:
    props = _actions(template)[budget]["Properties"]
    assert props["ActionType"] == "APPLY_SCP_POLICY"
    assert props["ApprovalModel"] == approval
    assert props["NotificationType"] == "ACTUAL"
    assert props["ActionThreshold"] == {"Type": "PERCENTAGE", "Value": pct}
    assert props["Definition"] == {
        "ScpActionDefinition": {"PolicyId": {"Fn::GetAtt": [_deny_id(template), "Id"]}, "TargetIds": [account]}
    }
    assert sorted(s["Address"] for s in props["Subscribers"]) == sorted(CONFIG.notify.emails)
    assert {s["Type"] for s in props["Subscribers"]} == {"EMAIL"}
    role_id = logical_id(template, "AWS::IAM::Role", RoleName="ks-budgets-action")
    assert props["ExecutionRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}


def test_no_action_ever_targets_the_management_account(template: Template) -> None:
    targets = {
        t
        for a in _actions(template).values()
        for t in a["Properties"]["Definition"]["ScpActionDefinition"]["TargetIds"]
    }
    assert targets == {SANDBOX_A, SANDBOX_B}
    assert MANAGEMENT_ACCOUNT not in targets
    # and a deploy-time rule refuses to deploy into an account that is one of the targets
    rule = template.to_json()["Rules"]["NeverTargetManagementAccount"]["Assertions"][0]["Assert"]
    assert rule == {"Fn::Not": [{"Fn::Contains": [[SANDBOX_A, SANDBOX_B], {"Ref": "AWS::AccountId"}]}]}


def _role_and_statements(template: Template, role_name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    role_id = logical_id(template, "AWS::IAM::Role", RoleName=role_name)
    role = resources(template, "AWS::IAM::Role")[role_id]["Properties"]
    stmts = [
        s
        for p in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    return role, stmts


def test_budgets_execution_role_trusts_budgets_from_this_account_and_only_attaches_the_deny_scp(
    template: Template,
) -> None:
    role, stmts = _role_and_statements(template, "ks-budgets-action")
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "budgets.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    [stmt] = stmts
    assert sorted(stmt["Action"]) == ["organizations:AttachPolicy", "organizations:DetachPolicy"]
    assert sorted(json.dumps(render(r)) for r in stmt["Resource"]) == sorted(
        [
            json.dumps(f"${{{_deny_id(template)}.Arn}}"),
            *(
                json.dumps(f"arn:${{AWS::Partition}}:organizations::${{AWS::AccountId}}:account/o-*/{a}")
                for a in (SANDBOX_A, SANDBOX_B)
            ),
        ]
    )


def test_org_kill_role_trusts_only_the_workload_accounts_kill_role(template: Template) -> None:
    role, stmts = _role_and_statements(template, "ks-org-kill")
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert render(trust["Principal"]) == {"AWS": f"arn:${{AWS::Partition}}:iam::{WORKLOAD_ACCOUNT}:root"}
    # The exact kill role name: a `ks-*` pattern would trust any role an agent could create with that prefix.
    assert render(trust["Condition"]) == {
        "ArnEquals": {"aws:PrincipalArn": f"arn:${{AWS::Partition}}:iam::{WORKLOAD_ACCOUNT}:role/ks-kill-us-east-1"}
    }
    by_sid = {s["Sid"]: s for s in stmts}
    attach = by_sid["AttachDenyScp"]
    assert sorted(attach["Action"]) == ["organizations:AttachPolicy", "organizations:DetachPolicy"]
    assert {"Fn::GetAtt": [_deny_id(template), "Arn"]} in attach["Resource"]
    assert all("service_control_policy/p-*" not in json.dumps(r) for r in attach["Resource"])
    # accounts the kill finds by their agent-name tag: only while the tag is present
    tagged = by_sid["AttachDenyScpTaggedAccounts"]
    assert render(tagged["Resource"]) == "arn:${AWS::Partition}:organizations::${AWS::AccountId}:account/o-*/*"
    assert tagged["Condition"] == {"Null": {"aws:ResourceTag/agent-name": "false"}}
    assert sorted(tagged["Action"]) == ["organizations:AttachPolicy", "organizations:DetachPolicy"]
    assert set(by_sid["OrganizationsRead"]["Action"]) == {
        "organizations:ListPoliciesForTarget",
        "organizations:ListPolicies",
        "organizations:ListAccounts",
        "organizations:ListTagsForResource",
        "organizations:DescribeOrganization",
    }  # DescribeAccount is never called (IAM coverage trace)


def test_management_stack_holds_no_lambda_or_topic(template: Template) -> None:
    for rtype in ("AWS::Lambda::Function", "AWS::SNS::Topic", "AWS::DynamoDB::Table"):
        assert not resources(template, rtype)
    assert len(resources(template, "AWS::IAM::Role")) == 2
