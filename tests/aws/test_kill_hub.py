"""Hub and spokes on moto: one agent's EC2 instances, ECS services and Lambda functions in three organization
accounts × two regions, killed and restored from the hub through each account's `<prefix>-spoke` role; an account
whose role cannot be assumed is an error result with the AWS code while the others are killed."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from killswitch.cli.render import print_status
from killswitch.config import KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.ledger import resource_sk
from killswitch.results import Outcome
from killswitch.testing import sim
from killswitch.testing.sim_accounts import account_clients
from killswitch.testing.sim_kinds import lambda_function, reserved_concurrency
from tests.aws.kill_support import AGENT, EAST, OTHER, REGIONS, WEST, aws, engine, instance_state  # noqa: F401

SPOKES = ("111111111111", "222222222222", "333333333333")
DENIED = "444444444444"  # its spoke role denies the hub (or is missing): AssumeRole fails with AccessDenied
EXTERNAL_ID = "hub-test-external-id"


def hub_config(example_config: KillSwitchConfig, **accounts: Any) -> KillSwitchConfig:
    raw = example_config.model_dump(mode="json", exclude_defaults=True)
    raw["accounts"] = accounts or {
        "account_ids": [*SPOKES, DENIED],
        "organization_root_id": "r-ab12",
        "external_id": EXTERNAL_ID,
    }
    return KillSwitchConfig.model_validate(raw)


def spoke_fleet() -> dict[str, dict[str, Any]]:
    """Per spoke account: the agent's instance in each region, an ECS service (east), a Lambda function (west),
    and another agent's instance in each region."""
    fleet: dict[str, dict[str, Any]] = {}
    for account in SPOKES:
        c = account_clients(account)
        fleet[account] = {
            "clients": c,
            "mine": {r: sim.run_instance(c, r, sim.agent_tags(AGENT)) for r in REGIONS},
            "other": {r: sim.run_instance(c, r, sim.agent_tags(OTHER)) for r in REGIONS},
            "service": sim.ecs_service(c, EAST, "agents", "summarizer-api", sim.agent_tags(AGENT), desired=2),
            "function": lambda_function(c, WEST, "summarizer-fn", sim.agent_tags(AGENT)),
        }
    return fleet


def deny_account(hub: Clients, account: str, calls: list[dict[str, Any]]) -> None:
    """AssumeRole into `account` fails as it does when the spoke role is missing or its trust policy denies."""

    def before(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))
        if f":{account}:" in params["RoleArn"]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole")

    hub("sts", EAST).meta.events.register("before-parameter-build.sts.AssumeRole", before)


def service_desired(c: Clients, service_arn: str) -> int:
    svc = c("ecs", EAST).describe_services(cluster="agents", services=[service_arn])["services"][0]
    return int(svc["desiredCount"])


def test_hub_kills_and_restores_one_agent_in_every_account_and_region(
    aws: Clients,  # noqa: F811
    example_config: KillSwitchConfig,
) -> None:
    cfg = hub_config(example_config)
    fleet = spoke_fleet()
    local = sim.run_instance(aws, EAST, sim.agent_tags(AGENT))  # the hub's own account: the single-account path
    assumed: list[dict[str, Any]] = []
    deny_account(aws, DENIED, assumed)
    eng, ledger, pub = engine(cfg, aws)

    report = eng.kill(AGENT, reason="hub test")

    # Every spoke account × region: the agent's instances stopped, service at 0, function throttled.
    for account, f in fleet.items():
        c = f["clients"]
        for r in REGIONS:
            assert instance_state(c, r, f["mine"][r]) in ("stopping", "stopped"), (account, r)
            assert instance_state(c, r, f["other"][r]) == "running", (account, r)
        assert service_desired(c, f["service"]) == 0
        assert reserved_concurrency(c, WEST, "summarizer-fn") == 0
    assert instance_state(aws, EAST, local) in ("stopping", "stopped")
    # One AssumeRole per account for the whole kill (discovery in two regions, act, verify), with the ExternalId.
    assert sorted(p["RoleArn"].split(":")[4] for p in assumed) == sorted([*SPOKES, DENIED])
    assert {p["ExternalId"] for p in assumed} == {EXTERNAL_ID}
    assert {p["RoleArn"].rsplit("/", 1)[-1] for p in assumed} == {"killswitch-spoke"}

    # The denied account: one error result with the AWS code; it blocked nobody.
    denied = [r for r in report.summary.failures if r.account == DENIED]
    assert [(r.resource_type, r.action, r.code) for r in denied] == [("account", "assume_role", "AccessDenied")]
    assert report.summary.failures == denied
    event = pub.events[-1]
    assert [(f["account"], f["code"]) for f in event["failures"]] == [(DENIED, "AccessDenied")]

    # Results, the ledger and status name the account of every resource.
    stopped = {(r.account, r.region, r.resource_id) for r in report.summary.results if r.outcome is Outcome.SUCCESS}
    for account, f in fleet.items():
        for r in REGIONS:
            assert (account, r, f["mine"][r]) in stopped
    assert ("", EAST, local) in stopped
    kill_id = str(report.kill_id)
    sks = {item["sk"] for item in ledger.store.query(f"KILL#{kill_id}", "RES#")}
    assert resource_sk(WEST, fleet[SPOKES[1]]["mine"][WEST], SPOKES[1]) in sks
    status = eng.status(AGENT)[0]["resources"]
    assert {line.get("account", "") for line in status} == {"", *SPOKES}
    con = Console(record=True, width=250)
    print_status(con, eng.status(AGENT))
    assert f"{SPOKES[2]}/{WEST}" in con.export_text()

    # Restore puts everything back in every account (the roles are assumed again for the restore).
    assumed.clear()
    restored = eng.restore(AGENT)
    assert restored.status == "partial" or restored.status == "restored"
    for account, f in fleet.items():
        c = f["clients"]
        for r in REGIONS:
            assert instance_state(c, r, f["mine"][r]) in ("pending", "running"), (account, r)
        assert service_desired(c, f["service"]) == 2
        assert reserved_concurrency(c, WEST, "summarizer-fn") is None
    assert instance_state(aws, EAST, local) in ("pending", "running")
    assert sorted(p["RoleArn"].split(":")[4] for p in assumed) == sorted(SPOKES)


def test_a_second_kill_finds_the_spoke_resources_already_handled(
    aws: Clients,  # noqa: F811
    example_config: KillSwitchConfig,
) -> None:
    cfg = hub_config(example_config, account_ids=list(SPOKES[:1]), organization_root_id="r-ab12")
    c = account_clients(SPOKES[0])
    instance = sim.run_instance(c, WEST, sim.agent_tags(AGENT))
    eng, _, _ = engine(cfg, aws)
    first = eng.kill(AGENT)
    assert any(r.resource_id == instance and r.account == SPOKES[0] for r in first.summary.results)
    again = eng.kill(AGENT)
    mine = [r for r in again.summary.results if r.resource_id == instance]
    assert [(r.account, r.outcome) for r in mine] == [(SPOKES[0], Outcome.NO_ACTION)]


def test_an_account_listed_twice_through_an_ou_is_reached_once(
    aws: Clients,  # noqa: F811
    example_config: KillSwitchConfig,
) -> None:
    org = aws("organizations", EAST)
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="agents")["OrganizationalUnit"]["Id"]
    nested = org.create_organizational_unit(ParentId=ou, Name="agents-eu")["OrganizationalUnit"]["Id"]
    ids = []
    for name, parent in (("a", ou), ("b", nested)):
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        account = org.describe_create_account_status(CreateAccountRequestId=status["Id"])["CreateAccountStatus"]
        ids.append(account["AccountId"])
        org.move_account(AccountId=account["AccountId"], SourceParentId=root, DestinationParentId=parent)
    cfg = hub_config(example_config, organizational_units=[ou], account_ids=[ids[0]], organization_root_id=root)
    instance = sim.run_instance(account_clients(ids[1]), EAST, sim.agent_tags(AGENT))
    eng, _, _ = engine(cfg, aws)

    report = eng.kill(AGENT)

    assert instance_state(account_clients(ids[1]), EAST, instance) in ("stopping", "stopped")
    assert eng.hub is not None and eng.hub.accounts() == (ids, [])
    assert eng.hub.assume_calls == 2
    assert not report.summary.failures


@pytest.mark.parametrize(
    ("refusal", "code", "says"),
    [
        # A member account asking Organizations: AWS refuses (the hub is not the management account).
        ("AccessDeniedException", "AccessDeniedException", "management account"),
        # moto with no such OU in the organization.
        (None, "ParentNotFoundException", "no such OU"),
    ],
)
def test_a_hub_that_cannot_list_an_ou_says_so_and_still_reaches_listed_accounts(
    aws: Clients,  # noqa: F811
    example_config: KillSwitchConfig,
    refusal: str | None,
    code: str,
    says: str,
) -> None:
    ou = "ou-ab12-cdef3456"
    cfg = hub_config(example_config, organizational_units=[ou], account_ids=[SPOKES[0]], organization_root_id="r-ab12")
    instance = sim.run_instance(account_clients(SPOKES[0]), EAST, sim.agent_tags(AGENT))
    if refusal:

        def refuse(**_: Any) -> None:
            raise ClientError({"Error": {"Code": refusal, "Message": "You don't have permissions"}}, "ListAccounts")

        aws("organizations", EAST).meta.events.register(
            "before-parameter-build.organizations.ListAccountsForParent", refuse
        )
    eng, _, _ = engine(cfg, aws)

    report = eng.kill(AGENT)

    [failure] = report.summary.failures
    assert (failure.account, failure.action, failure.code) == (ou, "list_accounts", code)
    assert says in failure.message and ou in failure.message
    assert instance_state(account_clients(SPOKES[0]), EAST, instance) in ("stopping", "stopped")


def test_spoke_credentials_refresh_by_assuming_the_role_again(
    aws: Clients,  # noqa: F811
    example_config: KillSwitchConfig,
) -> None:
    from datetime import UTC, datetime, timedelta

    from botocore.credentials import RefreshableCredentials

    eng, _, _ = engine(hub_config(example_config), aws)
    hub = eng._start_hub()
    assert hub is not None
    clients = hub.clients(SPOKES[0])
    creds = hub.credentials(SPOKES[0])
    assert isinstance(creds, RefreshableCredentials)
    assert hub.assume_calls == 1
    creds._expiry_time = datetime.now(UTC) + timedelta(seconds=30)  # inside botocore's mandatory refresh window
    assert clients("ec2", EAST).describe_instances()["Reservations"] == []
    assert hub.assume_calls == 2


@pytest.mark.parametrize("code", ["AccessDenied"])
def test_restore_of_an_unreachable_account_is_an_error_result(
    aws: Clients,  # noqa: F811
    example_config: KillSwitchConfig,
    code: str,
) -> None:
    cfg = hub_config(example_config, account_ids=[SPOKES[0]], organization_root_id="r-ab12")
    c = account_clients(SPOKES[0])
    instance = sim.run_instance(c, EAST, sim.agent_tags(AGENT))
    eng, _, _ = engine(cfg, aws)
    eng.kill(AGENT)
    deny_account(aws, SPOKES[0], [])

    report = eng.restore(AGENT)

    assert [(r.account, r.resource_id, r.code) for r in report.summary.failures] == [(SPOKES[0], instance, code)]
    assert instance_state(c, EAST, instance) in ("stopping", "stopped")


def test_a_hub_kill_shares_one_client_per_region_and_service_across_accounts_and_makes_only_those_it_calls(
    aws: Clients,  # noqa: F811
    example_config: KillSwitchConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Client creation was a third of a hub kill's own CPU: every spoke account's discovery, act and verify share
    one client per service × region (one session for all spokes), each call signed as its own account, and no
    client is made for a service the kill does not call (no Batch queue here)."""
    import botocore.session

    from killswitch.kill.spoke_clients import AccountCredentials

    cfg = hub_config(example_config, account_ids=list(SPOKES), organization_root_id="r-ab12")
    mine = {(a, r): sim.run_instance(account_clients(a), r, sim.agent_tags(AGENT)) for a in SPOKES for r in REGIONS}
    eng, _, _ = engine(cfg, aws)
    made: list[tuple[int, str, str]] = []  # (spoke session, service, region)
    called: dict[tuple[int, str, str], set[str]] = {}  # accounts that signed a call with each client
    original = botocore.session.Session.create_client

    def spy(self: botocore.session.Session, service: str, region_name: str | None = None, **kw: Any) -> Any:
        client = original(self, service, region_name, **kw)
        creds = self.get_credentials()
        if isinstance(creds, AccountCredentials):  # the spoke accounts' session
            key = (id(self), service, str(region_name))
            made.append(key)
            client.meta.events.register(
                "before-call", lambda **_: called.setdefault(key, set()).add(str(creds.account_id))
            )
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", spy)

    report = eng.kill(AGENT)

    stopped = {(r.account, r.region, r.resource_id) for r in report.summary.results if r.outcome is Outcome.SUCCESS}
    assert {(a, r, i) for (a, r), i in mine.items()} == stopped  # each instance stopped in its own account
    assert len({session for session, _, _ in made}) == 1  # one session for every spoke account
    assert len(made) == len(set(made)), "a client made twice for the same region and service"
    assert sorted(r for _, s, r in made if s == "ec2") == sorted(REGIONS)
    assert set(made) == set(called), "a client made for a service the kill never called"
    assert all(accounts == set(SPOKES) for accounts in called.values()), called
