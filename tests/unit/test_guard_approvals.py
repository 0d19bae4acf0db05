"""Approvals of paused runs through the approval store (`killswitch.guard.approvals`): the in-memory twin of the
`APPROVAL#<agent>` partition, the `approval_requested` event the guard publishes, and how the kill Lambda reads it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from killswitch.config import KillSwitchConfig
from killswitch.guard import ApprovalRequired, Caps, EscalatePolicy, Guard, InMemoryLedger, InMemoryPublisher
from killswitch.guard.approvals import Approval, new_approval
from killswitch.kill.alerts import Alert, Rejected, parse_event

AGENT = "log-summarizer"
TOOL = "web_search"


def make(ledger: InMemoryLedger, **kw: Any) -> tuple[Guard, InMemoryPublisher]:
    pub = InMemoryPublisher()
    guard = Guard(
        AGENT, Caps(per_day_usd=100.0), ledger, publisher=pub, escalate=EscalatePolicy(TOOL, after_calls=1), **kw
    )
    return guard, pub


def paused_run(guard: Guard) -> Any:
    run = guard.start_run()
    run.charge_usd(0.5, name=TOOL)
    with pytest.raises(ApprovalRequired):
        run.charge_usd(0.5, name=TOOL)
    return run


def test_the_pause_publishes_one_approval_request_on_the_guard_topic() -> None:
    guard, pub = make(InMemoryLedger())
    run = paused_run(guard)
    with pytest.raises(ApprovalRequired):
        run.charge_usd(0.5, name=TOOL)
    [event] = pub.events
    assert (event.action, event.agent, event.run_id, event.tool, event.calls) == (
        "approval_requested",
        AGENT,
        run.run_id,
        TOOL,
        1,
    )
    assert event.spend_usd == 0.5


def test_an_approval_in_the_store_resumes_the_paused_run_once() -> None:
    ledger = InMemoryLedger()
    guard, _ = make(ledger)
    run = paused_run(guard)
    ledger.put_approval(new_approval(AGENT, run.run_id, approved_by="ops", now=1_700_000_000))
    run.charge_usd(0.5, name=TOOL)  # resumed; the count starts again
    with pytest.raises(ApprovalRequired):  # the same approval does not resume the next pause
        run.charge_usd(0.5, name=TOOL)
    ledger.put_approval(new_approval(AGENT, run.run_id, now=1_700_000_100))  # a new one does
    run.charge_usd(0.5, name=TOOL)
    run.close()


def test_an_approval_of_another_agent_or_run_does_nothing() -> None:
    ledger = InMemoryLedger()
    guard, _ = make(ledger)
    run = paused_run(guard)
    ledger.put_approval(new_approval("research-crawler", run.run_id, now=1_700_000_000))
    ledger.put_approval(new_approval(AGENT, "another-run", now=1_700_000_000))
    with pytest.raises(ApprovalRequired):
        run.charge_usd(0.5, name=TOOL)


class BrokenStore:
    def get_approval(self, agent: str, run_id: str) -> Approval | None:
        raise OSError("throttled")


def test_a_failing_approval_read_keeps_the_run_paused() -> None:
    guard, _ = make(InMemoryLedger(), approvals=BrokenStore())
    run = paused_run(guard)
    with pytest.raises(ApprovalRequired):
        run.charge_usd(0.5, name=TOOL)
    guard.approve_run(run.run_id)  # the in-process API still works
    run.charge_usd(0.5, name=TOOL)


def test_the_approval_item_round_trips() -> None:
    a = new_approval(AGENT, "r-1", approved_by="ops", note="checked", now=1_700_000_000)
    item = a.to_item(1_700_000_000)
    assert (item["pk"], item["sk"]) == (f"APPROVAL#{AGENT}", "RUN#r-1")
    assert Approval.from_item(item) == a and a.approval_id.startswith("appr-")
    with pytest.raises(ValueError, match="agent and the run id"):
        new_approval(AGENT, "", now=0)


def guard_message(**body: Any) -> dict[str, Any]:
    return {"source": "killswitch.guard", "action": "approval_requested", "agent": AGENT, "reason": "paused", **body}


def test_the_kill_lambda_reads_the_request_with_its_tool_and_calls(example_config: KillSwitchConfig) -> None:
    [alert] = parse_event(guard_message(run_id="r-1", tool=TOOL, calls=3), example_config)
    assert isinstance(alert, Alert)
    assert (alert.action, alert.run_id, alert.tool, alert.calls) == ("approval_requested", "r-1", TOOL, 3)


@pytest.mark.parametrize(
    "body",
    [guard_message(tool=TOOL), {**guard_message(run_id="r-1"), "source": "killswitch.cli"}],
    ids=["no run id", "not from the guard"],
)
def test_an_approval_request_needs_the_guard_and_the_run(example_config: KillSwitchConfig, body: Any) -> None:
    [result] = parse_event(json.loads(json.dumps(body)), example_config)
    assert isinstance(result, Rejected) and "approval_requested comes from the guard" in result.reason
