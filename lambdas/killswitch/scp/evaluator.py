"""Offline evaluator for the SCP subset the kill switch ships: "would this request be denied?"

Covers Deny statements with Action/NotAction and Resource/NotResource (wildcards), and the condition operators
ArnLike/ArnNotLike/ArnEquals/ArnNotEquals, StringEquals/StringNotEquals/StringLike/StringNotLike (and
...IgnoreCase), Null, Bool, each with `IfExists` and the `ForAnyValue:`/`ForAllValues:` set qualifiers, on any
context key (`aws:PrincipalARN` comes from the principal; `aws:ResourceTag/*`, `aws:RequestTag/*`, `aws:TagKeys`
and others from `context`). Allow statements are ignored: an SCP never grants, and `FullAWSAccess` is assumed.

Semantics follow the IAM reference: a key missing from the request makes a condition false, except for negated
operators (`...Not...`) and `IfExists` (true), `ForAllValues` (true) and `Null`. `resource="*"` stands for "any
resource": every Resource pattern is taken to match it (worst case for "is anything denied?").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

PRINCIPAL_ARN_KEY = "aws:principalarn"

# base operator -> (kind, negated); kind picks the value comparison
_OPERATORS: dict[str, tuple[str, bool]] = {
    "stringequals": ("str_eq", False),
    "stringnotequals": ("str_eq", True),
    "stringequalsignorecase": ("str_eq_ci", False),
    "stringnotequalsignorecase": ("str_eq_ci", True),
    "stringlike": ("str_like", False),
    "stringnotlike": ("str_like", True),
    "arnequals": ("arn_like", False),  # ArnEquals and ArnLike behave identically in IAM
    "arnlike": ("arn_like", False),
    "arnnotequals": ("arn_like", True),
    "arnnotlike": ("arn_like", True),
    "bool": ("bool", False),
}
SUPPORTED_OPERATORS: frozenset[str] = frozenset([*_OPERATORS, "null"])


@dataclass(frozen=True)
class Decision:
    denied: bool
    by: list[str] = field(default_factory=list)  # Sids (or "Statement[i]") of the statements that deny
    reason: str = ""


class UnsupportedPolicy(ValueError):
    """The policy uses something outside the subset this evaluator understands (never guessed)."""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _glob_ci(pattern: str, value: str) -> bool:
    return fnmatchcase(value.lower(), pattern.lower())


def action_matches(pattern: str, action: str) -> bool:
    """IAM action match: case-insensitive, `*` and `?` wildcards (`*` alone matches every action)."""
    return _glob_ci(pattern, action)


def arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike: each of the six colon-separated parts is matched separately, case-sensitively, with `*`/`?`."""
    if pattern == "*":
        return True
    p_parts = pattern.split(":", 5)
    a_parts = arn.split(":", 5)
    if len(p_parts) != 6 or len(a_parts) != 6:
        return len(p_parts) == len(a_parts) and fnmatchcase(arn, pattern)  # not ARNs: plain glob
    return all(fnmatchcase(a, p) for p, a in zip(p_parts, a_parts, strict=True))


def resource_matches(pattern: str, resource: str) -> bool:
    if resource == "*" or pattern == "*":
        return True
    return arn_matches(pattern, resource)


def _compare(kind: str, request_value: str, policy_value: Any) -> bool:
    pv = str(policy_value).lower() if isinstance(policy_value, bool) else str(policy_value)
    if kind == "str_eq":
        return request_value == pv
    if kind == "str_eq_ci":
        return request_value.lower() == pv.lower()
    if kind == "str_like":
        return fnmatchcase(request_value, pv)
    if kind == "arn_like":
        return arn_matches(pv, request_value)
    if kind == "bool":
        return request_value.lower() == pv.lower()
    raise UnsupportedPolicy(kind)


def split_operator(operator: str) -> tuple[str | None, str, bool]:
    """'ForAnyValue:StringLikeIfExists' -> ('foranyvalue', 'stringlike', True)."""
    qualifier: str | None = None
    op = operator
    if ":" in op:
        q, op = op.split(":", 1)
        qualifier = q.lower()
    low = op.lower()
    if_exists = low.endswith("ifexists")
    if if_exists:
        low = low[: -len("ifexists")]
    return qualifier, low, if_exists


def _lookup(context: Mapping[str, Any], key: str) -> list[str] | None:
    low = key.lower()
    for k, v in context.items():
        if k.lower() == low:
            if v is None:
                return None
            return [str(x).lower() if isinstance(x, bool) else str(x) for x in _as_list(v)]
    return None


def condition_holds(operator: str, key: str, policy_values: Any, context: Mapping[str, Any]) -> bool:
    """One (operator, key, values) entry of a Condition block against the request context."""
    qualifier, base, if_exists = split_operator(operator)
    values = _as_list(policy_values)
    request = _lookup(context, key)
    if base == "null":
        want_absent = str(values[0]).lower() == "true" if values else True
        return (request is None or request == []) == want_absent
    if base not in _OPERATORS:
        raise UnsupportedPolicy(f"condition operator {operator!r} is not supported by the evaluator")
    if qualifier not in (None, "forallvalues", "foranyvalue"):
        raise UnsupportedPolicy(f"set qualifier {qualifier!r} is not supported")
    kind, negated = _OPERATORS[base]

    def one(v: str) -> bool:
        hit = any(_compare(kind, v, p) for p in values)
        return not hit if negated else hit

    if qualifier == "forallvalues":
        return all(one(v) for v in request or [])
    if qualifier == "foranyvalue":
        return any(one(v) for v in request or [])
    if request is None:
        return if_exists or negated
    return all(one(v) for v in request) if negated else any(one(v) for v in request)


def _statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    stmts = policy.get("Statement", [])
    return [stmts] if isinstance(stmts, Mapping) else list(stmts)


def _name(stmt: Mapping[str, Any], index: int) -> str:
    sid = stmt.get("Sid")
    return str(sid) if sid else f"Statement[{index}]"


def statement_denies(
    stmt: Mapping[str, Any], action: str, resource: str, context: Mapping[str, Any]
) -> tuple[bool, bool]:
    """(denies, matched_request): matched_request is True when action and resource matched (conditions aside)."""
    if str(stmt.get("Effect", "")) != "Deny":
        return False, False
    if "Action" in stmt:
        if not any(action_matches(p, action) for p in _as_list(stmt["Action"])):
            return False, False
    elif "NotAction" in stmt:
        if any(action_matches(p, action) for p in _as_list(stmt["NotAction"])):
            return False, False
    else:
        return False, False
    if "Resource" in stmt:
        if not any(resource_matches(p, resource) for p in _as_list(stmt["Resource"])):
            return False, False
    elif (
        "NotResource" in stmt
        and resource != "*"
        and any(resource_matches(p, resource) for p in _as_list(stmt["NotResource"]))
    ):
        return False, False
    condition = stmt.get("Condition") or {}
    for operator, entries in condition.items():
        for key, values in (entries or {}).items():
            if not condition_holds(operator, key, values, context):
                return False, True
    return True, True


def is_denied(
    policies: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    action: str,
    principal_arn: str,
    resource: str = "*",
    context: Mapping[str, Any] | None = None,
) -> Decision:
    """Would `principal_arn` be denied `action` on `resource` by any of these SCPs (Deny statements only)?

    `policies` is one policy document (a dict with "Statement"), or a list of them. `context` holds further
    request keys (`aws:ResourceTag/agent-name`, `aws:TagKeys`...); `aws:PrincipalARN` is set from `principal_arn`.
    """
    docs: Iterable[Mapping[str, Any]] = [policies] if isinstance(policies, Mapping) else policies
    ctx: dict[str, Any] = {k: v for k, v in (context or {}).items() if k.lower() != PRINCIPAL_ARN_KEY}
    ctx["aws:PrincipalARN"] = principal_arn
    by: list[str] = []
    exempted: list[str] = []
    for doc in docs:
        for i, stmt in enumerate(_statements(doc)):
            denies, matched = statement_denies(stmt, action, resource, ctx)
            if denies:
                by.append(_name(stmt, i))
            elif matched:
                exempted.append(_name(stmt, i))
    if by:
        return Decision(True, by, f"{action} on {resource} denied to {principal_arn} by {', '.join(by)}")
    if exempted:
        reason = f"{', '.join(exempted)} match {action} but their conditions do not apply to {principal_arn}"
        return Decision(False, [], reason)
    return Decision(False, [], f"no Deny statement matches {action} on {resource}")
