"""A synthesized template's role policies as plain statements, intrinsics resolved for one account and region."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.iam_coverage.policy import PARTITION


@dataclass(frozen=True)
class Where:
    account: str
    region: str


def _attr(resources: Mapping[str, Any], logical_id: str, attribute: str, where: Where) -> str:
    res = resources.get(logical_id, {})
    rtype, props = res.get("Type", ""), res.get("Properties", {})
    base = f"arn:{PARTITION}"
    a, r = where.account, where.region
    if rtype == "AWS::DynamoDB::Table":
        return f"{base}:dynamodb:{r}:{a}:table/{props.get('TableName', logical_id)}"
    if rtype == "AWS::SQS::Queue":
        name = props.get("QueueName", logical_id)
        return f"{base}:sqs:{r}:{a}:{name}" if attribute == "Arn" else f"https://sqs.{r}.amazonaws.com/{a}/{name}"
    if rtype == "AWS::SNS::Topic":
        return f"{base}:sns:{r}:{a}:{props.get('TopicName', logical_id)}"
    if rtype == "AWS::KMS::Key":
        return f"{base}:kms:{r}:{a}:key/{logical_id}"
    if rtype == "AWS::Logs::LogGroup":
        return f"{base}:logs:{r}:{a}:log-group:{props.get('LogGroupName', logical_id)}:*"
    if rtype == "AWS::IAM::Role":
        name = resolve(props.get("RoleName", logical_id), resources, where)
        return f"{base}:iam::{a}:role/{name}"
    if rtype == "AWS::Organizations::Policy":
        return f"{base}:organizations::{a}:policy/o-exampleorg/service_control_policy/p-{logical_id.lower()}"
    return f"<{logical_id}.{attribute}>"


def resolve(value: Any, resources: Mapping[str, Any], where: Where) -> Any:
    """Fn::Join / Ref / Fn::GetAtt / pseudo parameters → strings (ARNs of the stack's own resources)."""
    if isinstance(value, list):
        return [resolve(v, resources, where) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Fn::Join":
            sep, parts = arg
            return sep.join(str(resolve(p, resources, where)) for p in parts)
        if key == "Ref":
            pseudo = {
                "AWS::AccountId": where.account,
                "AWS::Region": where.region,
                "AWS::Partition": PARTITION,
                "AWS::URLSuffix": "amazonaws.com",
            }
            if arg in pseudo:
                return pseudo[arg]
            rtype = resources.get(arg, {}).get("Type", "")
            if rtype in ("AWS::SNS::Topic", "AWS::IAM::Role"):
                return _attr(resources, arg, "Arn", where) if rtype == "AWS::SNS::Topic" else arg
            if rtype == "AWS::SQS::Queue":
                return _attr(resources, arg, "QueueUrl", where)
            if rtype == "AWS::DynamoDB::Table":
                return resources[arg].get("Properties", {}).get("TableName", arg)
            return arg
        if key == "Fn::GetAtt":
            return _attr(resources, arg[0], arg[1], where)
    return {k: resolve(v, resources, where) for k, v in value.items()}


def role_logical_id(template: Mapping[str, Any], *, handler: str | None = None, role_name: str | None = None) -> str:
    """The role of the function with `handler`, or the role named `role_name`."""
    resources = template["Resources"]
    for lid, res in resources.items():
        props = res.get("Properties", {})
        if handler and res["Type"] == "AWS::Lambda::Function" and props.get("Handler") == handler:
            return str(props["Role"]["Fn::GetAtt"][0])
        if role_name and res["Type"] == "AWS::IAM::Role" and props.get("RoleName") == role_name:
            return lid
    raise LookupError(f"no role for handler={handler!r} role_name={role_name!r}")


def role_statements(template: Mapping[str, Any], role_id: str, where: Where) -> list[dict[str, Any]]:
    """Every statement of the role's inline, attached and managed policies, resolved for `where`."""
    resources = template["Resources"]
    docs = list(resources[role_id].get("Properties", {}).get("Policies", []))
    for res in resources.values():
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            roles = res["Properties"].get("Roles", [])
            if {"Ref": role_id} in roles:
                docs.append(res["Properties"])
    out: list[dict[str, Any]] = []
    for doc in docs:
        statements = doc["PolicyDocument"]["Statement"]
        out.extend(resolve(s, resources, where) for s in statements)
    return out
