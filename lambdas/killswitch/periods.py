"""The one budget period: the config's `budget.period`, the budget alerts' period keys, the meter's and the
report's period windows all use `Period` and these two functions."""

from __future__ import annotations

from datetime import date
from enum import StrEnum


class Period(StrEnum):
    """An AWS Budgets `TimeUnit`."""

    DAILY = "DAILY"
    MONTHLY = "MONTHLY"
    QUARTERLY = "QUARTERLY"
    ANNUALLY = "ANNUALLY"


def period_start(period: Period | str, day: date) -> date:
    """The first day of the period that holds `day`."""
    p = Period(period)
    if p is Period.DAILY:
        return day
    if p is Period.MONTHLY:
        return day.replace(day=1)
    if p is Period.QUARTERLY:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def period_key(period: Period | str, day: date) -> str:
    """The budget alerts' spelling of the period that holds `day`: `2026-11-22`, `2026-11`, `2026-Q4`, `2026`."""
    p = Period(period)
    if p is Period.DAILY:
        return day.isoformat()
    if p is Period.MONTHLY:
        return f"{day:%Y-%m}"
    if p is Period.QUARTERLY:
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return str(day.year)
