"""Dedupe keys identify the alert, not the delivery: redeliveries collide, genuinely new alerts do not."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from killswitch.config import KillSwitchConfig
from killswitch.kill.alerts import (
    Alert,
    AlertKind,
    AlertSource,
    anomaly_dedupe_key,
    anomaly_impact_bucket,
    budget_dedupe_key,
    parse_event,
    parse_message,
)
from tests.unit.alerts_support import budget_record, fixture_json, letter, sns_event, sns_record


def _key(text: str, config: KillSwitchConfig, **kwargs: object) -> str:
    a = parse_message(text, config, **kwargs)  # type: ignore[arg-type]
    assert isinstance(a, Alert), a
    return a.dedupe_key


# -- budgets ----------------------------------------------------------------------------------------------------


def test_redelivered_letter_has_the_same_key(example_config: KillSwitchConfig) -> None:
    first = sns_event(budget_record("budget_monthly_actual.txt", message_id="one", timestamp="2022-09-26T10:00:00Z"))
    again = sns_event(budget_record("budget_monthly_actual.txt", message_id="two", timestamp="2022-09-27T03:00:00Z"))
    [a] = parse_event(first, example_config)
    [b] = parse_event(again, example_config)
    assert isinstance(a, Alert) and isinstance(b, Alert)
    assert a.message_id != b.message_id
    assert a.dedupe_key == b.dedupe_key


def test_same_threshold_later_in_the_month_is_the_same_alert(example_config: KillSwitchConfig) -> None:
    text = letter("budget_monthly_actual.txt")
    later = text.replace("September 26, 2022", "September 29, 2022").replace("$0.59", "$0.75")
    assert _key(text, example_config) == _key(later, example_config)


def test_next_month_is_a_new_alert(example_config: KillSwitchConfig) -> None:
    text = letter("budget_monthly_actual.txt")
    assert _key(text, example_config) != _key(text.replace("September 26", "October 2"), example_config)


def test_daily_budget_next_day_is_a_new_alert(example_config: KillSwitchConfig) -> None:
    text = letter("budget_daily_actual.txt")
    same_day = text.replace("$0.90", "$0.95")
    next_day = text.replace("September 27", "September 28")
    assert _key(text, example_config) == _key(same_day, example_config)
    assert _key(text, example_config) != _key(next_day, example_config)


def test_another_threshold_is_a_new_alert(example_config: KillSwitchConfig) -> None:
    text = letter("budget_monthly_forecasted.txt")
    # Line and sentence both move: a letter whose line and sentence disagree is refused (test_alerts_contradictions).
    other = text.replace("> $400.00", "> $500.00").replace("greater than $400.00", "greater than $500.00")
    assert _key(text, example_config) != _key(other, example_config)


def test_actual_and_forecasted_are_different_alerts(example_config: KillSwitchConfig) -> None:
    forecast = letter("budget_monthly_forecasted.txt")
    actual = forecast.replace("FORECASTED", "ACTUAL")
    assert _key(forecast, example_config) != _key(actual, example_config)


def test_another_account_is_a_new_alert(example_config: KillSwitchConfig) -> None:
    text = letter("budget_monthly_actual.txt")
    other = text.replace("AWS Account 111122223333", "AWS Account 444455556666")
    assert _key(text, example_config) != _key(other, example_config)


def test_budget_key_function_is_stable() -> None:
    key = budget_dedupe_key("111122223333", "Test Budget", AlertKind.ACTUAL, 0.16, "2022-09")
    assert key == budget_dedupe_key("111122223333", "Test Budget", AlertKind.ACTUAL, 0.160000001, "2022-09")
    assert key != budget_dedupe_key("111122223333", "Test Budget", AlertKind.ACTUAL, 0.17, "2022-09")
    assert key.startswith("aws.budgets:")
    int(key.removeprefix("aws.budgets:"), 16)  # sha256 hex


# -- anomalies ----------------------------------------------------------------------------------------------------


def _anomaly_key(config: KillSwitchConfig, **changes: object) -> str:
    body = {**fixture_json("anomaly_sns.json"), **changes}
    return _key(json.dumps(body), config)


def test_anomaly_redelivery_is_the_same_alert(example_config: KillSwitchConfig) -> None:
    body = json.dumps(fixture_json("anomaly_sns.json"))
    assert _key(body, example_config, message_id="a") == _key(body, example_config, message_id="b")


def test_anomaly_update_counts_as_new_only_once_the_impact_doubles(example_config: KillSwitchConfig) -> None:
    base = _anomaly_key(example_config)  # totalImpact 151
    assert _anomaly_key(example_config, impact={"totalImpact": 200}) == base
    assert _anomaly_key(example_config, impact={"totalImpact": 310}) != base
    assert _anomaly_key(example_config, anomalyId="another") != base


@pytest.mark.parametrize(
    ("impact", "bucket"), [(None, 0), (0.5, 0), (1, 1), (1.99, 1), (2, 2), (151, 8), (255.9, 8), (256, 9)]
)
def test_anomaly_impact_buckets(impact: float | None, bucket: int) -> None:
    assert anomaly_impact_bucket(impact) == bucket


def test_anomaly_key_shape() -> None:
    assert anomaly_dedupe_key("x", 10).startswith("aws.ce:")
    assert anomaly_dedupe_key("x", 10) == anomaly_dedupe_key("x", 12)


# -- our own events --------------------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 20, 10, 4, 30, tzinfo=UTC)


def test_own_event_key_is_the_sns_message_id(example_config: KillSwitchConfig) -> None:
    body = json.dumps(fixture_json("event_guard_kill.json"))
    first = parse_event(sns_event(sns_record(body, message_id="m-1", timestamp="2026-11-20T10:00:00Z")), example_config)
    again = parse_event(sns_event(sns_record(body, message_id="m-1", timestamp="2026-11-20T10:09:00Z")), example_config)
    other = parse_event(sns_event(sns_record(body, message_id="m-2", timestamp="2026-11-20T10:00:00Z")), example_config)
    keys = [r.dedupe_key for r in (*first, *again, *other) if isinstance(r, Alert)]
    assert len(keys) == 3
    assert keys[0] == keys[1] != keys[2]
    assert keys[0].startswith("killswitch.guard:")


def test_own_event_without_message_id_uses_json_and_minute(example_config: KillSwitchConfig) -> None:
    event = fixture_json("event_cli_warn.json")
    reordered = dict(reversed(list(event.items())))
    [a] = parse_event(event, example_config, now=NOW)
    [b] = parse_event(reordered, example_config, now=NOW.replace(second=59))
    [c] = parse_event(event, example_config, now=NOW.replace(minute=5))
    [d] = parse_event({**event, "reason": "another reason"}, example_config, now=NOW)
    assert isinstance(a, Alert) and isinstance(b, Alert) and isinstance(c, Alert) and isinstance(d, Alert)
    assert a.dedupe_key == b.dedupe_key  # key order and seconds do not matter
    assert a.dedupe_key != c.dedupe_key  # the next minute is a new request
    assert a.dedupe_key != d.dedupe_key


def test_own_event_timestamp_minute_beats_now(example_config: KillSwitchConfig) -> None:
    body = json.dumps(fixture_json("event_cli_warn.json"))
    a = parse_message(body, example_config, timestamp="2026-11-20T10:04:01.000Z", now=NOW.replace(hour=23))
    b = parse_message(body, example_config, timestamp="2026-11-20T10:04:59.999Z")
    assert isinstance(a, Alert) and isinstance(b, Alert)
    assert a.dedupe_key == b.dedupe_key


def test_sources_never_share_keys(example_config: KillSwitchConfig) -> None:
    guard = fixture_json("event_guard_kill.json")
    cli = {**guard, "source": "killswitch.cli"}
    [a] = parse_event(guard, example_config, now=NOW)
    [b] = parse_event(cli, example_config, now=NOW)
    assert isinstance(a, Alert) and isinstance(b, Alert)
    assert a.source is AlertSource.GUARD and b.source is AlertSource.CLI
    assert a.dedupe_key != b.dedupe_key
