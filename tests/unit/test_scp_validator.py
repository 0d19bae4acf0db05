"""The SCP validator on bad files: each fixture is one distinct mistake, with its own code and position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from killswitch.scp.validator import (
    CODES,
    MAX_SCP_CHARS,
    Finding,
    errors,
    minify,
    validate_path,
    validate_text,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "scp"

# fixture -> (code, line, col, message fragment). Exactly one finding per file.
BAD = {
    "syntax-missing-comma.json": ("SCP001", 7, 7, "invalid JSON: Expecting ',' delimiter"),
    "duplicate-key.json": ("SCP002", 8, 7, "duplicate key 'Effect' (first at line 6)"),
    "comment.json": ("SCP003", 8, 24, "comments are not allowed"),
    "trailing-comma.json": ("SCP004", 7, 58, "trailing comma"),
    "not-an-object.json": ("SCP010", 1, 1, "must be a JSON object"),
    "wrong-version.json": ("SCP011", 2, 14, 'Version must be "2012-10-17" (got "2008-10-17")'),
    "statement-not-object-or-list.json": ("SCP012", 3, 16, "Statement must be an object or a list"),
    "unknown-top-level-key.json": ("SCP013", 3, 3, "unknown top-level key 'Description'"),
    "statement-not-an-object.json": ("SCP020", 4, 5, "Statement[0] must be a JSON object"),
    "unknown-statement-key.json": ("SCP021", 10, 7, "unknown statement key 'Description'"),
    "principal.json": ("SCP022", 7, 7, "Principal is not allowed in an SCP"),
    "action-and-notaction.json": ("SCP023", 8, 7, "has both Action and NotAction"),
    "no-resource.json": ("SCP024", 4, 5, "needs Resource or NotResource"),
    "sid-not-alphanumeric.json": ("SCP025", 5, 14, 'Sid "Deny-Compute" must be letters and digits'),
    "duplicate-sid.json": ("SCP026", 12, 14, "Sid 'DenyCompute' is already used at line 5"),
    "wrong-effect.json": ("SCP027", 6, 17, 'Effect must be "Allow" or "Deny" (got "deny")'),
    "action-wrong-type.json": ("SCP028", 7, 38, "Action takes strings (got 42)"),
    "missing-sid.json": ("SCP029", 4, 5, "Statement[0] has no Sid"),
    "action-without-service.json": ("SCP030", 7, 18, "'RunInstances' is not an action"),
    "unknown-service.json": ("SCP031", 7, 38, "unknown service prefix 'bedrok'"),
    "unknown-action.json": ("SCP032", 7, 41, "unknown action 'bedrock:Converse'; the API call is authorized by"),
    "wildcard-matches-nothing.json": ("SCP032", 7, 18, "'ec2:Launch*' matches no ec2 action"),
    "unknown-condition-operator.json": ("SCP040", 9, 21, "unknown condition operator 'ArnNotMatch'"),
    "unknown-condition-key.json": ("SCP041", 10, 26, "unknown condition key 'aws:PrincipalRole'"),
    "oversize.json": ("SCP050", 1, 1, f"the SCP limit is {MAX_SCP_CHARS}"),
    "near-size-limit.json": ("SCP051", 1, 1, f"of {MAX_SCP_CHARS} characters"),
    "allow-statement.json": ("SCP060", 6, 17, "Allow statement"),
    "no-break-glass-exemption.json": (
        "SCP061",
        4,
        5,
        "does not exempt break-glass role arn:aws:iam::*:role/BreakGlass",
    ),
    "exemption-for-one-account-only.json": (
        "SCP061",
        9,
        56,
        "(exempted: arn:aws:iam::111122223333:role/BreakGlass)",
    ),
    "denies-break-glass-organizations.json": ("SCP062", 9, 56, "denies organizations:DetachPolicy to break-glass"),
}


def test_every_fixture_is_in_the_table() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(BAD)


def test_fixtures_cover_at_least_fifteen_distinct_codes() -> None:
    assert len({code for code, *_ in BAD.values()}) >= 15


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_fixture_gives_its_one_finding(name: str) -> None:
    code, line, col, fragment = BAD[name]
    path = FIXTURES / name
    findings = validate_path(path)
    assert [(f.code, f.line, f.col) for f in findings] == [(code, line, col)], [str(f) for f in findings]
    (finding,) = findings
    assert fragment in finding.message
    assert finding.severity == CODES[code][0]
    assert str(finding) == f"{path}:{line}:{col}: {code} {finding.message}"


def test_only_size_and_sid_findings_are_warnings() -> None:
    assert {c for c, (sev, _) in CODES.items() if sev == "warning"} == {"SCP029", "SCP051"}


def test_size_is_measured_minified() -> None:
    text = (FIXTURES / "oversize.json").read_text()
    assert len(text) > len(minify(json.loads(text))) > MAX_SCP_CHARS
    near = (FIXTURES / "near-size-limit.json").read_text()
    assert 0.9 * MAX_SCP_CHARS < len(minify(json.loads(near))) <= MAX_SCP_CHARS


def _policy(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


EXEMPT = {"ArnNotLike": {"aws:PrincipalARN": ["arn:aws:iam::*:role/BreakGlass", "arn:aws:iam::*:role/Ops*"]}}


def _deny(**extra: object) -> dict[str, object]:
    return {"Sid": "D", "Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*", "Condition": EXEMPT} | extra


def test_every_configured_break_glass_role_must_be_covered() -> None:
    text = _policy(_deny())
    assert validate_text(text, "p.json", ["arn:aws:iam::*:role/BreakGlass", "arn:aws:iam::*:role/OpsAdmin"]) == []
    findings = validate_text(text, "p.json", ["arn:aws:iam::*:role/Emergency"])
    assert [f.code for f in findings] == ["SCP061"]
    assert "arn:aws:iam::*:role/Emergency" in findings[0].message


@pytest.mark.parametrize(
    ("operator", "ok"),
    [
        ("ArnNotLike", True),
        ("ArnNotEquals", True),
        ("StringNotLike", True),
        ("ArnNotLikeIfExists", True),
        ("ArnLike", False),  # the opposite: denies ONLY break glass
        ("StringNotEquals", False),  # exact match: the wildcard role pattern is not the configured ARN
        ("ForAnyValue:ArnNotLike", False),  # set operators on a single-valued key do not count
    ],
)
def test_exemption_operators(operator: str, ok: bool) -> None:
    cond = {operator: {"aws:PrincipalARN": "arn:aws:iam::*:role/Break*"}}
    findings = validate_text(_policy(_deny(Condition=cond)), "p.json")
    assert (findings == []) is ok, [str(f) for f in findings]


def test_exact_exemption_with_string_not_equals() -> None:
    cond = {"StringNotEquals": {"aws:PrincipalArn": "arn:aws:iam::*:role/BreakGlass"}}  # key is case-insensitive
    assert validate_text(_policy(_deny(Condition=cond)), "p.json") == []


def test_each_unexempted_statement_is_reported() -> None:
    text = _policy(_deny(Sid="A"), _deny(Sid="B", Condition={}), {**_deny(Sid="C"), "Condition": None})
    codes = [(f.code, f.message.split()[0]) for f in validate_text(text, "p.json")]
    assert ("SCP061", "B") in codes
    assert ("SCP028", "C:") in codes  # Condition null is a shape error, not silently "no condition"


@pytest.mark.parametrize(
    "action", ["sts:AssumeRole", "sts:AssumeRole*", "organizations:*", "iam:*", "*", "iam:UpdateAssumeRolePolicy"]
)
def test_critical_actions_on_break_glass_are_scp062(action: str) -> None:
    stmt = {"Sid": "D", "Effect": "Deny", "Action": action, "Resource": "*"}
    assert [f.code for f in validate_text(_policy(stmt), "p.json")] == ["SCP062"]


def test_not_action_that_spares_the_critical_actions_is_only_scp061() -> None:
    stmt = {"Sid": "D", "Effect": "Deny", "NotAction": ["sts:*", "organizations:*", "iam:*"], "Resource": "*"}
    assert [f.code for f in validate_text(_policy(stmt), "p.json")] == ["SCP061"]


def test_condition_operators_and_qualifiers() -> None:
    cond = dict(EXEMPT)
    cond |= {
        "ForAllValues:StringLike": {"aws:TagKeys": ["agent-*"]},
        "NumericLessThanIfExists": {"aws:MultiFactorAuthAge": 3600},
        "Bool": {"aws:SecureTransport": False},
        "Null": {"aws:ResourceTag/agent-name": "false"},
        "StringEquals": {"ec2:InstanceType": ["p5.48xlarge"], "aws:RequestTag/agent-name": "x"},
    }
    assert validate_text(_policy(_deny(Condition=cond)), "p.json") == []
    bad = dict(EXEMPT) | {"NullIfExists": {"aws:TagKeys": "true"}, "ForSomeValues:StringLike": {"aws:TagKeys": "x"}}
    assert [f.code for f in validate_text(_policy(_deny(Condition=bad)), "p.json")] == ["SCP040", "SCP040"]


def test_service_condition_keys_come_from_the_catalogue() -> None:
    good = dict(EXEMPT) | {"StringLike": {"ec2:ResourceTag/agent-name": "*", "bedrock:InferenceProfileArn": "*"}}
    assert validate_text(_policy(_deny(Condition=good)), "p.json") == []
    bad = dict(EXEMPT) | {"StringLike": {"ec2:NoSuchKey": "*", "nosuchsvc:Key": "*", "aws:ResourceTag/": "x"}}
    assert [f.code for f in validate_text(_policy(_deny(Condition=bad)), "p.json")] == ["SCP041"] * 3


def test_actions_are_case_insensitive_and_wildcards_must_match() -> None:
    stmt = _deny(Action=["EC2:runinstances", "bedrock:Invoke*", "sagemaker:?nvokeEndpoint", "*"])
    assert validate_text(_policy(stmt), "p.json") == []
    stmt = _deny(Action=["ec2:RunInstancez", "ec2:*Nope*", "s3:*:x"])
    findings = validate_text(_policy(stmt), "p.json")
    assert [f.code for f in findings] == ["SCP032", "SCP032", "SCP030"]
    assert "did you mean 'ec2:RunInstances'?" in findings[0].message


def test_single_statement_object_and_missing_parts() -> None:
    single = json.dumps({"Version": "2012-10-17", "Statement": _deny()})
    assert validate_text(single, "p.json") == []
    codes = [f.code for f in validate_text('{"Statement": []}', "p.json")]
    assert codes == ["SCP011", "SCP012"]
    assert [f.code for f in validate_text('{"Version": "2012-10-17"}', "p.json")] == ["SCP012"]
    stmt = {"Sid": "D", "Resource": "*"}
    assert sorted(f.code for f in validate_text(_policy(stmt), "p.json")) == ["SCP023", "SCP027"]


def test_json_edge_cases() -> None:
    assert [f.code for f in validate_text("", "p.json")] == ["SCP001"]
    assert [f.code for f in validate_text('{"Version": NaN}', "p.json")] == ["SCP001"]
    assert [(f.code, f.line, f.col) for f in validate_text("{\n  # note\n}", "p.json")] == [("SCP003", 2, 3)]
    assert [(f.code, f.line, f.col) for f in validate_text('{"a": 1,\n}', "p.json")] == [("SCP004", 1, 8)]
    nested = '{"Version": "2012-10-17", "Statement": {"Sid": "A", "Sid": "B"}}'
    assert [(f.line, f.col) for f in validate_text(nested, "p.json") if f.code == "SCP002"] == [(1, 53)]
    # Strings with escapes, braces and "//" inside keep positions right.
    text = '{"Version": "2012-10-17", "Id": "a\\"b//{", "Statement": 7}'
    assert [(f.code, f.col) for f in validate_text(text, "p.json")] == [("SCP012", 57)]


def test_directory_and_unreadable_paths(tmp_path: Path) -> None:
    assert [f.code for f in validate_path(tmp_path)] == ["SCP000"]
    assert [f.code for f in validate_path(tmp_path / "missing.json")] == ["SCP000"]
    (tmp_path / "b.json").write_text(_policy(_deny(Effect="Allow")))
    (tmp_path / "a.json").write_text("{")
    (tmp_path / "notes.md").write_text("not a policy")
    findings = validate_path(tmp_path)
    assert [(Path(f.file).name, f.code) for f in findings] == [("a.json", "SCP001"), ("b.json", "SCP060")]
    assert errors(findings) == findings


def test_finding_str_format() -> None:
    f = Finding("scp_policies/x.json", 3, 9, "SCP031", "error", "unknown service prefix 'foo'")
    assert str(f) == "scp_policies/x.json:3:9: SCP031 unknown service prefix 'foo'"


def test_readme_code_table_matches_the_validator() -> None:
    readme = (REPO / "scp_policies" / "README.md").read_text()
    rows = {
        line.split("|")[1].strip(): (line.split("|")[2].strip(), line.split("|")[3].strip())
        for line in readme.splitlines()
        if line.startswith("| SCP")
    }
    assert rows == CODES
