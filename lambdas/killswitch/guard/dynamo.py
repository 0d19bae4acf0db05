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
sweeper has settled it, or its reserved amount would be stranded on the cap.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, cast

from botocore.exceptions import ClientError

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
    cap_sk,
    check_fits,
    hold_sk,
)
from killswitch.guard.prices import usd
from killswitch.keys import PK, SK, TTL_ATTR, approval_pk, approval_sk, guard_pk

log = logging.getLogger("killswitch.guard")

# TransactionConflict (another transaction touching the same cap item) is not retried by botocore.
MAX_CONFLICT_RETRIES = 12


def _n(value: Decimal | int | float) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _amt(value: Decimal) -> dict[str, str]:
    """A USD amount as an integer count of nano-dollars: exact, and free of exponent notation."""
    return {"N": str(int(usd(value).scaleb(9)))}


def _usd(attr: Mapping[str, str] | None) -> Decimal:
    return ZERO if not attr else usd(Decimal(attr["N"]).scaleb(-9))


class DynamoLedger:
    """Ledger on the stack's single table (`KILLSWITCH_TABLE`)."""

    def __init__(self, table_name: str, client: Any | None = None, *, region: str | None = None):
        self.table_name = table_name
        self.client = client or aws.client("dynamodb", region)

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
        items: list[dict[str, Any]] = []
        for c in caps:
            values: dict[str, Any] = {
                ":x": _amt(amount),
                ":z": _n(0),
                ":scope": _s(c.scope),
                ":key": _s(c.key),
            }
            sets = [
                "used_nusd = if_not_exists(used_nusd, :z) + :x",
                f"{bucket}_nusd = if_not_exists({bucket}_nusd, :z) + :x",
                f"{other}_nusd = if_not_exists({other}_nusd, :z)",
                "cap_scope = :scope",
                "cap_key = :key",
            ]
            update: dict[str, Any] = {
                "TableName": self.table_name,
                "Key": {PK: _s(pk), SK: _s(c.sk)},
            }
            if c.expires_at:
                sets.append(f"{TTL_ATTR} = :ttl")
                values[":ttl"] = _n(c.expires_at)
            if c.cap_usd is not None:
                sets.append("cap_nusd = :cap")
                values[":cap"] = _amt(c.cap_usd)
                values[":limit"] = _amt(c.cap_usd - amount)
                update["ConditionExpression"] = "attribute_not_exists(used_nusd) OR used_nusd <= :limit"
            update["UpdateExpression"] = "SET " + ", ".join(sets)
            update["ExpressionAttributeValues"] = values
            items.append({"Update": update})
        items.append(
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": self._hold_item(pk, hold),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )
        reasons = self._transact(items)
        if reasons is None:
            return hold
        # Cancelled: the hold item exists (a retry, or a reused id) or a cap had no room. All conditions are
        # evaluated, so look for the hold first: a retry must never be reported as a budget refusal.
        replay = self._replay(agent, kind, hold_id, amount)
        if replay is not None:
            return replay
        for i, c in enumerate(caps):
            if _failed(reasons, i):
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

    def _hold_item(self, pk: str, hold: Hold) -> dict[str, Any]:
        item: dict[str, Any] = {
            PK: _s(pk),
            SK: _s(hold_sk(hold.kind, hold.hold_id)),
            "kind": _s(hold.kind),
            "amount_nusd": _amt(hold.amount),
            "caps": {"L": [_s(sk) for sk in hold.caps]},
            "state": _s(hold.state),
            "deadline": _n(round(hold.deadline, 3)),
            TTL_ATTR: _n(int(hold.deadline) + HOLD_RETENTION_SECONDS),
        }
        if hold.actual is not None:
            item["actual_nusd"] = _amt(hold.actual)
        if hold.meta:
            item["meta"] = {"M": {k: _s(str(v)) for k, v in hold.meta.items()}}
        return item

    # -- settle / shrink --------------------------------------------------------------------------------------
    def settle(self, agent: str, hold: Hold, actual: Decimal, *, state: HoldState = "settled") -> bool:
        if actual < 0:
            raise ValueError("actual must be >= 0")
        pk = guard_pk(agent)
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {PK: _s(pk), SK: _s(sk)},
                    "UpdateExpression": "SET used_nusd = used_nusd + :delta, reserved_nusd = reserved_nusd - :amt, "
                    "committed_nusd = committed_nusd + :actual",
                    "ExpressionAttributeValues": {
                        ":delta": _amt(actual - hold.amount),
                        ":amt": _amt(hold.amount),
                        ":actual": _amt(actual),
                    },
                }
            }
            for sk in hold.caps
        ]
        items.append(
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {PK: _s(pk), SK: _s(hold_sk(hold.kind, hold.hold_id))},
                    "UpdateExpression": "SET #st = :new, actual_nusd = :actual, settled_at = :now",
                    # the amount guards against settling with a stale copy of a hold that was shrunk since.
                    "ConditionExpression": "#st = :reserved AND amount_nusd = :amt",
                    "ExpressionAttributeNames": {"#st": "state"},
                    "ExpressionAttributeValues": {
                        ":new": _s(state),
                        ":actual": _amt(actual),
                        ":reserved": _s("reserved"),
                        ":amt": _amt(hold.amount),
                        ":now": _n(int(time.time())),
                    },
                }
            }
        )
        reasons = self._transact(items)
        if reasons is None:
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
        delta = hold.amount - new_amount
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {PK: _s(pk), SK: _s(sk)},
                    "UpdateExpression": "SET used_nusd = used_nusd - :d, reserved_nusd = reserved_nusd - :d",
                    "ExpressionAttributeValues": {":d": _amt(delta)},
                }
            }
            for sk in hold.caps
        ]
        items.append(
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {PK: _s(pk), SK: _s(hold_sk(hold.kind, hold.hold_id))},
                    "UpdateExpression": "SET amount_nusd = :new",
                    "ConditionExpression": "#st = :reserved AND amount_nusd = :old",
                    "ExpressionAttributeNames": {"#st": "state"},
                    "ExpressionAttributeValues": {
                        ":new": _amt(new_amount),
                        ":old": _amt(hold.amount),
                        ":reserved": _s("reserved"),
                    },
                }
            }
        )
        if self._transact(items) is None:
            return replace(hold, amount=new_amount)
        stored = self.get_hold(agent, hold.kind, hold.hold_id)
        if stored is not None and stored.state == "reserved" and stored.amount != hold.amount:
            return self.shrink(agent, stored, new_amount)  # our copy was stale: shrink what is stored
        return None

    # -- reads ------------------------------------------------------------------------------------------------
    def get_hold(self, agent: str, kind: HoldKind, hold_id: str) -> Hold | None:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key={PK: _s(guard_pk(agent)), SK: _s(hold_sk(kind, hold_id))},
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return _to_hold(item) if item else None

    def get_approval(self, agent: str, run_id: str) -> Approval | None:
        """The ops approval of a paused run (`APPROVAL#<agent>`, which the agent may only read)."""
        resp = self.client.get_item(
            TableName=self.table_name,
            Key={PK: _s(approval_pk(agent)), SK: _s(approval_sk(run_id))},
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return Approval.from_item({k: next(iter(v.values())) for k, v in item.items()}) if item else None

    def open_leases(self, agent: str) -> list[Hold]:
        """Reserved LEASE# items of the agent (read only when a charge is refused, never per call)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "FilterExpression": "#st = :reserved",
            "ExpressionAttributeNames": {"#st": "state"},
            "ExpressionAttributeValues": {
                ":pk": _s(guard_pk(agent)),
                ":prefix": _s("LEASE#"),
                ":reserved": _s("reserved"),
            },
            "ConsistentRead": True,
        }
        out: list[Hold] = []
        while True:
            resp = self.client.query(**kwargs)
            out.extend(_to_hold(i) for i in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def expired(self, agent: str, now: float) -> list[Hold]:
        out: list[Hold] = []
        for prefix in ("CHARGE#", "LEASE#"):
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                "FilterExpression": "#st = :reserved AND deadline < :now",
                "ExpressionAttributeNames": {"#st": "state"},
                "ExpressionAttributeValues": {
                    ":pk": _s(guard_pk(agent)),
                    ":prefix": _s(prefix),
                    ":reserved": _s("reserved"),
                    ":now": _n(round(now, 3)),
                },
                "ConsistentRead": True,
            }
            while True:
                resp = self.client.query(**kwargs)
                out.extend(_to_hold(i) for i in resp.get("Items", []))
                if "LastEvaluatedKey" not in resp:
                    break
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return out

    def usage(self, agent: str, scope: str, key: str) -> CapUsage:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key={PK: _s(guard_pk(agent)), SK: _s(cap_sk(scope, key))},
            ConsistentRead=True,
        )
        return _to_usage(resp.get("Item"))

    def usages(self, agent: str, caps: Sequence[CapLimit]) -> list[CapUsage]:
        if not caps:
            return []
        pk = guard_pk(agent)
        keys = [{PK: _s(pk), SK: _s(c.sk)} for c in caps]
        found: dict[str, Mapping[str, Any]] = {}
        request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
        while request:
            resp = self.client.batch_get_item(RequestItems=request)
            for item in resp.get("Responses", {}).get(self.table_name, []):
                found[item[SK]["S"]] = item
            request = resp.get("UnprocessedKeys") or {}
        out = []
        for c in caps:
            u = _to_usage(found.get(c.sk))
            out.append(replace(u, cap_usd=c.cap_usd))
        return out

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _transact(self, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Run a transaction. None on success; the cancellation reasons (possibly empty) on a failed condition.

        TransactionConflict cancellations (a concurrent transaction on the same item) are retried with jitter.
        """
        for attempt in range(MAX_CONFLICT_RETRIES + 1):
            try:
                self.client.transact_write_items(TransactItems=items)
                return None
            except ClientError as exc:
                if aws.error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = cast(list[dict[str, Any]], exc.response.get("CancellationReasons") or [])
                codes = {r.get("Code") for r in reasons}
                if "ConditionalCheckFailed" in codes or not reasons:
                    if not reasons and "ConditionalCheckFailed" not in str(exc):
                        raise
                    return reasons
                retryable = codes & {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
                if retryable and attempt < MAX_CONFLICT_RETRIES:
                    time.sleep(min(0.5, 0.005 * 2**attempt) * random.random())
                    continue
                raise
        raise AssertionError("unreachable")


def _failed(reasons: list[dict[str, Any]], index: int) -> bool:
    return index < len(reasons) and reasons[index].get("Code") == "ConditionalCheckFailed"


def _to_usage(item: Mapping[str, Any] | None) -> CapUsage:
    if not item:
        return CapUsage()
    cap = _usd(item["cap_nusd"]) if "cap_nusd" in item else None
    return CapUsage(committed=_usd(item.get("committed_nusd")), reserved=_usd(item.get("reserved_nusd")), cap_usd=cap)


def _to_hold(item: Mapping[str, Any]) -> Hold:
    sk = item[SK]["S"]
    kind: HoldKind = "lease" if sk.startswith("LEASE#") else "charge"
    return Hold(
        hold_id=sk.split("#", 1)[1],
        kind=kind,
        amount=_usd(item["amount_nusd"]),
        caps=tuple(v["S"] for v in item.get("caps", {}).get("L", [])),
        deadline=float(item["deadline"]["N"]),
        state=cast(HoldState, item["state"]["S"]),
        actual=_usd(item["actual_nusd"]) if "actual_nusd" in item else None,
        meta={k: v["S"] for k, v in item.get("meta", {}).get("M", {}).items()},
    )


def write_approval(client: Any, table_name: str, approval: Approval, *, now: float | None = None) -> None:
    """Ops side (`killswitch approve-run`, ops credentials): write or replace the approval of one run."""
    item = approval.to_item(time.time() if now is None else now)
    client.put_item(
        TableName=table_name,
        Item={k: _n(v) if isinstance(v, int) else _s(str(v)) for k, v in item.items()},
    )
