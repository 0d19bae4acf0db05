"""Ledger contract: InMemoryLedger and DynamoLedger (on moto and on the in-memory twin of DynamoDB) must behave
identically, including under threads."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from killswitch.guard import BudgetExceeded, CapLimit, DuplicateCharge, DynamoLedger, InMemoryLedger, Ledger, sweep
from killswitch.memory_dynamo import MemoryDynamo
from killswitch.testing.sim import serialized
from tests.aws.guard_support import TABLE, InvariantWatch, cap_items, create_table, guard_items, run_threads

pytestmark = pytest.mark.aws

D = Decimal
AGENT = "ledger-agent"


@pytest.fixture(params=["memory", "dynamo", "twin"])
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    if request.param == "memory":
        yield InMemoryLedger()
        return
    if request.param == "twin":  # the DynamoDB code path on the in-memory twin of DynamoDB
        yield DynamoLedger(TABLE, client=MemoryDynamo())
        return
    with mock_aws():
        client = serialized(boto3.client("dynamodb", region_name="us-east-1"))
        yield DynamoLedger(create_table(client), client=client)


def agent_cap(cap: str | None = "1.00") -> CapLimit:
    return CapLimit("agent", "2026-11-22", None if cap is None else D(cap))


def run_cap(cap: str = "0.50") -> CapLimit:
    return CapLimit("run", "run-1", D(cap))


def test_reserve_then_settle_moves_reserved_to_committed(ledger: Ledger) -> None:
    hold = ledger.reserve(AGENT, "c1", D("0.30"), [agent_cap()], deadline=1000)
    u = ledger.usage(AGENT, "agent", "2026-11-22")
    assert (u.committed, u.reserved, u.cap_usd) == (D(0), D("0.30"), D("1.00"))
    assert ledger.settle(AGENT, hold, D("0.12")) is True
    u = ledger.usage(AGENT, "agent", "2026-11-22")
    assert (u.committed, u.reserved) == (D("0.12"), D(0))
    assert ledger.get_hold(AGENT, "charge", "c1").state == "settled"  # type: ignore[union-attr]


def test_over_cap_is_refused_and_changes_nothing_on_any_cap(ledger: Ledger) -> None:
    ledger.reserve(AGENT, "c1", D("0.40"), [agent_cap(), run_cap()], deadline=1000)
    # The agent cap has 0.60 left, the run cap only 0.10: all or nothing.
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve(AGENT, "c2", D("0.20"), [agent_cap(), run_cap()], deadline=1000)
    assert (info.value.scope, info.value.key) == ("run", "run-1")
    assert info.value.used_usd == D("0.40")
    assert ledger.usage(AGENT, "agent", "2026-11-22").used == D("0.40")
    assert ledger.usage(AGENT, "run", "run-1").used == D("0.40")
    assert ledger.get_hold(AGENT, "charge", "c2") is None


def test_amount_larger_than_the_cap_is_refused(ledger: Ledger) -> None:
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve(AGENT, "c1", D("1.01"), [agent_cap()], deadline=1000)
    assert info.value.scope == "agent"
    assert ledger.usage(AGENT, "agent", "2026-11-22").used == D(0)


def test_exactly_up_to_the_cap_is_allowed(ledger: Ledger) -> None:
    ledger.reserve(AGENT, "c1", D("0.75"), [agent_cap()], deadline=1000)
    ledger.reserve(AGENT, "c2", D("0.25"), [agent_cap()], deadline=1000)
    assert ledger.usage(AGENT, "agent", "2026-11-22").used == D("1.00")
    with pytest.raises(BudgetExceeded):
        ledger.reserve(AGENT, "c3", D("0.000000001"), [agent_cap()], deadline=1000)


def test_uncapped_scope_tracks_without_limit(ledger: Ledger) -> None:
    ledger.reserve(AGENT, "c1", D("500"), [agent_cap(None)], deadline=1000, settled=True)
    u = ledger.usage(AGENT, "agent", "2026-11-22")
    assert (u.committed, u.reserved, u.cap_usd) == (D(500), D(0), None)


def test_double_settle_and_settle_after_release_count_once(ledger: Ledger) -> None:
    hold = ledger.reserve(AGENT, "c1", D("0.30"), [agent_cap()], deadline=1000)
    assert ledger.settle(AGENT, hold, D("0.10"))
    assert not ledger.settle(AGENT, hold, D("0.10"))
    assert not ledger.settle(AGENT, hold, D("0.25"), state="released")
    hold2 = ledger.reserve(AGENT, "c2", D("0.30"), [agent_cap()], deadline=1000)
    assert ledger.settle(AGENT, hold2, D(0), state="released")
    assert not ledger.settle(AGENT, hold2, D("0.30"))
    u = ledger.usage(AGENT, "agent", "2026-11-22")
    assert (u.committed, u.reserved) == (D("0.10"), D(0))


def test_retried_reserve_is_idempotent_and_reused_id_is_refused(ledger: Ledger) -> None:
    first = ledger.reserve(AGENT, "c1", D("0.30"), [agent_cap()], deadline=1000)
    again = ledger.reserve(AGENT, "c1", D("0.30"), [agent_cap()], deadline=1000)
    assert again.replayed and not first.replayed
    assert ledger.usage(AGENT, "agent", "2026-11-22").reserved == D("0.30")
    with pytest.raises(DuplicateCharge):
        ledger.reserve(AGENT, "c1", D("0.31"), [agent_cap()], deadline=1000)
    assert ledger.settle(AGENT, again, D("0.20"))
    assert not ledger.settle(AGENT, first, D("0.20"))
    assert ledger.usage(AGENT, "agent", "2026-11-22").committed == D("0.20")


def test_sweep_settles_only_expired_reservations_at_their_estimate(ledger: Ledger) -> None:
    dead = ledger.reserve(AGENT, "dead", D("0.30"), [agent_cap()], deadline=100)
    ledger.reserve(AGENT, "alive", D("0.20"), [agent_cap()], deadline=500)
    done = ledger.reserve(AGENT, "done", D("0.10"), [agent_cap()], deadline=100)
    ledger.settle(AGENT, done, D("0.05"))
    assert sweep(ledger, AGENT, now=99) == []
    swept = sweep(ledger, AGENT, now=101)
    assert [(h.hold_id, h.actual) for h in swept] == [("dead", D("0.30"))]
    assert sweep(ledger, AGENT, now=102) == []  # idempotent
    u = ledger.usage(AGENT, "agent", "2026-11-22")
    assert (u.committed, u.reserved) == (D("0.35"), D("0.20"))
    # The "dead" process wakes up and settles late: nothing more is counted.
    assert not ledger.settle(AGENT, dead, D("0.01"))
    assert ledger.usage(AGENT, "agent", "2026-11-22").committed == D("0.35")


def test_shrink_returns_headroom_and_settle_uses_the_new_amount(ledger: Ledger) -> None:
    lease = ledger.reserve(AGENT, "l1", D("0.50"), [agent_cap()], kind="lease", deadline=1000)
    shrunk = ledger.shrink(AGENT, lease, D("0.20"))
    assert shrunk is not None and shrunk.amount == D("0.20")
    assert ledger.usage(AGENT, "agent", "2026-11-22").reserved == D("0.20")
    # A stale copy (the original 0.50) still settles the stored hold correctly, once.
    assert ledger.settle(AGENT, lease, D("0.15"))
    assert not ledger.settle(AGENT, shrunk, D("0.15"))
    u = ledger.usage(AGENT, "agent", "2026-11-22")
    assert (u.committed, u.reserved) == (D("0.15"), D(0))
    assert ledger.shrink(AGENT, shrunk, D("0.10")) is None  # no longer reserved


def test_settle_above_the_estimate_is_recorded(ledger: Ledger) -> None:
    hold = ledger.reserve(AGENT, "c1", D("0.10"), [agent_cap()], deadline=1000)
    assert ledger.settle(AGENT, hold, D("0.12"))
    assert ledger.usage(AGENT, "agent", "2026-11-22").committed == D("0.12")


def test_usages_reads_several_caps(ledger: Ledger) -> None:
    ledger.reserve(AGENT, "c1", D("0.10"), [agent_cap(), run_cap()], deadline=1000, settled=True)
    ua, ur, unew = ledger.usages(AGENT, [agent_cap(), run_cap(), CapLimit("run", "other", D(1))])
    assert (ua.committed, ua.headroom) == (D("0.10"), D("0.90"))
    assert (ur.committed, ur.headroom) == (D("0.10"), D("0.40"))
    assert (unew.used, unew.headroom) == (D(0), D(1))


@pytest.mark.parametrize("workers", [16, 32])
def test_threads_never_push_a_cap_over_its_limit(ledger: Ledger, workers: int) -> None:
    caps = [agent_cap("1.00"), CapLimit("workflow", "triage#2026-11-22", D("0.80"))]
    watch = InvariantWatch()
    settled: list[Decimal] = []
    denied = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(workers)

    def worker(n: int) -> None:
        rnd = random.Random(n)
        barrier.wait()
        for i in range(6):
            amount = D(rnd.randint(1, 9)) / 100
            try:
                hold = ledger.reserve(AGENT, f"w{n}-{i}", amount, caps, deadline=1000)
            except BudgetExceeded:
                with lock:
                    denied[0] += 1
                continue
            finally:
                for c, u in zip(caps, ledger.usages(AGENT, caps), strict=True):
                    watch.check(u.used, c.cap_usd, f"after reserve by {n}")
            actual = amount * rnd.choice([0, 1, 2, 3, 4]) / 4
            if rnd.random() < 0.2:
                ok = ledger.settle(AGENT, hold, D(0), state="released")
                actual = D(0)
            else:
                ok = ledger.settle(AGENT, hold, actual)
            assert ok
            assert not ledger.settle(AGENT, hold, actual)  # a double settle never counts
            with lock:
                settled.append(actual)
            for c, u in zip(caps, ledger.usages(AGENT, caps), strict=True):
                watch.check(u.used, c.cap_usd, f"after settle by {n}")

    assert run_threads(workers, worker) == []
    assert watch.violations == []
    assert watch.checks > workers * 6
    assert denied[0] > 0  # the cap was actually contended
    for c, u in zip(caps, ledger.usages(AGENT, caps), strict=True):
        assert u.reserved == D(0)
        assert u.committed == sum(settled, D(0))
        assert u.used <= c.cap_usd  # type: ignore[operator]


def test_dynamo_items_follow_the_key_layout() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        ledger = DynamoLedger(create_table(client), client=client)
        hold = ledger.reserve(AGENT, "c1", D("0.25"), [agent_cap(), run_cap()], deadline=1000.5, meta={"run_id": "r"})
        ledger.reserve(AGENT, "l1", D("0.10"), [agent_cap()], kind="lease", deadline=1000)
        ledger.settle(AGENT, hold, D("0.2"))
        items = {i["sk"]["S"]: i for i in guard_items(client, AGENT)}
        assert set(items) == {"CAP#agent#2026-11-22", "CAP#run#run-1", "CHARGE#c1", "LEASE#l1"}
        assert all(i["pk"]["S"] == f"GUARD#{AGENT}" for i in items.values())
        charge = items["CHARGE#c1"]
        assert charge["state"]["S"] == "settled"
        assert charge["amount_nusd"]["N"] == "250000000"
        assert charge["actual_nusd"]["N"] == "200000000"
        # TTL far beyond the deadline: DynamoDB must not delete a reservation before the sweeper settles it.
        assert int(charge["expires_at"]["N"]) >= 1000 + 7 * 24 * 3600
        caps = cap_items(client, AGENT)
        assert caps["CAP#agent#2026-11-22"] == {
            "used": D("0.3"),
            "committed": D("0.2"),
            "reserved": D("0.1"),
            "cap": D("1"),
        }
