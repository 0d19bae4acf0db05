"""The scheduled sweep for agents whose process died and never started again."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from killswitch.guard import ChargeRecord, Guard, InMemoryLedger
from killswitch.guard.sweeper import sweep_agents

HAIKU = "anthropic.claude-haiku-4-5"  # 1000 input + 1000 max output tokens reserve $0.00625 (prices.json)


def test_dead_agents_reservations_are_swept_into_the_spend_sink() -> None:
    ledger = InMemoryLedger()
    now = 1_795_000_000.0
    dead = Guard("log-summarizer", ledger=ledger, clock=lambda: now, reservation_ttl=60, sweep_interval=0)
    dead.start_run().charge(HAIKU, 1000, 1000)  # the process dies here: never settled, never restarted
    records: list[ChargeRecord] = []

    assert sweep_agents(ledger, ["log-summarizer", "idle"], spend_sink=records.append, now=now + 30) == (
        {"log-summarizer": 0, "idle": 0},
        {},
    )  # not expired yet: nothing touched
    swept, errors = sweep_agents(ledger, ["log-summarizer", "idle"], spend_sink=records.append, now=now + 61)
    assert swept == {"log-summarizer": 1, "idle": 0} and errors == {}
    assert [(r.agent, r.state, r.amount_usd) for r in records] == [("log-summarizer", "swept", D("0.00625"))]
    assert sweep_agents(ledger, ["log-summarizer"], spend_sink=records.append, now=now + 120)[0] == {
        "log-summarizer": 0
    }  # swept once only
    assert len(records) == 1


class BrokenLedger(InMemoryLedger):
    def expired(self, agent: str, now: float) -> Any:
        if agent == "bad":
            raise RuntimeError("throttled")
        return super().expired(agent, now)


def test_one_agents_failure_does_not_stop_the_others() -> None:
    swept, errors = sweep_agents(BrokenLedger(), ["bad", "good"], now=1.0)
    assert swept == {"good": 0} and errors == {"bad": "RuntimeError: throttled"}
