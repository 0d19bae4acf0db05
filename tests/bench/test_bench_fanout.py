"""Smoke test of the kill fan-out benchmark on a tiny fleet: the section has the expected shape and counts."""

from __future__ import annotations

from bench import fanout


def test_fanout_section_on_ten_instances() -> None:
    section = fanout.run(sizes=(10,))
    assert section.title == "Kill fan-out (moto)"
    assert len(section.rows) == 1 and section.rows[0][0] == "10"
    assert len(section.rows[0]) == len(section.headers)
    f = section.figures
    assert f["n10.stopped"] == 10
    assert f["n10.lambda_path_ok"] == 1.0
    assert f["n10.calls.ec2:StopInstances"] == 1
    assert f["n10.calls.ecs:StopTask"] == fanout.TASKS
    assert f["n10.naive_calls"] >= 10 + fanout.SERVICES + fanout.TASKS  # one stop call per resource
    assert f["n10.minimum_calls"] <= f["n10.compute_calls"] <= f["n10.naive_calls"]
    assert f["n10.ledger_calls"] > 0 and f["n10.event_calls"] == 1


def test_minimum_calls_follow_the_api_limits() -> None:
    m = fanout.minimum_calls(5_000)
    assert m["GetResources"] == 51 and m["DescribeInstances"] == 5 and m["StopInstances"] == 5
