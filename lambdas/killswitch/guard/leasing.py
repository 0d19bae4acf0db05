"""Leases: a run's slices of headroom (`RunLeases`), and leases that never stop an agent early.

A lease is headroom a run reserved for itself and spends locally. Many concurrent runs together can lease all the
headroom left while each of them has spent only part of its slice: the ledger then refuses the next lease although
the money is not spent. Such a refusal is *contention*, not a crossed cap, and must never stop the agent.

On a refusal of a shared cap (agent or workflow) the guard therefore
1. reclaims: every run of this process hands back its idle leases and shrinks the busy ones to what they used plus
   what they hold in flight (`reclaim`), and leases stay paused for the rest of the period (near the cap every
   charge goes to the ledger directly: one write more per call, exact headroom);
2. retries the charge directly;
3. stops the agent and publishes the kill only if the refusal is real (`refusal_is_real`): committed spend plus the
   reservations known to be in flight leave no room for the charge. Headroom that may be unused (this process's
   free lease headroom, other processes' open leases) is not counted as spent. A refusal that is not real raises
   `BudgetExceeded` with `contended=True` for this charge only; the ledger still never goes over the cap.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from typing import TYPE_CHECKING

from killswitch.guard.caps import LeasePolicy
from killswitch.guard.errors import BudgetExceeded
from killswitch.guard.ids import new_id
from killswitch.guard.ledger import ZERO, Hold, LeaseLister, cap_sk
from killswitch.guard.prices import usd

if TYPE_CHECKING:
    from killswitch.guard.guard import Guard

log = logging.getLogger("killswitch.guard")

# Reclaim-and-retry rounds before a refusal that is not real is given to the caller as contention.
RETRY_ROUNDS = 4
SHARED_SCOPES = ("agent", "workflow")


def reclaim(guard: Guard) -> Decimal:
    """Hand back the unused headroom of every lease of this process. Returns the amount returned to the ledger."""
    returned = ZERO
    for run in guard.live_runs():
        returned += run.shrink_leases()
    return returned


def unknown_headroom(guard: Guard, scope: str, key: str) -> Decimal:
    """Leased headroom on one cap that may still be unused (so it is not spend): free headroom of this process's
    leases, and the whole amount of other processes' open leases (their use is not known here)."""
    sk = cap_sk(scope, key)
    local_ids: set[str] = set()
    unknown = ZERO
    for run in guard.live_runs():
        for hold_id, caps, free in run.lease_snapshot():
            local_ids.add(hold_id)
            if sk in caps:
                unknown += max(free, ZERO)
    if isinstance(guard.ledger, LeaseLister):
        for hold in guard.ledger.open_leases(guard.agent):
            if hold.hold_id not in local_ids and sk in hold.caps:
                unknown += hold.amount
    return unknown


def refusal_is_real(guard: Guard, exc: BudgetExceeded) -> bool:
    """True when committed spend plus in-flight reservations leave no room for the refused charge."""
    if exc.scope not in SHARED_SCOPES or exc.cap_usd is None:
        return True
    usage = guard.ledger.usage(guard.agent, exc.scope, exc.key)
    return usage.used - unknown_headroom(guard, exc.scope, exc.key) + exc.requested_usd > exc.cap_usd


def contended(exc: BudgetExceeded) -> BudgetExceeded:
    """The refusal as the caller sees it when other runs' leases, not spend, hold the headroom."""
    out = BudgetExceeded(
        exc.agent,
        exc.scope,
        exc.key,
        exc.cap_usd,
        exc.used_usd,
        exc.requested_usd,
        reason=(
            f"agent {exc.agent!r}: the headroom left under {exc.cap_field} ({exc.key}) is leased by other runs "
            "that have not spent it yet; nothing was charged"
        ),
        hint="The agent is not stopped: retry this call shortly (the other runs return what they do not use).",
    )
    out.contended = True
    return out


class Lease:
    """One slice of headroom a run holds: `used` is settled locally, `held` is in flight (estimates)."""

    __slots__ = ("deadline", "held", "hold", "timer", "used")

    def __init__(self, hold: Hold):
        self.hold = hold
        self.used = ZERO
        self.held = ZERO
        self.deadline = hold.deadline
        self.timer: threading.Timer | None = None

    @property
    def free(self) -> Decimal:
        return self.hold.amount - self.used - self.held


class RunLeases:
    """The leases of one run. Shares the run's lock: a lease changes together with the run's own books."""

    def __init__(self, guard: Guard, run_id: str, workflow: str | None, lock: threading.RLock):
        self.guard = guard
        self.run_id = run_id
        self.workflow = workflow
        self.lock = lock
        self.reservations = 0  # leases taken on the ledger
        self._leases: list[Lease] = []

    def take(self, amount: Decimal, policy: LeasePolicy) -> Lease:
        """Hold `amount` on a lease with room for it (a new one if none): BudgetExceeded if the ledger refuses."""
        with self.lock:
            now = self.guard.clock()
            margin = policy.return_margin_seconds
            for lease in self._leases:
                if lease.free >= amount and now < lease.deadline - margin:
                    lease.held += amount
                    return lease
            lease = self._acquire(amount, now, policy)
            lease.held += amount
            return lease

    def use(self, lease: Lease, estimate: Decimal, actual: Decimal) -> None:
        """A call on `lease` reserved at `estimate` finished at `actual` (zero when released)."""
        with self.lock:
            lease.held -= estimate
            lease.used += actual

    def close(self) -> None:
        """Settle every lease (the run ended)."""
        with self.lock:
            leases, self._leases = self._leases, []
        for lease in leases:
            self._settle(lease)

    def shrink(self) -> Decimal:
        """Hand back idle leases and shrink busy ones to used + in flight. Returns the headroom returned."""
        with self.lock:
            returned = self._compact()
        return returned

    def snapshot(self) -> list[tuple[str, tuple[str, ...], Decimal]]:
        """(lease id, cap keys, free headroom) of each lease."""
        with self.lock:
            return [(lease.hold.hold_id, lease.hold.caps, lease.free) for lease in self._leases]

    def return_idle(self, *, force: bool = False) -> int:
        """Settle leases with no call in flight that are near their deadline (all idle ones with `force`)."""
        policy = self.guard.leases
        if policy is None:
            return 0
        with self.lock:
            now = self.guard.clock()
            done = [
                lease
                for lease in self._leases
                if lease.held == 0 and (force or now >= lease.deadline - policy.return_margin_seconds)
            ]
            if not done:
                return 0
            self._leases = [lease for lease in self._leases if lease not in done]
            for lease in done:
                self._settle(lease)
            return len(done)

    def _compact(self, *, shrink_full: bool = False) -> Decimal:
        """With the lock held: settle idle leases, shrink busy ones (`shrink_full`: even those with no free
        headroom). Returns the headroom returned."""
        g = self.guard
        returned = ZERO
        keep: list[Lease] = []
        for lease in self._leases:
            free = lease.free
            if lease.held == 0:
                self._settle(lease)
                returned += free
                continue
            if free > 0 or shrink_full:
                shrunk = g.ledger.shrink(g.agent, lease.hold, lease.used + lease.held)
                if shrunk is not None:
                    lease.hold = shrunk
                    returned += max(free, ZERO) if shrink_full else free
            keep.append(lease)
        self._leases = keep
        return returned

    def _acquire(self, needed: Decimal, now: float, policy: LeasePolicy) -> Lease:
        """With the lock held: hand back idle leases, then lease a new slice (at least `needed`)."""
        g = self.guard
        self._compact(shrink_full=True)
        caps = g.cap_limits(self.run_id, self.workflow, now)
        usages = g.ledger.usages(g.agent, caps)
        shared = [u.headroom for c, u in zip(caps, usages, strict=True) if c.scope != "run" and u.headroom is not None]
        run_room = [
            u.headroom for c, u in zip(caps, usages, strict=True) if c.scope == "run" and u.headroom is not None
        ]
        fraction = Decimal(str(policy.fraction))
        size = min(shared) * fraction if shared else Decimal(str(policy.uncapped_usd))
        if run_room:
            size = min(size, run_room[0])
        size = max(size, Decimal(str(policy.min_usd)))
        if policy.max_usd is not None:
            size = min(size, Decimal(str(policy.max_usd)))
        rooms = [*shared, *run_room]
        if rooms:
            size = min(size, max(min(rooms), ZERO))
        size = max(usd(size), needed)
        attempts = [size] if size == needed else [size, needed]
        last: BudgetExceeded | None = None
        for amount in attempts:
            try:
                hold = g.ledger.reserve(
                    g.agent,
                    new_id(),
                    amount,
                    caps,
                    kind="lease",
                    deadline=now + policy.ttl_seconds,
                    meta={"run_id": self.run_id, "workflow": self.workflow or ""},
                )
            except BudgetExceeded as exc:
                last = exc
                continue
            self.reservations += 1
            lease = Lease(hold)
            self._leases.append(lease)
            if policy.auto_return:
                self._schedule_return(lease, policy)
            return lease
        assert last is not None
        raise last

    def _schedule_return(self, lease: Lease, policy: LeasePolicy) -> None:
        delay = max(1.0, lease.deadline - policy.return_margin_seconds - self.guard.clock())

        def fire() -> None:
            try:
                if not self.return_idle():
                    with self.lock:  # a call was still in flight: look again shortly, while the lease lives
                        if lease in self._leases and self.guard.clock() < lease.deadline:
                            self._schedule_return(lease, policy)
            except Exception:
                log.exception("returning idle lease %s failed", lease.hold.hold_id)

        timer = threading.Timer(delay if lease.timer is None else max(1.0, policy.return_margin_seconds / 4), fire)
        timer.daemon = True
        lease.timer = timer
        timer.start()

    def _settle(self, lease: Lease) -> None:
        g = self.guard
        if lease.timer is not None:
            lease.timer.cancel()
        actual = lease.used + lease.held  # in-flight calls at their estimate
        try:
            if not g.ledger.settle(g.agent, lease.hold, actual):
                log.warning(
                    "lease %s of run %s was already settled (expired and swept at $%s); local use was $%s",
                    lease.hold.hold_id,
                    self.run_id,
                    lease.hold.amount,
                    actual,
                )
        except Exception:
            log.exception("settling lease %s failed; the sweeper will settle it at its amount", lease.hold.hold_id)
