"""The spend recorder Lambda handler end to end on moto: env vars, table, Cost Explorer results, EMF metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from moto import mock_aws

from killswitch.config import KillSwitchConfig
from killswitch.handlers import spend_recorder
from killswitch.spend.ledger import DynamoSpendStore, SpendLedger
from tests.aws.spend_support import ce_day, ce_group, ce_page, create_table, inject_ce_results

TODAY = date(2026, 11, 10)
CONFIG = KillSwitchConfig.model_validate(
    {
        "regions": ["us-east-1"],
        "agents": [
            {"name": "bot", "budget": {"amount_usd": 100, "warn_at_pct": 80}},
            {"name": "crawler", "budget": {"amount_usd": 50}},
        ],
    }
)
EVENT = {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


@dataclass
class Context:
    function_name: str = "killswitch-spend-recorder"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:killswitch-spend-recorder"
    aws_request_id: str = "req-1"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Any:
    with mock_aws():
        table = create_table("ks-table")
        monkeypatch.setenv("KILLSWITCH_TABLE", table)
        monkeypatch.setenv("KILLSWITCH_CONFIG_JSON", CONFIG.to_json())
        monkeypatch.setattr(spend_recorder, "_today", lambda: TODAY)
        yield SpendLedger(DynamoSpendStore(table))


def emf(out: str) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    return [
        {
            "metric": d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "namespace": d["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "dims": {k: d[k] for k in d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]},
            "value": d[d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]],
        }
        for d in docs
    ]


def test_handler_ingests_records_and_publishes_metrics(env: SpendLedger, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = env
    ledger.record_guard_charge("bot", date(2026, 11, 9), "c1", "12.5", run_id="r1")
    ledger.record_budget_alert("crawler", date(2026, 11, 8), "killswitch-crawler", "ACTUAL", 40, "45", 50)
    ledger.store.put({"pk": "AGENT#crawler", "sk": "STATE", "state": "KILLED"})
    days = [date(2026, 11, 7), date(2026, 11, 8), date(2026, 11, 9)]
    inject_ce_results(
        [
            ce_page([
                ce_day(days[0], [ce_group(["agent-name$bot", "EC2"], "30.00")]),
                ce_day(days[1], [ce_group(["agent-name$bot", "EC2"], "40.00")]),
                ce_day(days[2], [ce_group(["agent-name$bot", "Amazon Bedrock"], "15.30")]),
            ]),
            ce_page([ce_day(days[1], [ce_group(["agent-run-id$r1", "EC2"], "7.00")])]),
        ]
    )  # fmt: skip
    capsys.readouterr()

    result = spend_recorder.handler(EVENT, Context())

    assert (result["start"], result["end"]) == ("2026-11-07", "2026-11-10")
    assert result["failed_agents"] == [] and result["report_errors"] == {}
    assert result["agents"]["bot"]["rows_written"] == 3
    assert result["figures"]["bot"] == {
        "spend_usd": "85.3",
        "spend_source": "cost_explorer",
        "pct_of_budget": "85.3",
        "state": "thrift",
    }
    assert result["figures"]["crawler"]["state"] == "thrift, killed"  # spend past warn_at_pct, and killed
    assert result["figures"]["crawler"]["spend_source"] == "budget"
    assert result["metrics_sent"] == 5
    assert ledger.daily_totals("bot", days[0], days[2])[days[1]] == {"cost_explorer": Decimal(40)}

    metrics = emf(capsys.readouterr().out)
    assert all(m["namespace"] == "AgentKillSwitch" for m in metrics)
    assert {(m["metric"], tuple(sorted(m["dims"].items())), m["value"][0]) for m in metrics} == {
        ("AgentSpendUSD", (("agent", "bot"), ("source", "cost_explorer")), 85.3),
        ("AgentSpendUSD", (("agent", "bot"), ("source", "guard")), 12.5),
        ("AgentBudgetPct", (("agent", "bot"),), 85.3),
        ("AgentSpendUSD", (("agent", "crawler"), ("source", "budget")), 45.0),
        ("AgentBudgetPct", (("agent", "crawler"),), 90.0),
    }


def test_handler_rejects_bad_lookback_without_reading(env: SpendLedger) -> None:
    event = {**EVENT, "detail": {"lookback_days": "lots"}}
    result = spend_recorder.handler(event, Context())
    assert "lookback_days" in result["rejected"]
    assert env.entries("bot") == []


def test_handler_lookback_from_event(env: SpendLedger) -> None:
    result = spend_recorder.handler({**EVENT, "detail": {"lookback_days": 7}}, Context())
    assert (result["start"], result["end"]) == ("2026-11-03", "2026-11-10")


def test_handler_names_missing_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILLSWITCH_TABLE", raising=False)
    with pytest.raises(RuntimeError, match="KILLSWITCH_TABLE"):
        spend_recorder.handler(EVENT, Context())


def test_handler_sweeps_reservations_of_dead_agents_into_the_ledger(env: SpendLedger) -> None:
    from killswitch.guard import DynamoLedger, Guard

    past = 1_795_000_000.0  # the agent reserved, then its process died long before this run
    guard = Guard("bot", ledger=DynamoLedger("ks-table"), clock=lambda: past, reservation_ttl=60, sweep_interval=0)
    guard.start_run().charge("anthropic.claude-haiku-4-5", 1000, 1000)
    result = spend_recorder.handler(EVENT, Context())
    assert result["guard_swept"] == {"bot": 1, "crawler": 0} and result["guard_sweep_errors"] == {}
    [entry] = env.entries("bot", source="guard")
    assert entry.amount_usd == Decimal("0.00625")
    again = spend_recorder.handler(EVENT, Context())
    assert again["guard_swept"] == {"bot": 0, "crawler": 0} and len(env.entries("bot", source="guard")) == 1


def test_spend_recorder_environment_needs_only_the_table_and_the_config() -> None:
    from killswitch.settings import MissingEnvironment, SpendRecorderEnv

    env = SpendRecorderEnv.from_env({"KILLSWITCH_TABLE": "t", "KILLSWITCH_CONFIG_JSON": CONFIG.to_json()})
    assert env.table_name == "t" and env.config == CONFIG
    with pytest.raises(MissingEnvironment) as info:
        SpendRecorderEnv.from_env({"KILLSWITCH_EVENTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:events"})
    assert info.value.names == ["KILLSWITCH_TABLE", "KILLSWITCH_CONFIG_FILE (or KILLSWITCH_CONFIG_JSON)"]
