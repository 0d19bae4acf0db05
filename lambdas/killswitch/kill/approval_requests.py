"""A guard paused a run (`escalate`) and asks ops to approve it: the kill Lambda forwards the request to the events
topic (email, Slack) with the command that approves it. Nothing is stopped and nothing is approved here: approving is
an ops command (`killswitch approve-run`, ops credentials), never an event."""

from __future__ import annotations

import shlex
from typing import Any

from killswitch.kill.alerts import Alert
from killswitch.kill.model import KillReport, Operation
from killswitch.states import ReportStatus


def approve_run_command(agent: str, run_id: str) -> str:
    return f"killswitch approve-run {shlex.quote(run_id)} --agent {shlex.quote(agent)}"


def approval_request_report(alert: Alert, *, dry_run: bool) -> KillReport:
    """The result event for ops: `detail` carries agent, run_id, tool, calls and the command to run. The agent is
    the one the intake established (its guard topic), never the message's say-so alone."""
    run_id = alert.run_id or ""
    command = approve_run_command(alert.agent, run_id)
    detail: dict[str, Any] = {
        "agent": alert.agent,
        "run_id": run_id,
        "tool": alert.tool,
        "calls": alert.calls,
        "spend_usd": alert.amount_usd,
        "command": command,
    }
    calls = f"{alert.calls} calls" if alert.calls is not None else "repeated calls"
    report = KillReport(
        Operation.APPROVAL_REQUESTED,
        alert.agent,
        run_id=run_id,
        reason=alert.reason,
        dry_run=dry_run,
        status=ReportStatus.APPROVAL_REQUESTED,
        message=f"run {run_id} of {alert.agent} is paused after {calls} of {alert.tool or 'a costly tool'}: "
        f"approve it with `{command}`",
    )
    report.detail = detail
    return report
