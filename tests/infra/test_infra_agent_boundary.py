"""`<prefix>-agent-boundary`: what an agent role carrying it can no longer do (evaluated on the synthesized policy)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.iam_coverage.policy import denied_by
from tests.iam_coverage.template import Where, resolve
from tests.infra.infra_support import make_config, synth_app, write_scps

CONFIG = make_config()
WHERE = Where(account="444455556666", region="us-east-1")
AGENT = {"aws:principaltag/agent-name": "summarizer"}
INSTANCE = "arn:aws:ec2:us-east-1:444455556666:instance/i-1"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("boundary")
    _, [(workload, _)] = synth_app([CONFIG], write_scps(base / "scp"), base / "cdk.out")
    return Template.from_stack(workload).to_json()


@pytest.fixture(scope="module")
def boundary(template: dict[str, Any]) -> list[dict[str, Any]]:
    policies = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and r["Properties"]["ManagedPolicyName"] == "ks-agent-boundary"
    ]
    assert len(policies) == 1
    statements: list[dict[str, Any]] = resolve(
        policies[0]["Properties"]["PolicyDocument"]["Statement"], template["Resources"], WHERE
    )
    return statements


def tagging(
    keys: list[str], request: dict[str, str] | None = None, resource: dict[str, str] | None = None
) -> dict[str, list[str]]:
    context: dict[str, list[str]] = {"aws:tagkeys": keys}
    for k, v in (request or {}).items():
        context[f"aws:requesttag/{k}"] = [v]
    for k, v in (resource or {}).items():
        context[f"aws:resourcetag/{k}"] = [v]
    return context


def test_boundary_is_deny_only_and_exported(template: dict[str, Any], boundary: list[dict[str, Any]]) -> None:
    assert {s["Effect"] for s in boundary} == {"Deny"}
    assert "AgentBoundaryPolicyArn" in template["Outputs"]


@pytest.mark.parametrize(
    ("action", "context"),
    [
        ("ec2:CreateTags", tagging(["agent-name"], {"agent-name": "crawler"})),  # another agent's name
        ("ec2:CreateTags", tagging(["agent-name"], {"agent-name": "summarizer "})),  # whitespace variant
        ("ecs:TagResource", tagging(["agent-name"], {"agent-name": "Summarizer"})),  # case variant
        ("ec2:DeleteTags", tagging(["agent-name"])),  # removing it
        ("lambda:UntagResource", tagging(["agent-name"])),
        ("ec2:CreateTags", tagging(["agent-run-id"], {"agent-run-id": "r2"}, {"agent-run-id": "r1"})),
        ("rds:RemoveTagsFromResource", tagging(["agent-run-id"], resource={"agent-run-id": "r1"})),
        ("ec2:CreateTags", tagging(["killswitch:exempt"], {"killswitch:exempt": "true"})),
        ("sagemaker:DeleteTags", tagging(["killswitch:criticality"])),
    ],
)
def test_tag_escapes_are_denied(boundary: list[dict[str, Any]], action: str, context: dict[str, list[str]]) -> None:
    assert denied_by(boundary, action, INSTANCE, context, AGENT)


@pytest.mark.parametrize(
    ("action", "context"),
    [
        (
            "ec2:RunInstances",
            tagging(["agent-name", "agent-run-id"], {"agent-name": "summarizer", "agent-run-id": "r3"}),
        ),
        ("ec2:CreateTags", tagging(["Project"], {"Project": "x"})),
        ("ec2:StopInstances", {}),
    ],
)
def test_the_agents_own_work_is_not_denied(
    boundary: list[dict[str, Any]], action: str, context: dict[str, list[str]]
) -> None:
    assert denied_by(boundary, action, INSTANCE, context, AGENT) == []


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:CreateRole", "arn:aws:iam::444455556666:role/ks-anything"),
        ("iam:PutRolePolicy", "arn:aws:iam::444455556666:role/ks-kill-us-east-1"),
        ("iam:CreatePolicyVersion", "arn:aws:iam::444455556666:policy/ks-agent-boundary"),
        ("lambda:UpdateFunctionCode", "arn:aws:lambda:us-east-1:444455556666:function:ks-kill"),
        ("sns:SetTopicAttributes", "arn:aws:sns:us-east-1:444455556666:ks-kill"),
        ("sns:Unsubscribe", "arn:aws:sns:us-east-1:444455556666:ks-kill"),
        ("dynamodb:DeleteItem", "arn:aws:dynamodb:us-east-1:444455556666:table/ks-ledger"),
        ("dynamodb:Scan", "arn:aws:dynamodb:us-east-1:444455556666:table/ks-ledger"),
        ("budgets:ModifyBudget", "arn:aws:budgets::444455556666:budget/Crawler Budget"),
        ("iam:DeleteRolePermissionsBoundary", "arn:aws:iam::444455556666:role/agent"),
    ],
)
def test_kill_switch_roles_and_resources_are_denied(boundary: list[dict[str, Any]], action: str, resource: str) -> None:
    assert denied_by(boundary, action, resource, {}, AGENT)


def test_detaching_the_boundary_or_the_guard_policy_is_denied(boundary: list[dict[str, Any]]) -> None:
    for name in ("ks-agent-boundary", "ks-guard-publisher"):
        context = {"iam:policyarn": [f"arn:aws:iam::444455556666:policy/{name}"]}
        assert denied_by(boundary, "iam:DetachRolePolicy", "arn:aws:iam::444455556666:role/agent", context, AGENT)
    other = {"iam:policyarn": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}
    assert not denied_by(boundary, "iam:DetachRolePolicy", "arn:aws:iam::444455556666:role/agent", other, AGENT)


def test_the_guard_keeps_what_it_needs(boundary: list[dict[str, Any]]) -> None:
    table = "arn:aws:dynamodb:us-east-1:444455556666:table/ks-ledger"
    for action in ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert denied_by(boundary, action, table, {}, AGENT) == []
    assert denied_by(boundary, "sns:Publish", "arn:aws:sns:us-east-1:444455556666:ks-kill", {}, AGENT) == []
    key = only_key_arn(boundary)
    assert denied_by(boundary, "kms:GenerateDataKey", key, {}, AGENT) == []
    assert denied_by(boundary, "kms:ScheduleKeyDeletion", key, {}, AGENT)


def only_key_arn(boundary: list[dict[str, Any]]) -> str:
    [statement] = [s for s in boundary if s["Sid"] == "DenyKeyButEncryptDecrypt"]
    return str(statement["Resource"])


def test_boundary_fits_the_managed_policy_size_limit(template: dict[str, Any]) -> None:
    policy = only_boundary(template)
    assert len(json.dumps(policy["Properties"]["PolicyDocument"], separators=(",", ":"))) < 6144


def only_boundary(template: dict[str, Any]) -> dict[str, Any]:
    [policy] = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and r["Properties"]["ManagedPolicyName"] == "ks-agent-boundary"
    ]
    return policy
