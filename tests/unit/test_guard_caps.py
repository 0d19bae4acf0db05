"""`Caps.per_day_usd` shares its name with the config field `caps.per_day_usd`; `per_period_usd` stays a deprecated
alias so code written against the old README still works."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import killswitch.guard as guard_pkg
from killswitch.guard import BudgetExceeded, Caps, Guard, InMemoryLedger


def test_per_day_usd_is_the_field_and_the_config_name() -> None:
    caps = Caps(per_run_usd=5.0, per_day_usd=50.0)
    assert caps.per_day_usd == 50.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name warns about nothing
        assert Caps(per_day_usd=1.0) == Caps(None, 1.0)


def test_per_period_usd_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning, match=r"per_day_usd"):
        caps = Caps(per_run_usd=5.0, per_period_usd=50.0)
    assert caps == Caps(per_run_usd=5.0, per_day_usd=50.0)
    assert caps.per_period_usd == 50.0  # the read alias too
    with pytest.raises(TypeError, match="not both"), pytest.warns(DeprecationWarning):
        Caps(per_day_usd=1.0, per_period_usd=2.0)


def test_the_alias_caps_the_agent_and_the_refusal_names_the_config_field() -> None:
    with pytest.warns(DeprecationWarning):
        caps = Caps(per_period_usd=1.0)
    g = Guard("support-bot", caps, InMemoryLedger())
    with g.run() as run:
        run.charge_usd(0.9)
        with pytest.raises(BudgetExceeded) as info:
            run.charge_usd(0.2)
    assert info.value.cap_field == "caps.per_day_usd"


def test_monthly_period_names_the_same_field() -> None:
    g = Guard("support-bot", Caps(per_day_usd=1.0), InMemoryLedger(), period="month")
    with g.run() as run, pytest.raises(BudgetExceeded) as info:
        run.charge_usd(1.5)
    assert info.value.cap_field == "caps.per_day_usd" and info.value.key == g.period_key()


def test_guard_modules_stay_small() -> None:
    """The guard is split into focused modules (guard, run, call, leasing, records, caps, wiring)."""
    folder = Path(guard_pkg.__file__).parent
    sizes = {p.name: len(p.read_text().splitlines()) for p in folder.rglob("*.py")}
    assert {"guard.py", "run.py", "call.py", "leasing.py", "records.py", "caps.py", "wiring.py"} <= set(sizes)
    assert max(sizes.values()) <= 450, sizes
