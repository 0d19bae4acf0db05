"""Sandbox accounts as resources: the kill attaches the deny SCP (Organizations on moto), restore detaches only
what the kill attached."""

from __future__ import annotations

import json

import boto3

from killswitch.config import KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.model import ACCOUNT
from killswitch.kill.scp import OrgScp
from killswitch.results import Outcome
from tests.aws.kill_support import AGENT, aws, engine

__all__ = ["aws"]
POLICY = "killswitch-deny-agent-compute"


def org_with_sandbox(config: KillSwitchConfig) -> tuple[KillSwitchConfig, object, str, str]:
    org = boto3.client("organizations", "us-east-1")
    org.create_organization(FeatureSet="ALL")
    account = org.create_account(AccountName="sandbox", Email="sandbox@example.com")["CreateAccountStatus"]["AccountId"]
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*"}]}
    policy = org.create_policy(Name=POLICY, Description="deny", Type="SERVICE_CONTROL_POLICY", Content=json.dumps(doc))[
        "Policy"
    ]["PolicySummary"]["Id"]
    agents = [a.model_copy(update={"sandbox_accounts": [account]}) if a.name == AGENT else a for a in config.agents]
    return config.model_copy(update={"agents": agents}), org, account, policy


def attached(org: object, account: str) -> set[str]:
    pages = org.list_policies_for_target(TargetId=account, Filter="SERVICE_CONTROL_POLICY")  # type: ignore[attr-defined]
    return {p["Id"] for p in pages["Policies"]}


def test_kill_attaches_and_restore_detaches_the_deny_scp(aws: Clients, example_config: KillSwitchConfig) -> None:
    config, org, account, policy = org_with_sandbox(example_config)
    eng, ledger, _ = engine(config, aws, scp=OrgScp(config, POLICY, org=org))
    report = eng.kill(AGENT)
    (scp_result,) = [r for r in report.summary.results if r.resource_type == ACCOUNT]
    assert (scp_result.resource_id, scp_result.outcome) == (account, Outcome.SUCCESS)
    assert policy in attached(org, account)
    (entry,) = [e for e in ledger.resources(report.kill_id) if e.resource.resource_type == ACCOUNT]
    assert entry.attached_by_us is True
    restored = eng.restore(AGENT)
    assert [r.action for r in restored.summary.results if r.resource_type == ACCOUNT] == ["detach_scp"]
    assert policy not in attached(org, account)
    assert "p-FullAWSAccess" in attached(org, account)


def test_an_scp_attached_before_the_kill_stays_attached(aws: Clients, example_config: KillSwitchConfig) -> None:
    config, org, account, policy = org_with_sandbox(example_config)
    org.attach_policy(PolicyId=policy, TargetId=account)  # type: ignore[attr-defined]
    eng, _ledger, _ = engine(config, aws, scp=OrgScp(config, POLICY, org=org))
    report = eng.kill(AGENT)
    (scp_result,) = [r for r in report.summary.results if r.resource_type == ACCOUNT]
    assert scp_result.outcome is Outcome.NO_ACTION
    eng.restore(AGENT)
    assert policy in attached(org, account)


def test_run_scoped_kill_applies_no_scp(aws: Clients, example_config: KillSwitchConfig) -> None:
    config, org, account, policy = org_with_sandbox(example_config)
    eng, _, _ = engine(config, aws, scp=OrgScp(config, POLICY, org=org))
    report = eng.kill(AGENT, run_id="run-1")
    (scp_result,) = [r for r in report.summary.results if r.resource_type == ACCOUNT]
    assert scp_result.outcome is Outcome.NO_ACTION and "run-scoped" in scp_result.message
    assert policy not in attached(org, account)


def test_missing_policy_is_an_error_result_not_a_crash(aws: Clients, example_config: KillSwitchConfig) -> None:
    config, org, _account, _ = org_with_sandbox(example_config)
    eng, _, _ = engine(config, aws, scp=OrgScp(config, "no-such-policy", org=org))
    report = eng.kill(AGENT)
    (scp_result,) = [r for r in report.summary.results if r.resource_type == ACCOUNT]
    assert (scp_result.outcome, scp_result.code) == (Outcome.ERROR, "PolicyNotFound")
