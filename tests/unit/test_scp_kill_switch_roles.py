"""Every deny exempts the kill switch's roles by their exact names, never a pattern an agent could create (issue 15)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from killswitch.config import KillSwitchConfig
from killswitch.scp.validator import kill_switch_role_arns, validate_path, validate_text

REPO = Path(__file__).resolve().parents[2]
ROLES = kill_switch_role_arns("killswitch", "us-east-1")
BREAK_GLASS = ["arn:aws:iam::*:role/BreakGlass"]


def policy(exempt: list[str] | None) -> str:
    stmt: dict[str, object] = {"Sid": "Deny", "Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*"}
    if exempt is not None:
        stmt["Condition"] = {"ArnNotLike": {"aws:PrincipalARN": exempt}}
    return json.dumps({"Version": "2012-10-17", "Statement": [stmt]}, indent=2)


def codes(text: str) -> list[str]:
    return [f.code for f in validate_text(text, "p.json", BREAK_GLASS, ROLES)]


def test_exact_names_are_the_kill_role_of_the_deploy_region_and_the_org_kill_role() -> None:
    assert ROLES == ("arn:aws:iam::*:role/killswitch-kill-us-east-1", "arn:aws:iam::*:role/killswitch-org-kill")


def test_exact_exemptions_pass() -> None:
    assert codes(policy([*BREAK_GLASS, *ROLES])) == []


def test_a_wildcard_kill_switch_exemption_is_refused() -> None:
    """`role/killswitch-*` covers the kill roles, but also any `killswitch-x` role an agent creates."""
    assert codes(policy([*BREAK_GLASS, "arn:aws:iam::*:role/killswitch-*"])) == ["SCP063", "SCP064"]


def test_missing_kill_switch_roles_are_refused_with_the_full_exemption_to_paste() -> None:
    [finding] = validate_text(policy(BREAK_GLASS), "p.json", BREAK_GLASS, ROLES)
    assert finding.code == "SCP063"
    assert "arn:aws:iam::*:role/killswitch-org-kill" in finding.message


def test_the_suggested_fix_is_accepted_and_keeps_every_required_role() -> None:
    """Before: SCP061 suggested a Condition with the break-glass role only, which then validated clean."""
    findings = validate_text(policy(None), "p.json", BREAK_GLASS, ROLES)
    assert [f.code for f in findings] == ["SCP061", "SCP063"]
    finding = findings[0]
    fix = json.loads("{" + re.search(r'"Condition": (\{.*\})', finding.message).group(0) + "}")  # type: ignore[union-attr]
    assert fix["Condition"]["ArnNotLike"]["aws:PrincipalARN"] == [*BREAK_GLASS, *ROLES]
    assert codes(policy(fix["Condition"]["ArnNotLike"]["aws:PrincipalARN"])) == []


@pytest.mark.parametrize("path", sorted((REPO / "scp_policies").glob("*.json")), ids=lambda p: p.name)
def test_shipped_policies_exempt_the_example_configs_exact_roles(path: Path, example_config: KillSwitchConfig) -> None:
    assert example_config.sandbox is not None
    roles = kill_switch_role_arns(example_config.prefix, example_config.deploy_region)
    assert validate_path(path, list(example_config.sandbox.break_glass_role_arns), roles) == []
    assert "role/killswitch-*" not in path.read_text(encoding="utf-8")
