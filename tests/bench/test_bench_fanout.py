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
    assert mixed.status == "awaiting_approval"  # Batch and SageMaker jobs and endpoints wait for approval
    assert mixed.verification == "verified"
    registered = {k.resource_type for k in REGISTRY}
    assert set(mixed.built) | set(mixed.skipped) == registered  # every kind: built, or skipped with a reason
    assert mixed.skipped == {"organizations:account": fanout_kinds.NOT_A_FLEET["organizations:account"]}
    new_kinds = {
        "eks:nodegroup",
        "batch:job-queue",
        "batch:compute-environment",
        "batch:job",
        "sagemaker:notebook-instance",
        "sagemaker:training-job",
        "sagemaker:processing-job",
        "sagemaker:endpoint",
    }
    assert new_kinds <= set(mixed.built)  # built on moto, not skipped
    approval = {"batch:job", "sagemaker:training-job", "sagemaker:processing-job", "sagemaker:endpoint"}
    for rtype in mixed.built:
        # the kill reached both resources of every kind: changed, or (jobs, endpoints) waiting for approval
        assert (mixed.waiting if rtype in approval else mixed.acted)[rtype] == 2, rtype
        assert mixed.step(rtype, "discover") >= 1, rtype
    assert mixed.step("eks:nodegroup", "act") == 2  # one UpdateNodegroupConfig per node group
    assert mixed.step("batch:job-queue", "act") == 2  # one UpdateJobQueue per queue
    assert mixed.step("ec2:instance", "act") == 1  # one StopInstances for both
    assert mixed.step("iam:role", "act") == 2  # one AttachRolePolicy per role
    assert mixed.step("autoscaling:group", "verify") == 1  # both groups re-read in one call
    assert mixed.step("ec2:instance", "verify") == 1
    assert mixed.outside_kinds() == {"resourcegroupstaggingapi:GetResources": 1}  # one shared walk
    [note] = fanout_kinds.kind_notes(mixed)
    assert "lambda:function 2 built / 2 acted" in note and "organizations:account" in note
    assert "sagemaker:endpoint 2 built / 0 acted / 2 wait for approval" in note
    assert "eks:nodegroup 2 built / 2 acted" in note and "batch:compute-environment 2 built / 2 acted" in note


def test_a_kind_without_a_builder_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(fanout_kinds.BUILDERS, "rds:cluster")
    mixed = fanout_kinds.measure_mixed(1)
    assert "rds:cluster" not in mixed.built
    assert "no moto builder" in mixed.skipped["rds:cluster"]
    assert "rds:cluster: no moto builder" in fanout_kinds.kind_notes(mixed)[0]
