"""Loop breaker: identical calls, ping-pong through headers, depth, step cap; a trip freezes the run and kills once."""

from __future__ import annotations

import pytest

from killswitch.config import LoopConfig
from killswitch.guard import (
    HEADER_CHAIN,
    HEADER_DEPTH,
    HEADER_RUN_ID,
    BudgetExceeded,
    Caps,
    Guard,
    InMemoryLedger,
    InMemoryPublisher,
    Lineage,
    LoopDetected,
    LoopLimits,
    RunFrozen,
)


def guard(agent: str = "a", pub: InMemoryPublisher | None = None, **limits: int) -> Guard:
    return Guard(agent, Caps(per_day_usd=100.0), InMemoryLedger(), publisher=pub, loop=LoopLimits(**limits))


def test_identical_tool_calls_in_a_row_trip_and_freeze_the_run() -> None:
    pub = InMemoryPublisher()
    g = guard(pub=pub, max_identical_calls=5)
    with g.run() as run:
        for _ in range(4):
            run.charge_usd(0.01, name="search", args={"q": "same", "page": 1})
        with pytest.raises(LoopDetected) as info:
            run.charge_usd(0.01, name="search", args={"page": 1, "q": "same"})  # key order does not matter
        assert info.value.kind == "identical_calls"
        assert "5 identical calls to 'tool:search'" in str(info.value)
        assert run.frozen
        with pytest.raises(RunFrozen):
            run.charge_usd(0.01, name="other")
        with pytest.raises(RunFrozen):
            run.charge("anthropic.claude-haiku-4-5", 10, 10)
    assert g.spent_usd() == pytest.approx(0.04)  # the tripping call was not charged
    assert len(pub.events) == 1
    assert pub.events[0].run_id == run.run_id and "identical_calls" in pub.events[0].reason
    with g.run() as fresh:  # other runs are unaffected
        fresh.charge_usd(0.01, name="search", args={"q": "same", "page": 1})


def test_varied_calls_do_not_trip() -> None:
    g = guard(max_identical_calls=3)
    with g.run() as run:
        for i in range(20):
            run.tool_call("search", {"q": "same"})
            run.tool_call("search", {"q": f"different {i}"})
        assert not run.frozen


def test_free_tool_calls_and_llm_fingerprints_count_too() -> None:
    g = guard(max_identical_calls=3)
    with g.run() as run:
        run.tool_call("read_file", {"path": "x"})
        run.tool_call("read_file", {"path": "x"})
        with pytest.raises(LoopDetected):
            run.tool_call("read_file", {"path": "x"})
    with g.run() as run:
        for _ in range(2):
            with run.charge("anthropic.claude-haiku-4-5", 10, 10, fingerprint="same prompt") as call:
                call.settle(output_tokens=1)
        with pytest.raises(LoopDetected):
            run.charge("anthropic.claude-haiku-4-5", 10, 10, fingerprint="same prompt")


def test_step_cap_per_run() -> None:
    g = guard(max_steps_per_run=10)
    with g.run() as run:
        for i in range(10):
            run.charge_usd(0.001, name=f"t{i}")
        with pytest.raises(LoopDetected) as info:
            run.charge_usd(0.001, name="t10")
        assert info.value.kind == "steps"


def test_depth_is_carried_in_headers_and_capped() -> None:
    pub = InMemoryPublisher()
    g = guard("worker", pub=pub, max_depth=4)
    headers = {HEADER_RUN_ID: "run-123", HEADER_DEPTH: "0", HEADER_CHAIN: ""}
    agents = ["a1", "a2", "a3", "a4"]
    for name in agents:  # a1 -> a2 -> a3 -> a4 -> worker: depth 4 is still allowed
        with guard(name).run(headers=headers) as run:
            assert run.run_id == "run-123"
            headers = run.headers()
    assert headers[HEADER_DEPTH] == "4"
    with g.run(headers=headers) as run:
        sub = run.headers()
    assert sub[HEADER_DEPTH] == "5" and sub[HEADER_CHAIN] == "a1,a2,a3,a4,worker"
    with pytest.raises(LoopDetected) as info, guard("deep", pub=pub).run(headers=sub):
        pass
    assert info.value.kind == "depth"
    assert [e.run_id for e in pub.events] == ["run-123"]


def test_ping_pong_between_two_agents_trips() -> None:
    pub = InMemoryPublisher()
    planner, critic = guard("planner", pub=pub), guard("critic", pub=pub)
    with planner.run() as p1:
        h = p1.headers()
    with critic.run(headers=h) as c1:
        h = c1.headers()
    with planner.run(headers=h) as p2:  # planner -> critic -> planner: a call back is fine
        h = p2.headers()
    with pytest.raises(LoopDetected) as info, critic.run(headers=h):  # ... -> critic again: ping-pong
        pass
    assert info.value.kind == "ping_pong"
    assert "planner" in str(info.value) and "critic" in str(info.value)
    assert pub.events[0].run_id == p1.run_id and pub.events[0].agent == "critic"


def test_headers_parse_tolerantly() -> None:
    lineage = Lineage.from_headers({"x-agent-run-id": "r", "x-agent-depth": "junk", "x-agent-chain": " a , b ,"})
    assert (lineage.run_id, lineage.depth, lineage.chain) == ("r", 0, ("a", "b"))
    assert Lineage.from_headers(None) == Lineage()


def test_limits_come_from_the_agent_config() -> None:
    limits = LoopLimits.from_config(LoopConfig(max_identical_calls=3, max_depth=2, max_steps_per_run=9))
    assert (limits.max_identical_calls, limits.max_depth, limits.max_steps_per_run) == (3, 2, 9)


def test_loop_kill_is_published_once_per_run_and_cause() -> None:
    pub = InMemoryPublisher()
    g = guard(pub=pub, max_identical_calls=2)
    with g.run() as run:
        run.tool_call("x")
        for _ in range(3):
            with pytest.raises(LoopDetected):
                run.tool_call("x")
    assert len(pub.events) == 1
    with g.run() as other, pytest.raises(BudgetExceeded):  # a budget stop is another cause
        other.charge_usd(1000)
    assert len(pub.events) == 2
