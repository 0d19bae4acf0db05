"""parse_event: SNS records, EventBridge anomalies, our own events, plain test events and malformed input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from killswitch.config import KillSwitchConfig
from killswitch.kill.alerts import (
    MAX_RAW_BYTES,
    Alert,
    AlertKind,
    AlertSource,
    Rejected,
    parse_event,
    parse_message,
)
from killswitch.kill.levels import Level, decide_level
from tests.unit.alerts_support import budget_record, fixture_json, letter, sns_event, sns_record

NOW = datetime(2026, 11, 20, 10, 4, 59, tzinfo=UTC)


def _one(event: Any, config: KillSwitchConfig) -> Alert | Rejected:
    results = parse_event(event, config, now=NOW)
    assert len(results) == 1
    return results[0]


def _alert(result: Alert | Rejected) -> Alert:
    assert isinstance(result, Alert), getattr(result, "reason", result)
    return result


def _rejected(result: Alert | Rejected) -> Rejected:
    assert isinstance(result, Rejected), result
    return result


# -- SNS ------------------------------------------------------------------------------------------------------


def test_one_result_per_sns_record_in_order(example_config: KillSwitchConfig) -> None:
    event = sns_event(
        budget_record("budget_monthly_actual.txt", message_id="a"),
        sns_record("not an alert", message_id="b"),
        sns_record(json.dumps(fixture_json("event_guard_kill.json")), message_id="c"),
        budget_record("budget_unknown.txt", message_id="d"),
    )
    results = parse_event(event, example_config)
    assert [type(r).__name__ for r in results] == ["Alert", "Rejected", "Alert", "Rejected"]
    assert [r.message_id for r in results] == ["a", "b", "c", "d"]


def test_sns_fields_reach_the_alert(example_config: KillSwitchConfig) -> None:
    record = budget_record(
        "budget_monthly_actual.txt",
        subject_name="Test Budget",
        message_id="mid-1",
        timestamp="2022-09-26T18:00:00.000Z",
    )
    a = _alert(_one(sns_event(record), example_config))
    assert a.message_id == "mid-1"
    assert a.raw == letter("budget_monthly_actual.txt")


def test_sns_record_without_message(example_config: KillSwitchConfig) -> None:
    record = sns_record("x", message_id="m-2")
    del record["Sns"]["Message"]
    r = _rejected(_one(sns_event(record), example_config))
    assert r.reason == "record 0 has no 'Message'"
    assert r.message_id == "m-2"
    assert "m-2" in r.raw  # the record itself is kept for the dead letter


def test_sns_message_of_the_wrong_type(example_config: KillSwitchConfig) -> None:
    r = _rejected(_one(sns_event(sns_record(42)), example_config))
    assert "'Message' is not text" in r.reason


def test_sns_message_given_as_an_object_is_read(example_config: KillSwitchConfig) -> None:
    a = _alert(_one(sns_event(sns_record(fixture_json("event_cli_warn.json"))), example_config))
    assert a.action == "warn"


def test_non_sns_record(example_config: KillSwitchConfig) -> None:
    r = _rejected(_one({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}, example_config))
    assert "record 0 is not an SNS record" in r.reason
    assert "aws:sqs" in r.reason


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"Records": []}, "empty 'Records'"),
        ({"Records": "nope"}, "'Records' is not a list"),
        ({"Records": [None]}, "record 0 is not a JSON object"),
        ([], "event is not a JSON object"),
        ("text", "event is not a JSON object"),
        (None, "event is not a JSON object"),
        ({}, "not a recognised alert event"),
        ({"hello": "world"}, "not a recognised alert event"),
    ],
)
def test_malformed_events(example_config: KillSwitchConfig, event: Any, reason: str) -> None:
    r = _rejected(_one(event, example_config))
    assert reason in r.reason


# -- plain test events ----------------------------------------------------------------------------------------


def test_plain_message_event(example_config: KillSwitchConfig) -> None:
    event = {
        "Message": letter("budget_subject_only_name.txt"),
        "Subject": "AWS Budgets: Test Budget has exceeded your alert threshold",
    }
    a = _alert(_one(event, example_config))
    assert a.agent == "research-crawler"
    assert a.message_id is None


def test_plain_own_event(example_config: KillSwitchConfig) -> None:
    a = _alert(_one(fixture_json("event_guard_kill.json"), example_config))
    assert a.source is AlertSource.GUARD
    assert a.kind is AlertKind.EXPLICIT
    assert a.action == "kill"
    assert a.run_id == "5b0f3c1e-8a2d-4f6b-9c7e-1d2a3b4c5d6e"
    assert (a.amount_usd, a.cap_usd) == (5.12, 5.0)
    assert a.alert_date == "2026-11-20"


def test_single_sns_record_as_the_event(example_config: KillSwitchConfig) -> None:
    a = _alert(_one(budget_record("budget_thousands.txt"), example_config))
    assert a.amount_usd == 1234.56


def test_plain_anomaly_body(example_config: KillSwitchConfig) -> None:
    a = _alert(_one(fixture_json("anomaly_sns.json"), example_config))
    assert a.kind is AlertKind.ANOMALY


# -- our own events ---------------------------------------------------------------------------------------------


def test_guard_kill_over_sns(example_config: KillSwitchConfig) -> None:
    body = json.dumps(fixture_json("event_guard_kill.json"))
    a = _alert(_one(sns_event(sns_record(body, message_id="g-1")), example_config))
    assert a.source is AlertSource.GUARD
    assert a.agent == "log-summarizer"
    assert a.action == "kill"
    assert a.reason == "per_run cap $5.00 crossed: $5.12 spent"
    assert a.dry_run is False
    assert a.raw == body


@pytest.mark.parametrize("source", ["killswitch.cli", "killswitch.guard", "test", "aws.budgets", None])
@pytest.mark.parametrize("action", ["restore", "approve", "RESTORE "])
def test_restore_and_approve_never_arrive_as_events(
    example_config: KillSwitchConfig, source: str | None, action: str
) -> None:
    """Issue 15 item 1: undoing or releasing a kill is an ops command, whatever the message claims."""
    body = {**fixture_json("event_cli_restore.json"), "action": action}
    if source is None:
        del body["source"]
    else:
        body["source"] = source
    for result in (
        parse_message(json.dumps(body), example_config),
        _one(sns_event(sns_record(json.dumps(body))), example_config),
        _one(body, example_config),
    ):
        assert isinstance(result, Rejected), result
        assert "ops run `killswitch" in result.reason
        assert "the kill stays" in result.reason


def test_cli_warn_dry_run(example_config: KillSwitchConfig) -> None:
    a = _alert(parse_message(json.dumps(fixture_json("event_cli_warn.json")), example_config))
    assert a.action == "warn"
    assert a.dry_run is True


def test_test_source_event(example_config: KillSwitchConfig) -> None:
    a = _alert(_one(fixture_json("event_test_kill.json"), example_config))
    assert a.source is AlertSource.TEST
    assert a.kind is AlertKind.EXPLICIT
    assert a.action == "kill"
    assert a.reason == "test event"
    assert a.dedupe_key.startswith("test:")


def test_own_event_routed_through_eventbridge(example_config: KillSwitchConfig) -> None:
    detail = fixture_json("event_cli_warn.json")
    event = {"source": "killswitch.cli", "detail-type": "Kill Switch Event", "id": "eb-1", "detail": detail}
    a = _alert(_one(event, example_config))
    assert a.action == "warn"
    assert a.message_id == "eb-1"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"agent": "ghost"}, "agent 'ghost' is not in the config"),
        ({"action": "explode"}, "action"),
        ({"action": None}, "action"),
        ({"reason": ""}, "reason"),
        ({"spend_usd": "lots"}, "spend_usd"),
        ({"spend_usd": -1}, "spend_usd must be a finite amount"),
        ({"cap_usd": float("inf")}, "cap_usd"),
        ({"dry_run": "perhaps"}, "dry_run"),
        ({"agent": 7}, "agent"),
        ({"source": "someone.else"}, "is not (expected one of killswitch.guard, killswitch.cli)"),
    ],
)
def test_bad_own_events(example_config: KillSwitchConfig, change: dict[str, Any], reason: str) -> None:
    body = {**fixture_json("event_guard_kill.json"), **change}
    r = _rejected(parse_message(json.dumps(body), example_config, message_id="x"))
    assert reason in r.reason
    assert r.message_id == "x"


def test_own_event_without_agent(example_config: KillSwitchConfig) -> None:
    body = fixture_json("event_guard_kill.json")
    del body["agent"]
    r = _rejected(parse_message(json.dumps(body), example_config))
    assert "agent: field required" in r.reason


# -- anomalies -------------------------------------------------------------------------------------------------


def test_anomaly_over_sns(example_config: KillSwitchConfig) -> None:
    body = json.dumps(fixture_json("anomaly_sns.json"))
    a = _alert(_one(sns_event(sns_record(body, message_id="an-1")), example_config))
    assert a.source is AlertSource.ANOMALY
    assert a.kind is AlertKind.ANOMALY
    assert a.agent == "log-summarizer"
    assert a.amount_usd == 151.0
    assert a.account_id == "111122223333"
    assert a.anomaly_id == "12345678-abcd-ef12-3456-987654321a12"
    assert a.alert_date == "2026-11-20"
    assert a.action is None
    assert a.message_id == "an-1"
    assert "$151.00" in a.reason


def test_anomaly_from_eventbridge(example_config: KillSwitchConfig) -> None:
    a = _alert(_one(fixture_json("anomaly_eventbridge.json"), example_config))
    assert a.agent == "log-summarizer"  # dimensionValue "agent-name$log-summarizer"
    assert a.message_id == "2f9a7c3e-5d6b-4e8f-9a0b-1c2d3e4f5a6b"
    assert a.amount_usd == 151.0


def test_eventbridge_and_sns_deliveries_of_one_anomaly_share_a_key(example_config: KillSwitchConfig) -> None:
    eb = _alert(_one(fixture_json("anomaly_eventbridge.json"), example_config))
    sns = _alert(_one(sns_event(sns_record(json.dumps(fixture_json("anomaly_sns.json")))), example_config))
    assert eb.dedupe_key == sns.dedupe_key


def test_eventbridge_event_forwarded_to_sns(example_config: KillSwitchConfig) -> None:
    body = json.dumps(fixture_json("anomaly_eventbridge.json"))
    a = _alert(_one(sns_event(sns_record(body, message_id="sns-9")), example_config))
    assert a.kind is AlertKind.ANOMALY
    assert a.message_id == "sns-9"


def test_anomaly_agent_from_root_cause_tag(example_config: KillSwitchConfig) -> None:
    a = _alert(parse_message(json.dumps(fixture_json("anomaly_root_cause_tag.json")), example_config))
    assert a.agent == "research-crawler"


def test_anomaly_root_cause_tag_key_value_pair(example_config: KillSwitchConfig) -> None:
    body = fixture_json("anomaly_unattributed.json")
    body["rootCauses"][0].update({"tagKey": "agent-name", "tagValue": "research-crawler"})
    a = _alert(parse_message(json.dumps(body), example_config))
    assert a.agent == "research-crawler"


@pytest.mark.parametrize("value", ["log-summarizer", "agent-name$log-summarizer", "user:agent-name$log-summarizer"])
def test_anomaly_dimensional_value_spellings(example_config: KillSwitchConfig, value: str) -> None:
    body = {**fixture_json("anomaly_sns.json"), "dimensionalValue": value}
    assert _alert(parse_message(json.dumps(body), example_config)).agent == "log-summarizer"


def test_unattributed_anomaly(example_config: KillSwitchConfig) -> None:
    r = _rejected(parse_message(json.dumps(fixture_json("anomaly_unattributed.json")), example_config))
    assert r.reason.startswith("anomaly cannot be attributed to an agent")


def test_anomaly_for_an_unknown_agent(example_config: KillSwitchConfig) -> None:
    body = {**fixture_json("anomaly_sns.json"), "dimensionalValue": "agent-name$ghost"}
    r = _rejected(parse_message(json.dumps(body), example_config))
    assert "'ghost'" in r.reason
    assert "not in the config" in r.reason


def test_anomaly_pointing_at_two_agents(example_config: KillSwitchConfig) -> None:
    body = fixture_json("anomaly_root_cause_tag.json")
    body["rootCauses"].append({"tag": "agent-name$log-summarizer"})
    r = _rejected(parse_message(json.dumps(body), example_config))
    assert "several agents" in r.reason


def test_anomaly_without_id(example_config: KillSwitchConfig) -> None:
    body = fixture_json("anomaly_sns.json")
    del body["anomalyId"]
    r = _rejected(parse_message(json.dumps(body), example_config))
    assert "no anomalyId" in r.reason


def test_anomaly_with_odd_impact_still_reads(example_config: KillSwitchConfig) -> None:
    body = {**fixture_json("anomaly_sns.json"), "impact": "big", "rootCauses": "none"}
    a = _alert(parse_message(json.dumps(body), example_config))
    assert a.amount_usd is None


def test_other_eventbridge_events(example_config: KillSwitchConfig) -> None:
    invented = {"source": "aws.budgets", "detail-type": "Budget Threshold Exceeded", "detail": {}}
    assert "AWS Budgets sends no EventBridge events" in _rejected(_one(invented, example_config)).reason
    other = {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}}
    assert "unsupported EventBridge event" in _rejected(_one(other, example_config)).reason
    no_detail = {"source": "aws.ce", "detail-type": "Anomaly Detected"}
    assert "no 'detail'" in _rejected(_one(no_detail, example_config)).reason


# -- messages that are not alerts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("", "empty message"),
        ("   \n\r\n ", "empty message"),
        ("hello world", "not a recognised alert"),
        ("\x00\x01\x02binary", "binary"),
        ("{not json", "looks like JSON but does not parse"),
        ("[1, 2, 3]", "JSON message is a list"),
        ('{"foo": 1}', "JSON message is not a recognised alert"),
        ("{}", "JSON message is not a recognised alert"),
    ],
)
def test_messages_that_are_not_alerts(example_config: KillSwitchConfig, message: str, reason: str) -> None:
    r = _rejected(parse_message(message, example_config, message_id="m"))
    assert reason in r.reason
    assert r.raw == message


def test_huge_message_is_refused_and_raw_is_capped(example_config: KillSwitchConfig) -> None:
    huge = letter("budget_monthly_actual.txt") + "x" * (MAX_RAW_BYTES * 2)
    r = _rejected(_one(sns_event(sns_record(huge)), example_config))
    assert "64 KB" in r.reason
    assert len(r.raw.encode("utf-8")) == MAX_RAW_BYTES
    assert huge.startswith(r.raw)


def test_raw_cap_never_splits_a_character(example_config: KillSwitchConfig) -> None:
    huge = "é" * MAX_RAW_BYTES  # two bytes each
    r = _rejected(parse_message(huge, example_config))
    assert set(r.raw) == {"é"}
    assert len(r.raw.encode("utf-8")) <= MAX_RAW_BYTES


def test_rejected_raw_of_an_unserialisable_event_is_text(example_config: KillSwitchConfig) -> None:
    r = _rejected(_one({"weird": object()}, example_config))
    assert "weird" in r.raw


def test_full_lambda_event_fixture_is_a_kill(example_config: KillSwitchConfig) -> None:
    a = _alert(_one(fixture_json("lambda_sns_budget_kill.json"), example_config))
    assert (a.agent, a.kind, a.amount_usd, a.budgeted_usd) == ("log-summarizer", AlertKind.ACTUAL, 512.40, 500.0)
    assert a.message_id == "0f5c2c1e-6f7d-5a8b-9c0d-1e2f3a4b5c6d"
    assert a.period == "2026-11"
    decision = decide_level(a, example_config)
    assert decision.level is Level.KILL
    assert decision.reason == "ACTUAL $512.40 is 102.48% of $500.00 budget, ≥ kill 100%"


def test_an_internal_parser_error_becomes_a_rejected(
    example_config: KillSwitchConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import killswitch.kill.alerts as alerts

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(alerts, "_parse_budget_letter", boom)
    record = budget_record("budget_monthly_actual.txt", message_id="m-b")
    r = _rejected(_one(sns_event(record), example_config))
    assert r.reason == "internal error while reading the message: RuntimeError: bug"
    assert r.message_id == "m-b"
    assert r.raw == letter("budget_monthly_actual.txt")
    monkeypatch.setattr(alerts, "_parse_event", boom)
    r = _rejected(_one({"Records": []}, example_config))
    assert r.reason.startswith("internal error while reading the event")
