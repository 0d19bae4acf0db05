"""`bench.common.prune_settled_charges`: the moto rows of the guard and Bedrock benches delete settled charges
between timed calls (moto's TransactWriteItems copies the whole table per item), never a reservation still open,
never another agent's items."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bench.common import prune_settled_charges
from killswitch.guard import Caps, DynamoLedger, Guard, ModelPrice
from killswitch.keys import CHARGE_PREFIX, guard_pk
from killswitch.testing import sim

TABLE = "prune-ledger"
PRICE = ModelPrice.of(1.0, 1.0)  # USD per 1M tokens


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        c = boto3.client("dynamodb", region_name="us-east-1")
        sim.create_ledger_table(c, TABLE)
        yield c


def charges(client: Any, agent: str) -> dict[str, str]:
    items = client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :charge)",
        ExpressionAttributeValues={":pk": {"S": guard_pk(agent)}, ":charge": {"S": CHARGE_PREFIX}},
    )["Items"]
    return {i["sk"]["S"]: i["state"]["S"] for i in items}


def test_settled_charges_go_open_reservations_and_other_agents_stay(client: Any) -> None:
    mine = Guard("bench-agent", Caps(per_run_usd=100, per_day_usd=100), DynamoLedger(TABLE, client=client))
    other = Guard("other-agent", Caps(per_run_usd=100, per_day_usd=100), DynamoLedger(TABLE, client=client))
    with mine.run() as run, other.run() as other_run:
        for _ in range(3):
            with run.charge("m", 10, 10, price=PRICE) as call:
                call.settle(output_tokens=5)
        with other_run.charge("m", 10, 10, price=PRICE) as call:
            call.settle(output_tokens=5)
        open_call = run.charge("m", 10, 10, price=PRICE)
        open_call.__enter__()
        assert len(charges(client, "bench-agent")) == 4

        prune_settled_charges(client, TABLE, "bench-agent")()

        assert list(charges(client, "bench-agent").values()) == ["reserved"]
        assert len(charges(client, "other-agent")) == 1
        open_call.__exit__(None, None, None)
