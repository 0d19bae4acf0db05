"""CloudFormation custom resource (served by the meter Lambda): turn on Bedrock model invocation logging to the
meter's log group. CloudFormation has no resource type for this account-and-region setting.

Create/Update: read the current configuration and set only its CloudWatch destination (an existing S3 destination
and the data-type switches are kept; text delivery is turned on, the records need it). Delete: remove the
configuration only when it still points at our group and has no S3 destination; otherwise leave it to its owner.
The response goes to the pre-signed `ResponseURL`; this never raises (CloudFormation would wait an hour).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(child=True)


def is_custom_resource(event: Any) -> bool:
    return isinstance(event, Mapping) and "RequestType" in event and "ResponseURL" in event


def _put(url: str, body: dict[str, Any]) -> None:
    if not url.startswith("https://"):
        raise ValueError("ResponseURL is not an https URL")
    data = json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(req, timeout=30):
        pass


def apply(request_type: str, props: Mapping[str, Any], bedrock: Any) -> str:
    """Do the change; returns the physical id. Raises on failure (the caller reports FAILED)."""
    group, role = str(props["LogGroupName"]), str(props["RoleArn"])
    current = bedrock.get_model_invocation_logging_configuration().get("loggingConfig") or {}
    if request_type == "Delete":
        ours = (current.get("cloudWatchConfig") or {}).get("logGroupName") == group
        if ours and not current.get("s3Config"):
            bedrock.delete_model_invocation_logging_configuration()
        return group
    config = {k: v for k, v in current.items() if k != "cloudWatchConfig"}
    config["cloudWatchConfig"] = {"logGroupName": group, "roleArn": role}
    config["textDataDeliveryEnabled"] = True
    config.setdefault("imageDataDeliveryEnabled", False)
    config.setdefault("embeddingDataDeliveryEnabled", False)
    bedrock.put_model_invocation_logging_configuration(loggingConfig=config)
    return group


def handle(event: Mapping[str, Any], bedrock: Any, put: Callable[[str, dict[str, Any]], None] = _put) -> dict:
    body: dict[str, Any] = {
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "PhysicalResourceId": event.get("PhysicalResourceId") or "bedrock-invocation-logging",
    }
    try:
        body["PhysicalResourceId"] = apply(str(event["RequestType"]), event.get("ResourceProperties") or {}, bedrock)
        body["Status"] = "SUCCESS"
    except Exception as exc:  # reported to CloudFormation, which rolls back; never a silent hang
        logger.error("invocation logging setup failed", extra={"error": str(exc)})
        body.update(Status="FAILED", Reason=f"invocation logging setup failed: {exc}"[:1000])
    try:
        put(str(event["ResponseURL"]), body)
    except Exception as exc:  # nothing else to do: the stack operation times out and says so
        logger.error("could not answer CloudFormation", extra={"error": str(exc)})
    return body
