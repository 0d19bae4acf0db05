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
        self._record: ChargeRecord | None = None
        # (actual, (input, output, cache read, cache write tokens), settle time) once the call counted as spend
        self._counted: tuple[Decimal, tuple[int, int, int, int], float] | None = None
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

    def hold_meta(self) -> dict[str, str]:
        """What the ledger stores with the charge's hold (the sweeper's record of a charge nobody settled)."""
        run = self.run
        m = {"run_id": run.run_id, "kind": self.kind, "name": self.name, "workflow": run.workflow or ""}
        if self.kind == "llm":
            m["input_tokens"] = str(self.input_tokens)
            m["max_output_tokens"] = str(self.max_output_tokens)
        return m

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
            self.finish_counts(self.estimate, (0, self.max_output_tokens, 0, 0), "settled")

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
        if self.settle_tokens(
            output_tokens,
            input_tokens=input_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            usd_amount=usd_amount,
        ):
            return self.record
        return None

    def settle_tokens(
        self,
        output_tokens: int | None = None,
        *,
        input_tokens: int | None = None,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        usd_amount: float | Decimal | None = None,
    ) -> bool:
        """`settle` without building the returned record (the Bedrock meter and the adapters): True if counted."""
        tokens_in = self.input_tokens if input_tokens is None else input_tokens
        if usd_amount is not None:
            actual = usd(usd_amount)
        elif self.price is not None:
            actual = self.price.cost(tokens_in, output_tokens or 0, cache_read_tokens, cache_write_tokens)
        else:
            actual = self.estimate
        counts = (tokens_in, output_tokens or 0, cache_read_tokens, cache_write_tokens)
        return self.finish_counts(actual, counts, "settled")

    def release(self) -> bool:
        """Give the whole reservation back (the call did not happen). True if this released it; False (no-op) if it
        was already settled or released."""
        if not self._claim("released"):
            return False
        self._book(ZERO, _NO_USAGE, "released")
        return True

    def finish(self, actual: Decimal, usage: Mapping[str, int], *, state: str) -> ChargeRecord | None:
        """Settle (or release) once: the ledger side through the run, then the record to the guard's spend sink."""
        counts = (
            int(usage.get("input_tokens", 0)),
            int(usage.get("output_tokens", 0)),
            int(usage.get("cache_read_tokens", 0)),
            int(usage.get("cache_write_tokens", 0)),
        )
        return self.record if self.finish_counts(actual, counts, state) else None

    @property
    def record(self) -> ChargeRecord | None:
        """The settled charge as the spend sink sees it (None until counted). Built on first use: most calls
        settle with no sink and nobody reading it."""
        record = self._record
        if record is None and self._counted is not None:
            actual, (tokens_in, tokens_out, cache_read, cache_write), settled_at = self._counted
            run = self.run
            record = self._record = ChargeRecord(
                agent=run.guard.agent,
                run_id=run.run_id,
                workflow=run.workflow,
                charge_id=self.charge_id,
                kind=self.kind,
                name=self.name,
                amount_usd=actual,
                estimated_usd=self.estimate,
                day=utc_day(settled_at),
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
            )
        return record

    def finish_counts(self, actual: Decimal, usage: tuple[int, int, int, int], state: str) -> bool:
        """Settle (or release) once with (input, output, cache read, cache write) tokens. True if the call counted
        as spend (then `record` exists)."""
        return self._claim(state) and self._book(actual, usage, state)

    def _claim(self, state: str) -> bool:
        """Leave the reserved state, once (True for the caller that did)."""
        with self._lock:
            if self._state != "reserved":
                return False
            self._state = state
            return True

    def _book(self, actual: Decimal, usage: tuple[int, int, int, int], state: str) -> bool:
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
            return False
        g = run.guard
        self._counted = (actual, usage, g.clock())
        if g.metrics is not None or g.spend_sink is not None:
            record = self.record
            assert record is not None
            g.record_charge(record)
        return True


_NO_USAGE = (0, 0, 0, 0)
