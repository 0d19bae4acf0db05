"""What an alert means for its agent: nothing, a warning or a kill. Pure: no AWS calls.

Rules (`decide_level`):
- an explicit action (our own events, test events) is the level: kill -> KILL, warn -> WARN;
- AWS Budgets ACTUAL/FORECASTED: percentage = amount / budgeted amount (the letter's figures; when the letter
  lacks the amount, the threshold; when it lacks the budgeted amount, the agent's configured `amount_usd`);
  below `warn_at_pct` -> NONE, from `warn_at_pct` -> WARN, from `kill_at_pct` -> KILL. A FORECASTED alert is a
  prediction: it is at most WARN unless the agent's `budget.kill_on_forecast` is true;
- a meter estimate (METERED) is compared like ACTUAL: amount / budgeted amount against the same thresholds;
- a cost anomaly -> WARN: it says spend is unusual, not how much of the budget is gone, so it has no percentage
  to compare with `kill_at_pct`; the budget alert (or the guard) does the killing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from killswitch.config import AgentConfig, KillSwitchConfig
from killswitch.kill.alerts import Alert, AlertKind


class Level(StrEnum):
    NONE = "none"
    WARN = "warn"
    KILL = "kill"


@dataclass(frozen=True)
class LevelDecision:
    level: Level
    reason: str


# No restore level: undoing a kill is an ops command (`killswitch restore`), never the outcome of an alert.
_ACTION_LEVELS = {"kill": Level.KILL, "warn": Level.WARN}


def fmt_usd(value: float) -> str:
    return f"${value:,.2f}"


def fmt_pct(value: float) -> str:
    """102.5 -> `102.5%`, 80.0 -> `80%`, 99.987 -> `99.99%` (two decimals at most; display only, never compared)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _budget_percentage(alert: Alert, agent: AgentConfig) -> tuple[float, str] | None:
    """(percentage, how it was computed) for a budget alert, or None when there is nothing to compare."""
    letter_budget = alert.budgeted_usd if alert.budgeted_usd and alert.budgeted_usd > 0 else None
    configured = agent.budget.amount_usd
    if alert.budget_account and agent.budget.per_account_usd is not None:
        configured = agent.budget.per_account_usd  # a linked-account budget of the management account
    budget, budget_note = (letter_budget, "budget") if letter_budget else (configured, "configured budget")
    if alert.org_budget:  # the result names the account whose budget fired (`killswitch.org_budgets`)
        budget_note += f" of linked account {alert.budget_account}" if alert.budget_account else " (org-wide)"
    kind = alert.kind.value
    if alert.amount_usd is not None:
        what = f"{kind} {fmt_usd(alert.amount_usd)}"
        value = alert.amount_usd
    elif alert.threshold_usd is not None:
        what = f"{kind} amount missing; threshold {fmt_usd(alert.threshold_usd)}"
        value = alert.threshold_usd
    else:
        return None
    if letter_budget is not None and alert.amount_usd is not None and alert.percent_of_budget is not None:
        pct = alert.percent_of_budget
    elif letter_budget is not None and alert.amount_usd is None and alert.threshold_pct is not None:
        pct = alert.threshold_pct
    else:
        pct = round(value * 100 / budget, 6)
    return pct, f"{what} is {fmt_pct(pct)} of {fmt_usd(budget)} {budget_note}"


def decide_level(alert: Alert, config: KillSwitchConfig) -> LevelDecision:
    """The level for one alert, with a one-line reason that names the figures and the rule that applied."""
    if alert.action is not None:
        level = _ACTION_LEVELS[alert.action]
        return LevelDecision(level, f"explicit {alert.action} from {alert.source.value}: {alert.reason}")
    try:
        agent = config.agent(alert.agent)
    except KeyError:
        return LevelDecision(Level.NONE, f"agent {alert.agent!r} is not in the config")
    if alert.kind is AlertKind.ANOMALY:
        return LevelDecision(
            Level.WARN,
            f"{alert.reason}; anomalies have no budget percentage, so they warn and never kill",
        )
    if alert.kind not in (AlertKind.ACTUAL, AlertKind.FORECASTED, AlertKind.METERED):
        return LevelDecision(Level.NONE, f"{alert.kind.value} alert without an action: nothing to do")
    computed = _budget_percentage(alert, agent)
    if computed is None:
        return LevelDecision(Level.NONE, f"{alert.kind.value} alert has neither an amount nor a threshold")
    pct, figures = computed
    warn_at, kill_at = agent.budget.warn_at_pct, agent.budget.kill_at_pct
    if pct >= kill_at:
        if alert.kind is AlertKind.FORECASTED and not agent.budget.kill_on_forecast:
            return LevelDecision(
                Level.WARN,
                f"{figures}, ≥ kill {fmt_pct(kill_at)} but forecasts only warn (budget.kill_on_forecast is false)",
            )
        return LevelDecision(Level.KILL, f"{figures}, ≥ kill {fmt_pct(kill_at)}")
    if pct >= warn_at:
        return LevelDecision(Level.WARN, f"{figures}, ≥ warn {fmt_pct(warn_at)}")
    return LevelDecision(Level.NONE, f"{figures}, below warn {fmt_pct(warn_at)}")
