"""Leases never stop an agent early: concurrent runs reach the cap (within one charge per run in flight), never
pass it, and the agent is STOPPED with one kill event only when committed spend really leaves no room."""

from __future__ import annotations

from decimal import Decimal

import pytest

from killswitch.guard import BudgetExceeded, Caps, Guard, InMemoryLedger, LeasePolicy, Mode
from tests.unit.lease_race import AGENT, CommittedAtPublish, race

D = Decimal


@pytest.mark.parametrize("runs", [1, 8, 32])
def test_concurrent_runs_with_leases_reach_the_cap_and_never_pass_it(runs: int) -> None:
    ledger = InMemoryLedger()
    over: list[str] = []
    guard, pub, accepted = race(ledger, runs, 1.0, over)

    u = ledger.usage(AGENT, "agent", guard.period_key())
    assert over == []
    assert u.reserved == 0 and u.committed <= D("1.00")
    # Spend reaches the cap within one charge per run in flight.
    assert u.committed >= D("1.00") - D("0.01") * runs
    assert accepted == int(u.committed / D("0.01"))
    # The guard's own view: STOPPED, and exactly one kill event, sent only once the spend really left no room.
    assert guard.mode is Mode.STOPPED
    kills = [e for e in pub.events if e[0].action == "kill"]
    assert len(kills) == 1
    event, committed, reserved = kills[0]
    assert event.cap_usd == 1.0 and "caps.per_day_usd" in event.reason
    # At the kill: committed + what the runs' leases really hold (their spend and in-flight calls) is at the cap.
    assert committed + reserved >= D("1.00") - D("0.01") * runs
    assert guard.stopped


def test_a_run_refused_a_lease_takes_back_idle_headroom_of_other_runs_instead_of_stopping() -> None:
    ledger = InMemoryLedger()
    pub = CommittedAtPublish()
    guard = Guard(AGENT, Caps(per_day_usd=1.0), ledger, leases=LeasePolicy(fraction=0.9), publisher=pub)
    pub.guard, pub.ledger = guard, ledger
    hoarder = guard.start_run()
    hoarder.charge_usd(0.01)  # leases 90% of the headroom, spends 1 cent of it
    worker = guard.start_run()
    worker.charge_usd(0.05)  # a lease of 10% of what is left
    worker.charge_usd(0.5)  # no lease fits: the hoarder's idle headroom comes back and the charge goes direct
    assert pub.events == [] and guard.mode is Mode.OK and not guard.stopped
    u = ledger.usage(AGENT, "agent", guard.period_key())
    assert u.used == D("0.56")  # the hoarder's lease shrank to what it spent
    with pytest.raises(BudgetExceeded) as refused:
        worker.charge_usd(0.45)  # 0.56 + 0.45 > 1: a real refusal
    assert not refused.value.contended and refused.value.cap_field == "caps.per_day_usd"
    assert guard.stopped and len(pub.events) == 1
    hoarder.close()
    worker.close()
    assert ledger.usage(AGENT, "agent", guard.period_key()).committed == D("0.56")


def test_headroom_leased_by_another_process_refuses_the_call_without_stopping_the_agent() -> None:
    ledger = InMemoryLedger()
    pub = CommittedAtPublish()
    other_process = Guard(AGENT, Caps(per_day_usd=1.0), ledger, leases=LeasePolicy(fraction=0.95))
    this_process = Guard(AGENT, Caps(per_day_usd=1.0), ledger, leases=LeasePolicy(), publisher=pub)
    pub.guard, pub.ledger = this_process, ledger
    far = other_process.start_run()
    far.charge_usd(0.01)  # leases 0.95
    with this_process.run() as run:
        with pytest.raises(BudgetExceeded) as refused:
            run.charge_usd(0.10)
        assert refused.value.contended and "retry" in str(refused.value)
        assert not this_process.stopped and pub.events == []
        far.close()  # the other process returns what it did not use
        run.charge_usd(0.10)
    assert ledger.usage(AGENT, "agent", this_process.period_key()).committed == D("0.11")
