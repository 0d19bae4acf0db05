"""AWS Budgets letters: every known variant, and the ones that must be refused with a reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from killswitch.config import KillSwitchConfig, Period
from killswitch.kill.alerts import Alert, AlertKind, AlertSource, Rejected, parse_event, parse_message
from tests.unit.alerts_support import BUDGET_SUBJECT, budget_record, letter, sns_event


def _alert(result: Alert | Rejected) -> Alert:
    assert isinstance(result, Alert), getattr(result, "reason", result)
    return result


def _rejected(result: Alert | Rejected) -> Rejected:
    assert isinstance(result, Rejected), result
    return result


def test_monthly_actual_letter_as_documented(example_config: KillSwitchConfig) -> None:
    text = letter("budget_monthly_actual.txt")
    a = _alert(parse_message(text, example_config, message_id="m-1"))
    assert a.source is AlertSource.BUDGETS
    assert a.kind is AlertKind.ACTUAL
    assert a.agent == "research-crawler"  # "Test Budget" is research-crawler's budget_name
    assert a.budget_name == "Test Budget"
    assert a.action is None
    assert (a.amount_usd, a.budgeted_usd, a.threshold_usd) == (0.59, 0.20, 0.16)
    assert a.percent_of_budget == 295.0
    assert a.threshold_pct == 80.0
    assert a.account_id == "111122223333"
    assert a.alert_date == "2022-09-26"
    assert a.period == "2022-09"
    assert a.budget_period is Period.MONTHLY
    assert a.message_id == "m-1"
    assert a.dedupe_key.startswith("aws.budgets:")
    assert len(a.dedupe_key) == len("aws.budgets:") + 64
    assert a.raw == text
    assert "Test Budget" in a.reason
    assert "$0.59" in a.reason


def test_forecasted_letter_with_new_console_link(example_config: KillSwitchConfig) -> None:
    a = _alert(parse_message(letter("budget_monthly_forecasted.txt"), example_config))
    assert a.kind is AlertKind.FORECASTED
    assert a.agent == "log-summarizer"  # default budget name "<prefix>-<name>"
    assert (a.amount_usd, a.budgeted_usd, a.threshold_usd) == (512.40, 500.0, 400.0)
    assert a.percent_of_budget == pytest.approx(102.48)
    assert a.alert_date == "2026-03-03"
    assert a.period == "2026-03"


def test_daily_letter_wording_gives_a_daily_period(example_config: KillSwitchConfig) -> None:
    a = _alert(parse_message(letter("budget_daily_actual.txt"), example_config))
    assert a.kind is AlertKind.ACTUAL
    assert (a.amount_usd, a.budgeted_usd, a.threshold_usd) == (0.90, 1.00, 0.75)
    assert a.budget_period is Period.DAILY
    assert a.alert_date == "2022-09-27"
    assert a.period == "2022-09-27"


def test_thousands_separators(example_config: KillSwitchConfig) -> None:
    a = _alert(parse_message(letter("budget_thousands.txt"), example_config))
    assert (a.amount_usd, a.budgeted_usd, a.threshold_usd) == (1234.56, 1200.0, 1140.0)
    assert a.percent_of_budget == pytest.approx(102.88)
    assert a.threshold_pct == 95.0


def test_crlf_blank_lines_and_indentation(example_config: KillSwitchConfig) -> None:
    text = letter("budget_crlf.txt")
    assert "\r\n" in text  # the fixture really is CRLF
    a = _alert(parse_message(text, example_config))
    assert a.agent == "research-crawler"
    assert a.budget_name == "Test Budget"
    assert (a.amount_usd, a.budgeted_usd, a.threshold_usd) == (950.0, 1200.0, 900.0)
    assert a.alert_date == "2026-11-20"
    assert a.account_id == "111122223333"


def test_crlf_and_lf_versions_of_one_letter_are_the_same_alert(example_config: KillSwitchConfig) -> None:
    lf = letter("budget_thousands.txt")
    a = _alert(parse_message(lf, example_config))
    b = _alert(parse_message(lf.replace("\n", "\r\n"), example_config))
    c = _alert(parse_message(lf.replace("\n", "\r"), example_config))
    assert a.dedupe_key == b.dedupe_key == c.dedupe_key
    assert (a.amount_usd, a.threshold_usd) == (b.amount_usd, b.threshold_usd) == (c.amount_usd, c.threshold_usd)


def test_missing_amount_line_falls_back_on_the_sentence(example_config: KillSwitchConfig) -> None:
    a = _alert(parse_message(letter("budget_missing_amount_line.txt"), example_config))
    assert a.amount_usd == 412.50
    assert a.percent_of_budget == 82.5


def test_letter_without_any_amount_keeps_the_threshold(example_config: KillSwitchConfig) -> None:
    a = _alert(parse_message(letter("budget_threshold_only.txt"), example_config))
    assert a.amount_usd is None
    assert a.percent_of_budget is None
    assert a.threshold_usd == 500.0
    assert a.threshold_pct == 100.0


def test_subject_provides_the_name_when_the_body_lacks_it(example_config: KillSwitchConfig) -> None:
    text = letter("budget_subject_only_name.txt")
    a = _alert(parse_message(text, example_config, subject=BUDGET_SUBJECT.format(name="Test Budget")))
    assert a.budget_name == "Test Budget"
    assert a.agent == "research-crawler"
    r = _rejected(parse_message(text, example_config))
    assert "names no budget" in r.reason


def test_subject_name_through_an_sns_record(example_config: KillSwitchConfig) -> None:
    event = sns_event(budget_record("budget_subject_only_name.txt", subject_name="Test Budget"))
    [result] = parse_event(event, example_config)
    assert _alert(result).agent == "research-crawler"


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("budget_foreign_currency.txt", "not USD"),
        ("budget_usage.txt", "only Cost budgets"),
        ("budget_unknown.txt", "budget 'team-analytics' is not managed by this kill switch"),
    ],
)
def test_letters_that_are_refused(example_config: KillSwitchConfig, fixture: str, expected: str) -> None:
    text = letter(fixture)
    r = _rejected(parse_message(text, example_config, message_id="m-9"))
    assert expected in r.reason
    assert r.message_id == "m-9"
    assert r.raw == text


def test_foreign_currency_reason_names_the_currency(example_config: KillSwitchConfig) -> None:
    r = _rejected(parse_message(letter("budget_foreign_currency.txt"), example_config))
    assert "€" in r.reason


def test_usage_budget_is_refused_even_without_a_budget_type_line(example_config: KillSwitchConfig) -> None:
    text = letter("budget_usage.txt").replace("Budget Type: Usage\n", "")
    r = _rejected(parse_message(text, example_config))
    assert "usage budget" in r.reason


def test_usage_units_alone_are_refused(example_config: KillSwitchConfig) -> None:
    text = letter("budget_usage.txt").replace("Budget Type: Usage", "Budget Type: Cost")
    r = _rejected(parse_message(text, example_config))
    assert "not a dollar amount" in r.reason
    assert "Hrs" in r.reason


def test_alert_type_inferred_from_the_amount_line(example_config: KillSwitchConfig) -> None:
    text = letter("budget_monthly_forecasted.txt").replace("Alert Type: FORECASTED\n", "")
    a = _alert(parse_message(text, example_config))
    assert a.kind is AlertKind.FORECASTED
    assert a.amount_usd == 512.40


def test_unknown_alert_type_is_refused(example_config: KillSwitchConfig) -> None:
    text = letter("budget_monthly_actual.txt").replace("Alert Type: ACTUAL", "Alert Type: PROJECTED")
    r = _rejected(parse_message(text, example_config))
    assert "PROJECTED" in r.reason


def test_unparseable_letter_date_falls_back_on_the_sns_timestamp(example_config: KillSwitchConfig) -> None:
    text = letter("budget_monthly_actual.txt").replace("September 26, 2022", "sometime")
    a = _alert(parse_message(text, example_config, timestamp="2026-11-20T10:04:33.123Z"))
    assert a.alert_date == "2026-11-20"
    assert a.period == "2026-11"


def test_text_before_the_anchor_is_ignored(example_config: KillSwitchConfig) -> None:
    text = "Budget Name: someone else\nForwarded message\n\n" + letter("budget_monthly_actual.txt")
    a = _alert(parse_message(text, example_config))
    assert a.budget_name == "Test Budget"


def test_letter_with_no_numbers_is_refused(example_config: KillSwitchConfig) -> None:
    text = "AWS Budget Notification November 20, 2026\nBudget Name: Test Budget\nAlert Type: ACTUAL\n"
    r = _rejected(parse_message(text, example_config))
    assert "neither an amount nor a threshold" in r.reason


def test_budgets_subject_without_a_letter_is_refused(example_config: KillSwitchConfig) -> None:
    r = _rejected(parse_message("hello", example_config, subject=BUDGET_SUBJECT.format(name="Test Budget")))
    assert "AWS Budget Notification" in r.reason


def test_threshold_printed_as_a_percentage_is_converted(example_config: KillSwitchConfig) -> None:
    text = letter("budget_monthly_forecasted.txt").replace("Alert Threshold: > $400.00", "Alert Threshold: > 80%")
    a = _alert(parse_message(text, example_config))
    assert a.threshold_pct == 80.0
    assert a.threshold_usd == 400.0  # from the "$400.00" of the sentence; the percentage agrees
    no_prose = text.replace("greater than $400.00", "greater than 80%")
    b = _alert(parse_message(no_prose, example_config))
    assert (b.threshold_usd, b.threshold_pct) == (400.0, 80.0)  # 80 % of the $500.00 budgeted amount


def test_letter_without_any_date_takes_the_period_of_processing(example_config: KillSwitchConfig) -> None:
    text = letter("budget_monthly_actual.txt").replace("September 26, 2022", "")
    march = _alert(parse_message(text, example_config, now=datetime(2026, 3, 31, 23, 0, tzinfo=UTC)))
    april = _alert(parse_message(text, example_config, now=datetime(2026, 4, 1, 1, 0, tzinfo=UTC)))
    assert march.alert_date is None
    assert (march.period, april.period) == ("2026-03", "2026-04")
    assert march.dedupe_key != april.dedupe_key


def test_event_without_source_is_refused(example_config: KillSwitchConfig) -> None:
    r = _rejected(parse_message('{"action": "kill", "agent": "log-summarizer", "reason": "x"}', example_config))
    assert r.reason == "event has no source (expected one of killswitch.guard, killswitch.cli)"


def test_letter_starting_with_a_bracket_is_still_a_letter(example_config: KillSwitchConfig) -> None:
    a = _alert(parse_message("[External]\n" + letter("budget_monthly_actual.txt"), example_config))
    assert a.budget_name == "Test Budget"
