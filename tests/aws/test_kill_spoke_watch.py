"""The kill's watch in spoke accounts: a spoke's `<prefix>-spoke-watch` rule forwards the CloudTrail event (its
`account` kept) to the hub's default bus; the hub's watch acts in that account and region through the spoke role,
under the agent's active kill, so restore covers it. An event from an account that is not a spoke does nothing,
and the re-check covers every spoke account."""

from __future__ import annotations

import json
from typing import Any

from moto.events.models import EventPattern

from killswitch.config import KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.ledger import InMemoryKillLedger, resource_sk
from killswitch.kill.watch import RECHECK_EVENT, event_pattern
from killswitch.results import Outcome
from killswitch.testing import sim, sim_kinds
from killswitch.testing.sim_accounts import account_clients
from tests.aws.kill_support import AGENT, EAST, OTHER, WEST, aws, engine, fixed_clock, instance_state

__all__ = ["aws"]

HUB = "123456789012"  # moto's default account: the kill Lambda's own
SPOKE_A, SPOKE_B = "111111111111", "222222222222"
STRANGER = "999999999999"  # in no configured OU and not listed: not a spoke of this hub


def spoke_config(example_config: KillSwitchConfig) -> KillSwitchConfig:
    raw = example_config.model_dump(mode="json", exclude_defaults=True)
    if "sandbox" in raw:  # the hub is where the kill Lambda deploys: the sandbox's workload account
        raw["sandbox"]["workload_account_id"] = HUB
    raw["accounts"] = {
        "account_ids": [SPOKE_A, SPOKE_B],
        "organization_root_id": "r-ab12",
        "hub_account_id": HUB,
        "external_id": "spoke-watch-test",
    }
    return KillSwitchConfig.model_validate(raw)


def launch_event(account: str, region: str, event_name: str = "RunInstances") -> dict[str, Any]:
    """The CloudTrail event as the spoke's rule forwards it: EventBridge keeps the source account in `account`."""
    request = sim_kinds.run_instances_request(sim.agent_tags(AGENT)) if event_name == "RunInstances" else None
    event = sim_kinds.cloudtrail_event("ec2.amazonaws.com", event_name, region, request)
    return {**event, "account": account}


def assumed_accounts(hub: Clients) -> list[str]:
    calls: list[str] = []

    def before(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["RoleArn"].split(":")[4])

    hub("sts", EAST).meta.events.register("before-parameter-build.sts.AssumeRole", before)
    return calls


def test_a_launch_in_a_spoke_account_is_stopped_in_that_account_and_restore_covers_it(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    cfg = spoke_config(example_config)
    a, b = account_clients(SPOKE_A), account_clients(SPOKE_B)
    killed_a = sim.run_instance(a, EAST, sim.agent_tags(AGENT))
    killed_b = sim.run_instance(b, EAST, sim.agent_tags(AGENT))
    eng, ledger, pub = engine(cfg, aws)
    kill = eng.kill(AGENT, reason="spoke watch test")
    kill_id = str(kill.kill_id)
    assert instance_state(a, EAST, killed_a) == "stopped" and instance_state(b, EAST, killed_b) == "stopped"

    # After the kill the agent launches again in spoke A (another region than the kill found it in) ...
    new = sim.run_instance(a, WEST, sim.agent_tags(AGENT, Name="relaunched"))
    exempt = sim.run_instance(a, WEST, sim.agent_tags(AGENT, **{"killswitch:exempt": "true"}))
    critical = sim.run_instance(a, WEST, sim.agent_tags(AGENT, **{"killswitch:criticality": "critical"}))
    other = sim.run_instance(a, WEST, sim.agent_tags(OTHER))
    # ... and the same instance id space in spoke B and the hub is not this event's business.
    b_west = sim.run_instance(b, WEST, sim.agent_tags(AGENT, Name="b-west"))
    event = launch_event(SPOKE_A, WEST)
    # The hub's rule (the registry's pattern: no account in it) matches the event forwarded from the spoke.
    assert EventPattern.load(json.dumps(event_pattern())).matches_event(event)

    (report,) = eng.handle_event(event)

    assert report.kill_id == kill_id and report.level == "watch"
    got = {r.resource_id: r for r in report.summary.results}
    assert (got[new].outcome, got[new].account) == (Outcome.SUCCESS, SPOKE_A)
    assert instance_state(a, WEST, new) == "stopped"
    assert {instance_state(a, WEST, i) for i in (exempt, critical, other)} == {"running"}
    acts = {e.resource.resource_id: e.act for e in ledger.resources(kill_id)}
    assert acts[critical] == "needs_approval" and "wait for `killswitch approve" in report.message
    assert exempt not in got and other not in acts
    assert instance_state(b, WEST, b_west) == "running"  # spoke B: its own event or the re-check
    sks = {item["sk"] for item in ledger.store.query(f"KILL#{kill_id}", "RES#")}
    assert resource_sk(WEST, new, SPOKE_A) in sks  # account-scoped key under the active kill
    assert pub.events[-1]["kill_id"] == kill_id

    # The agent's CI restarts the killed instance in spoke B: stopped again, in spoke B.
    b("ec2", EAST).start_instances(InstanceIds=[killed_b])
    (again,) = eng.handle_event(launch_event(SPOKE_B, EAST, "StartInstances"))
    assert instance_state(b, EAST, killed_b) == "stopped"
    assert [(r.account, r.outcome) for r in again.summary.results if r.resource_id == killed_b] == [
        (SPOKE_B, Outcome.SUCCESS)
    ]

    restored = eng.restore(AGENT)
    assert restored.status == "restored", restored.summary.failures
    for c, region, instance in ((a, EAST, killed_a), (b, EAST, killed_b), (a, WEST, new)):
        assert instance_state(c, region, instance) in ("pending", "running")


def test_an_event_from_an_account_that_is_not_a_spoke_does_nothing(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    cfg = spoke_config(example_config)
    sim.run_instance(account_clients(SPOKE_A), EAST, sim.agent_tags(AGENT))
    eng, ledger, pub = engine(cfg, aws, ledger=InMemoryKillLedger(clock=fixed_clock))
    kill = eng.kill(AGENT)
    stranger = sim.run_instance(account_clients(STRANGER), EAST, sim.agent_tags(AGENT))
    entries = len(ledger.resources(str(kill.kill_id)))
    events = len(pub.events)
    assumed = assumed_accounts(aws)

    (report,) = eng.handle_event(launch_event(STRANGER, EAST))

    assert report.status == "rejected"
    assert f"account {STRANGER} is not a spoke" in report.message
    assert instance_state(account_clients(STRANGER), EAST, stranger) == "running"
    assert STRANGER not in assumed  # never even tried: trust comes from who may call
    assert len(ledger.resources(str(kill.kill_id))) == entries and len(pub.events) == events
    # Kept like any refused input: the bus policy should never have admitted it.
    [kept] = ledger.rejected(fixed_clock().date().isoformat())
    assert STRANGER in kept["reason"]


def test_the_hubs_own_events_stay_on_the_single_account_path(aws: Clients, example_config: KillSwitchConfig) -> None:
    cfg = spoke_config(example_config)
    eng, _, _ = engine(cfg, aws)
    eng.kill(AGENT)
    own = sim.run_instance(aws, EAST, sim.agent_tags(AGENT))
    in_spoke = sim.run_instance(account_clients(SPOKE_A), EAST, sim.agent_tags(AGENT))
    assumed = assumed_accounts(aws)

    (report,) = eng.handle_event(launch_event(HUB, EAST))

    assert [(r.resource_id, r.account) for r in report.summary.results] == [(own, "")]
    assert instance_state(aws, EAST, own) == "stopped"
    assert instance_state(account_clients(SPOKE_A), EAST, in_spoke) == "running"
    assert assumed == []


def test_the_recheck_covers_every_spoke_account(aws: Clients, example_config: KillSwitchConfig) -> None:
    cfg = spoke_config(example_config)
    a, b = account_clients(SPOKE_A), account_clients(SPOKE_B)
    sim.run_instance(a, EAST, sim.agent_tags(AGENT))
    eng, ledger, _ = engine(cfg, aws)
    kill = eng.kill(AGENT)
    late_a = sim.run_instance(a, WEST, sim.agent_tags(AGENT))
    late_b = sim.run_instance(b, EAST, sim.agent_tags(AGENT))  # the kill found nothing in spoke B

    (report,) = eng.handle_event(RECHECK_EVENT)

    assert report.status == "done"
    assert instance_state(a, WEST, late_a) == "stopped" and instance_state(b, EAST, late_b) == "stopped"
    keys = {e.resource.key for e in ledger.resources(str(kill.kill_id))}
    assert {(f"{SPOKE_A}/{WEST}", late_a), (f"{SPOKE_B}/{EAST}", late_b)} <= keys


def new_account(org: Any, name: str) -> str:
    request = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]["Id"]
    return str(org.describe_create_account_status(CreateAccountRequestId=request)["CreateAccountStatus"]["AccountId"])


def test_an_account_that_joined_a_configured_ou_is_a_spoke(aws: Clients, example_config: KillSwitchConfig) -> None:
    """OU membership is read at run time (the hub's account listing), so an account that joined after the kill is
    watched too; an organization account outside the OUs is not."""
    org = aws("organizations", EAST)
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="agents")["OrganizationalUnit"]["Id"]
    raw = example_config.model_dump(mode="json", exclude_defaults=True)
    if "sandbox" in raw:  # the hub is where the kill Lambda deploys: the sandbox's workload account
        raw["sandbox"]["workload_account_id"] = HUB
    raw["accounts"] = {"organizational_units": [ou], "hub_account_id": HUB}
    eng, _, _ = engine(KillSwitchConfig.model_validate(raw), aws)
    eng.kill(AGENT)
    joined, outside = new_account(org, "joined"), new_account(org, "outside")
    org.move_account(AccountId=joined, SourceParentId=root, DestinationParentId=ou)
    in_ou = sim.run_instance(account_clients(joined), EAST, sim.agent_tags(AGENT))
    not_in_ou = sim.run_instance(account_clients(outside), EAST, sim.agent_tags(AGENT))

    (report,) = eng.handle_event(launch_event(joined, EAST))
    (ignored,) = eng.handle_event(launch_event(outside, EAST))

    assert [(r.resource_id, r.account) for r in report.summary.results] == [(in_ou, joined)]
    assert instance_state(account_clients(joined), EAST, in_ou) == "stopped"
    assert ignored.status == "rejected"
    assert instance_state(account_clients(outside), EAST, not_in_ou) == "running"
