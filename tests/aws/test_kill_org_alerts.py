"""Issue 13 item 4 through the kill Lambda handler on moto: a linked-account budget of the management account
alerts the org alerts topic, which the hub's kill Lambda trusts by its exact ARN; the budget name maps to (agent,
account) through the config and the agent is killed in every account (hub and spoke), the result naming the account
whose budget fired. A name that maps nowhere, an org budget on the hub's own alerts topic, or the org topic's name in
another account: a rejected result with the reason, recorded, never raised (SNS would retry it forever)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from killswitch.config import KillSwitchConfig
from killswitch.handlers import kill as kill_handler
from killswitch.kill.discover import Clients
from killswitch.kill.ledger import DynamoKillLedger
from killswitch.org_budgets import OrgBudgetKey, org_alerts_topic_arn, org_budget_spec
from killswitch.testing import sim
from killswitch.testing.sim_accounts import account_clients
from tests.aws.intake_support import ACCOUNT, ALERTS_TOPIC, TABLE, letter, rejected_items, run, sns_record
from tests.aws.kill_support import AGENT, EAST, aws, create_table, instance_state

__all__ = ["aws"]
MGMT = "999988887777"  # the example config's sandbox.management_account_id
SPOKE = "555566667777"


@pytest.fixture
def org_config(example_config: KillSwitchConfig) -> KillSwitchConfig:
    raw = example_config.model_dump(mode="json", exclude_defaults=True)
    if "sandbox" in raw:  # the hub is where the kill Lambda deploys: the sandbox's workload account
        raw["sandbox"]["workload_account_id"] = ACCOUNT
    raw["agents"][0]["budget"]["per_account_usd"] = 100
    raw["accounts"] = {
        "account_ids": [SPOKE],
        "organization_root_id": "r-ab12",
        "hub_account_id": ACCOUNT,  # moto's account is the hub; the management account is another one
    }
    return KillSwitchConfig.model_validate(raw)


@pytest.fixture
def handler_env(aws: Clients, org_config: KillSwitchConfig, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    create_table(TABLE)
    events = boto3.client("sns", EAST).create_topic(Name="killswitch-events")["TopicArn"]
    monkeypatch.setenv("KILLSWITCH_TABLE", TABLE)
    monkeypatch.setenv("KILLSWITCH_EVENTS_TOPIC_ARN", events)
    monkeypatch.setenv("KILLSWITCH_KILL_TOPIC_ARN", ALERTS_TOPIC)
    monkeypatch.setenv("KILLSWITCH_CONFIG_JSON", org_config.to_json())
    kill_handler.reset()
    yield
    kill_handler.reset()


def org_topic(config: KillSwitchConfig) -> str:
    arn = org_alerts_topic_arn(config, ALERTS_TOPIC)
    assert arn == f"arn:aws:sns:{EAST}:{MGMT}:killswitch-org-alerts"
    return arn


def budget_name(config: KillSwitchConfig, account: str | None, placement: str = "killswitch-org-budgets-0") -> str:
    return org_budget_spec(config, OrgBudgetKey(config.agent(AGENT), account), placement).name


def test_a_linked_account_budget_alert_kills_the_agent_in_every_account(
    aws: Clients, handler_env: None, org_config: KillSwitchConfig
) -> None:
    spoke = account_clients(SPOKE)
    in_spoke = sim.run_instance(spoke, EAST, sim.agent_tags(AGENT))
    in_hub = sim.run_instance(aws, EAST, sim.agent_tags(AGENT))
    name = budget_name(org_config, SPOKE)
    message, subject = letter(name, 130.0, 100.0, 100.0)

    (result,) = run(sns_record(org_topic(org_config), message, "org-1", subject))

    assert result["operation"] == "kill" and result["agent"] == AGENT
    assert f"budget of linked account {SPOKE}" in result["reason"]
    assert instance_state(spoke, EAST, in_spoke) == "stopped"  # one kill reaches the spoke...
    assert instance_state(aws, EAST, in_hub) == "stopped"  # ...and the hub's own account
    state = DynamoKillLedger(TABLE).agent_state(AGENT)
    assert state is not None and state["state"] == "KILLED"
    record = DynamoKillLedger(TABLE).get_kill(result["kill_id"])
    assert record is not None and record.alert["budget_account"] == SPOKE
    # The same letter delivered again (SNS is at-least-once) does nothing more.
    (again,) = run(sns_record(org_topic(org_config), message, "org-2", subject))
    assert again["operation"] == "duplicate"


def test_the_replaced_budgets_late_alert_and_the_org_wide_budget_reach_the_same_agent(
    aws: Clients, handler_env: None, org_config: KillSwitchConfig
) -> None:
    sim.run_instance(aws, EAST, sim.agent_tags(AGENT))
    old = budget_name(org_config, SPOKE, placement="killswitch-org-budgets-7")  # before a move: another hash
    assert old != budget_name(org_config, SPOKE)
    message, subject = letter(old, 90.0, 100.0, 80.0)
    (warned,) = run(sns_record(org_topic(org_config), message, "org-old", subject))
    assert warned["agent"] == AGENT and warned["operation"] == "warn"
    assert f"linked account {SPOKE}" in warned["reason"]
    org_wide = budget_name(org_config, None)
    message, subject = letter(org_wide, 510.0, 500.0, 500.0)
    (killed,) = run(sns_record(org_topic(org_config), message, "org-wide", subject))
    assert killed["operation"] == "kill" and "budget (org-wide)" in killed["reason"]


def test_a_name_that_maps_nowhere_is_a_recorded_rejection(
    aws: Clients, handler_env: None, org_config: KillSwitchConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = sim.run_instance(aws, EAST, sim.agent_tags(AGENT))
    unknown = "killswitch-log-summarizer-777777777777-1234abcd"  # an account that is not in accounts.account_ids
    message, subject = letter(unknown, 130.0, 100.0, 100.0)
    (result,) = run(sns_record(org_topic(org_config), message, "org-x", subject))
    assert result["operation"] == "rejected" and unknown in result["reason"]
    assert instance_state(aws, EAST, plain) == "running"
    (record,) = rejected_items()
    assert record["reason"] == result["reason"]
    assert '"AlertsRejected"' in capsys.readouterr().out


def test_the_workload_budgets_name_on_the_org_topic_is_refused(
    aws: Clients, handler_env: None, org_config: KillSwitchConfig
) -> None:
    plain = sim.run_instance(aws, EAST, sim.agent_tags(AGENT))
    message, subject = letter("killswitch-log-summarizer", 530.0, 500.0, 500.0)
    (result,) = run(sns_record(org_topic(org_config), message, "org-w", subject))
    assert result["operation"] == "rejected" and "not an organization budget" in result["reason"]
    assert instance_state(aws, EAST, plain) == "running"


def test_an_org_budget_on_the_hubs_alerts_topic_is_refused(
    aws: Clients, handler_env: None, org_config: KillSwitchConfig
) -> None:
    plain = sim.run_instance(aws, EAST, sim.agent_tags(AGENT))
    message, subject = letter(budget_name(org_config, SPOKE), 130.0, 100.0, 100.0)
    (result,) = run(sns_record(ALERTS_TOPIC, message, "hub-1", subject))
    assert result["operation"] == "rejected" and "org alerts topic of the management account" in result["reason"]
    assert instance_state(aws, EAST, plain) == "running"


@pytest.mark.parametrize("account", [ACCOUNT, "888888888888"])
def test_the_org_topics_name_in_another_account_is_not_trusted(
    aws: Clients, handler_env: None, org_config: KillSwitchConfig, account: str
) -> None:
    plain = sim.run_instance(aws, EAST, sim.agent_tags(AGENT))
    message, subject = letter(budget_name(org_config, SPOKE), 130.0, 100.0, 100.0)
    forged = f"arn:aws:sns:{EAST}:{account}:killswitch-org-alerts"
    (result,) = run(sns_record(forged, message, "f-1", subject))
    assert result["operation"] == "rejected" and "not one of the kill switch's intakes" in result["reason"]
    assert instance_state(aws, EAST, plain) == "running"
