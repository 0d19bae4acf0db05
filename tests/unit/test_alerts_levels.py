"""decide_level: explicit actions, budget percentages against warn/kill, FORECASTED rules, anomalies."""

from __future__ import annotations

import pytest

from killswitch.config import KillSwitchConfig
from killswitch.kill.alerts import Alert, AlertKind, AlertSource, parse_message
from killswitch.kill.levels import Level, decide_level, fmt_pct
from tests.unit.alerts_support import letter


def _budget_alert(
    agent: str,
    kind: AlertKind,
    *,
    amount: float | None,
    budgeted: float | None = None,
    threshold: float | None = None,
) -> Alert:
    pct = round(amount * 100 / budgeted, 6) if amount is not None and budgeted else None
    tpct = round(threshold * 100 / budgeted, 6) if threshold is not None and budgeted else None
    return Alert(
        source=AlertSource.BUDGETS,
        kind=kind,
        agent=agent,
        reason="test",
        budget_name=f"killswitch-{agent}",
        amount_usd=amount,
        budgeted_usd=budgeted,
        threshold_usd=threshold,
        percent_of_budget=pct,
        threshold_pct=tpct,
    )


# log-summarizer: warn 80, kill 100, no forecasts.  research-crawler: warn 75, kill 95, forecasted, no kill_on_forecast.
@pytest.mark.parametrize(
    ("agent", "kind", "amount", "level"),
    [
        ("log-summarizer", AlertKind.ACTUAL, 100.0, Level.NONE),
        ("log-summarizer", AlertKind.ACTUAL, 399.99, Level.NONE),
        ("log-summarizer", AlertKind.ACTUAL, 400.0, Level.WARN),  # exactly warn_at_pct
        ("log-summarizer", AlertKind.ACTUAL, 499.99, Level.WARN),
        ("log-summarizer", AlertKind.ACTUAL, 500.0, Level.KILL),  # exactly kill_at_pct
        ("log-summarizer", AlertKind.ACTUAL, 512.40, Level.KILL),
        ("log-summarizer", AlertKind.FORECASTED, 300.0, Level.NONE),
        ("log-summarizer", AlertKind.FORECASTED, 450.0, Level.WARN),
        ("log-summarizer", AlertKind.FORECASTED, 5000.0, Level.WARN),  # forecasts never kill by default
        ("research-crawler", AlertKind.ACTUAL, 899.0, Level.NONE),
        ("research-crawler", AlertKind.ACTUAL, 900.0, Level.WARN),
        ("research-crawler", AlertKind.ACTUAL, 1140.0, Level.KILL),
        ("research-crawler", AlertKind.FORECASTED, 1300.0, Level.WARN),
    ],
)
def test_budget_levels_table(
    example_config: KillSwitchConfig, agent: str, kind: AlertKind, amount: float, level: Level
) -> None:
    budgeted = example_config.agent(agent).budget.amount_usd
    decision = decide_level(_budget_alert(agent, kind, amount=amount, budgeted=budgeted), example_config)
    assert decision.level is level, decision.reason


def test_kill_reason_names_figures_and_rule(example_config: KillSwitchConfig) -> None:
    d = decide_level(_budget_alert("log-summarizer", AlertKind.ACTUAL, amount=512.40, budgeted=500.0), example_config)
    assert d.level is Level.KILL
    assert d.reason == "ACTUAL $512.40 is 102.48% of $500.00 budget, ≥ kill 100%"


def test_below_warn_reason(example_config: KillSwitchConfig) -> None:
    d = decide_level(_budget_alert("log-summarizer", AlertKind.ACTUAL, amount=100.0, budgeted=500.0), example_config)
    assert d.reason == "ACTUAL $100.00 is 20% of $500.00 budget, below warn 80%"


def test_forecast_past_kill_says_why_it_only_warns(example_config: KillSwitchConfig) -> None:
    d = decide_level(
        _budget_alert("research-crawler", AlertKind.FORECASTED, amount=1300.0, budgeted=1200.0), example_config
    )
    assert d.level is Level.WARN
    assert "kill_on_forecast is false" in d.reason


def test_forecast_kills_when_kill_on_forecast(example_config: KillSwitchConfig) -> None:
    data = example_config.model_dump(mode="json")
    data["agents"][1]["budget"]["kill_on_forecast"] = True
    config = KillSwitchConfig.model_validate(data)
    alert = _budget_alert("research-crawler", AlertKind.FORECASTED, amount=1300.0, budgeted=1200.0)
    assert decide_level(alert, config).level is Level.KILL
    below = _budget_alert("research-crawler", AlertKind.FORECASTED, amount=1000.0, budgeted=1200.0)
    assert decide_level(below, config).level is Level.WARN


def test_missing_amount_falls_back_on_threshold(example_config: KillSwitchConfig) -> None:
    a = _alert_from("budget_threshold_only.txt", example_config)
    d = decide_level(a, example_config)
    assert d.level is Level.KILL
    assert d.reason.startswith("ACTUAL amount missing; threshold $500.00 is 100% of $500.00 budget")


def test_missing_budgeted_amount_uses_the_configured_budget(example_config: KillSwitchConfig) -> None:
    alert = _budget_alert("log-summarizer", AlertKind.ACTUAL, amount=450.0)
    d = decide_level(alert, example_config)
    assert d.level is Level.WARN
    assert "of $500.00 configured budget" in d.reason


def test_letter_budget_wins_over_the_configured_one(example_config: KillSwitchConfig) -> None:
    # the letter is AWS's view of the budget: $0.59 of $0.20 is 295 %, whatever the config says
    d = decide_level(_alert_from("budget_monthly_actual.txt", example_config), example_config)
    assert d.level is Level.KILL
    assert "295% of $0.20 budget" in d.reason


def test_no_amount_and_no_threshold_is_none(example_config: KillSwitchConfig) -> None:
    alert = _budget_alert("log-summarizer", AlertKind.ACTUAL, amount=None, budgeted=500.0)
    assert decide_level(alert, example_config).level is Level.NONE


@pytest.mark.parametrize(("action", "level"), [("kill", Level.KILL), ("warn", Level.WARN)])
def test_explicit_action_is_the_level(example_config: KillSwitchConfig, action: str, level: Level) -> None:
    alert = Alert(
        source=AlertSource.GUARD,
        kind=AlertKind.EXPLICIT,
        agent="log-summarizer",
        reason="cap",
        action=action,  # type: ignore[arg-type]
    )
    d = decide_level(alert, example_config)
    assert d.level is level
    assert "cap" in d.reason


def test_explicit_action_wins_even_below_the_budget(example_config: KillSwitchConfig) -> None:
    alert = Alert(
        source=AlertSource.GUARD,
        kind=AlertKind.EXPLICIT,
        agent="log-summarizer",
        reason="per-run cap",
        action="kill",
        amount_usd=5.12,
    )
    assert decide_level(alert, example_config).level is Level.KILL


def test_anomaly_warns(example_config: KillSwitchConfig) -> None:
    alert = Alert(source=AlertSource.ANOMALY, kind=AlertKind.ANOMALY, agent="log-summarizer", reason="anomaly x")
    d = decide_level(alert, example_config)
    assert d.level is Level.WARN
    assert "no budget percentage" in d.reason


def test_unknown_agent_is_none(example_config: KillSwitchConfig) -> None:
    alert = _budget_alert("ghost", AlertKind.ACTUAL, amount=900.0, budgeted=100.0)
    d = decide_level(alert, example_config)
    assert d.level is Level.NONE
    assert "ghost" in d.reason


def test_explicit_without_action_is_none(example_config: KillSwitchConfig) -> None:
    alert = Alert(source=AlertSource.TEST, kind=AlertKind.EXPLICIT, agent="log-summarizer", reason="?")
    assert decide_level(alert, example_config).level is Level.NONE


def test_float_noise_does_not_miss_a_boundary(example_config: KillSwitchConfig) -> None:
    # 0.16 / 0.20 is 79.99999999999999 in binary floating point; the parser rounds it to 80
    text = letter("budget_monthly_actual.txt").replace("ACTUAL Amount: $0.59", "ACTUAL Amount: $0.16")
    text = text.replace("is $0.59.", "is $0.16.").replace("Test Budget", "killswitch-log-summarizer")
    a = parse_message(text, example_config)
    assert isinstance(a, Alert)
    assert a.percent_of_budget == 80.0
    assert decide_level(a, example_config).level is Level.WARN


@pytest.mark.parametrize(("value", "text"), [(80.0, "80%"), (102.5, "102.5%"), (102.48, "102.48%"), (7.0, "7%")])
def test_fmt_pct(value: float, text: str) -> None:
    assert fmt_pct(value) == text


def _alert_from(fixture: str, config: KillSwitchConfig) -> Alert:
    a = parse_message(letter(fixture), config)
    assert isinstance(a, Alert), a
    return a
