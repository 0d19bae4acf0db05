"""A long-lived run keeps bounded state: reserved calls always, finished calls (and finished ledger holds) only in a
recent window, with the same spend, caps and charge-id idempotency as when everything was kept."""

from __future__ import annotations

import random
import threading
from decimal import Decimal

import pytest

from killswitch.guard import Caps, ChargeRecord, Guard, InMemoryLedger, LeasePolicy, LoopLimits, ModelPrice
from killswitch.guard.ledger import FINISHED_HOLDS_KEPT, CapLimit
from killswitch.guard.recent_calls import RETRY_WINDOW, RecentCalls
from killswitch.guard.run import Run

D = Decimal
PRICE = ModelPrice.of(1_000, 10_000)  # $0.001 / input token, $0.01 / output token
UNLIMITED = LoopLimits(max_steps_per_run=10_000_000, max_identical_calls=10_000_000)
CALLS = 20_000


def make_guard(ledger: InMemoryLedger | None = None, **kwargs: object) -> Guard:
    return Guard(
        "mem",
        Caps(per_run_usd=1_000_000, per_day_usd=1_000_000),
        ledger if ledger is not None else InMemoryLedger(),
        loop=UNLIMITED,
        sweep_interval=0,
        **kwargs,  # type: ignore[arg-type]
    )


def one_call(run: Run, i: int) -> None:
    if i % 3 == 0:
        run.charge_usd(D("0.01"), name="tool")
    else:
        with run.charge("m", 10, 10, price=PRICE) as call:  # reserves $0.11
            call.settle(output_tokens=5)  # $0.06


def expected_spend(n: int) -> Decimal:
    tools = (n + 2) // 3
    return tools * D("0.01") + (n - tools) * D("0.06")


@pytest.mark.parametrize("leases", [None, LeasePolicy()], ids=["direct", "leases"])
def test_twenty_thousand_calls_through_one_run_keep_bounded_state(leases: LeasePolicy | None) -> None:
    ledger = InMemoryLedger()
    guard = make_guard(ledger, leases=leases)
    with guard.run() as run:
        for i in range(CALLS):
            one_call(run, i)
        assert len(run._calls) <= RETRY_WINDOW
        assert run._calls.finished_kept <= RETRY_WINDOW
        assert not run._inflight_ids
        assert len(run.lease_snapshot()) <= 1
        assert ledger.hold_count <= FINISHED_HOLDS_KEPT + 1  # finished holds + at most one open lease
        assert run.spent_usd == pytest.approx(float(expected_spend(CALLS)))
    assert ledger.hold_count <= FINISHED_HOLDS_KEPT
    assert ledger.usage("mem", "agent", guard.period_key()).committed == expected_spend(CALLS)
    assert ledger.usage("mem", "agent", guard.period_key()).reserved == 0


def test_reserved_calls_are_kept_however_many_calls_finish_after_them() -> None:
    guard = make_guard(retry_window=4)
    with guard.run() as run:
        open_calls = [run.charge("m", 10, 10, price=PRICE, charge_id=f"open-{i}") for i in range(3)]
        for i in range(50):
            one_call(run, i)
        assert len(run._calls) == 3 + 4
        for call in open_calls:
            assert run.charge("m", 10, 10, price=PRICE, charge_id=call.charge_id) is call
            call.settle(output_tokens=5)
        assert run.spent_usd == pytest.approx(float(expected_spend(50) + 3 * D("0.06")))
        assert len(run._calls) == 4


def test_a_retry_within_the_window_is_the_same_call_and_charges_once() -> None:
    records: list[ChargeRecord] = []
    guard = make_guard(retry_window=8, spend_sink=records.append)
    with guard.run() as run:
        with run.charge("m", 10, 10, price=PRICE, charge_id="c-0") as first:
            first.settle(output_tokens=5)
        tool = run.charge_usd(0.5, charge_id="t-0")
        for i in range(6):  # 8 finished calls in all: both ids are still in the window
            one_call(run, i)
        spent = run.spent_usd
        assert run.charge("m", 10, 10, price=PRICE, charge_id="c-0") is first
        assert run.charge_usd(0.5, charge_id="t-0") is tool
        assert run.spent_usd == spent
    assert [r.charge_id for r in records].count("c-0") == 1
    assert [r.charge_id for r in records].count("t-0") == 1


def test_a_retry_older_than_the_window_is_replayed_by_the_ledger_and_charges_nothing() -> None:
    records: list[ChargeRecord] = []
    ledger = InMemoryLedger()
    guard = make_guard(ledger, retry_window=2, spend_sink=records.append)
    with guard.run() as run:
        with run.charge("m", 10, 10, price=PRICE, charge_id="c-0") as first:
            first.settle(output_tokens=5)
        run.charge_usd(0.5, charge_id="t-0")
        for i in range(10):
            one_call(run, i)
        assert run._calls.get("c-0") is None and run._calls.get("t-0") is None  # out of the run's window
        spent, committed = run.spent_usd, ledger.usage("mem", "agent", guard.period_key()).committed
        again = run.charge("m", 10, 10, price=PRICE, charge_id="c-0")
        assert again is not first and again.state == "settled"  # the ledger replayed its settled hold
        assert again.settle(output_tokens=5) is None
        tool_again = run.charge_usd(0.5, charge_id="t-0")
        assert tool_again.record is None  # replayed: not counted
        assert run.spent_usd == spent
        assert ledger.usage("mem", "agent", guard.period_key()).committed == committed
        assert not run._inflight_ids
    assert [r.charge_id for r in records].count("c-0") == 1
    assert [r.charge_id for r in records].count("t-0") == 1


def _mixed_workload(guard: Guard, seed: int) -> tuple[Decimal, list[tuple[Decimal, Decimal]], list[str]]:
    """Calls, releases, failures and retries of earlier charge ids (recent and old), in a fixed random order."""
    rnd = random.Random(seed)
    records: list[ChargeRecord] = []
    guard.spend_sink = records.append
    ids: list[tuple[str, str]] = []
    with guard.run(run_id="r") as run:
        for i in range(400):
            roll = rnd.random()
            if ids and roll < 0.25:
                kind, cid = ids[rnd.randrange(len(ids))]
            else:
                kind, cid = ("tool" if roll < 0.5 else "llm"), f"c-{i}"
                ids.append((kind, cid))
            if kind == "tool":
                run.charge_usd(D("0.02"), charge_id=cid)
                continue
            try:
                with run.charge("m", 10, 10, price=PRICE, charge_id=cid) as call:
                    if roll > 0.9:
                        raise RuntimeError("the model call failed")  # released
                    call.settle(output_tokens=rnd.randrange(10))
            except RuntimeError:
                pass
        spent = D(str(run.spent_usd))
    caps = guard.cap_limits("r", None, guard.clock())
    usages = [(u.committed, u.reserved) for u in guard.ledger.usages("mem", caps)]
    return spent, usages, sorted(r.charge_id for r in records)


def test_a_small_window_gives_the_same_spend_caps_and_records_as_keeping_everything() -> None:
    for seed in range(3):
        bounded = _mixed_workload(make_guard(retry_window=3), seed)
        unbounded = _mixed_workload(make_guard(retry_window=10**9), seed)
        assert bounded == unbounded
        assert bounded[0] > 0


def test_concurrent_calls_on_one_run_stay_bounded_and_add_up() -> None:
    ledger = InMemoryLedger(finished_kept=64)
    guard = make_guard(ledger, retry_window=16)
    workers, per_worker = 8, 1_000
    with guard.run() as run:

        def work(w: int) -> None:
            for i in range(per_worker):
                one_call(run, w * per_worker + i)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(run._calls) <= 16
        assert ledger.hold_count <= 64
        total = workers * per_worker
        tools = sum(1 for k in range(total) if k % 3 == 0)
        expected = tools * D("0.01") + (total - tools) * D("0.06")
        assert D(str(run.spent_usd)) == expected
    assert ledger.usage("mem", "agent", guard.period_key()).committed == expected


def test_the_in_memory_ledger_forgets_only_finished_holds_past_its_window() -> None:
    ledger = InMemoryLedger(finished_kept=3)
    caps = [CapLimit("agent", "d", D("100"))]
    open_holds = [ledger.reserve("a", f"open-{i}", D("1"), caps, deadline=10) for i in range(2)]
    for i in range(10):
        hold = ledger.reserve("a", f"h-{i}", D("1"), caps, deadline=10)
        ledger.settle("a", hold, D("0.5"))
    assert ledger.hold_count == 2 + 3
    assert ledger.usage("a", "agent", "d").committed == D("5.0")
    assert ledger.usage("a", "agent", "d").reserved == D("2")
    recent = ledger.reserve("a", "h-9", D("1"), caps, deadline=10)  # a retry within the window: replayed
    assert recent.replayed and recent.state == "settled" and recent.actual == D("0.5")
    assert ledger.get_hold("a", "charge", "h-0") is None  # forgotten
    assert {h.hold_id for h in ledger.expired("a", now=11)} == {"open-0", "open-1"}
    for hold in open_holds:
        assert ledger.settle("a", hold, D("1"))
    assert ledger.hold_count == 3
    assert ledger.usage("a", "agent", "d") == ledger.usages("a", caps)[0]
    assert ledger.usage("a", "agent", "d").committed == D("7.0")


def test_window_sizes_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="retry_window"):
        make_guard(retry_window=-1)
    with pytest.raises(ValueError, match="retry_window"):
        RecentCalls(-1)
    with pytest.raises(ValueError, match="finished_kept"):
        InMemoryLedger(finished_kept=-1)
