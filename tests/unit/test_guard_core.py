"""Guard behaviour on the in-memory ledger: charges, caps, thrift mode, kill events, spend records."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

import pytest

from killswitch.events import KillSwitchEvent
from killswitch.guard import (
    BudgetExceeded,
    Caps,
    ChargeRecord,
    Guard,
    InMemoryLedger,
    InMemoryPublisher,
    LeasePolicy,
    Mode,
    ModelPrice,
)

D = Decimal
HAIKU = "anthropic.claude-haiku-4-5"  # $1 in / $5 out per 1M tokens
SONNET = "anthropic.claude-sonnet-4-5"
FLAT = ModelPrice.of(1_000_000, 1_000_000)  # $1 per token: easy arithmetic


class Clock:
    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_guard(**kwargs: object) -> tuple[Guard, InMemoryLedger, InMemoryPublisher, list[ChargeRecord]]:
    ledger = InMemoryLedger()
    pub = InMemoryPublisher()
    records: list[ChargeRecord] = []
    caps = kwargs.pop("caps", Caps(per_run_usd=5.0, per_day_usd=50.0))
    guard = Guard(
        "log-summarizer",
        caps,  # type: ignore[arg-type]
        ledger,
        publisher=pub,
        spend_sink=records.append,
        models=(HAIKU, SONNET),
        **kwargs,  # type: ignore[arg-type]
    )
    return guard, ledger, pub, records


def test_the_documented_flow() -> None:
    guard, ledger, _, records = make_guard()
    with guard.run(workflow="triage") as run:
        with run.charge(model=HAIKU, input_tokens=1200, max_output_tokens=800) as call:
            assert guard.ledger.usage("log-summarizer", "agent", guard.period_key()).reserved == D(
                "0.0055"
            )  # worst case: 1200 x $1.25 (cache write) + 800 x $5
            call.settle(output_tokens=640)
        run.charge_usd(0.10, kind="tool", name="market-data")
    assert guard.spent_usd() == pytest.approx(0.0012 + 0.0032 + 0.10)
    assert guard.mode is Mode.OK
    assert [r.kind for r in records] == ["llm", "tool"]
    assert records[0].amount_usd == D("0.0044") and records[0].estimated_usd == D("0.0055")
    assert all(u.reserved == 0 for u in ledger.all_usages("log-summarizer").values())
    assert len(run.run_id) == 36  # uuid4


def test_exception_inside_the_call_releases_the_reservation() -> None:
    guard, ledger, _, records = make_guard()
    with guard.run() as run:
        with pytest.raises(TimeoutError), run.charge(HAIKU, 1000, 1000) as call:
            raise TimeoutError("provider timed out")
        assert call.state == "released"
        assert not call.settle(output_tokens=10)  # settling a released call changes nothing
    assert guard.spent_usd() == 0
    assert records == []
    assert all(u.used == 0 for u in ledger.all_usages("log-summarizer").values())


def test_unsettled_call_is_charged_at_its_estimate() -> None:
    guard, *_ = make_guard()
    with guard.run() as run, run.charge(HAIKU, 1000, 1000) as call:
        pass
    assert call.state == "settled"
    assert guard.spent_usd() == pytest.approx(0.00625)


def test_double_settle_counts_once_and_a_retried_charge_id_is_the_same_charge() -> None:
    guard, _, _, records = make_guard()
    with guard.run() as run:
        with run.charge(HAIKU, 1000, 1000, charge_id="c-1") as call:
            assert call.settle(output_tokens=100) is not None
            assert call.settle(output_tokens=900) is None
        retry = run.charge(HAIKU, 1000, 1000, charge_id="c-1")
        assert retry is call and retry.settle(output_tokens=100) is None
        run.charge_usd(0.5, charge_id="t-1")
        run.charge_usd(0.5, charge_id="t-1")
    assert guard.spent_usd() == pytest.approx(0.0015 + 0.5)
    assert [r.charge_id for r in records] == ["c-1", "t-1"]


def test_budget_exceeded_is_raised_before_the_call_and_charges_nothing() -> None:
    guard, ledger, pub, _ = make_guard(caps=Caps(per_run_usd=1.0, per_day_usd=50.0))
    with guard.run() as run:
        run.charge_usd(0.9, name="a")
        before = ledger.all_usages("log-summarizer")
        with pytest.raises(BudgetExceeded) as info:
            run.charge("x", 0, 200_000, price=ModelPrice.of(1, 1))  # reserve 0.2 > 0.1 left on the run cap
        assert info.value.scope == "run"
        assert ledger.all_usages("log-summarizer") == before
        run.charge_usd(0.1, name="fits exactly")
    assert pub.events == []  # a run cap alone does not kill (kill_on_run_cap=False)
    assert guard.mode is Mode.OK


def test_agent_cap_stops_the_agent_and_publishes_one_kill_event() -> None:
    guard, _, pub, _ = make_guard(caps=Caps(per_day_usd=1.0))
    with guard.run() as run:
        run.charge_usd(0.95, name="big")
        for _ in range(3):
            with pytest.raises(BudgetExceeded):
                run.charge_usd(0.10, name="more")
        with pytest.raises(BudgetExceeded, match="STOPPED"):
            run.charge_usd(0.01, name="would fit")
    with guard.run() as other, pytest.raises(BudgetExceeded):
        other.charge_usd(0.01)
    assert guard.mode is Mode.STOPPED
    assert len(pub.events) == 1
    event = KillSwitchEvent.model_validate_json(pub.events[0].to_message())
    assert (event.source, event.action, event.agent, event.run_id) == (
        "killswitch.guard",
        "kill",
        "log-summarizer",
        run.run_id,
    )
    assert event.cap_usd == 1.0 and event.spend_usd == pytest.approx(0.95)
    with pytest.raises(BudgetExceeded):
        guard.route("high")


def test_workflow_cap_is_enforced_per_label() -> None:
    guard, *_ = make_guard(caps=Caps(per_workflow_usd={"deep-research": 0.5}))
    with guard.run(workflow="deep-research") as run:
        run.charge_usd(0.4)
        with pytest.raises(BudgetExceeded) as info:
            run.charge_usd(0.2)
        assert info.value.scope == "workflow"
        with pytest.raises(BudgetExceeded, match="STOPPED"):
            run.charge_usd(0.01)  # the workflow crossed its cap: stopped for the period
    with guard.run(workflow="triage") as other:
        other.charge_usd(0.2)  # another label is not limited
    assert guard.mode is Mode.OK


def test_kill_on_run_cap_publishes_with_the_run_id() -> None:
    guard, _, pub, _ = make_guard(caps=Caps(per_run_usd=0.1), kill_on_run_cap=True)
    with guard.run() as run, pytest.raises(BudgetExceeded):
        run.charge_usd(0.2)
    assert [e.run_id for e in pub.events] == [run.run_id]


def test_publisher_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def publish(self, event: KillSwitchEvent) -> None:
            raise ConnectionError("sns down")

    guard = Guard("a", Caps(per_day_usd=0.1), InMemoryLedger(), publisher=Broken())
    # the agent sees the budget error, not the SNS error
    with caplog.at_level(logging.ERROR, logger="killswitch.guard"), guard.run() as run, pytest.raises(BudgetExceeded):
        run.charge_usd(0.2)
    assert "publishing the kill event failed" in caplog.text


def test_thrift_mode_routes_to_the_cheap_model() -> None:
    guard, *_ = make_guard(caps=Caps(per_day_usd=10.0), warn_at_pct=80)
    assert guard.mode is Mode.OK
    assert guard.route("high") == SONNET and guard.route("low") == HAIKU and guard.route(0.7) == SONNET
    with guard.run() as run:
        run.charge_usd(7.99)
        assert guard.mode is Mode.OK
        run.charge_usd(0.01)
    assert guard.mode is Mode.THRIFT
    assert guard.route("high") == HAIKU
    assert guard.route("critical") == SONNET
    with guard.run() as run:
        run.charge_usd(2.0)
    assert guard.mode is Mode.STOPPED


def test_spend_records_use_open_telemetry_genai_names() -> None:
    guard, _, _, records = make_guard()
    with guard.run(workflow="triage") as run:
        with run.charge(SONNET, 1000, 500) as call:
            call.settle(output_tokens=200, input_tokens=400, cache_read_tokens=600)
        run.charge_usd(0.02, name="search")
    llm, tool = (r.attributes() for r in records)
    assert llm["gen_ai.request.model"] == SONNET
    assert llm["gen_ai.usage.input_tokens"] == 1000
    assert llm["gen_ai.usage.output_tokens"] == 200
    assert llm["gen_ai.usage.cache_read.input_tokens"] == 600
    assert llm["gen_ai.operation.name"] == "chat"
    assert llm["killswitch.cost_usd"] == pytest.approx(400 * 3e-6 + 600 * 0.3e-6 + 200 * 15e-6)
    assert tool["gen_ai.tool.name"] == "search" and tool["gen_ai.operation.name"] == "execute_tool"
    assert tool["killswitch.workflow"] == "triage"


def test_spend_sink_failure_does_not_break_the_agent(caplog: pytest.LogCaptureFixture) -> None:
    def sink(record: ChargeRecord) -> None:
        raise RuntimeError("table gone")

    guard = Guard("a", Caps(per_day_usd=1.0), InMemoryLedger(), spend_sink=sink)
    with caplog.at_level(logging.ERROR, logger="killswitch.guard"), guard.run() as run:
        run.charge_usd(0.1)
    assert guard.spent_usd() == pytest.approx(0.1)
    assert "spend sink failed" in caplog.text


def test_crashed_call_is_swept_at_its_estimate_after_expiry() -> None:
    clock = Clock()
    guard, ledger, _, records = make_guard(clock=clock, reservation_ttl=600, sweep_interval=0)
    run = guard.start_run()
    run.charge(HAIKU, 1000, 1000)  # the process "dies" here: never settled, never released
    assert guard.spent_usd() == 0
    clock.now += 599
    assert guard.sweep() == []
    clock.now += 2
    swept = guard.sweep()
    assert [h.amount for h in swept] == [D("0.00625")]
    assert guard.spent_usd() == pytest.approx(0.00625)
    assert [(r.state, r.amount_usd) for r in records] == [("swept", D("0.00625"))]
    assert all(u.reserved == 0 for u in ledger.all_usages("log-summarizer").values())


def test_runs_sweep_opportunistically() -> None:
    clock = Clock()
    guard, *_ = make_guard(clock=clock, reservation_ttl=60, sweep_interval=30)
    guard.start_run().charge(HAIKU, 1000, 1000)
    clock.now += 120
    with guard.run():
        pass
    assert guard.spent_usd() == pytest.approx(0.00625)


# -- leases -----------------------------------------------------------------------------------------------------


def test_lease_covers_many_calls_with_one_reservation_and_returns_the_rest() -> None:
    guard, ledger, _, records = make_guard(caps=Caps(per_run_usd=5.0, per_day_usd=50.0), leases=LeasePolicy())
    start = ledger.operations
    with guard.run() as run:
        for _ in range(20):
            with run.charge(HAIKU, 1000, 1000) as call:  # reserve 0.00625
                call.settle(output_tokens=200)  # actual 0.002
        assert run.ledger_reservations == 1  # one lease: min(10% of 50, run cap 5) = 5.00
        assert ledger.usage("log-summarizer", "agent", guard.period_key()).reserved == D(5)
        assert guard.spent_usd() == 0  # leases commit when they settle
    assert ledger.operations - start == 2  # lease + settle, for 20 calls
    u = ledger.usage("log-summarizer", "agent", guard.period_key())
    assert (u.committed, u.reserved) == (D("0.04"), D(0))
    assert len(records) == 20 and run.spent_usd == pytest.approx(0.04)


def test_lease_is_a_slice_of_the_remaining_headroom() -> None:
    guard, ledger, _, _ = make_guard(caps=Caps(per_day_usd=10.0), leases=LeasePolicy(fraction=0.1))
    with guard.run() as run:
        run.charge_usd(0.01)
        assert ledger.usage("log-summarizer", "agent", guard.period_key()).reserved == D(1)  # 10% of 10
        run.charge_usd(1.5)  # does not fit: lease handed back, a new lease of max(needed, 10% of rest)
        assert run.ledger_reservations == 2
        u = ledger.usage("log-summarizer", "agent", guard.period_key())
        assert u.committed == D("0.01") and u.reserved == D("1.5")


def test_leases_never_hoard_past_the_cap() -> None:
    guard, ledger, _, _ = make_guard(caps=Caps(per_day_usd=1.0), leases=LeasePolicy(fraction=0.5))
    with guard.run() as a, guard.run() as b:
        a.charge_usd(0.1)  # lease 0.5
        b.charge_usd(0.1)  # lease 0.25
        a.charge_usd(0.6)  # a's first lease (0.4 free) returned, then a lease of 0.6
        with pytest.raises(BudgetExceeded):
            b.charge_usd(0.3)  # b's lease (0.15 free) is returned first: 1 - 0.1 - 0.6 - 0.1 = 0.2 left
        assert ledger.usage("log-summarizer", "agent", guard.period_key()).used <= D(1)
        with pytest.raises(BudgetExceeded, match="STOPPED"):
            b.charge_usd(0.2)  # it would fit, but the agent crossed its cap: stopped for the period
    u = ledger.usage("log-summarizer", "agent", guard.period_key())
    assert (u.committed, u.reserved) == (D("0.8"), D(0))
    guard.resume()
    with guard.run() as c:
        c.charge_usd(0.2)
    assert guard.spent_usd() == pytest.approx(1.0)


def test_threads_in_one_run_share_leases_without_overspending() -> None:
    guard, ledger, _, records = make_guard(caps=Caps(per_day_usd=2.0), leases=LeasePolicy())
    denied = []
    lock = threading.Lock()

    def worker(run_n: int) -> None:
        with guard.run() as run:
            for _ in range(40):
                try:
                    with run.charge("flat", 0, 1, price=ModelPrice.of(0, 25_000)) as call:  # 0.025 each
                        call.settle(output_tokens=1)
                except BudgetExceeded:
                    with lock:
                        denied.append(run_n)
                u = ledger.usage("log-summarizer", "agent", guard.period_key())
                assert u.used <= D(2)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    u = ledger.usage("log-summarizer", "agent", guard.period_key())
    assert u.reserved == 0 and u.committed <= D(2)
    assert u.committed == sum((r.amount_usd for r in records), D(0))
    assert denied  # 16 x 40 x 0.025 = 16 > 2: the cap held


def test_expired_lease_of_a_dead_run_is_swept_at_its_full_amount() -> None:
    clock = Clock()
    guard, ledger, _, _ = make_guard(
        caps=Caps(per_day_usd=10.0), leases=LeasePolicy(ttl_seconds=300), clock=clock, sweep_interval=0
    )
    run = guard.start_run()
    run.charge_usd(0.05)  # lease of 1.00; the process dies without close()
    clock.now += 301
    swept = guard.sweep()
    assert [(h.kind, h.amount) for h in swept] == [("lease", D(1))]
    u = ledger.usage("log-summarizer", "agent", guard.period_key())
    assert (u.committed, u.reserved) == (D(1), D(0))  # conservative: the whole lease counts as spent
    run.close()  # a late close changes nothing
    assert ledger.usage("log-summarizer", "agent", guard.period_key()).committed == D(1)


def test_idle_lease_near_its_deadline_is_handed_back_before_the_sweeper_could_take_it_in_full() -> None:
    clock = Clock()
    policy = LeasePolicy(ttl_seconds=300, return_margin_seconds=60, auto_return=False)
    guard, ledger, _, _ = make_guard(caps=Caps(per_day_usd=10.0), leases=policy, clock=clock, sweep_interval=0)
    with guard.run() as run:
        run.charge_usd(0.05)  # lease of 1.00
        clock.now += 200
        assert run.return_idle_leases() == 0  # not near its deadline yet
        clock.now += 41
        assert run.return_idle_leases() == 1
        u = ledger.usage("log-summarizer", "agent", guard.period_key())
        assert (u.committed, u.reserved) == (D("0.05"), D(0))
        clock.now += 100
        assert guard.sweep() == []  # nothing left for the sweeper
        run.charge_usd(0.05)  # a fresh lease
        assert run.ledger_reservations == 2
    assert guard.spent_usd() == pytest.approx(0.10)


def test_a_lease_in_use_near_its_deadline_takes_no_new_charges() -> None:
    clock = Clock()
    policy = LeasePolicy(ttl_seconds=300, return_margin_seconds=60, auto_return=False)
    guard, ledger, _, _ = make_guard(caps=Caps(per_day_usd=10.0), leases=policy, clock=clock)
    with guard.run() as run:
        slow = run.charge("flat", 0, 1, price=ModelPrice.of(0, 100_000))  # 0.10 in flight on lease 1
        clock.now += 250
        assert run.return_idle_leases() == 0  # a call is in flight
        run.charge_usd(0.05)  # goes to a new lease
        assert run.ledger_reservations == 2
        slow.settle(output_tokens=1)
    u = ledger.usage("log-summarizer", "agent", guard.period_key())
    assert (u.committed, u.reserved) == (D("0.15"), D(0))


def test_auto_return_timer_hands_back_an_idle_lease() -> None:
    import time

    policy = LeasePolicy(ttl_seconds=2.0, return_margin_seconds=1.5)  # timer fires after ~1 s
    guard, ledger, _, _ = make_guard(caps=Caps(per_day_usd=10.0), leases=policy)
    run = guard.start_run()
    run.charge_usd(0.05)
    assert ledger.usage("log-summarizer", "agent", guard.period_key()).reserved == D(1)
    deadline = time.monotonic() + 10
    while ledger.usage("log-summarizer", "agent", guard.period_key()).reserved and time.monotonic() < deadline:
        time.sleep(0.05)
    u = ledger.usage("log-summarizer", "agent", guard.period_key())
    assert (u.committed, u.reserved) == (D("0.05"), D(0))
    run.close()


def test_metrics_count_denials_kills_loop_trips_and_spend() -> None:
    from killswitch.guard import InMemoryMetrics, LoopDetected, LoopLimits

    metrics = InMemoryMetrics()
    guard = Guard("a", Caps(per_day_usd=1.0), metrics=metrics, loop=LoopLimits(max_identical_calls=2))
    with guard.run() as run:
        run.charge_usd(0.25, name="x")
        with pytest.raises(LoopDetected):
            run.charge_usd(0.25, name="x")
    with guard.run() as run:
        for i in range(2):
            with pytest.raises(BudgetExceeded):
                run.charge_usd(5.0, name=f"big-{i}")
    assert metrics.total("GuardSpendUsd") == pytest.approx(0.25)
    assert metrics.total("GuardLoopTrips") == 1
    assert metrics.total("GuardDenials") == 2
    assert metrics.total("GuardKills") == 2  # the loop trip and the crossed cap
    assert {r[3]["agent"] for r in metrics.records} == {"a"}


def test_emf_lines_follow_the_embedded_metric_format() -> None:
    import io
    import json

    from killswitch.guard import EmfMetrics

    out = io.StringIO()
    EmfMetrics(stream=out, clock=lambda: 1_795_000_000.5)("GuardDenials", 1, "Count", {"agent": "a"})
    doc = json.loads(out.getvalue())
    assert doc["_aws"]["Timestamp"] == 1_795_000_000_500
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "AgentKillSwitch"
    assert directive["Dimensions"] == [["agent", "service"]]
    assert directive["Metrics"] == [{"Name": "GuardDenials", "Unit": "Count"}]
    assert (doc["agent"], doc["service"], doc["GuardDenials"]) == ("a", "killswitch-guard", 1)
