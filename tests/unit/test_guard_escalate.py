"""Escalation: a run calling a costly tool more than N times is paused (ApprovalRequired, one approval request)
until `Guard.approve_run(run_id)`."""

from __future__ import annotations

import pytest

from killswitch.config import ConfigError, parse_config
from killswitch.guard import (
    ApprovalRequest,
    ApprovalRequired,
    Caps,
    EscalatePolicy,
    Guard,
    InMemoryLedger,
)


def make(policy: EscalatePolicy) -> tuple[Guard, list[ApprovalRequest]]:
    requests: list[ApprovalRequest] = []
    guard = Guard(
        "support-bot", Caps(per_day_usd=100.0), InMemoryLedger(), escalate=policy, approval_sink=requests.append
    )
    return guard, requests


def test_the_call_after_n_costly_calls_pauses_the_run_until_approved() -> None:
    guard, requests = make(EscalatePolicy(tool="web_search", after_calls=2, over_usd=0.5))
    with guard.run() as run:
        run.charge_usd(1.0, name="web_search", args={"q": 1})
        run.charge_usd(0.1, name="web_search", args={"q": 2})  # not costly: not counted
        run.charge_usd(1.0, name="web_search", args={"q": 3})
        run.charge_usd(1.0, name="calculator", args={"x": 1})  # another tool
        for _ in range(2):
            with pytest.raises(ApprovalRequired) as paused:
                run.charge_usd(1.0, name="web_search", args={"q": 4})
        assert "escalate.after_calls" in str(paused.value) and f"approve_run({run.run_id!r})" in str(paused.value)
        assert guard.spent_usd() == pytest.approx(3.1)  # nothing charged for the paused calls
        assert [(r.run_id, r.tool, r.calls) for r in requests] == [(run.run_id, "web_search", 2)]  # one request
        guard.approve_run(run.run_id)
        run.charge_usd(1.0, name="web_search", args={"q": 4})
        run.charge_usd(1.0, name="web_search", args={"q": 5})
        with pytest.raises(ApprovalRequired):
            run.charge_usd(1.0, name="web_search", args={"q": 6})  # the count started again
    assert len(requests) == 2 and not guard.stopped


def test_free_tool_calls_count_when_no_price_threshold_is_set() -> None:
    guard, requests = make(EscalatePolicy(tool="delete_rows", after_calls=1))
    with guard.run() as run, pytest.raises(ApprovalRequired):
        run.tool_call("delete_rows", {"table": "a"})
        run.tool_call("delete_rows", {"table": "b"})
    with guard.run() as other:
        other.tool_call("delete_rows", {"table": "c"})  # a new run has its own count
    assert len(requests) == 1


def test_escalate_comes_from_the_config_and_is_validated() -> None:
    base = "regions: [us-east-1]\nagents:\n  - name: bot\n    budget: {amount_usd: 10}\n"
    cfg = parse_config(base + "    escalate: {tool: web_search, over_usd: 0.5, after_calls: 3}\n")
    esc = cfg.agent("bot").escalate
    assert esc is not None
    assert EscalatePolicy.from_config(esc) == EscalatePolicy(tool="web_search", after_calls=3, over_usd=0.5)
    with pytest.raises(ConfigError) as err:
        parse_config(base + "    escalate: {tool: web_search, after_calls: 0}\n")
    assert err.value.issues[0].field == "agents[0].escalate.after_calls"
