"""Kill ledger: what every kill planned and changed, so that `restore` can undo exactly that.

Items (see `killswitch.keys`):
- kill record        pk `AGENT#<agent>`  sk `KILL#<kill_id>`   status, reason, alert summary, plan (JSON)
- kill pointer       pk `KILL#<kill_id>` sk `RECORD`           agent (find a kill from its id alone: `approve`)
- kill resource      pk `KILL#<kill_id>` sk `RES#<region>#<id>` prior state (JSON), action, result, restore marks
- dedupe marker      pk `DEDUPE#<key>`   sk `DEDUPE`           written with `attribute_not_exists` before acting
- agent state        pk `AGENT#<agent>`  sk `STATE`            state OK|THRIFT|KILLED, updated_at, reason
- rejected event     pk `REJECTED#<day>` sk `<timestamp>#<message id>` reason, raw (truncated)

Structured values (plan, prior state) are stored as JSON strings: no float/Decimal conversions, and restore reads
back exactly what was written. `DynamoKillLedger` and `InMemoryKillLedger` are the same `ItemKillLedger` over the
one item layer (`killswitch.items.ItemTable`), on DynamoDB or on its in-memory twin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import boto3

from killswitch.items import ItemTable
from killswitch.keys import (
    AGENT_STATE_SK,
    DEDUPE_SK,
    KILL_POINTER_SK,
    KILL_PREFIX,
    PK,
    RESOURCE_PREFIX,
    SK,
    TTL_ATTR,
    agent_pk,
    dedupe_pk,
    kill_pk,
    kill_sk,
    rejected_pk,
    rejected_sk,
    resource_sk,
)
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


def _plan_json(plan: dict[str, Any] | None) -> str:
    """DynamoDB items are limited to 400 KB: a plan of thousands of resources keeps its counts, not its rows (each
    resource has its own item anyway)."""
    if not plan:
        return ""
    text = json.dumps(plan, sort_keys=True, default=str)
    if len(text.encode()) <= PLAN_LIMIT:
        return text
    return json.dumps({**{k: v for k, v in plan.items() if k != "decisions"}, "truncated": True}, default=str)


class ItemKillLedger:
    """`KillLedger` over the item layer (the same items in memory and in DynamoDB)."""

    def __init__(self, store: ItemTable, *, clock: Callable[[], datetime] = _utcnow, retention_days: int = 400):
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
            SK: DEDUPE_SK,
            "kill_id": kill_id,
            "created_at": self._now(),
            TTL_ATTR: self._ttl(DEDUPE_TTL_DAYS),
        }
        if self.store.put_new(item):
            return None
        existing = self.store.get(dedupe_pk(dedupe_key), DEDUPE_SK) or {}
        return str(existing.get("kill_id") or "?")

    def release(self, dedupe_key: str) -> None:
        self.store.delete(dedupe_pk(dedupe_key), DEDUPE_SK)

    # -- kills ------------------------------------------------------------------------------------------
    def put_kill(self, record: KillRecord) -> None:
        item: dict[str, Any] = {
            PK: agent_pk(record.agent),
            SK: kill_sk(record.kill_id),
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
        self.store.put({PK: kill_pk(record.kill_id), SK: KILL_POINTER_SK, "agent": record.agent})

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
        pointer = self.store.get(kill_pk(kill_id), KILL_POINTER_SK)
        if not pointer:
            return None
        item = self.store.get(agent_pk(pointer["agent"]), kill_sk(kill_id))
        return self._record(item) if item else None

    def list_kills(self, agent: str) -> list[KillRecord]:
        kills = [self._record(i) for i in self.store.query(agent_pk(agent), KILL_PREFIX)]
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
        for item in self.store.query(kill_pk(kill_id), RESOURCE_PREFIX):
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
            SK: AGENT_STATE_SK,
            "agent": agent,
            "state": state.value,
            "updated_at": self._now(),
            "reason": reason,
        }
        if kill_id:
            item["kill_id"] = kill_id
        self.store.put(item)

    def agent_state(self, agent: str) -> dict[str, Any] | None:
        return self.store.get(agent_pk(agent), AGENT_STATE_SK)

    # -- rejected events --------------------------------------------------------------------------------
    def record_rejected(self, reason: str, message_id: str | None, raw: str) -> None:
        now = self._clock().astimezone(UTC)
        self.store.put(
            {
                PK: rejected_pk(now.date().isoformat()),
                SK: rejected_sk(now.isoformat(timespec="microseconds"), message_id),
                "reason": reason,
                "message_id": message_id or "",
                "raw": raw[:RAW_LIMIT],
                "recorded_at": _iso(now),
                TTL_ATTR: self._ttl(self.retention_days),
            }
        )

    def rejected(self, day: str) -> list[dict[str, Any]]:
        return self.store.query(rejected_pk(day))


class InMemoryKillLedger(ItemKillLedger):
    """On the in-memory twin of DynamoDB (`memory`: the twin client, for tests and benchmarks)."""

    def __init__(self, *, clock: Callable[[], datetime] = _utcnow) -> None:
        table = ItemTable.in_memory()
        self.memory = table.client
        super().__init__(table, clock=clock)


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
        table = ItemTable.connect(table_name, session=session, region=region)
        super().__init__(table, clock=clock, retention_days=retention_days)
