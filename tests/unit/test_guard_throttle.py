"""Step-down before the kill: past `throttle.from_pct` of the day cap, charges are slowed to N a minute."""

from __future__ import annotations

import pytest

from killswitch.config import ConfigError, parse_config
from killswitch.guard import Caps, Guard, InMemoryLedger, InMemoryMetrics
from killswitch.guard.stepdown import ThrottlePolicy


class FakeTime:
    """A clock whose sleep() advances it: waiting is recorded, not spent."""

    def __init__(self) -> None:
        self.now = 1_795_000_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make(t: FakeTime, metrics: InMemoryMetrics | None = None) -> Guard:
    return Guard(
        "support-bot",
        Caps(per_day_usd=10.0),
        InMemoryLedger(),
        throttle=ThrottlePolicy(from_pct=90, max_calls_per_minute=2, recheck_seconds=0),
        clock=t.clock,
        sleep=t.sleep,
        metrics=metrics,
    )


def test_below_from_pct_calls_are_not_slowed() -> None:
    t = FakeTime()
    guard = make(t)
    with guard.run() as run:
        for i in range(20):
            run.charge_usd(0.40, kind="compute", name=f"job-{i}")  # up to $8.00 = 80%
    assert t.sleeps == [] and not guard.throttled


def test_past_from_pct_at_most_n_calls_a_minute_then_the_cap_still_holds() -> None:
    t = FakeTime()
    metrics = InMemoryMetrics()
    guard = make(t, metrics)
    with guard.run() as run:
        run.charge_usd(9.0, kind="compute")  # 90%: throttled from here on
        assert guard.throttled
        starts = []
        for _ in range(5):
            run.charge_usd(0.1, kind="compute")
            starts.append(t.now)
    # 2 a minute: the 3rd and 5th charge wait for the window to slide.
    assert starts[0] == starts[1] and starts[2] == starts[0] + 60 and starts[4] == starts[0] + 120
    assert sum(t.sleeps) == pytest.approx(120.0)
    assert guard.throttle is not None and guard.throttle.waited_seconds == pytest.approx(120.0)
    assert metrics.total("GuardThrottledSeconds") == pytest.approx(120.0)
    assert guard.spent_usd() == pytest.approx(9.5) and not guard.stopped


def test_throttle_comes_from_the_config_and_is_validated() -> None:
    base = "regions: [us-east-1]\nagents:\n  - name: bot\n    budget: {amount_usd: 10}\n"
    cfg = parse_config(base + "    throttle: {from_pct: 85, max_calls_per_minute: 6}\n")
    throttle = cfg.agent("bot").throttle
    assert throttle is not None
    assert ThrottlePolicy.from_config(throttle) == ThrottlePolicy(from_pct=85, max_calls_per_minute=6)
    with pytest.raises(ConfigError) as err:
        parse_config(base + "    throttle: {from_pct: 150, max_calls_per_minute: 0}\n")
    fields = {i.field for i in err.value.issues}
    assert fields == {"agents[0].throttle.from_pct", "agents[0].throttle.max_calls_per_minute"}
