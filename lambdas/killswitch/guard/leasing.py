"""Leases that never stop an agent early.

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

from decimal import Decimal
from typing import TYPE_CHECKING

from killswitch.guard.errors import BudgetExceeded
from killswitch.guard.ledger import ZERO, LeaseLister, cap_sk

if TYPE_CHECKING:
    from killswitch.guard.core import Guard

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
