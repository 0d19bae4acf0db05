"""Our own JSON events on the kill topic (docs/contracts.md), shared by the guard SDK, the CLI and the handler."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventSource = Literal["killswitch.guard", "killswitch.cli"]
# restore/approve are not events: ops run `killswitch restore|approve` with their own credentials (docs/contracts.md).
# `approval_requested`: the guard paused a run (`escalate`); the kill Lambda forwards it to ops on the events topic.
EventAction = Literal["kill", "warn", "approval_requested"]


class KillSwitchEvent(BaseModel):
    """`{"source", "action", "agent", "run_id"?, "reason", "spend_usd"?, "cap_usd"?, "dry_run"?, "tool"?, "calls"?}`
    (`tool` and `calls`: the costly tool and how many calls paused the run, with `approval_requested`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source: EventSource
    action: EventAction
    agent: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    run_id: str | None = None
    spend_usd: float | None = None
    cap_usd: float | None = None
    dry_run: bool = False
    tool: str | None = Field(default=None, max_length=200)
    calls: int | None = Field(default=None, ge=0)

    def to_message(self) -> str:
        return self.model_dump_json(exclude_none=True)
