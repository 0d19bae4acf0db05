"""The IAM coverage checker itself: recorded calls are attributed to the right Lambda, a call its role does not allow
is reported (action, resource ARN, condition keys), and the shipped roles allow what the Lambdas do."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.iam_coverage.plugin import check_calls, synthesize
from tests.iam_coverage.policy import Call, check, requests
from tests.iam_coverage.recorder import Recorder

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return synthesize()


def kill_call(service: str, operation: str, **params: Any) -> Call:
    return Call(service, operation, params, "us-east-1", ACCOUNT, role="kill", where="test")


def test_calls_made_by_lambda_code_are_recorded_and_test_setup_is_not() -> None:
    handler_module: dict[str, Any] = {"__name__": "killswitch.handlers.kill", "boto3": boto3}
    exec(
        "def stop(ids):\n"
        "    try:\n"
        "        boto3.client('ec2', 'us-west-2').stop_instances(InstanceIds=ids)\n"
        "    except Exception:\n"
        "        pass\n",
        handler_module,
    )
    with mock_aws():
        ec2 = boto3.client("ec2", "us-west-2")
        recorder = Recorder()
        with recorder.recording() as calls:
            ec2.describe_instances()  # test setup
            handler_module["stop"](["i-0123456789abcdef0"])  # recorded before it is sent, even if it fails
    recorded = [(c.role, c.service, c.operation, c.region) for c in calls]
    assert recorded == [("kill", "ec2", "StopInstances", "us-west-2")]
    assert calls[0].params == {"InstanceIds": ["i-0123456789abcdef0"]}


def test_resource_arns_come_from_the_call_parameters() -> None:
    (stop,) = requests(kill_call("ec2", "StopInstances", InstanceIds=["i-1", "i-2"]))
    assert stop.resources == (
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-1",
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-2",
    )
    # A transaction is authorized item by item.
    items = [{"Update": {"TableName": "t"}}, {"Put": {"TableName": "t"}}]
    assert [r.action for r in requests(kill_call("dynamodb", "TransactWriteItems", TransactItems=items))] == [
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
    ]
    # Ids the call does not carry only match a wildcard.
    (asg,) = requests(kill_call("autoscaling", "UpdateAutoScalingGroup", AutoScalingGroupName="g"))
    assert asg.resources == (
        f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:UNKNOWN-GroupId:autoScalingGroupName/g",
    )


def test_check_reports_action_resource_and_condition_problems() -> None:
    statements = [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": f"arn:aws:dynamodb:*:{ACCOUNT}:table/ledger"},
        {
            "Sid": "Bad",
            "Effect": "Allow",
            "Action": "ec2:StopInstances",
            "Resource": "*",
            "Condition": {"StringEquals": {"dynamodb:LeadingKeys": "x"}},
        },
        {"Effect": "Allow", "Action": "tag:Get*", "Resource": "*"},
    ]
    assert check(kill_call("dynamodb", "GetItem", TableName="ledger"), statements) == []
    assert check(kill_call("tag", "GetResources"), statements) == []
    (other_table,) = check(kill_call("dynamodb", "GetItem", TableName="other"), statements)
    assert "table/other: no statement allows" in other_table
    (unsupported,) = check(kill_call("ec2", "StopInstances", InstanceIds=["i-1"]), statements)
    assert "condition key dynamodb:LeadingKeys is not supported by ec2:StopInstances" in unsupported
    (unknown,) = check(kill_call("ec2", "TerminateInstances", InstanceIds=["i-1"]), statements)
    assert unknown.startswith("ec2:TerminateInstances on arn:aws:ec2:us-east-1:")


def test_a_new_api_call_without_its_permission_fails(templates: dict[str, dict[str, Any]]) -> None:
    allowed = kill_call("ec2", "StopInstances", InstanceIds=["i-1"])
    new_call = kill_call("ec2", "TerminateInstances", InstanceIds=["i-1"])
    assert check_calls([allowed], templates) == []
    (problem,) = check_calls([new_call], templates)
    assert problem.startswith("kill Lambda: ec2:TerminateInstances (test): ec2:TerminateInstances on arn:aws:ec2:")


def test_the_lambdas_own_resources_are_bound_to_the_stacks(templates: dict[str, dict[str, Any]]) -> None:
    """Tests name the table/queue/topic freely; the check uses the stack's own (so a grant on them counts)."""
    calls = [
        kill_call("dynamodb", "PutItem", TableName="any-test-table"),
        kill_call("sqs", "SendMessage", QueueUrl=f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/q"),
        kill_call("sns", "Publish", TopicArn=f"arn:aws:sns:us-east-1:{ACCOUNT}:t"),
        Call("dynamodb", "PutItem", {"TableName": "x"}, "us-east-1", ACCOUNT, role="spend"),
        Call("ce", "GetCostAndUsage", {}, "us-east-1", ACCOUNT, role="spend"),
    ]
    assert check_calls(calls, templates) == []
    (spend_sqs,) = check_calls(
        [Call("sqs", "SendMessage", {"QueueUrl": "https://sqs/q"}, "us-east-1", ACCOUNT, role="spend")], templates
    )
    assert "spend Lambda: sqs:SendMessage" in spend_sqs


def test_meter_calls_are_checked_against_the_meter_role(templates: dict[str, dict[str, Any]]) -> None:
    """The meter Lambda (it reads caller tags and prices, and kills in-process) has its own role in the check."""

    def meter(service: str, operation: str, **params: Any) -> Call:
        return Call(service, operation, params, "us-east-1", ACCOUNT, role="meter")

    assert check_calls([meter("iam", "ListRoleTags", RoleName="agent-role")], templates) == []
    assert check_calls([meter("ec2", "StopInstances", InstanceIds=["i-1"])], templates) == []
    (problem,) = check_calls([meter("ec2", "TerminateInstances", InstanceIds=["i-1"])], templates)
    assert problem.startswith("meter Lambda: ec2:TerminateInstances")


def test_calls_under_the_meter_service_belong_to_the_meter() -> None:
    from tests.iam_coverage.recorder import LAMBDA_MODULES

    assert LAMBDA_MODULES["killswitch.handlers.meter"] == LAMBDA_MODULES["killswitch.meter.service"] == "meter"
