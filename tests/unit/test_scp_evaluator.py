"""The evaluator on the shipped SCPs: who is denied what, and that break glass and restore never are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from killswitch.scp.evaluator import (
    Decision,
    UnsupportedPolicy,
    arn_matches,
    condition_holds,
    is_denied,
)

REPO = Path(__file__).resolve().parents[2]
POLICIES: dict[str, dict[str, Any]] = {
    p.stem: json.loads(p.read_text()) for p in sorted((REPO / "scp_policies").glob("*.json"))
}
DENY_COMPUTE = POLICIES["deny-agent-compute"]
HARD_FREEZE = POLICIES["hard-freeze"]
PROTECT = POLICIES["protect-kill-switch"]

AGENT = "arn:aws:iam::111122223333:role/log-summarizer-agent"
BREAK_GLASS = "arn:aws:iam::111122223333:role/BreakGlass"
# The kill switch's roles by their exact names (the SCPs exempt exactly these, never `role/killswitch-*`).
RESTORE = "arn:aws:iam::111122223333:role/killswitch-org-kill"
KILL_LAMBDA = "arn:aws:iam::111122223333:role/killswitch-kill-us-east-1"

SPEND_ACTIONS = [
    "ec2:RunInstances",
    "ec2:StartInstances",
    "ecs:RunTask",
    "ecs:StartTask",
    "ecs:CreateService",
    "ecs:UpdateService",
    "lambda:CreateFunction",
    "lambda:InvokeFunction",
    "lambda:UpdateFunctionCode",
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
    "sagemaker:InvokeEndpoint",
    "sagemaker:CreateEndpoint",
    "sagemaker:CreateTrainingJob",
    "eks:CreateNodegroup",
    "batch:SubmitJob",
]
# Representative actions incl. the critical ones and those with wildcards in the policies.
EVERYTHING = [
    *SPEND_ACTIONS,
    "organizations:DetachPolicy",
    "organizations:DeletePolicy",
    "sts:AssumeRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:DeleteRole",
    "iam:PutRolePolicy",
    "ec2:StopInstances",
    "ec2:CreateTags",
    "ec2:DeleteTags",
    "s3:GetObject",
    "tag:UntagResources",
]
TAMPER_CONTEXTS: list[dict[str, Any]] = [
    {},
    {"aws:TagKeys": ["killswitch:exempt"], "aws:RequestTag/killswitch:exempt": "true"},
    {"aws:TagKeys": ["agent-name"]},
]


@pytest.mark.parametrize("action", SPEND_ACTIONS)
def test_agent_is_denied_every_spend_action(action: str) -> None:
    decision = is_denied(DENY_COMPUTE, action, AGENT)
    assert decision.denied, decision.reason
    assert decision.by and set(decision.by) <= {"DenyNewAgentCompute", "DenyAgentAISpend"}


@pytest.mark.parametrize("action", ["ec2:StopInstances", "ec2:DescribeInstances", "s3:GetObject", "logs:PutLogEvents"])
def test_deny_compute_leaves_stopping_and_reading_alone(action: str) -> None:
    assert not is_denied(DENY_COMPUTE, action, AGENT).denied


@pytest.mark.parametrize("principal", [BREAK_GLASS, RESTORE, KILL_LAMBDA, "arn:aws:iam::999988887777:role/BreakGlass"])
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_break_glass_and_kill_switch_roles_are_never_denied(policy: str, principal: str) -> None:
    resources = ["*", "arn:aws:iam::111122223333:role/BreakGlass", "arn:aws:iam::111122223333:role/killswitch-x"]
    for action in EVERYTHING:
        for resource in resources:
            for ctx in TAMPER_CONTEXTS:
                decision = is_denied(POLICIES[policy], action, principal, resource, ctx)
                assert not decision.denied, (policy, action, resource, ctx, decision)


def test_all_shipped_policies_together_spare_break_glass() -> None:
    together = list(POLICIES.values())
    for action in EVERYTHING:
        assert not is_denied(together, action, BREAK_GLASS, "*", TAMPER_CONTEXTS[1]).denied
    decision = is_denied(together, "ec2:RunInstances", AGENT)
    assert decision.denied
    assert set(decision.by) == {"DenyNewAgentCompute", "FreezeEverything"}


@pytest.mark.parametrize("action", [a for a in EVERYTHING if a != "sts:AssumeRole"])
def test_hard_freeze_denies_the_agent_everything(action: str) -> None:
    decision = is_denied(HARD_FREEZE, action, AGENT)
    assert decision.denied
    assert decision.by == ["FreezeEverything"]


def test_hard_freeze_lets_anyone_reach_break_glass_but_nothing_else() -> None:
    assert not is_denied(HARD_FREEZE, "sts:AssumeRole", AGENT, BREAK_GLASS).denied
    other_role = "arn:aws:iam::222233334444:role/escape-hatch"
    assert is_denied(HARD_FREEZE, "sts:AssumeRole", AGENT, other_role).by == ["FreezeAssumeRoleExceptBreakGlass"]


@pytest.mark.parametrize(
    ("action", "resource", "context", "sid"),
    [
        ("iam:PutRolePolicy", "arn:aws:iam::111122223333:role/killswitch-kill-us-east-1", {}, "ProtectKillSwitchRoles"),
        ("iam:UpdateAssumeRolePolicy", BREAK_GLASS, {}, "ProtectKillSwitchRoles"),
        # an agent creating a role with a kill-switch name, to ride the exemption
        ("iam:CreateRole", "arn:aws:iam::111122223333:role/killswitch-org-kill", {}, "ProtectKillSwitchRoles"),
        ("ec2:CreateTags", "*", {"aws:TagKeys": ["killswitch:exempt"]}, "ProtectKillSwitchTagsInRequests"),
        ("ec2:DeleteTags", "*", {"aws:TagKeys": ["Name", "killswitch:criticality"]}, "ProtectKillSwitchTagsInRequests"),
        ("ec2:RunInstances", "*", {"aws:RequestTag/killswitch:exempt": "true"}, "ProtectKillSwitchExemptTag"),
        ("ecs:UntagResource", "*", {"aws:TagKeys": ["agent-name"]}, "ProtectAgentTagsFromRemoval"),
        ("organizations:DetachPolicy", "*", {}, "ProtectKillSwitchSCPs"),
    ],
)
def test_protect_kill_switch_denies_tampering(action: str, resource: str, context: dict[str, Any], sid: str) -> None:
    decision = is_denied(PROTECT, action, AGENT, resource, context)
    assert decision.denied
    assert sid in decision.by


@pytest.mark.parametrize(
    ("action", "resource", "context"),
    [
        ("iam:PutRolePolicy", "arn:aws:iam::111122223333:role/log-summarizer-agent", {}),
        ("ec2:CreateTags", "*", {"aws:TagKeys": ["agent-name", "Name"]}),  # tagging its own work is fine
        ("ec2:RunInstances", "*", {"aws:RequestTag/agent-name": "log-summarizer"}),
        ("ec2:DeleteTags", "*", {"aws:TagKeys": ["Name"]}),
        ("ec2:DeleteTags", "*", {}),
    ],
)
def test_protect_kill_switch_allows_ordinary_work(action: str, resource: str, context: dict[str, Any]) -> None:
    assert not is_denied(PROTECT, action, AGENT, resource, context).denied


def test_decision_reasons() -> None:
    exempt = is_denied(DENY_COMPUTE, "ec2:RunInstances", BREAK_GLASS)
    assert exempt == Decision(False, [], exempt.reason)
    assert "DenyNewAgentCompute match ec2:RunInstances" in exempt.reason
    assert "no Deny statement matches" in is_denied(DENY_COMPUTE, "s3:GetObject", AGENT).reason


# -- semantics of the operators --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "values", "context", "expected"),
    [
        ("StringEquals", "a", {"k:x": "a"}, True),
        ("StringEquals", "a", {"k:x": "A"}, False),
        ("StringEqualsIgnoreCase", "a", {"k:x": "A"}, True),
        ("StringEquals", "a", {}, False),  # missing key: false
        ("StringNotEquals", "a", {}, True),  # missing key with a negated operator: true
        ("StringEqualsIfExists", "a", {}, True),
        ("StringEqualsIfExists", "a", {"k:x": "b"}, False),
        ("StringLike", ["x*", "a?c"], {"k:x": "abc"}, True),
        ("StringNotLike", ["x*", "a?c"], {"k:x": "abc"}, False),
        ("ArnLike", "arn:aws:iam::*:role/Break*", {"k:x": BREAK_GLASS}, True),
        ("ArnNotEquals", "arn:aws:iam::*:role/Break*", {"k:x": BREAK_GLASS}, False),
        ("Null", "true", {}, True),
        ("Null", "true", {"k:x": "v"}, False),
        ("Null", "false", {"k:x": "v"}, True),
        ("Bool", True, {"k:x": "true"}, True),
        ("ForAnyValue:StringLike", "killswitch:*", {"k:x": ["Name", "killswitch:exempt"]}, True),
        ("ForAnyValue:StringLike", "killswitch:*", {"k:x": ["Name"]}, False),
        ("ForAnyValue:StringLike", "killswitch:*", {}, False),
        ("ForAllValues:StringEquals", ["a", "b"], {"k:x": ["a", "b"]}, True),
        ("ForAllValues:StringEquals", ["a", "b"], {"k:x": ["a", "c"]}, False),
        ("ForAllValues:StringEquals", ["a"], {}, True),  # vacuously true
        ("ForAnyValue:StringNotEquals", ["a"], {"k:x": ["a", "z"]}, True),
        ("ForAllValues:StringNotEquals", ["a"], {"k:x": ["a", "z"]}, False),
    ],
)
def test_condition_operator_table(operator: str, values: Any, context: dict[str, Any], expected: bool) -> None:
    assert condition_holds(operator, "k:X", values, context) is expected  # keys are case-insensitive


def test_arn_matching_is_per_segment_and_case_sensitive() -> None:
    assert arn_matches("arn:aws:iam::*:role/killswitch-*", RESTORE)
    assert not arn_matches("arn:aws:iam::*:role/killswitch-*", "arn:aws:iam::1:role/KillSwitch-x")
    # `*` in the account segment does not swallow the service segment.
    assert not arn_matches("arn:aws:*:role/x", "arn:aws:iam::1:role/x")


def test_unsupported_operator_is_refused_not_guessed() -> None:
    policy = {
        "Statement": {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        }
    }
    with pytest.raises(UnsupportedPolicy):
        is_denied(policy, "s3:GetObject", AGENT, context={"aws:SourceIp": "10.1.2.3"})


def test_not_resource_with_a_concrete_resource() -> None:
    policy = {"Statement": [{"Sid": "S", "Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::ok/*"}]}
    assert not is_denied(policy, "s3:GetObject", AGENT, "arn:aws:s3:::ok/file").denied
    assert is_denied(policy, "s3:GetObject", AGENT, "arn:aws:s3:::other/file").by == ["S"]
    assert is_denied(policy, "S3:getobject", AGENT).denied  # action match is case-insensitive; "*" = any resource
