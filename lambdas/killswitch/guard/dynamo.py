"""DynamoDB budget ledger: the hard cap holds across threads, processes and hosts.

No read-then-write. Each cap item keeps `used_nusd` (= committed + reserved), `committed_nusd`, `reserved_nusd`
and `cap_nusd`: integer nano-dollars (1e-9 USD), so arithmetic is exact and numbers never take exponent notation.
A reservation is one `TransactWriteItems`: for every cap `SET used_nusd = used_nusd + :x, ...` with the
condition `used_nusd <= :limit` where `:limit = cap - x` (DynamoDB conditions cannot add: the client subtracts),
plus a `Put` of the hold item (`CHARGE#<id>` or `LEASE#<id>`) with `attribute_not_exists(pk)`: the idempotency
token. Settling is one transaction that moves the amount from reserved to committed on every cap and flips the
hold's `state` from `reserved` under a condition, so a second settle (or one after the sweeper) changes nothing.

Items (keys.py): pk `GUARD#<agent>`, sk `CAP#<scope>#<key>` | `CHARGE#<id>` | `LEASE#<id>`; TTL `expires_at`.
The hold's TTL is its deadline plus a retention window: DynamoDB TTL must never delete a reservation before the
sweeper has settled it, or its reserved amount would be stranded on the cap. Every call goes through the item layer
(`killswitch.items.ItemTable`), so the same code runs on DynamoDB and on its in-memory twin.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, cast

from killswitch import aws
from killswitch.guard.approvals import Approval
from killswitch.guard.errors import BudgetExceeded, DuplicateCharge
from killswitch.guard.ledger import (
    HOLD_RETENTION_SECONDS,
    ZERO,
    CapLimit,
    CapUsage,
    Hold,
    HoldKind,
    HoldState,
    check_fits,
)
from killswitch.guard.prices import usd
from killswitch.items import ItemTable
from killswitch.keys import (
    CHARGE_PREFIX,
    LEASE_PREFIX,
    PK,
    SK,
    TTL_ATTR,
    approval_pk,
    approval_sk,
    cap_sk,
    guard_pk,
    hold_sk,
)

log = logging.getLogger("killswitch.guard")

_STATE_NAMES = {"#st": "state"}  # `state` is a DynamoDB reserved word


def _amt(value: Decimal) -> int:
    """A USD amount as an integer count of nano-dollars: exact, and free of exponent notation."""
    return int(usd(value).scaleb(9))


def _usd(nusd: Any) -> Decimal:
    return ZERO if nusd is None else usd(Decimal(nusd).scaleb(-9))


def _epoch(seconds: float) -> Decimal:
    return Decimal(str(round(seconds, 3)))


class DynamoLedger:
    """Ledger on the stack's single table (`KILLSWITCH_TABLE`), or on the twin (`client=MemoryDynamo()`)."""

    def __init__(self, table_name: str, client: Any | None = None, *, region: str | None = None):
        self.table_name = table_name
        self.client = client or aws.client("dynamodb", region)
        self.table = ItemTable(table_name, self.client)

    # -- reserve ----------------------------------------------------------------------------------------------
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
        for c in caps:  # cannot fit even on an empty cap: refuse without a write (unless it is a retry)
            if c.cap_usd is not None and amount > c.cap_usd:
                replay = self._replay(agent, kind, hold_id, amount)
                if replay is not None:
                    return replay
                check_fits(agent, amount, caps, self.usages(agent, caps))  # names the first cap without room
                raise BudgetExceeded(agent, c.scope, c.key, c.cap_usd, None, amount)
        pk = guard_pk(agent)
        hold = Hold(
            hold_id=hold_id,
            kind=kind,
            amount=amount,
            caps=tuple(c.sk for c in caps),
            deadline=deadline,
            state="settled" if settled else "reserved",
            actual=amount if settled else None,
            meta=dict(meta or {}),
        )
        bucket = "committed" if settled else "reserved"
        other = "reserved" if settled else "committed"
        operations: list[dict[str, Any]] = []
        for c in caps:
            values: dict[str, Any] = {":x": _amt(amount), ":z": 0, ":scope": c.scope, ":key": c.key}
            sets = [
                "used_nusd = if_not_exists(used_nusd, :z) + :x",
                f"{bucket}_nusd = if_not_exists({bucket}_nusd, :z) + :x",
                f"{other}_nusd = if_not_exists({other}_nusd, :z)",
                "cap_scope = :scope",
                "cap_key = :key",
            ]
            if c.expires_at:
                sets.append(f"{TTL_ATTR} = :ttl")
                values[":ttl"] = c.expires_at
            condition = None
            if c.cap_usd is not None:
                sets.append("cap_nusd = :cap")
                values[":cap"] = _amt(c.cap_usd)
                values[":limit"] = _amt(c.cap_usd - amount)
                condition = "attribute_not_exists(used_nusd) OR used_nusd <= :limit"
            operations.append(
                self.table.update_op(pk, c.sk, "SET " + ", ".join(sets), condition=condition, values=values)
            )
        operations.append(self.table.put_op(self._hold_item(pk, hold), condition="attribute_not_exists(pk)"))
        reasons = self.table.transact(operations)
        if reasons is None:
            return hold
        # Cancelled: the hold item exists (a retry, or a reused id) or a cap had no room. All conditions are
        # evaluated, so look for the hold first: a retry must never be reported as a budget refusal.
        replay = self._replay(agent, kind, hold_id, amount)
        if replay is not None:
            return replay
        for i, c in enumerate(caps):
            if i < len(reasons) and reasons[i] == "ConditionalCheckFailed":
                used = self.usage(agent, c.scope, c.key).used
                raise BudgetExceeded(agent, c.scope, c.key, c.cap_usd, used, amount)
        # No per-item reason (an emulator that omits CancellationReasons): work out which condition failed.
        check_fits(agent, amount, caps, self.usages(agent, caps))
        raise BudgetExceeded(agent, "unknown", "unknown", None, None, amount, reason="reservation was cancelled")

    def _replay(self, agent: str, kind: HoldKind, hold_id: str, amount: Decimal) -> Hold | None:
        """The stored hold when `hold_id` exists (a retry), DuplicateCharge if it was used for another amount."""
        existing = self.get_hold(agent, kind, hold_id)
        if existing is None:
            return None
        if existing.amount != amount:
            raise DuplicateCharge(f"{kind} id {hold_id!r} was already used for ${existing.amount}")
        return replace(existing, replayed=True)

    @staticmethod
    def _hold_item(pk: str, hold: Hold) -> dict[str, Any]:
        item: dict[str, Any] = {
            PK: pk,
            SK: hold_sk(hold.kind, hold.hold_id),
            "kind": hold.kind,
            "amount_nusd": _amt(hold.amount),
            "caps": list(hold.caps),
            "state": hold.state,
            "deadline": _epoch(hold.deadline),
            TTL_ATTR: int(hold.deadline) + HOLD_RETENTION_SECONDS,
        }
        if hold.actual is not None:
            item["actual_nusd"] = _amt(hold.actual)
        if hold.meta:
            item["meta"] = {k: str(v) for k, v in hold.meta.items()}
        return item

    # -- settle / shrink --------------------------------------------------------------------------------------
    def settle(self, agent: str, hold: Hold, actual: Decimal, *, state: HoldState = "settled") -> bool:
        if actual < 0:
            raise ValueError("actual must be >= 0")
        pk = guard_pk(agent)
        operations = [
            self.table.update_op(
                pk,
                sk,
                "SET used_nusd = used_nusd + :delta, reserved_nusd = reserved_nusd - :amt, "
                "committed_nusd = committed_nusd + :actual",
                values={":delta": _amt(actual - hold.amount), ":amt": _amt(hold.amount), ":actual": _amt(actual)},
            )
            for sk in hold.caps
        ]
        operations.append(
            self.table.update_op(
                pk,
                hold_sk(hold.kind, hold.hold_id),
                "SET #st = :new, actual_nusd = :actual, settled_at = :now",
                # the amount guards against settling with a stale copy of a hold that was shrunk since.
                condition="#st = :reserved AND amount_nusd = :amt",
                names=_STATE_NAMES,
                values={
                    ":new": state,
                    ":actual": _amt(actual),
                    ":reserved": "reserved",
                    ":amt": _amt(hold.amount),
                    ":now": int(time.time()),
                },
            )
        )
        if self.table.transact(operations) is None:
            return True
        stored = self.get_hold(agent, hold.kind, hold.hold_id)
        if stored is not None and stored.state == "reserved" and stored.amount != hold.amount:
            return self.settle(agent, stored, actual, state=state)  # our copy was stale (shrunk): use the stored
        return False

    def shrink(self, agent: str, hold: Hold, new_amount: Decimal) -> Hold | None:
        if new_amount > hold.amount or new_amount < 0:
            raise ValueError("shrink can only lower a hold")
        if new_amount == hold.amount:
            stored = self.get_hold(agent, hold.kind, hold.hold_id)
            if stored is None or stored.state != "reserved":
                return None
            return stored if stored.amount == new_amount else self.shrink(agent, stored, new_amount)
        pk = guard_pk(agent)
        delta = _amt(hold.amount - new_amount)
        operations = [
            self.table.update_op(
                pk, sk, "SET used_nusd = used_nusd - :d, reserved_nusd = reserved_nusd - :d", values={":d": delta}
            )
            for sk in hold.caps
        ]
        operations.append(
            self.table.update_op(
                pk,
                hold_sk(hold.kind, hold.hold_id),
                "SET amount_nusd = :new",
                condition="#st = :reserved AND amount_nusd = :old",
                names=_STATE_NAMES,
                values={":new": _amt(new_amount), ":old": _amt(hold.amount), ":reserved": "reserved"},
            )
        )
        if self.table.transact(operations) is None:
            return replace(hold, amount=new_amount)
        stored = self.get_hold(agent, hold.kind, hold.hold_id)
        if stored is not None and stored.state == "reserved" and stored.amount != hold.amount:
            return self.shrink(agent, stored, new_amount)  # our copy was stale: shrink what is stored
        return None

    # -- reads ------------------------------------------------------------------------------------------------
    def get_hold(self, agent: str, kind: HoldKind, hold_id: str) -> Hold | None:
        item = self.table.get(guard_pk(agent), hold_sk(kind, hold_id))
        return _to_hold(item) if item else None

    def _reserved(
        self, agent: str, prefix: str, extra: str = "", values: Mapping[str, Any] | None = None
    ) -> list[Hold]:
        items = self.table.query(
            guard_pk(agent),
            prefix,
            filter="#st = :reserved" + extra,
            names=_STATE_NAMES,
            values={":reserved": "reserved", **(values or {})},
        )
        return [_to_hold(i) for i in items]

    def get_approval(self, agent: str, run_id: str) -> Approval | None:
        """The ops approval of a paused run (`APPROVAL#<agent>`, which the agent may only read)."""
        item = self.table.get(approval_pk(agent), approval_sk(run_id))
        return Approval.from_item(item) if item else None

    def open_leases(self, agent: str) -> list[Hold]:
        """Reserved LEASE# items of the agent (read only when a charge is refused, never per call)."""
        return self._reserved(agent, LEASE_PREFIX)

    def expired(self, agent: str, now: float) -> list[Hold]:
        return [
            hold
            for prefix in (CHARGE_PREFIX, LEASE_PREFIX)
            for hold in self._reserved(agent, prefix, " AND deadline < :now", {":now": _epoch(now)})
        ]

    def usage(self, agent: str, scope: str, key: str) -> CapUsage:
        return _to_usage(self.table.get(guard_pk(agent), cap_sk(scope, key)))

    def usages(self, agent: str, caps: Sequence[CapLimit]) -> list[CapUsage]:
        if not caps:
            return []
        pk = guard_pk(agent)
        found = self.table.get_many([(pk, c.sk) for c in caps])
        return [replace(_to_usage(found.get((pk, c.sk))), cap_usd=c.cap_usd) for c in caps]


def _to_usage(item: Mapping[str, Any] | None) -> CapUsage:
    if not item:
        return CapUsage()
    cap = _usd(item["cap_nusd"]) if "cap_nusd" in item else None
    return CapUsage(committed=_usd(item.get("committed_nusd")), reserved=_usd(item.get("reserved_nusd")), cap_usd=cap)


def _to_hold(item: Mapping[str, Any]) -> Hold:
    sk = str(item[SK])
    kind: HoldKind = "lease" if sk.startswith(LEASE_PREFIX) else "charge"
    return Hold(
        hold_id=sk.split("#", 1)[1],
        kind=kind,
        amount=_usd(item["amount_nusd"]),
        caps=tuple(str(c) for c in item.get("caps", [])),
        deadline=float(item["deadline"]),
        state=cast(HoldState, item["state"]),
        actual=_usd(item["actual_nusd"]) if "actual_nusd" in item else None,
        meta={str(k): str(v) for k, v in item.get("meta", {}).items()},
    )


def write_approval(client: Any, table_name: str, approval: Approval, *, now: float | None = None) -> None:
    """Ops side (`killswitch approve-run`, ops credentials): write or replace the approval of one run."""
    item = approval.to_item(time.time() if now is None else now)
    ItemTable(table_name, client).put({k: v if isinstance(v, int) else str(v) for k, v in item.items()})
