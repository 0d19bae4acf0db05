"""Organizations errors moto never raises, through botocore's Stubber: each ends in the right result."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from killswitch.results import Outcome
from killswitch.sandbox.org import RETRY_DELAYS, ScpTarget, attach_deny_scp, detach_deny_scp

ACCOUNT = "111122223333"
MGMT = "999988887777"
POLICY = "p-deny1234"
TARGET = ScpTarget(ACCOUNT, "sandbox_accounts in config")


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    org = boto3.client("organizations", region_name="us-east-1")
    with Stubber(org) as stub:
        yield org, stub
        stub.assert_no_pending_responses()


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _org_info(stub: Stubber) -> None:
    stub.add_response(
        "describe_organization",
        {"Organization": {"Id": "o-abcdefghij", "MasterAccountId": MGMT}},
    )


def _attached(stub: Stubber, *ids: str, name: str | None = None, aws_managed: bool = False) -> None:
    policies = [
        {
            "Id": i,
            "Arn": f"arn:aws:organizations::{MGMT}:policy/o-abcdefghij/service_control_policy/{i}",
            "Name": "FullAWSAccess" if i == "p-FullAWSAccess" else name or "killswitch-deny-agent-compute",
            "AwsManaged": i == "p-FullAWSAccess" or aws_managed,
        }
        for i in ids
    ]
    stub.add_response(
        "list_policies_for_target",
        {"Policies": policies},
        {"TargetId": ACCOUNT, "Filter": "SERVICE_CONTROL_POLICY"},
    )


def test_duplicate_attachment_is_no_action(stubbed: tuple[Any, Stubber]) -> None:
    org, stub = stubbed
    _org_info(stub)
    _attached(stub, "p-FullAWSAccess")  # listed without ours (eventual consistency), attach says duplicate
    stub.add_client_error("attach_policy", "DuplicatePolicyAttachmentException", http_status_code=400)
    result, attached = attach_deny_scp(org, POLICY, TARGET, sleep=Sleeps())
    assert (result.outcome, result.code, attached) == (Outcome.NO_ACTION, None, False)


def test_concurrent_modification_is_retried_then_succeeds(stubbed: tuple[Any, Stubber]) -> None:
    org, stub = stubbed
    _org_info(stub)
    _attached(stub, "p-FullAWSAccess")
    stub.add_client_error("attach_policy", "ConcurrentModificationException", http_status_code=400)
    stub.add_client_error("attach_policy", "ConcurrentModificationException", http_status_code=400)
    stub.add_response("attach_policy", {}, {"PolicyId": POLICY, "TargetId": ACCOUNT})
    sleeps = Sleeps()
    result, attached = attach_deny_scp(org, POLICY, TARGET, sleep=sleeps)
    assert (result.outcome, attached) == (Outcome.SUCCESS, True)
    assert sleeps.calls == list(RETRY_DELAYS[:2])


def test_throttling_that_never_stops_ends_in_an_error(stubbed: tuple[Any, Stubber]) -> None:
    org, stub = stubbed
    _org_info(stub)
    _attached(stub, "p-FullAWSAccess")
    for _ in range(3):
        stub.add_client_error("attach_policy", "TooManyRequestsException", http_status_code=400)
    sleeps = Sleeps()
    result, attached = attach_deny_scp(org, POLICY, TARGET, sleep=sleeps, delays=(0.1, 0.2))
    assert (result.outcome, result.code, attached) == (Outcome.ERROR, "TooManyRequestsException", False)
    assert sleeps.calls == [0.1, 0.2]


@pytest.mark.parametrize(
    "code",
    ["ConstraintViolationException", "PolicyTypeNotEnabledException", "AccessDeniedException"],
)
def test_attach_errors_keep_their_code_and_are_not_retried(stubbed: tuple[Any, Stubber], code: str) -> None:
    org, stub = stubbed
    _org_info(stub)
    _attached(stub, "p-FullAWSAccess")
    stub.add_client_error("attach_policy", code, "nope", http_status_code=400)
    sleeps = Sleeps()
    result, attached = attach_deny_scp(org, POLICY, TARGET, sleep=sleeps)
    assert (result.outcome, result.code, attached) == (Outcome.ERROR, code, False)
    assert sleeps.calls == []


def test_attach_still_works_when_describe_organization_is_denied(stubbed: tuple[Any, Stubber]) -> None:
    org, stub = stubbed
    stub.add_client_error("describe_organization", "AccessDeniedException", http_status_code=400)
    _attached(stub, "p-FullAWSAccess")
    stub.add_response("attach_policy", {}, {"PolicyId": POLICY, "TargetId": ACCOUNT})
    result, attached = attach_deny_scp(org, POLICY, TARGET, management_account_id=MGMT, sleep=Sleeps())
    assert (result.outcome, attached) == (Outcome.SUCCESS, True)


def test_detach_policy_not_attached_is_no_action(stubbed: tuple[Any, Stubber]) -> None:
    org, stub = stubbed
    _attached(stub, "p-FullAWSAccess", POLICY)  # listed, but gone by the time we detach
    stub.add_client_error("detach_policy", "PolicyNotAttachedException", http_status_code=400)
    result = detach_deny_scp(org, POLICY, ACCOUNT, sleep=Sleeps())
    assert (result.outcome, result.code, result.action) == (Outcome.NO_ACTION, None, "detach_scp")


def test_detach_retries_concurrent_modification(stubbed: tuple[Any, Stubber]) -> None:
    org, stub = stubbed
    _attached(stub, "p-FullAWSAccess", POLICY)
    stub.add_client_error("detach_policy", "ConcurrentModificationException", http_status_code=400)
    stub.add_response("detach_policy", {}, {"PolicyId": POLICY, "TargetId": ACCOUNT})
    sleeps = Sleeps()
    result = detach_deny_scp(org, POLICY, ACCOUNT, sleep=sleeps)
    assert result.outcome is Outcome.SUCCESS
    assert sleeps.calls == [RETRY_DELAYS[0]]


def test_detach_constraint_violation_is_an_error(stubbed: tuple[Any, Stubber]) -> None:
    org, stub = stubbed
    _attached(stub, "p-FullAWSAccess", POLICY)
    stub.add_client_error("detach_policy", "ConstraintViolationException", "last policy", http_status_code=400)
    result = detach_deny_scp(org, POLICY, ACCOUNT, sleep=Sleeps())
    assert (result.outcome, result.code) == (Outcome.ERROR, "ConstraintViolationException")


def test_detach_refuses_full_aws_access_by_name(stubbed: tuple[Any, Stubber]) -> None:
    org, stub = stubbed
    _attached(stub, POLICY, name="FullAWSAccess", aws_managed=True)  # FullAWSAccess under another id
    result = detach_deny_scp(org, POLICY, ACCOUNT, sleep=Sleeps())
    assert (result.outcome, result.code) == (Outcome.ERROR, "RefuseFullAWSAccess")
