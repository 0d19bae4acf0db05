"""Pure parts of the ledger: money rounding, validation, the entry <-> item mapping."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from killswitch.spend.ledger import (
    InMemorySpendStore,
    SpendEntry,
    SpendLedger,
    daily_totals,
    money_str,
    to_money,
)


def test_to_money_rounds_half_even_to_ten_decimals_and_avoids_float_artefacts() -> None:
    assert to_money(0.1) == Decimal("0.1")
    assert to_money(0.1 + 0.2) == Decimal("0.3000000000")
    assert to_money("0.00000000005") == Decimal("0")
    assert to_money("0.00000000015") == Decimal("0.0000000002")
    assert to_money(Decimal("1.23456789012345")) == Decimal("1.2345678901")
    for bad in (float("nan"), float("inf"), "abc"):
        with pytest.raises(ValueError):
            to_money(bad)
    with pytest.raises(TypeError):
        to_money(True)


def test_money_str_is_canonical() -> None:
    assert money_str(Decimal("400.00")) == money_str(to_money(400.0)) == money_str(to_money(400)) == "400"
    assert money_str(to_money(0.16)) == "0.16"


@given(st.decimals(min_value=-10_000_000, max_value=10_000_000, allow_nan=False, places=10))
def test_entry_round_trips_through_an_item(amount: Decimal) -> None:
    entry = SpendEntry("a", date(2026, 1, 31), "cost_explorer", "run:r#S3", to_money(amount), run_id="r", service="S3")
    assert SpendEntry.from_item(entry.to_item(123)) == entry


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda led: led.record_budget_alert("a", date.today(), "b", "WEEKLY", None, 1.0, None), "ACTUAL or"),
        (lambda led: led.record_budget_alert("", date.today(), "b", "ACTUAL", None, 1.0, None), "agent"),
        (lambda led: led.record_guard_charge("a", date.today(), "c", -1.0), "negative"),
        (lambda led: led.record_guard_charge("a", date.today(), " ", 1.0), "charge_id"),
        (lambda led: led.record_guard_charge("a", date.today(), "c", 1.0, kind="gpu"), "kind"),
        (lambda led: led.record_guard_charge("a", date.today(), "c", 1.0, input_tokens=-3), "input_tokens"),
        (lambda led: led.record_cost_explorer("a", date.today(), "", 1.0), "service"),
        (lambda led: led.entries("a", source="billing"), "source"),
    ],
)
def test_invalid_facts_are_refused_before_any_write(call, message: str) -> None:
    store = InMemorySpendStore()
    with pytest.raises(ValueError, match=message):
        call(SpendLedger(store))
    assert len(store) == 0


def test_cost_explorer_credits_may_be_negative() -> None:
    ledger = SpendLedger(InMemorySpendStore())
    ledger.record_cost_explorer("a", date(2026, 1, 1), "Credits", -2.5)
    assert daily_totals(ledger.entries("a")) == {date(2026, 1, 1): {"cost_explorer": Decimal("-2.5")}}


def test_no_ttl_when_retention_is_off() -> None:
    store = InMemorySpendStore()
    SpendLedger(store, retention_days=None).record_guard_charge("a", date(2026, 1, 1), "c", 1)
    [item] = store.query("GUARD#a")
    assert "expires_at" not in item


def test_in_memory_store_is_thread_safe_and_idempotent_under_concurrency() -> None:
    store = InMemorySpendStore()
    ledger = SpendLedger(store)

    def writer() -> None:
        for i in range(300):  # every thread writes the same 300 facts, reading now and then
            ledger.record_guard_charge("a", date(2026, 1, 1 + i % 3), f"c-{i}", "0.01")
            if i % 25 == 0:
                ledger.entries("a", date(2026, 1, 2), date(2026, 1, 2))

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store) == 300
    assert sum(v["guard"] for v in ledger.daily_totals("a").values()) == Decimal(3)


FACT = st.one_of(
    st.tuples(st.just("guard"), st.integers(1, 5), st.sampled_from(["c1", "c2", "c3"]), st.integers(0, 10_000)),
    st.tuples(st.just("ce"), st.integers(1, 5), st.sampled_from(["EC2", "S3"]), st.integers(-100, 10_000)),
    st.tuples(st.just("budget"), st.integers(1, 5), st.sampled_from(["ACTUAL", "FORECASTED"]), st.integers(0, 10_000)),
)


def _write(ledger: SpendLedger, facts: list[tuple[str, int, str, int]]) -> None:
    for kind, day, key, cents_ in facts:
        d, amount = date(2026, 3, day), Decimal(cents_) / 100
        if kind == "guard":
            ledger.record_guard_charge("a", d, key, amount)
        elif kind == "ce":
            ledger.record_cost_explorer("a", d, key, amount)
        else:
            ledger.record_budget_alert("a", d, "b", key, 100, amount, 500)


@given(st.lists(FACT, max_size=30))
def test_replaying_any_facts_changes_nothing(facts: list[tuple[str, int, str, int]]) -> None:
    once, twice = SpendLedger(InMemorySpendStore()), SpendLedger(InMemorySpendStore())
    _write(once, facts)
    _write(twice, facts)
    _write(twice, facts)  # SNS redelivery / Lambda retry / Cost Explorer re-read
    assert once.daily_totals("a") == twice.daily_totals("a")
    assert [(e.sk, e.amount_usd) for e in once.entries("a")] == [(e.sk, e.amount_usd) for e in twice.entries("a")]
