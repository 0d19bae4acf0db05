"""Property: the same random sequence of ledger operations gives the same results on InMemoryLedger and on
DynamoLedger (moto), and the cap invariant holds after every step."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from killswitch.guard import BudgetExceeded, CapLimit, DuplicateCharge, DynamoLedger, Hold, InMemoryLedger, sweep
from tests.aws.guard_support import create_table

pytestmark = pytest.mark.aws

CAPS = [CapLimit("agent", "d", Decimal("1.00")), CapLimit("run", "r", Decimal("0.60"))]
amounts = st.integers(min_value=0, max_value=70).map(lambda c: Decimal(c) / 100)
op = st.one_of(
    st.tuples(st.just("reserve"), st.integers(0, 5), amounts, st.booleans(), st.integers(0, 1)),
    st.tuples(st.just("settle"), st.integers(0, 5), amounts),
    st.tuples(st.just("release"), st.integers(0, 5)),
    st.tuples(st.just("shrink"), st.integers(0, 5), amounts),
    st.tuples(st.just("sweep"), st.integers(0, 200)),
)
_agents = itertools.count()


def apply(ledger: Any, agent: str, holds: dict[int, Hold], step: tuple[Any, ...]) -> Any:
    kind = step[0]
    try:
        if kind == "reserve":
            _, i, amount, settled, both = step
            hold = ledger.reserve(agent, f"h{i}", amount, CAPS[: 1 + both], deadline=100 + i * 20, settled=settled)
            holds.setdefault(i, hold)
            return ("ok", hold.amount, hold.state, hold.replayed)
        if step[1] not in holds:
            return ("none",)
        hold = holds[step[1]]
        if kind == "settle":
            return ("settled", ledger.settle(agent, hold, min(step[2], hold.amount)))
        if kind == "release":
            return ("released", ledger.settle(agent, hold, Decimal(0), state="released"))
        if kind == "shrink":
            new = min(step[2], hold.amount)
            shrunk = ledger.shrink(agent, hold, new)
            if shrunk is not None:
                holds[step[1]] = shrunk
            return ("shrunk", None if shrunk is None else shrunk.amount)
        return ("swept", sorted(h.hold_id for h in sweep(ledger, agent, now=step[1])))
    except BudgetExceeded as exc:
        return ("denied", exc.scope)
    except DuplicateCharge:
        return ("duplicate",)


def state(ledger: Any, agent: str) -> list[tuple[Decimal, Decimal]]:
    return [(u.committed, u.reserved) for u in ledger.usages(agent, CAPS)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(op, min_size=1, max_size=14))
def test_memory_and_dynamodb_ledgers_agree(steps: list[tuple[Any, ...]]) -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        dynamo = DynamoLedger(create_table(client), client=client)
        memory = InMemoryLedger()
        agent = f"prop-{next(_agents)}"
        mem_holds: dict[int, Hold] = {}
        ddb_holds: dict[int, Hold] = {}
        for step in steps:
            assert apply(memory, agent, mem_holds, step) == apply(dynamo, agent, ddb_holds, step), step
            assert state(memory, agent) == state(dynamo, agent), step
            for cap, (committed, reserved) in zip(CAPS, state(memory, agent), strict=True):
                assert reserved >= 0
                assert committed + reserved <= cap.cap_usd  # type: ignore[operator]
