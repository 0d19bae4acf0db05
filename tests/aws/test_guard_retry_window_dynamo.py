"""On DynamoDB a retry of a charge id that left the run's retry window is replayed by the ledger (the CHARGE# item
is kept for HOLD_RETENTION_SECONDS): the bounded run state never charges twice."""

from __future__ import annotations

from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from killswitch.guard import Caps, ChargeRecord, DynamoLedger, Guard, ModelPrice
from tests.aws.guard_support import cap_items, create_table

pytestmark = pytest.mark.aws

PRICE = ModelPrice.of(1_000, 10_000)  # $0.001 / input token, $0.01 / output token


def test_a_retry_older_than_the_run_window_charges_nothing_on_dynamodb() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        ledger = DynamoLedger(create_table(client), client=client)
        records: list[ChargeRecord] = []
        guard = Guard("ddb", Caps(per_day_usd=100), ledger, retry_window=1, spend_sink=records.append, sweep_interval=0)
        with guard.run() as run:
            with run.charge("m", 10, 10, price=PRICE, charge_id="c-0") as first:
                first.settle(output_tokens=5)  # $0.06
            run.charge_usd(0.5, charge_id="t-0")
            run.charge_usd(0.25, charge_id="t-1")  # pushes both earlier ids out of a window of 1
            assert run._calls.get("c-0") is None and run._calls.get("t-0") is None
            again = run.charge("m", 10, 10, price=PRICE, charge_id="c-0")
            assert again is not first and again.state == "settled"
            assert again.settle(output_tokens=5) is None
            assert run.charge_usd(0.5, charge_id="t-0").record is None
            assert run.spent_usd == pytest.approx(0.81)
        day = cap_items(client, "ddb")[f"CAP#agent#{guard.period_key()}"]
        assert day["committed"] == Decimal("0.81") and day["reserved"] == 0
        assert sorted(r.charge_id for r in records) == ["c-0", "t-0", "t-1"]
