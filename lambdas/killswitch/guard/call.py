"""One charge of a run: reserved when created, settled with the actual usage (or released on an exception)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING

from killswitch.guard.caps import utc_day
from killswitch.guard.ledger import ZERO, Hold
from killswitch.guard.prices import ModelPrice, usd
from killswitch.guard.records import ChargeRecord

if TYPE_CHECKING:
    from killswitch.guard.leasing import Lease
    from killswitch.guard.run import Run

log = logging.getLogger("killswitch.guard")


class Call:
    """One charge: reserved when created, settled with the actual usage (or released on an exception)."""

    def __init__(  # noqa: PLR0917 (internal constructor)
        self,
        run: Run,
        charge_id: str,
        kind: str,
        name: str,
        estimate: Decimal,
        price: ModelPrice | None,
        input_tokens: int,
        max_output_tokens: int,
    ):
        self.run = run
        self.charge_id = charge_id
        self.kind = kind
        self.name = name
        self.estimate = estimate
        self.price = price
        self.input_tokens = input_tokens
        self.max_output_tokens = max_output_tokens
        self.record: ChargeRecord | None = None
        self._state = "reserved"
        # Set once by the run when the charge reaches the ledger (`bind_hold` / `bind_lease`); read-only elsewhere.
        self.hold: Hold | None = None  # the charge's own ledger hold (None when it draws on a lease)
        self.lease: Lease | None = None  # the run's lease it draws on (None when it has its own hold)
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        return self._state

    @property
    def estimate_usd(self) -> float:
        return float(self.estimate)

    def bind_hold(self, hold: Hold, *, settled: bool) -> None:
        """The ledger reserved this charge as `hold` (a replayed charge may come back already settled)."""
        self.hold = hold
        if hold.state != "reserved" and not settled:
            self._state = "settled"  # a retry of a charge the ledger already settled

    def bind_lease(self, lease: Lease) -> None:
        self.lease = lease

    def __enter__(self) -> Call:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._state != "reserved":
            return
        if exc_type is not None:
            self.release()
        else:
            log.warning(
                "charge %s left its block unsettled; settling at the estimate $%s", self.charge_id, self.estimate
            )
            self.finish(self.estimate, {"output_tokens": self.max_output_tokens}, state="settled")

    def settle(
        self,
        output_tokens: int | None = None,
        *,
        input_tokens: int | None = None,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        usd_amount: float | Decimal | None = None,
    ) -> ChargeRecord | None:
        """Record the actual usage; the difference to the reservation is released. A second settle is a no-op
        (returns None)."""
        if usd_amount is not None:
            actual = usd(usd_amount)
        elif self.price is not None:
            actual = self.price.cost(
                self.input_tokens if input_tokens is None else input_tokens,
                output_tokens or 0,
                cache_read_tokens,
                cache_write_tokens,
            )
        else:
            actual = self.estimate
        usage = {
            "input_tokens": self.input_tokens if input_tokens is None else input_tokens,
            "output_tokens": output_tokens or 0,
            "cache_read_tokens": cache_read_tokens,
            "cache_write_tokens": cache_write_tokens,
        }
        return self.finish(actual, usage, state="settled")

    def release(self) -> bool:
        """Give the whole reservation back (the call did not happen). No-op if already settled."""
        return self.finish(ZERO, {}, state="released") is not None

    def finish(self, actual: Decimal, usage: Mapping[str, int], *, state: str) -> ChargeRecord | None:
        """Settle (or release) once: the ledger side through the run, then the record to the guard's spend sink."""
        with self._lock:
            if self._state != "reserved":
                return None
            self._state = state
        run = self.run
        if actual > self.estimate:
            log.warning(
                "charge %s settled at $%s above its reservation $%s: recorded as spent",
                self.charge_id,
                actual,
                self.estimate,
            )
        hold = self.hold
        if self.lease is not None or (hold is not None and hold.state == "reserved"):
            changed = run.settle_call(self, actual, state)
        else:
            # reserve+settle happened in one ledger step (charge_usd), unless the ledger replayed an earlier one
            changed = hold is not None and hold.state == "settled" and not hold.replayed and state == "settled"
        counted = changed and state == "settled"
        run.book_finished(self, actual if counted else None)
        if not counted:
            return None
        g = run.guard
        record = ChargeRecord(
            agent=g.agent,
            run_id=run.run_id,
            workflow=run.workflow,
            charge_id=self.charge_id,
            kind=self.kind,
            name=self.name,
            amount_usd=actual,
            estimated_usd=self.estimate,
            day=utc_day(g.clock()),
            input_tokens=int(usage.get("input_tokens", 0)),
            output_tokens=int(usage.get("output_tokens", 0)),
            cache_read_tokens=int(usage.get("cache_read_tokens", 0)),
            cache_write_tokens=int(usage.get("cache_write_tokens", 0)),
        )
        self.record = record
        g.record_charge(record)
        return record
