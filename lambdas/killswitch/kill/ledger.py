"""Kill ledger: what every kill planned and changed, so that `restore` can undo exactly that.

Items (see `killswitch.keys`):
- kill record        pk `AGENT#<agent>`  sk `KILL#<kill_id>`   status, reason, alert summary, plan (JSON)
- kill pointer       pk `KILL#<kill_id>` sk `RECORD`           agent (find a kill from its id alone: `approve`)
- kill resource      pk `KILL#<kill_id>` sk `RES#<region>#<id>` prior state (JSON), action, result, restore marks
- dedupe marker      pk `DEDUPE#<key>`   sk `DEDUPE`           written with `attribute_not_exists` before acting
- agent state        pk `AGENT#<agent>`  sk `STATE`            state OK|THRIFT|KILLED, updated_at, reason
- rejected event     pk `REJECTED#<day>` sk `<timestamp>#<message id>` reason, raw (truncated)

Structured values (plan, prior state) are stored as JSON strings: no float/Decimal conversions, and restore reads
back exactly what was written. `DynamoKillLedger` and `InMemoryKillLedger` share the logic over a tiny item store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import boto3
from boto3.dynamodb.conditions import Key

from killswitch.aws import RETRY_CONFIG
from killswitch.keys import PK, SK, TTL_ATTR, agent_pk, kill_pk
from killswitch.kill.model import AgentState, KillStatus, Resource

DEDUPE_TTL_DAYS = 60
RAW_LIMIT = 8_000
PLAN_LIMIT = 300_000  # bytes of plan JSON kept in the kill record
ACTIVE_STATUSES = (KillStatus.PLANNED, KillStatus.AWAITING_APPROVAL, KillStatus.DONE, KillStatus.PARTIAL)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


@dataclass
class KillRecord:
    kill_id: str
    agent: str
    status: KillStatus
    created_at: str
    updated_at: str
    reason: str = ""
    run_id: str | None = None
    source: str = ""
    dedupe_key: str | None = None
    alert: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] | None = None  # `Plan.summary()`; decisions dropped if the item would get too large
    verification: str | None = None  # verified | not_verified, once the kill re-described what it changed

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass
class ResourceEntry:
    """One resource of one kill: its prior state (what restore puts back) and what happened to it."""

    kill_id: str
    resource: Resource
    act: str  # the action of the plan (stop, scale_to_zero, ..., needs_approval)
    reason: str = ""
    outcome: str | None = None  # ResourceResult outcome once acted
    code: str | None = None
    message: str = ""
    attached_by_us: bool | None = None  # SCP: only an SCP this kill attached is detached on restore
    suspended_by_us: list[str] = field(default_factory=list)  # ASG processes this kill suspended
    restored: bool = False
    restored_at: str | None = None

    @property
    def changed(self) -> bool:
        """The kill changed this resource (restore must undo it)."""
        return self.outcome == "success" and self.act not in ("skip", "needs_approval")

    @property
    def pending(self) -> bool:
        """Planned to change but no result recorded: the kill died while acting. Restore treats it as changed
        (putting back the recorded prior state is harmless if the kill never got to it)."""
        return self.outcome is None and self.act not in ("skip", "needs_approval")

    @property
    def awaiting_approval(self) -> bool:
        return self.act == "needs_approval" and self.outcome in (None, "needs_approval")


class KillLedger(Protocol):
    def claim(self, dedupe_key: str, kill_id: str) -> str | None:
        """Write the dedupe marker; return None if claimed now, else the kill id that claimed it first."""
        ...

    def release(self, dedupe_key: str) -> None: ...

    def put_kill(self, record: KillRecord) -> None: ...

    def get_kill(self, kill_id: str) -> KillRecord | None: ...

    def list_kills(self, agent: str) -> list[KillRecord]: ...

    def set_status(self, record: KillRecord, status: KillStatus) -> None: ...

    def put_resource(self, entry: ResourceEntry) -> None: ...

    def put_resources(self, entries: Sequence[ResourceEntry]) -> None:
        """Write many resource items at once (DynamoDB: 25 per BatchWriteItem instead of one PutItem each)."""
        ...

    def resources(self, kill_id: str) -> list[ResourceEntry]: ...

    def set_agent_state(self, agent: str, state: AgentState, reason: str, kill_id: str | None = None) -> None: ...

    def agent_state(self, agent: str) -> dict[str, Any] | None: ...

    def record_rejected(self, reason: str, message_id: str | None, raw: str) -> None: ...

    def rejected(self, day: str) -> list[dict[str, Any]]: ...


class ItemStore(Protocol):
    def put(self, item: dict[str, Any], *, if_absent: bool = False) -> bool: ...

    def put_many(self, items: Sequence[dict[str, Any]]) -> None: ...

    def get(self, pk: str, sk: str) -> dict[str, Any] | None: ...

    def query(self, pk: str, sk_prefix: str = "") -> list[dict[str, Any]]: ...

    def delete(self, pk: str, sk: str) -> None: ...


class MemoryItemStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def put(self, item: dict[str, Any], *, if_absent: bool = False) -> bool:
        key = (item[PK], item[SK])
        with self._lock:
            if if_absent and key in self.items:
                return False
            self.items[key] = dict(item)
            return True

    def put_many(self, items: Sequence[dict[str, Any]]) -> None:
        for item in items:
            self.put(item)

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.items.get((pk, sk))
        return dict(item) if item else None

    def query(self, pk: str, sk_prefix: str = "") -> list[dict[str, Any]]:
        return [dict(v) for (p, s), v in sorted(self.items.items()) if p == pk and s.startswith(sk_prefix)]

    def delete(self, pk: str, sk: str) -> None:
        with self._lock:
            self.items.pop((pk, sk), None)


class DynamoItemStore:
    def __init__(self, table_name: str, session: boto3.Session | None = None, region: str | None = None):
        sess = session or boto3.Session()
        self.table = sess.resource("dynamodb", region_name=region, config=RETRY_CONFIG).Table(table_name)

    def put(self, item: dict[str, Any], *, if_absent: bool = False) -> bool:
        if not if_absent:
            self.table.put_item(Item=item)
            return True
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def put_many(self, items: Sequence[dict[str, Any]]) -> None:
        # batch_writer sends 25 items per BatchWriteItem and re-sends unprocessed items until all are written.
        with self.table.batch_writer() as batch:
            for item in items:
                batch.put_item(Item=item)

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key={PK: pk, SK: sk}, ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def query(self, pk: str, sk_prefix: str = "") -> list[dict[str, Any]]:
        cond = Key(PK).eq(pk)
        if sk_prefix:
            cond = cond & Key(SK).begins_with(sk_prefix)
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"KeyConditionExpression": cond, "ConsistentRead": True}
        while True:
            page = self.table.query(**kwargs)
            items.extend(dict(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(self, pk: str, sk: str) -> None:
        self.table.delete_item(Key={PK: pk, SK: sk})


def _plan_json(plan: dict[str, Any] | None) -> str:
    """DynamoDB items are limited to 400 KB: a plan of thousands of resources keeps its counts, not its rows (each
    resource has its own item anyway)."""
    if not plan:
        return ""
    text = json.dumps(plan, sort_keys=True, default=str)
    if len(text.encode()) <= PLAN_LIMIT:
        return text
    return json.dumps({**{k: v for k, v in plan.items() if k != "decisions"}, "truncated": True}, default=str)


def dedupe_pk(key: str) -> str:
    return f"DEDUPE#{key}"


def resource_sk(region: str, resource_id: str, account: str = "") -> str:
    """`RES#<region>#<id>`; a hub kill's resource in an organization account: `RES#<account>#<region>#<id>`."""
    return f"RES#{account}#{region}#{resource_id}" if account else f"RES#{region}#{resource_id}"


class ItemKillLedger:
    """`KillLedger` over an `ItemStore` (the same item layout in memory and in DynamoDB)."""

    def __init__(self, store: ItemStore, *, clock: Callable[[], datetime] = _utcnow, retention_days: int = 400):
        self.store = store
        self._clock = clock
        self.retention_days = retention_days

    def _now(self) -> str:
        return _iso(self._clock())

    def _ttl(self, days: int) -> int:
        return int((self._clock() + timedelta(days=days)).timestamp())

    # -- dedupe -----------------------------------------------------------------------------------------
    def claim(self, dedupe_key: str, kill_id: str) -> str | None:
        item = {
            PK: dedupe_pk(dedupe_key),
            SK: "DEDUPE",
            "kill_id": kill_id,
            "created_at": self._now(),
            TTL_ATTR: self._ttl(DEDUPE_TTL_DAYS),
        }
        if self.store.put(item, if_absent=True):
            return None
        existing = self.store.get(dedupe_pk(dedupe_key), "DEDUPE") or {}
        return str(existing.get("kill_id") or "?")

    def release(self, dedupe_key: str) -> None:
        self.store.delete(dedupe_pk(dedupe_key), "DEDUPE")

    # -- kills ------------------------------------------------------------------------------------------
    def put_kill(self, record: KillRecord) -> None:
        item: dict[str, Any] = {
            PK: agent_pk(record.agent),
            SK: f"KILL#{record.kill_id}",
            "kill_id": record.kill_id,
            "agent": record.agent,
            "status": record.status.value,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "reason": record.reason,
            "source": record.source,
            "alert": json.dumps(record.alert, sort_keys=True, default=str),
            "plan": _plan_json(record.plan),
        }
        if record.run_id:
            item["run_id"] = record.run_id
        if record.dedupe_key:
            item["dedupe_key"] = record.dedupe_key
        if record.verification:
            item["verification"] = record.verification
        self.store.put(item)
        self.store.put({PK: kill_pk(record.kill_id), SK: "RECORD", "agent": record.agent})

    @staticmethod
    def _record(item: dict[str, Any]) -> KillRecord:
        plan = item.get("plan") or ""
        return KillRecord(
            kill_id=item["kill_id"],
            agent=item["agent"],
            status=KillStatus(item["status"]),
            created_at=item["created_at"],
            updated_at=item["updated_at"],
            reason=item.get("reason", ""),
            run_id=item.get("run_id"),
            source=item.get("source", ""),
            dedupe_key=item.get("dedupe_key"),
            alert=json.loads(item.get("alert") or "{}"),
            plan=json.loads(plan) if plan else None,
            verification=item.get("verification"),
        )

    def get_kill(self, kill_id: str) -> KillRecord | None:
        pointer = self.store.get(kill_pk(kill_id), "RECORD")
        if not pointer:
            return None
        item = self.store.get(agent_pk(pointer["agent"]), f"KILL#{kill_id}")
        return self._record(item) if item else None

    def list_kills(self, agent: str) -> list[KillRecord]:
        kills = [self._record(i) for i in self.store.query(agent_pk(agent), "KILL#")]
        return sorted(kills, key=lambda k: (k.created_at, k.kill_id))

    def set_status(self, record: KillRecord, status: KillStatus) -> None:
        record.status = status
        record.updated_at = self._now()
        self.put_kill(record)

    # -- resources --------------------------------------------------------------------------------------
    def put_resource(self, entry: ResourceEntry) -> None:
        self.store.put(self._resource_item(entry))

    def put_resources(self, entries: Sequence[ResourceEntry]) -> None:
        if entries:
            self.store.put_many([self._resource_item(e) for e in entries])

    def _resource_item(self, entry: ResourceEntry) -> dict[str, Any]:
        r = entry.resource
        item: dict[str, Any] = {
            PK: kill_pk(entry.kill_id),
            SK: resource_sk(r.region, r.resource_id, r.account),
            "kill_id": entry.kill_id,
            "resource_type": r.resource_type,
            "resource_id": r.resource_id,
            "region": r.region,
            "prior": json.dumps(r.to_dict(), sort_keys=True),
            "act": entry.act,
            "reason": entry.reason,
            "message": entry.message,
            "suspended_by_us": json.dumps(entry.suspended_by_us),
            "restored": entry.restored,
            "updated_at": self._now(),
        }
        for name in ("outcome", "code", "restored_at"):
            value = getattr(entry, name)
            if value is not None:
                item[name] = value
        if entry.attached_by_us is not None:
            item["attached_by_us"] = entry.attached_by_us
        return item

    def resources(self, kill_id: str) -> list[ResourceEntry]:
        out = []
        for item in self.store.query(kill_pk(kill_id), "RES#"):
            out.append(
                ResourceEntry(
                    kill_id=kill_id,
                    resource=Resource.from_dict(json.loads(item["prior"])),
                    act=item["act"],
                    reason=item.get("reason", ""),
                    outcome=item.get("outcome"),
                    code=item.get("code"),
                    message=item.get("message", ""),
                    attached_by_us=item.get("attached_by_us"),
                    suspended_by_us=json.loads(item.get("suspended_by_us") or "[]"),
                    restored=bool(item.get("restored")),
                    restored_at=item.get("restored_at"),
                )
            )
        return out

    # -- agent state ------------------------------------------------------------------------------------
    def set_agent_state(self, agent: str, state: AgentState, reason: str, kill_id: str | None = None) -> None:
        item: dict[str, Any] = {
            PK: agent_pk(agent),
            SK: "STATE",
            "agent": agent,
            "state": state.value,
            "updated_at": self._now(),
            "reason": reason,
        }
        if kill_id:
            item["kill_id"] = kill_id
        self.store.put(item)

    def agent_state(self, agent: str) -> dict[str, Any] | None:
        return self.store.get(agent_pk(agent), "STATE")

    # -- rejected events --------------------------------------------------------------------------------
    def record_rejected(self, reason: str, message_id: str | None, raw: str) -> None:
        now = self._clock().astimezone(UTC)
        self.store.put(
            {
                PK: f"REJECTED#{now.date().isoformat()}",
                SK: f"{now.isoformat(timespec='microseconds')}#{message_id or '-'}",
                "reason": reason,
                "message_id": message_id or "",
                "raw": raw[:RAW_LIMIT],
                "recorded_at": _iso(now),
                TTL_ATTR: self._ttl(self.retention_days),
            }
        )

    def rejected(self, day: str) -> list[dict[str, Any]]:
        return self.store.query(f"REJECTED#{day}")


class InMemoryKillLedger(ItemKillLedger):
    def __init__(self, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.memory = MemoryItemStore()
        super().__init__(self.memory, clock=clock)


class DynamoKillLedger(ItemKillLedger):
    def __init__(
        self,
        table_name: str,
        *,
        session: boto3.Session | None = None,
        region: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        retention_days: int = 400,
    ) -> None:
        super().__init__(DynamoItemStore(table_name, session, region), clock=clock, retention_days=retention_days)
