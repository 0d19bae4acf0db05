"""The invocation-logging custom resource the meter Lambda serves (botocore Stubber; response captured)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import Stubber

from killswitch.meter import logging_setup

GROUP, ROLE = "/ks/bedrock-invocations", "arn:aws:iam::123456789012:role/ks-bedrock-logging"


def _event(kind: str) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": "https://cloudformation-custom-resource-response.s3.amazonaws.com/x",
        "StackId": "stack",
        "RequestId": "req",
        "LogicalResourceId": "InvocationLogging",
        "ResourceProperties": {"ServiceToken": "arn", "LogGroupName": GROUP, "RoleArn": ROLE},
    }


def test_create_keeps_an_existing_s3_destination_and_reports_success() -> None:
    client = boto3.client("bedrock", "us-east-1")
    stub = Stubber(client)
    s3 = {"bucketName": "audit", "keyPrefix": "bedrock"}
    stub.add_response("get_model_invocation_logging_configuration", {"loggingConfig": {"s3Config": s3}})
    stub.add_response(
        "put_model_invocation_logging_configuration",
        {},
        {
            "loggingConfig": {
                "s3Config": s3,
                "cloudWatchConfig": {"logGroupName": GROUP, "roleArn": ROLE},
                "textDataDeliveryEnabled": True,
                "imageDataDeliveryEnabled": False,
                "embeddingDataDeliveryEnabled": False,
            }
        },
    )
    sent: list[tuple[str, dict[str, Any]]] = []
    with stub:
        logging_setup.handle(_event("Create"), client, put=lambda url, body: sent.append((url, body)))
    ((url, body),) = sent
    assert url.startswith("https://") and body["Status"] == "SUCCESS" and body["PhysicalResourceId"] == GROUP


def test_delete_leaves_a_configuration_that_is_not_only_ours() -> None:
    client = boto3.client("bedrock", "us-east-1")
    stub = Stubber(client)
    theirs = {"cloudWatchConfig": {"logGroupName": GROUP, "roleArn": ROLE}, "s3Config": {"bucketName": "audit"}}
    stub.add_response("get_model_invocation_logging_configuration", {"loggingConfig": theirs})
    stub.add_response(
        "get_model_invocation_logging_configuration",
        {"loggingConfig": {"cloudWatchConfig": {"logGroupName": GROUP, "roleArn": ROLE}}},
    )
    stub.add_response("delete_model_invocation_logging_configuration", {})
    sent: list[dict[str, Any]] = []
    with stub:
        logging_setup.handle(_event("Delete"), client, put=lambda url, body: sent.append(body))
        logging_setup.handle(_event("Delete"), client, put=lambda url, body: sent.append(body))
    stub.assert_no_pending_responses()
    assert [b["Status"] for b in sent] == ["SUCCESS", "SUCCESS"]


def test_a_failure_is_reported_not_raised() -> None:
    client = boto3.client("bedrock", "us-east-1")
    stub = Stubber(client)
    stub.add_client_error("get_model_invocation_logging_configuration", "AccessDeniedException", "no")
    sent: list[dict[str, Any]] = []
    with stub:
        logging_setup.handle(_event("Create"), client, put=lambda url, body: sent.append(body))
    assert sent[0]["Status"] == "FAILED" and "AccessDeniedException" in sent[0]["Reason"]
    assert logging_setup.is_custom_resource(_event("Create")) and not logging_setup.is_custom_resource({"a": 1})
