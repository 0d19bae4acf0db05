"""Per-outcome caps and unit economics: `run.outcome(...)`, `caps.per_outcome_usd`, the outcome ledger."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest

from killswitch.config import ConfigError, parse_config
from killswitch.guard import BudgetExceeded, Caps, Guard, InMemoryLedger, InMemoryPublisher, LeasePolicy, ModelPrice
from killswitch.guard.outcomes import OutcomeRecord, cost_per_outcome
from killswitch.spend.ledger import InMemorySpendStore, SpendLedger
from killswitch.spend.outcomes import OutcomeLedger

D = Decimal
CENT = ModelPrice.of(0, 10_000)


def make(leases: LeasePolicy | None = None) -> tuple[Guard, InMemoryPublisher, list[OutcomeRecord]]:
    pub = InMemoryPublisher()
    records: list[OutcomeRecord] = []
    guard = Guard(
        "support-bot",
        Caps(per_day_usd=100.0, per_outcome_usd={"ticket_resolved": 2.0}),
        InMemoryLedger(),
        publisher=pub,
        leases=leases,
        outcome_sink=records.append,
    )
    return guard, pub, records


@pytest.mark.parametrize("leases", [None, LeasePolicy()], ids=["direct", "leases"])
def test_a_run_may_spend_one_cap_per_outcome_recorded_plus_the_one_in_progress(leases: LeasePolicy | None) -> None:
    guard, pub, records = make(leases)
    with guard.run() as run:
        for _ in range(4):
            run.charge_usd(0.5, kind="compute")  # $2.00: the first ticket's budget
        with pytest.raises(BudgetExceeded) as refused:
            run.charge_usd(0.01, kind="compute")
        exc = refused.value
        assert (exc.scope, exc.key, exc.cap_field) == (
            "outcome",
            "ticket_resolved",
            "caps.per_outcome_usd.ticket_resolved",
        )
        assert "no outcome recorded yet" in str(exc) and "run.outcome('ticket_resolved')" in str(exc)
        run.outcome("ticket_resolved")
        for _ in range(4):
            run.charge_usd(0.5, kind="compute")  # $4.00 for two tickets (one done, one in progress)
        with pytest.raises(BudgetExceeded, match=r"\$4\.0000 \(1 ticket_resolved recorded, \$4\.0000 per outcome"):
            run.charge_usd(0.01, kind="compute")
        assert run.outcomes == {"ticket_resolved": 1}
        assert run.cost_per_outcome() == {"ticket_resolved": pytest.approx(4.0)}
    assert pub.events == [] and not guard.stopped  # an outcome cap refuses the run, it does not stop the agent
    with guard.run() as fresh:
        fresh.charge_usd(1.0)  # a new run starts with its own allowance
    assert [(r.outcome, r.count, r.run_cost_usd) for r in records] == [("ticket_resolved", 1, D("2"))]


def test_calls_in_flight_count_against_the_outcome_cap() -> None:
    guard, _, _ = make()
    with guard.run() as run:
        first = run.charge("m", 0, 150, price=CENT)  # $1.50 reserved, not settled yet
        with pytest.raises(BudgetExceeded):
            run.charge("m", 0, 60, price=CENT)  # 1.50 + 0.60 > 2.00
        first.settle(output_tokens=100)  # actual $1.00: room again
        with run.charge("m", 0, 50, price=CENT) as second:
            second.settle(output_tokens=50)  # $1.50 spent
        dropped = run.charge("m", 0, 50, price=CENT)  # $0.50 reserved: exactly up to the cap
        with pytest.raises(BudgetExceeded):
            run.charge("m", 0, 1, price=CENT)
        dropped.release()  # a released call gives its in-flight estimate back
        with run.charge("m", 0, 50, price=CENT) as third:
            third.settle(output_tokens=50)
        assert run.spent_usd == pytest.approx(2.0)


def test_threads_in_one_run_never_pass_the_outcome_cap() -> None:
    guard, _, _ = make()
    accepted: list[int] = []
    lock = threading.Lock()
    with guard.run() as run:

        def worker() -> None:
            for _ in range(50):
                try:
                    with run.charge("m", 0, 3, price=CENT) as call:  # $0.03 reserved
                        call.settle(output_tokens=3)
                except BudgetExceeded:
                    return
                with lock:
                    accepted.append(1)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert run.spent_usd <= 2.0 and len(accepted) == 66  # 66 x 0.03 = 1.98; a 67th would pass $2


def test_outcome_caps_come_from_the_config_and_are_validated() -> None:
    base = "regions: [us-east-1]\nagents:\n  - name: bot\n    budget: {amount_usd: 10}\n"
    cfg = parse_config(base + "    caps: {per_outcome_usd: {ticket_resolved: 2.5}}\n")
    assert Caps.from_config(cfg.agent("bot").caps).per_outcome_usd == {"ticket_resolved": 2.5}
    with pytest.raises(ConfigError) as err:
        parse_config(base + "    caps: {per_outcome_usd: {ticket_resolved: -1}}\n")
    assert err.value.issues[0].field == "agents[0].caps.per_outcome_usd.ticket_resolved"


def test_outcome_ledger_counts_per_window_and_never_counts_as_spend() -> None:
    store = InMemorySpendStore()
    outcomes = OutcomeLedger(store)
    spend = SpendLedger(store)
    spend.record_guard_charge("bot", date(2026, 11, 2), "c-1", "3.00", run_id="r-1")
    outcomes.record("bot", date(2026, 11, 1), "o-1", "ticket_resolved")
    outcomes.record("bot", date(2026, 11, 2), "o-2", "ticket_resolved", 2)
    outcomes.record("bot", date(2026, 11, 2), "o-2", "ticket_resolved", 2)  # a retry overwrites itself
    outcomes.record("bot", date(2026, 11, 3), "o-3", "refund_issued")
    assert outcomes.counts("bot") == {"ticket_resolved": 3, "refund_issued": 1}
    assert outcomes.counts("bot", since=date(2026, 11, 2), until=date(2026, 11, 2)) == {"ticket_resolved": 2}
    assert [e.detail for e in spend.entries("bot")] == ["c-1"]
    assert cost_per_outcome(D("3.00"), outcomes.counts("bot")) == {"refund_issued": D(3), "ticket_resolved": D(1)}
    with pytest.raises(ValueError, match="count must be >= 1"):
        outcomes.record("bot", date(2026, 11, 3), "o-4", "x", 0)
