"""Builders for the kinds added after EC2/ECS/ASG (IAM principals, Lambda functions, ...) on any boto3 endpoint
(meant for moto), for `killswitch demo` and the tests; `kind_snapshot` is what a kill changes in them."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Mapping
from typing import Any

from killswitch.kill.common import ClientFactory
from killswitch.kill.kinds.iam import deny_policy_name
from killswitch.testing.sim import tag_list

# The shipped default of `iam_policies/deny-agent.json` (the stack deploys the file; the demo uses this copy).
DEFAULT_DENY_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "KillSwitchDenyEverything", "Effect": "Deny", "Action": "*", "Resource": "*"}],
}
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def deny_policy(clients: ClientFactory, prefix: str = "killswitch", document: Mapping[str, Any] | None = None) -> str:
    """The managed deny policy the workload stack creates (`<prefix>-deny-agent`); returns its ARN."""
    iam = clients("iam", "us-east-1")
    resp = iam.create_policy(
        PolicyName=deny_policy_name(prefix), PolicyDocument=json.dumps(document or DEFAULT_DENY_POLICY)
    )
    return str(resp["Policy"]["Arn"])


def iam_role(clients: ClientFactory, name: str, tags: Mapping[str, str], *, path: str = "/") -> str:
    iam = clients("iam", "us-east-1")
    resp = iam.create_role(
        RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST), Tags=tag_list(tags)
    )
    return str(resp["Role"]["Arn"])


def iam_user(clients: ClientFactory, name: str, tags: Mapping[str, str]) -> str:
    return str(clients("iam", "us-east-1").create_user(UserName=name, Tags=tag_list(tags))["User"]["Arn"])


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return 'ok'\n")
    return buf.getvalue()


def lambda_function(
    clients: ClientFactory, region: str, name: str, tags: Mapping[str, str], *, reserved: int | None = None
) -> str:
    iam = clients("iam", "us-east-1")
    try:
        role = iam.get_role(RoleName="agent-lambda-exec")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam_role(clients, "agent-lambda-exec", {})
    fn = clients("lambda", region)
    arn = fn.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
        Tags=dict(tags),
    )["FunctionArn"]
    if reserved is not None:
        fn.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
    return str(arn)


def attached_policies(clients: ClientFactory, principal_arn: str) -> list[str]:
    iam = clients("iam", "us-east-1")
    kind, name = principal_arn.split(":")[5].split("/", 1)[0], principal_arn.rsplit("/", 1)[-1]
    if kind == "role":
        items = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    else:
        items = iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
    return sorted(a["PolicyArn"] for a in items)


def reserved_concurrency(clients: ClientFactory, region: str, function: str) -> int | None:
    value = (
        clients("lambda", region).get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
    )
    return None if value is None else int(value)


def kind_snapshot(
    clients: ClientFactory, principals: Iterable[str], functions: Iterable[tuple[str, str]]
) -> dict[str, Any]:
    """Attached policies per principal and reserved concurrency per (region, function)."""
    return {
        "principals": {p: attached_policies(clients, p) for p in principals},
        "functions": {f"{r}/{f}": reserved_concurrency(clients, r, f) for r, f in functions},
    }


def cloudtrail_event(
    event_source: str, event_name: str, region: str, request: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An EventBridge "AWS API Call via CloudTrail" event as the watch rules deliver it to the kill Lambda."""
    return {
        "version": "0",
        "id": f"ct-{event_name}-{region}",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + event_source.split(".", maxsplit=1)[0],
        "account": "123456789012",
        "region": region,
        "detail": {
            "eventSource": event_source,
            "eventName": event_name,
            "awsRegion": region,
            "requestParameters": dict(request or {}),
        },
    }


def run_instances_request(tags: Mapping[str, str]) -> dict[str, Any]:
    """RunInstances `requestParameters` with its tag specification (CloudTrail's spelling)."""
    return {
        "instanceType": "t3.micro",
        "tagSpecificationSet": {
            "items": [{"resourceType": "instance", "tags": [{"key": k, "value": v} for k, v in tags.items()]}]
        },
    }
