"""The guard SDK stays inside what `<prefix>-guard-publisher` grants: only its item actions, only its own partition
(`dynamodb:LeadingKeys` = `GUARD#<agent-name principal tag>`), so the per-agent grant breaks nothing (issue 15)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from infra.constructs.guard_policy import GUARD_ITEM_ACTIONS
from killswitch.config import KillSwitchConfig
from killswitch.guard import BudgetExceeded, Guard
from tests.aws.guard_support import create_table
from tests.iam_coverage.policy import iam_actions
from tests.iam_coverage.recorder import Recorder

AGENT = "log-summarizer"


def test_every_ledger_call_of_the_guard_is_granted_to_its_own_partition(
    example_config: KillSwitchConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mock_aws():
        create_table(boto3.client("dynamodb", region_name="us-east-1"))
        topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="kill")["TopicArn"]
        monkeypatch.setenv("KILLSWITCH_TABLE", "killswitch-ledger")
        monkeypatch.setenv("KILLSWITCH_KILL_TOPIC_ARN", topic)
        recorder = Recorder(attribute=lambda: "agent")
        with recorder.recording() as calls:
            guard = Guard.from_config(AGENT, config=example_config)
            with guard.run(workflow="triage") as run:
                with run.charge("anthropic.claude-haiku-4-5", 1200, 800, charge_id="c-1") as call:
                    call.settle(output_tokens=640)
                with pytest.raises(BudgetExceeded):
                    run.charge_usd(6.0)
            assert guard.spent_usd() > 0
    ledger_calls = [c for c in calls if c.service == "dynamodb"]
    assert {c.operation for c in ledger_calls} >= {"TransactWriteItems", "PutItem", "GetItem"}
    actions = {f"dynamodb:{action}" for c in ledger_calls for action, _ in iam_actions(c)}
    assert actions <= set(GUARD_ITEM_ACTIONS)
    leading: set[str] = set()
    for c in ledger_calls:
        if c.operation == "BatchGetItem":  # its keys are per table
            for spec in dict(c.params["RequestItems"]).values():
                leading.update(spec["LeadingKeys"])
            continue
        for _, params in iam_actions(c):
            leading.add(f"{c.operation}: {params.get('LeadingKey')}")
    assert {key.rsplit(": ", 1)[-1] for key in leading} == {f"GUARD#{AGENT}"}, sorted(leading)
