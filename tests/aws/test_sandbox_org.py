"""Attach/detach of the deny SCP in moto Organizations; the safety checks moto itself does not enforce."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from killswitch.config import AgentConfig, BudgetConfig
from killswitch.results import Outcome
from killswitch.sandbox.org import (
    ScpTarget,
    attach_deny_scp,
    detach_deny_scp,
    find_policy_id,
    find_sandbox_targets,
    org_client,
)

REPO = Path(__file__).resolve().parents[2]
POLICY_NAME = "killswitch-deny-agent-compute"


@dataclass
class Org:
    client: Any
    management: str
    configured: str  # listed in the agent's sandbox_accounts
    tagged: str  # tagged agent-name=log-summarizer
    other: str  # tagged for another agent
    policy_id: str


def _account(org: Any, name: str) -> str:
    status = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
    return str(status["AccountId"])


@pytest.fixture
def org() -> Iterator[Org]:
    with mock_aws():
        client = org_client()
        info = client.create_organization(FeatureSet="ALL")["Organization"]
        root_id = client.list_roots()["Roots"][0]["Id"]
        client.enable_policy_type(RootId=root_id, PolicyType="SERVICE_CONTROL_POLICY")
        configured, tagged, other = (_account(client, n) for n in ("sandbox-a", "sandbox-b", "sandbox-c"))
        client.tag_resource(ResourceId=tagged, Tags=[{"Key": "agent-name", "Value": "log-summarizer"}])
        client.tag_resource(ResourceId=other, Tags=[{"Key": "agent-name", "Value": "research-crawler"}])
        content = json.dumps(json.loads((REPO / "scp_policies" / "deny-agent-compute.json").read_text()))
        policy = client.create_policy(
            Name=POLICY_NAME, Description="deny", Type="SERVICE_CONTROL_POLICY", Content=content
        )["Policy"]["PolicySummary"]
        yield Org(client, info["MasterAccountId"], configured, tagged, other, policy["Id"])


def _agent(*accounts: str) -> AgentConfig:
    return AgentConfig(name="log-summarizer", budget=BudgetConfig(amount_usd=10), sandbox_accounts=list(accounts))


def _scp_ids(org: Org, account_id: str) -> set[str]:
    resp = org.client.list_policies_for_target(TargetId=account_id, Filter="SERVICE_CONTROL_POLICY")
    return {p["Id"] for p in resp["Policies"]}


def no_sleep(_: float) -> None:
    raise AssertionError("moto never asks for a retry")


def test_find_policy_id_by_name(org: Org) -> None:
    assert find_policy_id(org.client, POLICY_NAME) == org.policy_id
    assert find_policy_id(org.client, "FullAWSAccess") == "p-FullAWSAccess"
    assert find_policy_id(org.client, "no-such-policy") is None


def test_targets_are_config_plus_tagged_accounts_sorted(org: Org) -> None:
    targets = find_sandbox_targets(org.client, _agent(org.configured), None)
    assert targets == sorted(
        [
            ScpTarget(org.configured, "sandbox_accounts in config"),
            ScpTarget(org.tagged, "account tag agent-name=log-summarizer"),
        ],
        key=lambda t: t.account_id,
    )
    assert org.other not in {t.account_id for t in targets}


def test_targets_deduplicate_config_and_tag(org: Org) -> None:
    targets = find_sandbox_targets(org.client, _agent(org.tagged), None)
    assert targets == [ScpTarget(org.tagged, "sandbox_accounts in config")]


def test_targets_never_include_the_management_account(org: Org) -> None:
    # Listed in config and tagged: still excluded, whether or not the config names it as the management account.
    org.client.tag_resource(ResourceId=org.management, Tags=[{"Key": "agent-name", "Value": "log-summarizer"}])
    for configured_mgmt in (None, org.management):
        ids = [t.account_id for t in find_sandbox_targets(org.client, _agent(org.management), configured_mgmt)]
        assert ids == [org.tagged]
    # The configured management account id is honoured even when describe_organization says otherwise.
    ids = [t.account_id for t in find_sandbox_targets(org.client, _agent(org.configured), org.configured)]
    assert ids == [org.tagged]


def test_attach_then_detach_round_trip(org: Org) -> None:
    target = ScpTarget(org.configured, "sandbox_accounts in config")
    result, attached = attach_deny_scp(org.client, org.policy_id, target, sleep=no_sleep)
    assert (result.outcome, attached) == (Outcome.SUCCESS, True)
    assert (result.resource_id, result.resource_type, result.region, result.action) == (
        org.configured,
        "organizations:account",
        "global",
        "attach_scp",
    )
    assert org.policy_id in _scp_ids(org, org.configured)

    again, attached_again = attach_deny_scp(org.client, org.policy_id, target, sleep=no_sleep)
    assert (again.outcome, attached_again) == (Outcome.NO_ACTION, False)

    detached = detach_deny_scp(org.client, org.policy_id, org.configured, sleep=no_sleep)
    assert (detached.outcome, detached.action) == (Outcome.SUCCESS, "detach_scp")
    assert _scp_ids(org, org.configured) == {"p-FullAWSAccess"}

    detached_again = detach_deny_scp(org.client, org.policy_id, org.configured, sleep=no_sleep)
    assert detached_again.outcome is Outcome.NO_ACTION


def test_attach_refuses_the_management_account(org: Org) -> None:
    target = ScpTarget(org.management, "sandbox_accounts in config")
    result, attached = attach_deny_scp(org.client, org.policy_id, target, sleep=no_sleep)
    assert (result.outcome, result.code, attached) == (Outcome.ERROR, "ManagementAccount", False)
    assert org.policy_id not in _scp_ids(org, org.management)
    # Also when only the config names it (describe_organization reports another id).
    result, _ = attach_deny_scp(
        org.client, org.policy_id, ScpTarget(org.configured, "x"), management_account_id=org.configured
    )
    assert result.code == "ManagementAccount"
    assert org.policy_id not in _scp_ids(org, org.configured)


def test_attach_refuses_an_account_at_the_scp_limit(org: Org) -> None:
    for i in range(9):  # + FullAWSAccess = 10
        pid = org.client.create_policy(
            Name=f"filler-{i}", Description="f", Type="SERVICE_CONTROL_POLICY", Content='{"Version":"2012-10-17"}'
        )["Policy"]["PolicySummary"]["Id"]
        org.client.attach_policy(PolicyId=pid, TargetId=org.tagged)
    assert len(_scp_ids(org, org.tagged)) == 10
    result, attached = attach_deny_scp(org.client, org.policy_id, ScpTarget(org.tagged, "tag"), sleep=no_sleep)
    assert (result.outcome, result.code, attached) == (Outcome.ERROR, "ScpLimitReached", False)
    assert org.policy_id not in _scp_ids(org, org.tagged)


def test_detach_never_removes_full_aws_access(org: Org) -> None:
    result = detach_deny_scp(org.client, "p-FullAWSAccess", org.configured, sleep=no_sleep)
    assert (result.outcome, result.code) == (Outcome.ERROR, "RefuseFullAWSAccess")
    assert "p-FullAWSAccess" in _scp_ids(org, org.configured)


def test_org_client_assumes_the_given_role(org: Org) -> None:
    via_role = org_client(f"arn:aws:iam::{org.management}:role/killswitch-scp", boto3.Session(region_name="eu-west-1"))
    creds = via_role._request_signer._credentials
    assert creds.access_key != "testing"  # the assumed role's temporary keys, not the caller's
    assert creds.token  # session token present: these are STS credentials
    assert find_policy_id(via_role, POLICY_NAME) == org.policy_id
