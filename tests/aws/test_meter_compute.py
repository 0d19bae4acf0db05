"""The meter's compute tick and burn-rate rule on moto."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from killswitch.kill.discover import Clients
from killswitch.meter.compute import Ec2Source, FargateSource
from killswitch.spend.ledger import SOURCE_METER, to_money
from killswitch.testing import sim
from tests.aws import meter_support as M
from tests.aws.kill_support import aws, instance_state  # noqa: F401 (fixture)

EAST = "us-east-1"
T3_MICRO = Decimal("0.0104")  # snapshot us-east-1 price per hour


def test_tick_accrues_running_tagged_instances_since_the_last_tick(aws: Clients) -> None:  # noqa: F811
    mine = [sim.run_instance(aws, EAST, sim.agent_tags(M.AGENT, "run-1")) for _ in range(3)]
    sim.run_instance(aws, EAST, {"Name": "untagged"})
    stopped = sim.run_instance(aws, EAST, sim.agent_tags(M.AGENT))
    aws("ec2", EAST).stop_instances(InstanceIds=[stopped])
    launched = aws("ec2", EAST).describe_instances(InstanceIds=[mine[0]])["Reservations"][0]["Instances"][0]
    start = launched["LaunchTime"] + timedelta(hours=2)  # moto stamps the real launch time
    w = M.wire(aws, now=start)
    w.meter.state.set_last_tick(start)  # type: ignore[union-attr]

    later = start + timedelta(minutes=30)
    report = w.meter.tick(later)
    assert report.units == 3
    (fact,) = report.facts
    assert fact.kind == "compute" and fact.run_id == "run-1"
    assert fact.amount_usd == 3 * T3_MICRO / 2  # three instances, half an hour
    assert w.meter.state.last_tick() == later  # type: ignore[union-attr]

    redelivered = w.meter.tick(later)
    assert redelivered.facts == [] and "not after the last tick" in redelivered.note
    assert len(w.spend.entries(M.AGENT, source=SOURCE_METER)) == 1


def test_first_tick_counts_one_interval_and_an_outage_at_most_an_hour(aws: Clients) -> None:  # noqa: F811
    iid = sim.run_instance(aws, EAST, sim.agent_tags(M.AGENT))
    launched = aws("ec2", EAST).describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["LaunchTime"]
    t0 = launched + timedelta(days=1)
    w = M.wire(aws, now=t0)
    first = w.meter.tick(t0)
    assert first.facts[0].amount_usd == to_money(T3_MICRO * 5 / 60)  # tick_minutes: 5
    after_outage = w.meter.tick(t0 + timedelta(hours=6))
    assert after_outage.facts[0].amount_usd == T3_MICRO


def test_fargate_tasks_are_priced_per_vcpu_and_gb(aws: Clients) -> None:  # noqa: F811
    task = sim.ecs_task(aws, EAST, "agents", sim.agent_tags(M.AGENT, "run-9"))
    sim.ecs_task(aws, EAST, "agents", {"Name": "untagged"})
    (unit,) = FargateSource(aws).running(EAST)
    assert unit.resource_id == task and unit.agent == M.AGENT and unit.run_id == "run-9"
    assert unit.items == {"fargate:vcpu": 0.25, "fargate:gb": 0.5}  # cpu 256, memory 512
    assert Ec2Source(aws).running(EAST) == []


def test_burn_rate_kills_on_a_spike_far_below_the_period_cap(aws: Clients) -> None:  # noqa: F811
    iid = sim.run_instance(aws, EAST, sim.agent_tags(M.OTHER))
    crawler = M.role("crawler-role", M.OTHER)
    w = M.wire(aws)
    # $3 then $3 inside the hour: $6 is 60% of the $10 budget > burn limit 50%; the period total (60%) is below warn.
    small = {"input_tokens": 1_000_000, "output_tokens": 0}
    first = w.meter.process_logs(M.logs_event(M.call(crawler, "b1", timestamp="2026-11-22T10:00:00Z", **small)))
    assert first.decisions == []
    second = w.meter.process_logs(M.logs_event(M.call(crawler, "b2", timestamp="2026-11-22T10:14:00Z", **small)))
    (decision,) = second.decisions
    assert decision.operation.value == "kill"
    assert "burn rate: $6.00 in the last 60 min is 60% of the $10.00 budget (limit 50%)" in decision.reason
    assert instance_state(aws, EAST, iid) == "stopped"


def test_spend_outside_the_window_does_not_count_for_the_burn_rate(aws: Clients) -> None:  # noqa: F811
    iid = sim.run_instance(aws, EAST, sim.agent_tags(M.OTHER))
    crawler = M.role("crawler-role", M.OTHER)
    w = M.wire(aws)
    small = {"input_tokens": 1_000_000, "output_tokens": 0}
    w.meter.process_logs(M.logs_event(M.call(crawler, "b1", timestamp="2026-11-22T08:00:00Z", **small)))
    report = w.meter.process_logs(M.logs_event(M.call(crawler, "b2", timestamp="2026-11-22T10:10:00Z", **small)))
    assert report.decisions == []
    assert report.estimates[M.OTHER].total_usd == Decimal("6")
    assert instance_state(aws, EAST, iid) == "running"
