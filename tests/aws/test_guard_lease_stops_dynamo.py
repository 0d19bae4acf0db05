"""The lease race on DynamoDB (moto): concurrent runs reach the cap within one charge per run in flight, never pass
it, and the one kill event comes only when the spend really leaves no room."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from killswitch.guard import DynamoLedger, Mode
from killswitch.testing.sim import serialized
from tests.aws.guard_support import cap_items, create_table
from tests.unit.lease_race import AGENT, race

pytestmark = pytest.mark.aws

D = Decimal


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = serialized(boto3.client("dynamodb", region_name="us-east-1"))
        create_table(client)
        yield client


@pytest.mark.parametrize("runs", [8, 16])
def test_concurrent_runs_with_leases_on_dynamodb_reach_the_cap_and_never_pass_it(ddb: Any, runs: int) -> None:
    ledger = DynamoLedger("killswitch-ledger", client=ddb)
    over: list[str] = []
    cap = D("0.40")
    guard, pub, accepted = race(ledger, runs, float(cap), over)

    row = cap_items(ddb, AGENT)[f"CAP#agent#{guard.period_key()}"]
    assert over == []
    assert row["reserved"] == 0 and row["committed"] <= cap and row["used"] == row["committed"]
    assert row["committed"] >= cap - D("0.01") * runs
    assert accepted == int(row["committed"] / D("0.01"))
    assert guard.mode is Mode.STOPPED
    kills = [e for e in pub.events if e[0].action == "kill"]
    assert len(kills) == 1
    _, committed, reserved = kills[0]
    assert committed + reserved >= cap - D("0.01") * runs
    assert ledger.open_leases(AGENT) == []  # every lease was settled when its run ended
