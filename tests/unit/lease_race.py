"""Concurrent runs charging through leases until refused: shared by the in-memory and DynamoDB lease tests."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from killswitch.events import KillSwitchEvent
from killswitch.guard import BudgetExceeded, Caps, Guard, LeasePolicy, ModelPrice
from killswitch.guard.ledger import Ledger
from killswitch.guard.loops import LoopLimits

D = Decimal
CENT = ModelPrice.of(0, 10_000)  # $0.01 per output token
AGENT = "busy-agent"


class CommittedAtPublish:
    """A publisher that records, with each event, what the ledger had committed + reserved when it was sent."""

    def __init__(self) -> None:
        self.ledger: Ledger | None = None
        self.guard: Guard | None = None
        self.events: list[tuple[KillSwitchEvent, Decimal, Decimal]] = []
        self._lock = threading.Lock()

    def publish(self, event: KillSwitchEvent) -> None:
        assert self.guard is not None and self.ledger is not None
        u = self.ledger.usage(AGENT, "agent", self.guard.period_key())
        with self._lock:
            self.events.append((event, u.committed, u.reserved))


def race(ledger: Ledger, runs: int, cap: float, watch_cap: list[str]) -> tuple[Guard, CommittedAtPublish, int]:
    """`runs` concurrent runs charge $0.01 calls with a short pause between them until refused."""
    pub = CommittedAtPublish()
    guard = Guard(
        AGENT,
        Caps(per_day_usd=cap),
        ledger,
        leases=LeasePolicy(),
        publisher=pub,
        loop=LoopLimits(max_steps_per_run=100_000),
        sweep_interval=0,
    )
    pub.guard, pub.ledger = guard, ledger
    accepted = [0]
    lock = threading.Lock()
    start = threading.Barrier(runs)

    def worker(n: int) -> None:
        start.wait()
        with guard.run() as run:
            while True:
                try:
                    with run.charge("cent", 0, 1, price=CENT) as call:
                        time.sleep(0.0005)  # the model call
                        call.settle(output_tokens=1)
                except BudgetExceeded as exc:
                    if exc.contended:
                        time.sleep(0.001)
                        continue
                    return
                with lock:
                    accepted[0] += 1
                u = ledger.usage(AGENT, "agent", guard.period_key())
                if u.used > D(str(cap)):
                    watch_cap.append(f"used {u.used} > cap {cap}")
                time.sleep(0.0005)  # the agent's own work between calls

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return guard, pub, accepted[0]
