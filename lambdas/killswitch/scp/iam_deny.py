"""Validator for the IAM deny policy in `iam_policies/` that a kill attaches to the agent's roles and users.

The same grammar and catalogue checks as the SCPs (`killswitch.scp.validator`: strict JSON, Version, statement
keys, no Principal, action names, condition keys, Deny only) without the break-glass rule (the policy is attached to
agent principals only), plus:
- IAM001: the policy must deny every request an agent could use to keep spending or undo its kill (`MUST_DENY`:
  Bedrock/LLM calls, launching compute, changing tags, changing its own IAM, assuming other roles), whatever the
  conditions; the check evaluates the document for a sample agent role with the offline evaluator.
- IAM002: a managed policy is limited to 6,144 characters (whitespace not counted).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from killswitch.scp.evaluator import UnsupportedPolicy, is_denied
from killswitch.scp.jsonpos import parse
from killswitch.scp.validator import Finding, _Checker

MAX_MANAGED_POLICY_CHARS = 6_144
SAMPLE_AGENT = "arn:aws:iam::123456789012:role/agent-runtime"
# What a killed agent must not be able to do (one representative request per way to keep spending or escape).
MUST_DENY = (
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
    "ec2:RunInstances",
    "ec2:StartInstances",
    "ec2:DeleteTags",
    "ec2:CreateTags",
    "ecs:RunTask",
    "ecs:UpdateService",
    "lambda:CreateFunction",
    "lambda:DeleteFunctionConcurrency",
    "lambda:InvokeFunction",
    "tag:UntagResources",
    "tag:TagResources",
    "iam:DetachRolePolicy",
    "iam:UntagRole",
    "iam:PutRolePolicy",
    "sts:AssumeRole",
    "sagemaker:StartNotebookInstance",
    "rds:StartDBInstance",
    "eks:UpdateNodegroupConfig",
    "batch:UpdateJobQueue",
    "batch:SubmitJob",
)


def validate_deny_text(text: str, file: str) -> list[Finding]:
    checker = _Checker(file, ())
    root, problems = parse(text)
    codes = {"syntax": "SCP001", "duplicate_key": "SCP002", "comment": "SCP003", "trailing_comma": "SCP004"}
    for p in problems:
        checker.add(codes[p.kind], (p.line, p.col), p.message)
    findings = list(checker.findings)
    if root is None:
        return findings
    checker.document(root)
    findings = list(checker.findings)
    if any(f.severity == "error" for f in findings):
        return sorted(findings, key=lambda f: (f.line, f.col, f.code))
    doc = root.to_python()
    size = len(re.sub(r"\s", "", json.dumps(doc)))
    if size > MAX_MANAGED_POLICY_CHARS:
        findings.append(Finding(file, 1, 1, "IAM002", "error", f"policy is {size} characters without whitespace; "
                                f"a managed policy allows {MAX_MANAGED_POLICY_CHARS}"))  # fmt: skip
    context = {"aws:ResourceTag/agent-name": "sample-agent", "aws:PrincipalTag/agent-name": "sample-agent"}
    for action in MUST_DENY:
        try:
            decision = is_denied(doc, action, SAMPLE_AGENT, context=context)
        except UnsupportedPolicy as exc:
            findings.append(Finding(file, 1, 1, "IAM001", "error", f"cannot prove {action} is denied: {exc}"))
            break
        if not decision.denied:
            findings.append(
                Finding(file, 1, 1, "IAM001", "error", f"does not deny {action} to a killed agent ({decision.reason})")
            )
    return sorted(findings, key=lambda f: (f.line, f.col, f.code))


def validate_deny_path(path: Path) -> list[Finding]:
    """One deny policy file, or every `*.json` directly inside a directory."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        if not files:
            return [Finding(str(path), 1, 1, "SCP000", "error", "no .json policy files in this directory")]
        return [f for p in files for f in validate_deny_path(p)]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        return [Finding(str(path), 1, 1, "SCP000", "error", f"cannot read policy file: {reason}")]
    return validate_deny_text(text, str(path))
