"""Budget ledger: caps with committed/reserved amounts and holds (charges or leases) against them.

A *hold* reserves one amount on every cap it names, atomically: either all caps have room or nothing changes.
Settling a hold moves it from reserved to committed at the actual amount (releasing the difference), releasing
settles it at zero, the sweeper settles a hold whose deadline passed (its process died) at its full amount.
Each hold id transitions out of `reserved` exactly once, so retries and double settles never count twice.

Invariant (every implementation, across threads and processes): for every cap, committed + reserved <= cap, as
long as settlements do not exceed their reservations (the guard reserves the worst case, so they do not; an actual
above its estimate is recorded anyway, because the money is spent, and logged).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import Literal, Protocol, runtime_checkable

from killswitch.guard.approvals import Approval, InMemoryApprovals
from killswitch.guard.errors import BudgetExceeded, DuplicateCharge
from killswitch.keys import cap_sk

log = logging.getLogger("killswitch.guard")

ZERO = Decimal(0)
HoldKind = Literal["charge", "lease"]
HoldState = Literal["reserved", "settled", "released", "swept"]
# Settled holds are kept this long (DynamoDB TTL) so a late retry of the same charge id is still recognised.
HOLD_RETENTION_SECONDS = 7 * 24 * 3600
# Finished (settled, released, swept) holds the in-memory ledger remembers for idempotent retries; the oldest are
# forgotten past this, so a long-lived process does not grow with its calls. Reserved holds are always kept.
FINISHED_HOLDS_KEPT = 10_000


@dataclass(frozen=True)
class CapLimit:
    """One cap a hold draws on. `cap_usd=None` tracks spend without limiting it."""

    scope: str  # run | agent | workflow
    key: str  # run id | period | "<workflow>#<period>"
    cap_usd: Decimal | None
    expires_at: int = 0  # TTL of the cap item (epoch seconds); 0 = none

    @cached_property
    def sk(self) -> str:  # cached: a run reuses its cap limits for every charge (`Run._cap_limits`)
        return cap_sk(self.scope, self.key)


@dataclass(frozen=True)
class CapUsage:
    committed: Decimal = ZERO
    reserved: Decimal = ZERO
    cap_usd: Decimal | None = None

    @property
    def used(self) -> Decimal:
        return self.committed + self.reserved

    @property
    def headroom(self) -> Decimal | None:
        return None if self.cap_usd is None else self.cap_usd - self.used


@dataclass(frozen=True, slots=True)  # slots: the in-memory ledger keeps one per charge
class Hold:
    hold_id: str
    kind: HoldKind
    amount: Decimal
    caps: tuple[str, ...]  # cap sort keys
    deadline: float  # after this the sweeper may settle it at `amount`
    state: HoldState = "reserved"
    actual: Decimal | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    replayed: bool = False  # returned by an idempotent retry of reserve(), not created by it


class Ledger(Protocol):
    """What the guard needs from a budget store. Amounts are Decimal USD; `now` is epoch seconds."""

    def reserve(
        self,
        agent: str,
        hold_id: str,
        amount: Decimal,
        caps: Sequence[CapLimit],
        *,
        kind: HoldKind = "charge",
        deadline: float,
        meta: Mapping[str, str] | None = None,
        settled: bool = False,
    ) -> Hold:
        """Reserve `amount` on every cap atomically, or raise BudgetExceeded naming the first cap without room.

        A repeat of the same hold id with the same amount returns the stored hold (idempotent retry); with a
        different amount it raises DuplicateCharge. `settled=True` commits in the same step (reserve + settle).
        """
        ...

    def settle(self, agent: str, hold: Hold, actual: Decimal, *, state: HoldState = "settled") -> bool:
        """Move `hold` from reserved to committed at `actual`. False (and no change) if it had already left
        the reserved state (double settle, settle after sweep)."""
        ...

    def shrink(self, agent: str, hold: Hold, new_amount: Decimal) -> Hold | None:
        """Lower a reserved hold's amount (return unused lease headroom early). None if no longer reserved."""
        ...

    def get_hold(self, agent: str, kind: HoldKind, hold_id: str) -> Hold | None: ...

    def expired(self, agent: str, now: float) -> list[Hold]:
        """Reserved holds whose deadline has passed."""
        ...

    def usage(self, agent: str, scope: str, key: str) -> CapUsage: ...

    def usages(self, agent: str, caps: Sequence[CapLimit]) -> list[CapUsage]: ...


@runtime_checkable
class LeaseLister(Protocol):
    """Optional ledger capability: list reserved leases, so a refusal can tell leased headroom from spend."""

    def open_leases(self, agent: str) -> list[Hold]:
        """Every lease of the agent still in the reserved state (any process)."""
        ...


def sweep(ledger: Ledger, agent: str, now: float) -> list[Hold]:
    """Settle every expired reservation at its estimate (its process died). Returns the holds this call swept."""
    swept: list[Hold] = []
    for hold in ledger.expired(agent, now):
        if ledger.settle(agent, hold, hold.amount, state="swept"):
            log.warning(
                "swept expired %s %s at its estimate $%s (the process holding it did not settle it)",
                hold.kind,
                hold.hold_id,
                hold.amount,
            )
            swept.append(replace(hold, state="swept", actual=hold.amount))
    return swept


def check_fits(agent: str, amount: Decimal, caps: Sequence[CapLimit], usages: Sequence[CapUsage]) -> None:
    for cap, u in zip(caps, usages, strict=True):
        if cap.cap_usd is not None and u.used + amount > cap.cap_usd:
            raise BudgetExceeded(agent, cap.scope, cap.key, cap.cap_usd, u.used, amount)


class InMemoryLedger:
    """Process-local ledger with the same semantics as DynamoLedger; one lock makes every operation atomic.

    Where DynamoDB keeps a finished hold for `HOLD_RETENTION_SECONDS`, this one keeps the last `finished_kept`
    finished holds: a retry of an older hold id is a new hold, `get_hold` of it None, a settle of it a no-op."""

    def __init__(self, *, finished_kept: int = FINISHED_HOLDS_KEPT) -> None:
        if finished_kept < 0:
            raise ValueError(f"finished_kept must be >= 0 (got {finished_kept})")
        self._lock = threading.Lock()
        self._caps: dict[tuple[str, str], list[Decimal]] = {}  # (agent, sk) -> [committed, reserved]
        self._limits: dict[tuple[str, str], Decimal | None] = {}
        # (agent, kind, hold id) -> the hold as reserved; its state and actual once settled/released/swept are in
        # `_finished` (a settle, on every charge, then writes one tuple instead of a new Hold)
        self._holds: dict[tuple[str, str, str], Hold] = {}
        self._finished: dict[tuple[str, str, str], tuple[HoldState, Decimal]] = {}
        self._finished_order: deque[tuple[str, str, str]] = deque()  # keys of `_finished`, oldest first
        self.finished_kept = finished_kept
        self.operations = 0  # writes attempted (for benchmarks)
        self.approvals = InMemoryApprovals()  # the APPROVAL#<agent> partition's twin (ops write, the guard reads)

    # -- approvals of paused runs (`killswitch.guard.approvals`) ---------------------------------------------------
    def put_approval(self, approval: Approval) -> None:
        self.approvals.put_approval(approval)

    def get_approval(self, agent: str, run_id: str) -> Approval | None:
        return self.approvals.get_approval(agent, run_id)

    # -- Ledger -----------------------------------------------------------------------------------------------
    def reserve(
        self,
        agent: str,
        hold_id: str,
        amount: Decimal,
        caps: Sequence[CapLimit],
        *,
        kind: HoldKind = "charge",
        deadline: float,
        meta: Mapping[str, str] | None = None,
        settled: bool = False,
    ) -> Hold:
        if amount < 0:
            raise ValueError("amount must be >= 0")
        with self._lock:
            self.operations += 1
            key = (agent, kind, hold_id)
            existing = self._holds.get(key)
            if existing is not None:
                if existing.amount != amount:
                    raise DuplicateCharge(f"{kind} id {hold_id!r} was already used for ${existing.amount}")
                return replace(self._current(key, existing), replayed=True)
            rows: list[list[Decimal] | None] = []
            for c in caps:
                row = self._caps.get((agent, c.sk))
                if c.cap_usd is not None and (amount if row is None else row[0] + row[1] + amount) > c.cap_usd:
                    # names the first cap without room (raises)
                    check_fits(agent, amount, caps, [self._usage(agent, x.sk, x.cap_usd) for x in caps])
                rows.append(row)
            bucket = 0 if settled else 1  # committed | reserved
            for c, found in zip(caps, rows, strict=True):
                row = found if found is not None else self._caps.setdefault((agent, c.sk), [ZERO, ZERO])
                row[bucket] += amount
                self._limits[(agent, c.sk)] = c.cap_usd
            hold = Hold(
                hold_id,
                kind,
                amount,
                tuple([c.sk for c in caps]),
                deadline,
                "settled" if settled else "reserved",
                amount if settled else None,
                dict(meta) if meta else {},
            )
            self._holds[key] = hold
            if settled:
                self._finish(key, "settled", amount)
            return hold

    def settle(self, agent: str, hold: Hold, actual: Decimal, *, state: HoldState = "settled") -> bool:
        if actual < 0:
            raise ValueError("actual must be >= 0")
        with self._lock:
            self.operations += 1
            key = (agent, hold.kind, hold.hold_id)
            stored = self._holds.get(key)
            if stored is None or key in self._finished:
                return False
            for sk in stored.caps:
                row = self._caps[(agent, sk)]
                row[1] -= stored.amount
                row[0] += actual
            self._finish(key, state, actual)
            return True

    def shrink(self, agent: str, hold: Hold, new_amount: Decimal) -> Hold | None:
        if new_amount > hold.amount or new_amount < 0:
            raise ValueError("shrink can only lower a hold")
        with self._lock:
            self.operations += 1
            key = (agent, hold.kind, hold.hold_id)
            stored = self._holds.get(key)
            if stored is None or key in self._finished:
                return None
            if new_amount > stored.amount:
                raise ValueError("shrink can only lower a hold")
            for sk in stored.caps:
                self._caps[(agent, sk)][1] -= stored.amount - new_amount
            self._holds[key] = replace(stored, amount=new_amount)
            return self._holds[key]

    def get_hold(self, agent: str, kind: HoldKind, hold_id: str) -> Hold | None:
        key = (agent, kind, hold_id)
        with self._lock:
            stored = self._holds.get(key)
            return None if stored is None else self._current(key, stored)

    def open_leases(self, agent: str) -> list[Hold]:
        with self._lock:
            return [h for k, h in self._holds.items() if k[0] == agent and k[1] == "lease" and k not in self._finished]

    def expired(self, agent: str, now: float) -> list[Hold]:
        with self._lock:
            return [h for k, h in self._holds.items() if k[0] == agent and k not in self._finished and h.deadline < now]

    def usage(self, agent: str, scope: str, key: str) -> CapUsage:
        sk = cap_sk(scope, key)
        with self._lock:
            return self._usage(agent, sk, self._limits.get((agent, sk)))

    def usages(self, agent: str, caps: Sequence[CapLimit]) -> list[CapUsage]:
        with self._lock:
            return [self._usage(agent, c.sk, c.cap_usd) for c in caps]

    @property
    def hold_count(self) -> int:
        """Holds stored: every reserved one and at most `finished_kept` finished ones."""
        with self._lock:
            return len(self._holds)

    # -- helpers ----------------------------------------------------------------------------------------------
    def _finish(self, key: tuple[str, str, str], state: HoldState, actual: Decimal) -> None:
        """With the lock held: the hold left `reserved` (once per key); forget the oldest finished one past the
        window."""
        self._finished[key] = (state, actual)
        order = self._finished_order
        order.append(key)
        if len(order) > self.finished_kept:
            oldest = order.popleft()
            del self._finished[oldest]
            del self._holds[oldest]

    def _current(self, key: tuple[str, str, str], stored: Hold) -> Hold:
        """The stored hold as it is now (its state and actual once it left `reserved`)."""
        finished = self._finished.get(key)
        if finished is None or stored.state == finished[0]:
            return stored
        return replace(stored, state=finished[0], actual=finished[1])

    def _usage(self, agent: str, sk: str, cap: Decimal | None) -> CapUsage:
        row = self._caps.get((agent, sk))
        if row is None:
            return CapUsage(cap_usd=cap)
        return CapUsage(committed=row[0], reserved=row[1], cap_usd=cap)

    def all_usages(self, agent: str) -> dict[str, CapUsage]:
        """Every cap of an agent (tests check the invariant on all of them)."""
        with self._lock:
            return {sk: self._usage(a, sk, self._limits.get((a, sk))) for (a, sk) in self._caps if a == agent}
