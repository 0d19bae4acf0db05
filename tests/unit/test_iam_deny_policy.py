"""The IAM deny policy of `deny_iam`: the shipped file is valid; a policy that spares anything an agent could use
to keep spending or undo its kill is an error naming file, position and the request it fails to deny."""

from __future__ import annotations

import json
from pathlib import Path

from killswitch.cli.validate import validate_paths
from killswitch.scp.iam_deny import validate_deny_path, validate_deny_text

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "iam_policies" / "deny-agent.json"


def doc(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


def test_shipped_deny_policy_is_clean() -> None:
    assert validate_deny_path(SHIPPED) == []


def test_a_deny_that_spares_bedrock_is_rejected() -> None:
    text = doc({"Sid": "Most", "Effect": "Deny", "NotAction": "bedrock:*", "Resource": "*"})
    findings = validate_deny_text(text, "iam_policies/x.json")
    assert {f.code for f in findings} == {"IAM001"}
    assert any("bedrock:InvokeModel " in str(f) for f in findings)
    assert str(findings[0]).startswith("iam_policies/x.json:1:1: IAM001")


def test_a_condition_the_agent_can_escape_is_rejected() -> None:
    # Deny only while the agent-name tag is absent: the agent keeps every permission.
    text = doc(
        {
            "Sid": "Escapable",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"Null": {"aws:ResourceTag/agent-name": "true"}},
        }
    )
    assert any(f.code == "IAM001" and "ec2:RunInstances" in f.message for f in validate_deny_text(text, "x.json"))


def test_grammar_errors_use_the_scp_checker_with_positions() -> None:
    text = '{"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow", "Action": "*", "Resource": "*"}]}'
    findings = validate_deny_text(text, "x.json")
    assert [f.code for f in findings] == ["SCP060"]  # Allow: a deny policy only denies
    assert validate_deny_text("{", "x.json")[0].code == "SCP001"


def test_killswitch_validate_checks_the_iam_policies_directory(tmp_path: Path) -> None:
    iam_dir = tmp_path / "iam_policies"
    iam_dir.mkdir()
    (iam_dir / "deny-agent.json").write_text(
        doc({"Sid": "Bedrock", "Effect": "Deny", "Action": "bedrock:*", "Resource": "*"})
    )
    errors, _ = validate_paths([iam_dir])
    assert errors and all("IAM001" in e for e in errors)
    assert not any("SCP061" in e for e in errors)  # no break-glass rule: the policy is for agent principals only
    errors, _ = validate_paths([REPO / "iam_policies"])
    assert errors == []
