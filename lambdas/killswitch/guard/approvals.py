"""Approvals of runs paused by `escalate`, kept where the agent cannot write them.

Ops approve a paused run with `killswitch approve-run RUN_ID` (their own credentials): one item per run under
`APPROVAL#<agent>` / `RUN#<run_id>` (`killswitch.keys`). An agent's policy may only GetItem in its own approval
partition, so an approval never comes from the agent itself. Each approval has a fresh `approval_id`: the guard
resumes a paused run once per approval it has not seen yet, so one approval lets the run go on until its next pause
(the count of costly calls starts again), not for ever.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from killswitch.guard.ids import new_id
from killswitch.keys import PK, SK, TTL_ATTR, approval_pk, approval_sk

# An approval outlives any run that could still be paused waiting for it.
APPROVAL_RETENTION_SECONDS = 30 * 86400


@dataclass(frozen=True)
class Approval:
    agent: str
    run_id: str
    approval_id: str
    approved_at: str  # ISO-8601 UTC
    approved_by: str = ""
    note: str = ""

    def to_item(self, now: float) -> dict[str, Any]:
        """The DynamoDB item (plain attribute values; `killswitch.guard.dynamo` adds the wire types)."""
        return {
            PK: approval_pk(self.agent),
            SK: approval_sk(self.run_id),
            "agent": self.agent,
            "run_id": self.run_id,
            "approval_id": self.approval_id,
            "approved_at": self.approved_at,
            "approved_by": self.approved_by,
            "note": self.note,
            TTL_ATTR: int(now) + APPROVAL_RETENTION_SECONDS,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Approval:
        return cls(
            agent=str(item.get("agent", "")),
            run_id=str(item.get("run_id", "")),
            approval_id=str(item.get("approval_id", "")),
            approved_at=str(item.get("approved_at", "")),
            approved_by=str(item.get("approved_by", "")),
            note=str(item.get("note", "")),
        )


def new_approval(agent: str, run_id: str, *, approved_by: str = "", note: str = "", now: float) -> Approval:
    if not agent or not run_id:
        raise ValueError("an approval needs the agent and the run id")
    at = datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="seconds")
    return Approval(agent, run_id, f"appr-{new_id()}", at, approved_by, note)


@runtime_checkable
class ApprovalReader(Protocol):
    """Where the guard looks for the approval of a paused run (the agent only reads)."""

    def get_approval(self, agent: str, run_id: str) -> Approval | None: ...


class InMemoryApprovals:
    """The in-memory twin of the approval partition (tests, local runs): `InMemoryLedger` holds one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], Approval] = {}

    def put_approval(self, approval: Approval) -> None:
        with self._lock:
            self._items[(approval.agent, approval.run_id)] = approval

    def get_approval(self, agent: str, run_id: str) -> Approval | None:
        with self._lock:
            return self._items.get((agent, run_id))
