"""The meter Lambda handler on moto: DynamoDB spend facts, the kill through the engine, EMF metrics, bad events."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from killswitch.handlers import meter as meter_handler
from killswitch.kill.discover import Clients
from killswitch.kill.engine import KillEngine
from killswitch.kill.ledger import DynamoKillLedger
from killswitch.settings import MissingEnvironment
from killswitch.spend.ledger import SOURCE_METER, DynamoSpendStore, SpendLedger
from killswitch.testing import sim
from tests.aws import meter_support as M
from tests.aws.kill_support import EAST, FailingEc2, aws, create_table, instance_state
from tests.aws.test_kill_handler import Context

__all__ = ["aws"]
TABLE = "killswitch-ledger"


@pytest.fixture
def lambda_env(aws: Clients, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    create_table(TABLE)
    topic = boto3.client("sns", EAST).create_topic(Name="killswitch-events")["TopicArn"]
    cfg = M.config().model_copy(update={"meter": M.config().meter.model_copy(update={"compute": False})})  # type: ignore[union-attr]
    monkeypatch.setenv("KILLSWITCH_TABLE", TABLE)
    monkeypatch.setenv("KILLSWITCH_EVENTS_TOPIC_ARN", topic)
    monkeypatch.setenv("KILLSWITCH_CONFIG_JSON", cfg.to_json())
    meter_handler.reset()
    yield
    meter_handler.reset()


def test_log_batch_through_the_handler(aws: Clients, lambda_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    mine = sim.run_instance(aws, EAST, sim.agent_tags(M.AGENT))
    caller = M.role("summarizer-role", M.AGENT)
    event = M.logs_event(M.call(caller, "r1"), M.call(caller, "r2"), M.call("arn:aws:iam::123456789012:root", "x"))
    out = meter_handler.handler(event, Context(function_name="killswitch-meter"))
    assert out["priced"] == 2 and out["skipped"] == {"unknown_caller_kind": 1}
    assert out["decisions"][0]["operation"] == "kill"
    assert instance_state(aws, EAST, mine) == "stopped"
    (fact,) = SpendLedger(DynamoSpendStore(TABLE)).entries(M.AGENT, source=SOURCE_METER)
    assert str(fact.amount_usd) == "12.0000000000"
    (kill,) = DynamoKillLedger(TABLE).list_kills(M.AGENT)
    assert kill.source == "killswitch.meter"
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for doc in emf for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"MeterRecords", "MeterRecordsPriced", "MeterRecordsSkipped", "MeterDecisions"} <= names


def test_schedule_with_compute_off_and_foreign_events_never_raise(aws: Clients, lambda_env: None) -> None:
    tick = {"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-22T10:15:00Z"}
    assert meter_handler.handler(tick, Context())["note"] == "compute metering is off"
    assert meter_handler.handler({"Records": []}, Context()) == {"dropped": True}
    assert meter_handler.handler({"awslogs": {"data": "garbage"}}, Context())["skipped"] == {"malformed_event": 1}


def test_missing_environment_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KILLSWITCH_TABLE", "KILLSWITCH_EVENTS_TOPIC_ARN", "KILLSWITCH_CONFIG_JSON"):
        monkeypatch.delenv(name, raising=False)
    meter_handler.reset()
    with pytest.raises(MissingEnvironment, match="KILLSWITCH_TABLE"):
        meter_handler.handler({}, Context())


def test_the_kill_engine_is_built_on_the_first_alert_with_the_meters_clients(aws: Clients, lambda_env: None) -> None:
    tick = {"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-22T10:15:00Z"}
    meter_handler.handler(tick, Context())
    m, _ = meter_handler.meter(None)
    sink = m.sink
    assert isinstance(sink, meter_handler.EngineOnFirstAlert) and sink.engine is None  # no alert, no engine
    mine = sim.run_instance(aws, EAST, sim.agent_tags(M.AGENT))
    caller = M.role("summarizer-role", M.AGENT)
    out = meter_handler.handler(M.logs_event(M.call(caller, "r1"), M.call(caller, "r2")), Context())
    assert [d["operation"] for d in out["decisions"]] == ["kill"] and instance_state(aws, EAST, mine) == "stopped"
    engine = sink.engine
    assert isinstance(engine, KillEngine)
    assert engine.clients is m.compute_sources[0].clients  # one session, one client cache
    meter_handler.handler(M.logs_event(M.call(caller, "r3")), Context())
    assert sink.engine is engine  # built once per container


def test_a_transient_kill_failure_raises_after_the_fact_and_the_kill_are_recorded(
    aws: Clients, lambda_env: None
) -> None:
    from killswitch.handlers.kill import TransientKillFailure, engine_for

    mine = sim.run_instance(aws, EAST, sim.agent_tags(M.AGENT))
    caller = M.role("summarizer-role", M.AGENT)
    m, env = meter_handler.meter(None)
    sink = m.sink
    assert isinstance(sink, meter_handler.EngineOnFirstAlert)
    # The engine the first alert would build, with StopInstances throttled after botocore's retries.
    throttled = FailingEc2(aws("ec2", EAST), always="Throttling")
    sink.engine = engine_for(env, clients=Clients(overrides={("ec2", EAST): throttled}))
    with pytest.raises(TransientKillFailure, match="transient AWS failure in kill"):
        meter_handler.handler(M.logs_event(M.call(caller, "r1"), M.call(caller, "r2")), Context())
    assert throttled.stop_calls == [[mine]] and instance_state(aws, EAST, mine) == "running"
    (fact,) = SpendLedger(DynamoSpendStore(TABLE)).entries(M.AGENT, source=SOURCE_METER)
    assert str(fact.amount_usd) == "12.0000000000"
    (kill,) = DynamoKillLedger(TABLE).list_kills(M.AGENT)
    assert kill.source == "killswitch.meter"
