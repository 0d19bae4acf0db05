"""Config variants in one app (distinct prefixes): no sandbox, shared management account, no emails."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Token
from aws_cdk.assertions import Annotations, Match, Template

from infra.management_stack import ManagementStack
from infra.workload_stack import WorkloadStack
from killswitch import settings
from tests.infra.infra_support import (
    MANAGEMENT_ACCOUNT,
    SANDBOX_A,
    as_list,
    config_dict,
    make_config,
    render,
    resources,
    statements,
    synth_app,
    write_scps,
)

SOLO = make_config(
    prefix="solo",
    notify={"emails": []},
    agents=[{"name": "bot", "budget": {"amount_usd": 20, "period": "DAILY"}}],
    sandbox=None,
)
SHARED = make_config(
    prefix="shared",
    sandbox={**config_dict()["sandbox"], "workload_account_id": None},
)
QUIET = make_config(prefix="quiet", notify={"emails": []})

Stacks = dict[str, tuple[WorkloadStack, ManagementStack | None]]


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Stacks:
    base = tmp_path_factory.mktemp("variants")
    _, built = synth_app([SOLO, SHARED, QUIET], write_scps(base / "scp"), base / "cdk.out")
    return {c.prefix: pair for c, pair in zip([SOLO, SHARED, QUIET], built, strict=True)}


@pytest.fixture(scope="module")
def templates(stacks: Stacks) -> dict[str, Template]:
    out = {}
    for prefix, (workload, management) in stacks.items():
        out[f"{prefix}-workload"] = Template.from_stack(workload)
        [budgets] = workload.budget_stacks
        out[f"{prefix}-budgets-0"] = Template.from_stack(budgets)
        if management is not None:
            out[f"{prefix}-management"] = Template.from_stack(management)
    return out


def _kill_env(template: Template) -> dict[str, Any]:
    [fn] = [
        f
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["FunctionName"].endswith("-kill")
    ]
    env: dict[str, Any] = fn["Properties"]["Environment"]["Variables"]
    return env


def _actions(template: Template) -> set[str]:
    return {a for s in statements(template) for a in as_list(s["Action"])}


def test_without_sandbox_there_is_no_management_stack_and_no_organizations_access(
    stacks: Stacks, templates: dict[str, Template]
) -> None:
    assert stacks["solo"][1] is None
    workload = templates["solo-workload"]
    env = _kill_env(workload)
    assert settings.ENV_ORG_ROLE not in env and settings.ENV_SCP_POLICY_NAME not in env
    assert not {a for a in _actions(workload) if a.startswith(("organizations:", "sts:"))}


def test_without_emails_budgets_alert_only_the_kill_topic(templates: dict[str, Template]) -> None:
    workload = templates["solo-workload"]
    [budget] = resources(templates["solo-budgets-0"], "AWS::Budgets::Budget").values()
    assert budget["Properties"]["Budget"]["TimeUnit"] == "DAILY"
    for note in budget["Properties"]["NotificationsWithSubscribers"]:
        assert [s["SubscriptionType"] for s in note["Subscribers"]] == ["SNS"]
    assert not [
        s for s in resources(workload, "AWS::SNS::Subscription").values() if s["Properties"]["Protocol"] == "email"
    ]


def test_shared_account_kill_lambda_attaches_the_scp_itself(stacks: Stacks, templates: dict[str, Template]) -> None:
    workload = templates["shared-workload"]
    env = _kill_env(workload)
    assert settings.ENV_ORG_ROLE not in env
    assert env[settings.ENV_SCP_POLICY_NAME] == "shared-deny-agent-compute"
    [attach] = [s for s in statements(workload) if s.get("Sid") == "AttachDenyScp"]
    # Only the SCP tagged as this kill switch's deny SCP, not any SCP of the organization.
    assert render(attach["Resource"]) == (
        "arn:${AWS::Partition}:organizations::${AWS::AccountId}:policy/o-*/service_control_policy/p-*"
    )
    assert attach["Condition"] == {"StringEquals": {"aws:ResourceTag/killswitch:deny-scp": "shared"}}
    [accounts] = [s for s in statements(workload) if s.get("Sid") == "AttachDenyScpSandboxAccounts"]
    assert sorted(render(r) for r in accounts["Resource"]) == [
        f"arn:${{AWS::Partition}}:organizations::${{AWS::AccountId}}:account/o-*/{a}"
        for a in ("111122223333", "222233334444")
    ]
    [deny_scp] = [
        p
        for p in resources(templates["shared-management"], "AWS::Organizations::Policy").values()
        if p["Properties"]["Name"] == "shared-deny-agent-compute"
    ]
    assert deny_scp["Properties"]["Tags"] == [{"Key": "killswitch:deny-scp", "Value": "shared"}]
    [tagged] = [s for s in statements(workload) if s.get("Sid") == "AttachDenyScpTaggedAccounts"]
    assert tagged["Condition"] == {"Null": {"aws:ResourceTag/agent-name": "false"}}
    assert "sts:AssumeRole" not in _actions(workload)
    # no cross-account role when there is no separate workload account
    management = templates["shared-management"]
    names = [r["Properties"].get("RoleName") for r in resources(management, "AWS::IAM::Role").values()]
    assert names == ["shared-budgets-action"]
    assert stacks["shared"][1] is not None and stacks["shared"][1].account == MANAGEMENT_ACCOUNT
    # The kill Lambda's Organizations grants name `${AWS::AccountId}` as the management account: the workload stack
    # is pinned there (deploying it anywhere else is refused by `cdk deploy`).
    assert stacks["shared"][0].account == MANAGEMENT_ACCOUNT
    assert Token.is_unresolved(stacks["solo"][0].account)  # without a sandbox it stays environment-agnostic


def test_without_emails_budget_actions_are_skipped_with_a_warning(
    stacks: Stacks, templates: dict[str, Template]
) -> None:
    management = templates["quiet-management"]
    assert not resources(management, "AWS::Budgets::BudgetsAction")
    assert len(resources(management, "AWS::Budgets::Budget")) == 3  # the budgets themselves stay
    stack = stacks["quiet"][1]
    assert stack is not None
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("no budget action"))
    assert len(warnings) == 3
    assert any(f"account {SANDBOX_A}" in str(w.entry.data) for w in warnings)
