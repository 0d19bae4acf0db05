"""Helpers for the CDK template tests: configs built in code, test SCP files, one synth per call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Template

from infra.app_builder import add_stacks, enable_nag, new_app
from infra.management_stack import ManagementStack
from infra.workload_stack import WorkloadStack
from killswitch.config import KillSwitchConfig

WORKLOAD_ACCOUNT = "444455556666"
MANAGEMENT_ACCOUNT = "999988887777"
SANDBOX_A = "111122223333"
SANDBOX_B = "222233334444"

DENY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyAgentCompute",
            "Effect": "Deny",
            "Action": ["ec2:RunInstances", "ecs:RunTask"],
            "Resource": "*",
            "Condition": {"ArnNotLike": {"aws:PrincipalARN": ["arn:aws:iam::*:role/BreakGlass"]}},
        }
    ],
}
FREEZE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Freeze",
            "Effect": "Deny",
            "Action": "ec2:*",
            "Resource": "*",
            "Condition": {"ArnNotLike": {"aws:PrincipalARN": ["arn:aws:iam::*:role/BreakGlass"]}},
        }
    ],
}


def config_dict(**overrides: Any) -> dict[str, Any]:
    """Two agents (automatic / manual + forecasted), two emails, sandbox in a separate workload account."""
    data: dict[str, Any] = {
        "prefix": "ks",
        "regions": ["us-east-1", "eu-west-1"],
        "notify": {"emails": ["ops@example.com", "finops@example.com"]},
        "agents": [
            {
                "name": "summarizer",
                "budget": {"amount_usd": 500, "period": "MONTHLY", "warn_at_pct": 80, "kill_at_pct": 100},
                "approval": "automatic",
                "sandbox_accounts": [SANDBOX_A, SANDBOX_B],
            },
            {
                "name": "crawler",
                "budget_name": "Crawler Budget",
                "budget": {
                    "amount_usd": 1200,
                    "period": "DAILY",
                    "warn_at_pct": 75,
                    "kill_at_pct": 95,
                    "forecasted": True,
                },
                "approval": "manual",
                "sandbox_accounts": [SANDBOX_A],
            },
        ],
        "sandbox": {
            "break_glass_role_arns": ["arn:aws:iam::*:role/BreakGlass"],
            "scp": "scp_policies/deny-agent-compute.json",
            "management_account_id": MANAGEMENT_ACCOUNT,
            "workload_account_id": WORKLOAD_ACCOUNT,
        },
    }
    data.update(overrides)
    return data


def make_config(**overrides: Any) -> KillSwitchConfig:
    return KillSwitchConfig.model_validate(config_dict(**overrides))


def write_scps(directory: Path) -> Path:
    """The deny policy (pretty-printed, so minification is visible) and a second policy."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "deny-agent-compute.json").write_text(json.dumps(DENY_POLICY, indent=4), encoding="utf-8")
    (directory / "hard-freeze.json").write_text(json.dumps(FREEZE_POLICY, indent=2), encoding="utf-8")
    return directory


def synth_app(
    configs: list[KillSwitchConfig], scp_dir: Path, outdir: Path, *, nag: bool = True
) -> tuple[App, list[tuple[WorkloadStack, ManagementStack | None]]]:
    """One app with the stacks of every config (distinct prefixes), cdk-nag on, same flags as cdk.json.

    CDK's built-in CloudFormation validation is off here (it costs ~10 s per synth); `make synth` runs cfn-lint."""
    app = new_app(str(outdir), builtin_validation=False)
    stacks = [add_stacks(app, c, scp_dir=scp_dir) for c in configs]
    if nag:
        enable_nag(app)
    return app, stacks


def resources(template: Template, rtype: str) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in template.find_resources(rtype).items()}


def only(template: Template, rtype: str) -> dict[str, Any]:
    found = resources(template, rtype)
    assert len(found) == 1, f"expected one {rtype}, found {sorted(found)}"
    return next(iter(found.values()))


def statements(template: Template, rtype: str = "AWS::IAM::Policy") -> list[dict[str, Any]]:
    """Every IAM statement of every policy of `rtype` in the template."""
    out: list[dict[str, Any]] = []
    for res in resources(template, rtype).values():
        out.extend(res["Properties"]["PolicyDocument"]["Statement"])
    return out


def statement(template: Template, sid: str, rtype: str = "AWS::IAM::Policy") -> dict[str, Any]:
    matches = [s for s in statements(template, rtype) if s.get("Sid") == sid]
    assert len(matches) == 1, f"expected one statement {sid!r}, found {len(matches)}"
    return matches[0]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def flat(value: Any) -> str:
    """A resolved CFN value (Fn::Join etc.) as one string, for substring checks on ARNs."""
    return json.dumps(value, sort_keys=True)


def logical_id(template: Template, rtype: str, **props: Any) -> str:
    """The logical id of the one resource of `rtype` whose properties include `props` (top-level equality)."""
    ids = [
        lid
        for lid, res in resources(template, rtype).items()
        if all(res.get("Properties", {}).get(k) == v for k, v in props.items())
    ]
    assert len(ids) == 1, f"expected one {rtype} with {props}, found {ids}"
    return ids[0]


def render(value: Any) -> Any:
    """Turn Fn::Join / Ref / Fn::GetAtt into readable strings: `${AWS::AccountId}`, `${Topic.Arn}`."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Fn::Join":
            sep, parts = arg
            return sep.join(str(render(p)) for p in parts)
        if key == "Ref":
            return "${" + arg + "}"
        if key == "Fn::GetAtt":
            return "${" + ".".join(arg) + "}"
    if isinstance(value, dict):
        return {k: render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v) for v in value]
    return value
