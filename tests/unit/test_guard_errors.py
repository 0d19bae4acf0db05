"""Errors that say what to do: the config field of the cap, the amounts and the way forward; the price call to add
for an unknown model; cheap unique charge ids."""

from __future__ import annotations

import re
import threading

import pytest

from killswitch.guard import BudgetExceeded, Caps, Guard, InMemoryLedger, ModelPrice, UnknownModel
from killswitch.guard.ids import new_id


def guard(caps: Caps) -> Guard:
    return Guard("support-bot", caps, InMemoryLedger())


def refusal(g: Guard, amount: float, workflow: str | None = None, spend_first: float = 0.0) -> BudgetExceeded:
    with g.run(workflow=workflow) as run:
        if spend_first:
            run.charge_usd(spend_first)
        with pytest.raises(BudgetExceeded) as info:
            run.charge_usd(amount)
    return info.value


def test_run_cap_refusal_names_the_field_the_amounts_and_a_new_run() -> None:
    exc = refusal(guard(Caps(per_run_usd=5.0)), 0.5, spend_first=4.8)
    text = str(exc)
    assert exc.cap_field == "caps.per_run_usd"
    assert "caps.per_run_usd" in text and "$5.0000" in text and "$4.8000 used" in text and "$0.5000 requested" in text
    assert "Start a new run" in text and "raise caps.per_run_usd" in text


def test_day_cap_refusal_names_per_day_usd_and_guard_resume() -> None:
    g = guard(Caps(per_day_usd=1.0))
    exc = refusal(g, 0.2, spend_first=0.9)
    text = str(exc)
    assert exc.cap_field == "caps.per_day_usd"
    assert f"caps.per_day_usd ({g.period_key()}) of $1.0000 would be crossed" in text
    assert "raise caps.per_day_usd and call Guard.resume()" in text
    with g.run() as run, pytest.raises(BudgetExceeded, match=r"STOPPED: caps\.per_day_usd .*Guard\.resume\(\)"):
        run.charge_usd(0.01)


def test_workflow_cap_refusal_names_the_label() -> None:
    exc = refusal(guard(Caps(per_workflow_usd={"deep-research": 0.5})), 0.6, workflow="deep-research")
    assert exc.cap_field == "caps.per_workflow_usd.deep-research"
    assert "caps.per_workflow_usd.deep-research" in str(exc) and "$0.6000 requested" in str(exc)


def test_unknown_model_shows_the_model_price_call_and_its_unit() -> None:
    g = guard(Caps())
    with g.run() as run, pytest.raises(UnknownModel) as info:
        run.charge("acme.mystery-9", 100, 100)
    text = str(info.value)
    assert "run.charge('acme.mystery-9', input_tokens, max_output_tokens, price=ModelPrice.of(input=" in text
    assert "USD per 1M input tokens" in text and "USD per 1M output tokens" in text
    # The call the message shows works as written.
    with g.run() as run, run.charge("acme.mystery-9", 100, 100, price=ModelPrice.of(input=3.0, output=15.0)) as c:
        assert c.estimate_usd == pytest.approx((100 * 3 + 100 * 15) / 1e6)
        c.settle(output_tokens=10)


def test_charge_ids_are_unique_across_threads_and_uuid_sized() -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        mine = [new_id() for _ in range(2000)]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == len(ids) == 16_000
    assert all(re.fullmatch(r"[0-9a-f]{24}-[0-9a-f]{11,}", i) and len(i) == 36 for i in ids)
