"""Record every botocore call the Lambdas' code makes, with the Lambda it belongs to.

Hooked on every client botocore creates: `before-parameter-build` keeps the API parameters in the request context,
`before-call` records the call (once per API call, not per retry). Only calls made by Lambda code count: the kill
handler or the kill engine's entry points (what the kill Lambda runs) and the spend recorder handler; setup calls
of the tests themselves and the ops CLI (`killswitch.cli`, ops credentials) are not the Lambdas'. Calls signed with
assumed-role credentials (moto's `ASIA...` keys) are the kill Lambda acting through the management account's
`<prefix>-org-kill` role.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session

from tests.iam_coverage.policy import IAM_PREFIX, Call

# module -> Lambda, for frames anywhere on the stack; (module, function) pairs for the engine's Lambda entry points.
LAMBDA_MODULES = {
    "killswitch.handlers.kill": "kill",
    "killswitch.handlers.spend_recorder": "spend",
    "killswitch.handlers.meter": "meter",
    # The meter's service raises kills in-process: everything under it runs as the meter Lambda.
    "killswitch.meter.service": "meter",
}
LAMBDA_FUNCTIONS = {
    ("killswitch.kill.engine", "handle_event"): "kill",
    ("killswitch.kill.engine", "handle_alert"): "kill",
    ("killswitch.kill.engine", "kill"): "kill",
    ("killswitch.kill.engine", "warn"): "kill",
}
NOT_A_LAMBDA_PREFIXES = ("killswitch.cli",)
DEFAULT_ACCOUNT = "123456789012"  # moto's default account
# Parameters that name resources or carry condition values; message bodies and the like are left out.
KEPT_PARAMS = {
    "InstanceIds",
    "TableName",
    "AutoScalingGroupName",
    "AutoScalingGroupNames",
    "cluster",
    "service",
    "services",
    "task",
    "tasks",
    "PolicyId",
    "TargetId",
    "AccountId",
    "QueueUrl",
    "TopicArn",
    "RoleArn",
    "KeyId",
    "ResourceId",
    "ServiceNamespace",
    "ScalableDimension",
    "ResourceARNList",
}


def lambda_of_stack() -> str | None:
    frame = sys._getframe(1)
    found = None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith(NOT_A_LAMBDA_PREFIXES):
            return None
        found = LAMBDA_MODULES.get(module) or LAMBDA_FUNCTIONS.get((module, frame.f_code.co_name)) or found
        frame = frame.f_back  # type: ignore[assignment]
    return found


def _partition_key(body: dict[str, Any]) -> str | None:
    """The `pk` value of a DynamoDB Key/Item (the leading key IAM's `dynamodb:LeadingKeys` sees)."""
    for element in ("Key", "Item"):
        pk = (body.get(element) or {}).get("pk")
        if isinstance(pk, dict) and "S" in pk:
            return str(pk["S"])
    values = body.get("ExpressionAttributeValues") or {}
    pk = values.get(":pk")
    return str(pk["S"]) if isinstance(pk, dict) and "S" in pk else None


def slim_params(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in KEPT_PARAMS or (isinstance(value, str) and value.startswith("arn:")):
            out[key] = value if isinstance(value, str | list) else str(value)
        elif key == "TransactItems":
            out[key] = [
                {kind: {"TableName": body.get("TableName"), "LeadingKey": _partition_key(body)}}
                for i in value
                for kind, body in i.items()
            ]
        elif key == "RequestItems":
            # BatchGetItem: {table: {"Keys": [...]}}; BatchWriteItem: {table: [{"PutRequest": ...}, ...]}
            out[key] = {
                table: {"LeadingKeys": sorted({str(k["pk"]["S"]) for k in spec.get("Keys", []) if "pk" in k})}
                if isinstance(spec, dict)
                else {}
                for table, spec in value.items()
            }
    leading = _partition_key(params)
    if leading is not None:
        out["LeadingKey"] = leading
    return out


class Recorder:
    def __init__(self, attribute: Callable[[], str | None] | None = None) -> None:
        """`attribute`: who makes the calls (default: the Lambda whose code is on the stack, None = not recorded)."""
        self.attribute = attribute
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        original = botocore.session.Session.create_client
        self._original = original
        recorder = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-parameter-build", recorder._keep_params)
            client.meta.events.register("before-call", recorder._record)
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            botocore.session.Session.create_client = self._original  # type: ignore[method-assign]
            self._original = None

    def _keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["iam_coverage_params"] = dict(params)

    def _record(self, model: Any, context: dict[str, Any], request_signer: Any, **_: Any) -> None:
        role = self.attribute() if self.attribute else lambda_of_stack()
        if role is None:
            return
        credentials = getattr(request_signer, "_credentials", None)
        access_key = str(getattr(credentials, "access_key", "") or "")
        if role == "kill" and access_key.startswith("ASIA"):
            role = "org-kill"
        service_model = model.service_model
        signing = service_model.signing_name or service_model.endpoint_prefix
        call = Call(
            service=IAM_PREFIX.get(signing, signing),
            operation=model.name,
            params=slim_params(context.get("iam_coverage_params", {})),
            region=str(getattr(request_signer, "_region_name", "") or "us-east-1"),
            account=DEFAULT_ACCOUNT,
            role=role,
            where=os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0],
        )
        with self._lock:
            self.calls.append(call)

    @contextmanager
    def recording(self) -> Iterator[list[Call]]:
        """Install for the duration of a block (tests of the recorder itself)."""
        start = len(self.calls)
        self.install()
        try:
            got: list[Call] = []
            yield got
        finally:
            self.uninstall()
            got.extend(self.calls[start:])
