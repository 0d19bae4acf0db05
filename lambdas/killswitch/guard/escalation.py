"""Escalation: a run that keeps calling a costly tool is paused until a person approves it.

`escalate: {tool: NAME, over_usd: X, after_calls: N}`: a run may make N calls to tool NAME (counting only calls
charged more than X USD when `over_usd` is set); the next one raises `ApprovalRequired` before anything is charged,
and one approval request per run goes to the approval sink. `Guard.approve_run(run_id)` lets the run go on (the
count starts again); until then every further call to that tool raises `ApprovalRequired` again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from killswitch.guard.errors import GuardError

if TYPE_CHECKING:
    from killswitch.guard.guard import Guard


@dataclass(frozen=True)
class EscalatePolicy:
    tool: str
    after_calls: int
    over_usd: float | None = None

    def __post_init__(self) -> None:
        if not self.tool:
            raise ValueError("escalate.tool is required")
        if self.after_calls < 1:
            raise ValueError(f"escalate.after_calls must be >= 1 (got {self.after_calls})")

    @classmethod
    def from_config(cls, cfg: Any) -> EscalatePolicy:
        return cls(tool=str(cfg.tool), after_calls=int(cfg.after_calls), over_usd=cfg.over_usd)

    def counts(self, name: str, amount: Decimal) -> bool:
        """Does a call of tool `name` charged `amount` count towards the escalation?"""
        return name == self.tool and (self.over_usd is None or amount > Decimal(str(self.over_usd)))


@dataclass(frozen=True)
class ApprovalRequest:
    agent: str
    run_id: str
    tool: str
    calls: int
    spent_usd: Decimal
    reason: str


ApprovalSink = Callable[[ApprovalRequest], None]


class ApprovalRequired(GuardError):
    """The run is paused: a person must approve it (`Guard.approve_run(run_id)`) before this tool runs again."""

    def __init__(self, request: ApprovalRequest):
        self.request = request
        self.run_id = request.run_id
        super().__init__(
            f"{request.reason}. The run is paused until it is approved: Guard.approve_run({request.run_id!r})"
        )


class RunEscalation:
    """One run's costly tool calls since its last approval, and whether it is paused. Shares the run's lock."""

    def __init__(self, guard: Guard, run_id: str, lock: threading.RLock):
        self.guard = guard
        self.run_id = run_id
        self.lock = lock
        self.costly_calls = 0  # calls counted by `escalate` since the last approval
        self.approval_requested = False

    def check(self, name: str, amount: Decimal, spent: Callable[[], Decimal]) -> None:
        """Count a costly tool call; past `escalate.after_calls` raise ApprovalRequired until the run is approved.
        `spent` (called with the lock held) is the run's settled spend, for the request."""
        g = self.guard
        policy = g.escalate
        if policy is None or not policy.counts(name, amount):
            return
        with self.lock:
            paused = self.approval_requested
        approved = g.take_approval(self.run_id, paused=paused)
        with self.lock:
            if approved:
                self.costly_calls, self.approval_requested = 0, False
            if self.costly_calls < policy.after_calls:
                self.costly_calls += 1
                return
            first = not self.approval_requested
            self.approval_requested = True
            spent_usd = spent()
        request = ApprovalRequest(
            agent=g.agent,
            run_id=self.run_id,
            tool=name,
            calls=policy.after_calls,
            spent_usd=spent_usd,
            reason=(
                f"agent {g.agent!r} run {self.run_id} called {name!r} {policy.after_calls} times"
                + ("" if policy.over_usd is None else f" at over ${policy.over_usd} each")
                + " (escalate.after_calls)"
            ),
        )
        if first:
            g.request_approval(request)
        raise ApprovalRequired(request)
