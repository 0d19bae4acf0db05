"""The guard-publisher policy lets an agent READ only its own run approvals (`APPROVAL#<its agent-name tag>`) and
write none: an approval written with agent credentials is impossible, so `killswitch approve-run` (ops) is the only
way to resume a paused run."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from killswitch.keys import approval_pk, approval_sk, guard_pk
from tests.infra.infra_support import as_list, make_config, synth_app, write_scps

TAG = "${aws:PrincipalTag/agent-name}"
WRITES = [
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
]


@pytest.fixture(scope="module")
def statements(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    base = tmp_path_factory.mktemp("approvals")
    _, [(workload, _)] = synth_app([make_config()], write_scps(base / "scp"), base / "cdk.out")
    template = Template.from_stack(workload).to_json()
    [policy] = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and r["Properties"]["ManagedPolicyName"].endswith("-guard-publisher")
    ]
    return list(policy["PolicyDocument"]["Statement"])


def allowed(statements: list[dict[str, Any]], action: str, leading_key: str, agent: str) -> bool:
    """IAM's answer for the ledger table: an Allow whose action matches and whose `dynamodb:LeadingKeys` (with the
    caller's agent-name principal tag substituted) holds the item's partition key."""
    for s in statements:
        if s["Effect"] != "Allow" or not any(a in (action, "dynamodb:*", "*") for a in as_list(s["Action"])):
            continue
        keys = s.get("Condition", {}).get("ForAllValues:StringEquals", {}).get("dynamodb:LeadingKeys")
        if keys is None or leading_key in [k.replace(TAG, agent) for k in as_list(keys)]:
            return True
    return False


def test_every_ledger_grant_is_bound_to_the_callers_own_partitions(statements: list[dict[str, Any]]) -> None:
    ledger = [s for s in statements if any(str(a).startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert {s["Sid"] for s in ledger} == {"GuardLedgerItems", "ReadOwnRunApprovals"}
    for s in ledger:
        assert "dynamodb:LeadingKeys" in s["Condition"]["ForAllValues:StringEquals"], s
    [approvals] = [s for s in ledger if s["Sid"] == "ReadOwnRunApprovals"]
    assert as_list(approvals["Action"]) == ["dynamodb:GetItem"]
    assert approvals["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"] == [approval_pk(TAG)]


def test_an_agent_cannot_write_any_approval(statements: list[dict[str, Any]]) -> None:
    for action in WRITES:
        assert not allowed(statements, action, approval_pk("summarizer"), "summarizer"), action
        assert not allowed(statements, action, approval_pk("other"), "summarizer"), action
    # ... while its guard items stay writable (the check above is not vacuous).
    assert allowed(statements, "dynamodb:PutItem", guard_pk("summarizer"), "summarizer")


def test_an_agent_reads_only_its_own_approvals(statements: list[dict[str, Any]]) -> None:
    assert allowed(statements, "dynamodb:GetItem", approval_pk("summarizer"), "summarizer")
    assert not allowed(statements, "dynamodb:GetItem", approval_pk("other"), "summarizer")
    assert not allowed(statements, "dynamodb:Query", approval_pk("summarizer"), "summarizer")
    assert approval_sk("run-1") == "RUN#run-1"
