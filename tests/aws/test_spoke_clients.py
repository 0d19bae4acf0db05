"""Shared spoke clients on moto: one client per service × region for every spoke account, each call signed as the
account it is made for (moto keeps a backend per account, picked from the signing access key), even when threads
call the same client for different accounts at once; a call made without an account signs nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from killswitch.kill.spoke_clients import NoAccountError, SpokeClients, assumed_role_credentials
from killswitch.testing import sim
from killswitch.testing.sim_accounts import account_clients

REGION = "us-east-1"
ACCOUNTS = ("111111111111", "222222222222", "333333333333", "444444444444")


@pytest.fixture
def spokes(monkeypatch: pytest.MonkeyPatch) -> Iterator[SpokeClients]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with sim.offline_env(REGION), sim.moto_aws():
        spokes = SpokeClients(REGION, max_parallel=8)
        sts = boto3.client("sts", region_name=REGION)
        for account in ACCOUNTS:
            role = f"arn:aws:iam::{account}:role/killswitch-spoke"
            spokes.add(
                account,
                assumed_role_credentials(
                    lambda role=role: sts.assume_role(RoleArn=role, RoleSessionName="test")["Credentials"]
                ),
            )
        yield spokes


def instance_ids(reservations: list[dict[str, Any]]) -> set[str]:
    return {i["InstanceId"] for r in reservations for i in r["Instances"]}


def test_each_account_reads_and_writes_its_own_backend_through_one_shared_client(spokes: SpokeClients) -> None:
    mine = {a: sim.run_instance(spokes.for_account(a), REGION, sim.agent_tags(f"agent-{a}")) for a in ACCOUNTS}

    for account in ACCOUNTS:
        ec2 = spokes.for_account(account)("ec2", REGION)
        assert instance_ids(ec2.describe_instances()["Reservations"]) == {mine[account]}
        # what the account's own credentials (a separate session) see: the same single instance
        own = account_clients(account)("ec2", REGION).describe_instances()["Reservations"]
        assert instance_ids(own) == {mine[account]}
    assert len({id(spokes.for_account(a)("ec2", REGION)._client) for a in ACCOUNTS}) == 1


def test_threads_calling_one_client_for_different_accounts_at_once_each_sign_as_their_own(
    spokes: SpokeClients,
) -> None:
    mine = {a: sim.run_instance(spokes.for_account(a), REGION, sim.agent_tags(f"agent-{a}")) for a in ACCOUNTS}
    start = threading.Barrier(8)

    def read(n: int) -> list[tuple[str, set[str]]]:
        account = ACCOUNTS[n % len(ACCOUNTS)]
        ec2 = spokes.for_account(account)("ec2", REGION)
        start.wait()
        return [(account, instance_ids(ec2.describe_instances()["Reservations"])) for _ in range(10)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        seen = [pair for result in pool.map(read, range(8)) for pair in result]

    assert len(seen) == 80
    assert all(found == {mine[account]} for account, found in seen), seen


def test_paginated_pages_are_fetched_in_the_account_and_the_loop_body_runs_without_it(
    spokes: SpokeClients,
) -> None:
    account = ACCOUNTS[0]
    ids = {sim.run_instance(spokes.for_account(account), REGION, sim.agent_tags("pager")) for _ in range(3)}
    sim.run_instance(spokes.for_account(ACCOUNTS[1]), REGION, sim.agent_tags("pager"))
    shared = spokes.shared("ec2", REGION)
    pages = spokes.for_account(account)("ec2", REGION).get_paginator("describe_instances").paginate(MaxResults=5)

    found: set[str] = set()
    for page in pages:
        found |= instance_ids(page["Reservations"])
        with pytest.raises(NoAccountError):  # between pages, nothing is signed as the account
            shared.describe_instances()
    assert found == ids


def test_the_shared_client_called_directly_or_for_an_unknown_account_signs_nothing(spokes: SpokeClients) -> None:
    ec2 = spokes.for_account(ACCOUNTS[0])("ec2", REGION)
    ec2.describe_instances()  # the account was bound for that call only

    with pytest.raises(NoAccountError, match="outside AccountClient"):
        spokes.shared("ec2", REGION).describe_instances()
    with pytest.raises(NoAccountError, match="999999999999"):
        spokes.for_account("999999999999")("ec2", REGION).describe_instances()


def test_waiters_poll_in_the_account(spokes: SpokeClients) -> None:
    account = ACCOUNTS[2]
    iid = sim.run_instance(spokes.for_account(account), REGION, sim.agent_tags("waiter"))
    ec2 = spokes.for_account(account)("ec2", REGION)

    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 0, "MaxAttempts": 2})

    assert ec2.exceptions.ClientError is not None  # attributes other than operations are the client's own
    assert ec2.can_paginate("describe_instances")
