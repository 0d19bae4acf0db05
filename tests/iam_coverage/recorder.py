"""Record every botocore call the Lambdas' code makes, with the Lambda it belongs to.

Hooked on every client botocore creates: `before-parameter-build` keeps the API parameters in the request context,
`before-call` records the call (once per API call, not per retry). Only calls made by Lambda code count: the kill
handler or the kill engine's entry points (what the kill Lambda runs) and the spend recorder handler; setup calls
of the tests themselves and the ops CLI (`killswitch.cli`, ops credentials) are not the Lambdas'. Calls signed with
assumed-role credentials (moto's `ASIA...` keys) are the kill Lambda acting through the management account's
`<prefix>-org-kill` role, or through an organization account's `<prefix>-spoke` role (hub kill: the call is
checked against the spoke role, in that account). Work the Lambda hands to a thread pool (the hub kill's accounts)
is attributed to the Lambda that submitted it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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


_SUBMITTED = threading.local()  # `.role`: the Lambda that submitted the work this pool thread runs


def lambda_of_stack() -> str | None:
    frame = sys._getframe(1)
    found = None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith(NOT_A_LAMBDA_PREFIXES):
            return None
        found = LAMBDA_MODULES.get(module) or LAMBDA_FUNCTIONS.get((module, frame.f_code.co_name)) or found
        frame = frame.f_back  # type: ignore[assignment]
    return found or getattr(_SUBMITTED, "role", None)


def _assumed_role(access_key: str) -> tuple[str, str] | None:
    """(account, role ARN) of moto assumed-role credentials."""
    try:
        from moto.iam.models import iam_backends
    except ImportError:  # pragma: no cover - moto is a test dependency
        return None
    for account_id, backend in list(iam_backends.items()):
        key = backend["aws"].access_keys.get(access_key)
        if key is not None:
            return account_id, str(getattr(key, "role_arn", "") or "")
    return None


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
        self._original_submit: Any = None

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
        self._original_submit = ThreadPoolExecutor.submit

        def submit(pool: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            submitted_by = lambda_of_stack()

            def run(*a: Any, **kw: Any) -> Any:
                before, _SUBMITTED.role = getattr(_SUBMITTED, "role", None), submitted_by
                try:
                    return fn(*a, **kw)
                finally:
                    _SUBMITTED.role = before

            return recorder._original_submit(pool, run, *args, **kwargs)

        ThreadPoolExecutor.submit = submit  # type: ignore[assignment,method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            botocore.session.Session.create_client = self._original  # type: ignore[method-assign]
            ThreadPoolExecutor.submit = self._original_submit  # type: ignore[method-assign]
            self._original = None

    def _keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["iam_coverage_params"] = dict(params)

    def _record(self, model: Any, context: dict[str, Any], request_signer: Any, **_: Any) -> None:
        role = self.attribute() if self.attribute else lambda_of_stack()
        if role is None:
            return
        credentials = getattr(request_signer, "_credentials", None)
        access_key = str(getattr(credentials, "access_key", "") or "")
        account = DEFAULT_ACCOUNT
        if role == "kill" and access_key.startswith("ASIA"):
            assumed = _assumed_role(access_key)
            if assumed and assumed[1].endswith("-spoke"):
                role, account = "spoke", assumed[0]
            else:
                role = "org-kill"
        service_model = model.service_model
        signing = service_model.signing_name or service_model.endpoint_prefix
        call = Call(
            service=IAM_PREFIX.get(signing, signing),
            operation=model.name,
            params=slim_params(context.get("iam_coverage_params", {})),
            region=str(getattr(request_signer, "_region_name", "") or "us-east-1"),
            account=account,
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
