"""Smoke test of the kill fan-out benchmark on a tiny fleet: the section has the expected shape and counts."""

from __future__ import annotations

import pytest

from bench import fanout, fanout_kinds
from killswitch.kill.kinds import REGISTRY


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
    assert m["GetResources"] == 1 and m["DescribeInstances"] == 5 and m["StopInstances"] == 5
    assert m["verify: DescribeInstances+DescribeServices"] == 6
    assert sum(m.values()) == 30
    assert fanout.tagging_listed_minimum(5_000) == 74  # the figure of the previous rounds


def test_mixed_fleet_row_counts_calls_per_registered_kind() -> None:
    mixed = fanout_kinds.measure_mixed(2)
    assert mixed.status == "done"
    registered = {k.resource_type for k in REGISTRY}
    assert set(mixed.built) | set(mixed.skipped) == registered  # every kind: built, or skipped with a reason
    assert mixed.skipped == {"organizations:account": fanout_kinds.NOT_A_FLEET["organizations:account"]}
    for rtype in mixed.built:
        assert mixed.acted[rtype] == 2, rtype  # the kill reached both resources of every kind
        assert mixed.step(rtype, "discover") >= 1, rtype
    assert mixed.step("ec2:instance", "act") == 1  # one StopInstances for both
    assert mixed.step("iam:role", "act") == 2  # one AttachRolePolicy per role
    assert mixed.step("autoscaling:group", "verify") == 1  # both groups re-read in one call
    assert mixed.step("ec2:instance", "verify") == 1
    assert mixed.outside_kinds() == {"resourcegroupstaggingapi:GetResources": 1}  # one shared walk
    [note] = fanout_kinds.kind_notes(mixed)
    assert "lambda:function 2 built / 2 acted" in note and "organizations:account" in note


def test_a_kind_without_a_builder_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(fanout_kinds.BUILDERS, "rds:cluster")
    mixed = fanout_kinds.measure_mixed(1)
    assert "rds:cluster" not in mixed.built
    assert "no moto builder" in mixed.skipped["rds:cluster"]
    assert "rds:cluster: no moto builder" in fanout_kinds.kind_notes(mixed)[0]
