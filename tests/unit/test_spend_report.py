"""The pure report builder and its renderings (JSON, CSV, chart), on an in-memory ledger."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from killswitch.config import AgentConfig
from killswitch.spend.ledger import InMemorySpendStore, SpendLedger
from killswitch.spend.report import (
    CSV_COLUMNS,
    build_agent_report,
    build_reports,
    cumulative_series,
    period_start,
    render_chart,
    to_csv,
    to_json,
)

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
AGENT = AgentConfig.model_validate({"name": "bot", "budget": {"amount_usd": 200, "warn_at_pct": 80}})


def _ledger() -> SpendLedger:
    return SpendLedger(InMemorySpendStore())


@pytest.mark.parametrize(
    ("period", "day", "start"),
    [
        ("DAILY", date(2026, 5, 17), date(2026, 5, 17)),
        ("MONTHLY", date(2026, 5, 17), date(2026, 5, 1)),
        ("QUARTERLY", date(2026, 5, 17), date(2026, 4, 1)),
        ("QUARTERLY", date(2026, 12, 31), date(2026, 10, 1)),
        ("ANNUALLY", date(2026, 5, 17), date(2026, 1, 1)),
    ],
)
def test_period_start(period: str, day: date, start: date) -> None:
    assert period_start(period, day) == start


def test_authoritative_figure_is_cost_explorer_then_budget_then_guard() -> None:
    led = _ledger()
    led.record_guard_charge("bot", D1, "c", "30")
    r = build_agent_report(AGENT, led.entries("bot"), D1, D3)
    assert (r.spend_source, r.spend_usd, r.pct_of_budget, r.state) == ("guard", Decimal(30), Decimal("15.0"), "ok")
    led.record_budget_alert("bot", D1, "b", "ACTUAL", 100, "120", 200)
    led.record_budget_alert("bot", D2, "b", "ACTUAL", 150, "161", 200)
    led.record_budget_alert("bot", D3, "b", "FORECASTED", 200, "400", 200)
    r = build_agent_report(AGENT, led.entries("bot"), D1, D3)
    assert (r.spend_source, r.budget_usd, r.budget_as_of, r.pct_of_budget) == ("budget", 161, D2, Decimal("80.5"))
    assert (r.state, r.state_from) == ("thrift", "derived")
    led.record_cost_explorer("bot", D1, "EC2", "50")
    led.record_cost_explorer("bot", D2, "EC2", "25.5")
    led.record_cost_explorer("bot", D2, "S3", "1")
    led.record_cost_explorer("bot", D2, "EC2", "99", run_id="r")  # breakdown, not added
    r = build_agent_report(AGENT, led.entries("bot"), D1, D3)
    assert (r.spend_source, r.cost_explorer_usd, r.pct_of_budget) == (
        "cost_explorer",
        Decimal("76.5"),
        Decimal("38.2"),
    )  # 38.25, half-even
    assert r.top_services == [("EC2", Decimal("75.5")), ("S3", Decimal("1"))]
    assert (r.runs, r.cost_per_run_usd) == (1, Decimal("99"))


def test_kill_engine_state_wins_over_derived_state() -> None:
    led = _ledger()
    led.record_guard_charge("bot", D1, "c", "1")
    assert build_agent_report(AGENT, led.entries("bot"), D1, D1, state="KILLED").state == "killed"
    r = build_agent_report(AGENT, led.entries("bot"), D1, D1, state="unknown-state")
    assert (r.state, r.state_from) == ("ok", "derived")


def test_window_excludes_entries_outside_it_and_default_window_is_the_period() -> None:
    led = _ledger()
    led.record_guard_charge("bot", date(2026, 10, 31), "old", "100")
    led.record_guard_charge("bot", D2, "new", "5")
    [r] = build_reports(led, [AGENT], today=D3)
    assert (r.since, r.until, r.guard_usd) == (D1, D3, Decimal(5))
    [r] = build_reports(led, [AGENT], today=D3, since=date(2026, 10, 1), state_of=lambda a: "thrift")
    assert (r.guard_usd, r.state) == (Decimal(105), "thrift")
    [r] = build_reports(led, [AGENT], today=D3, until=date(2026, 10, 31))  # only --until: that period
    assert (r.since, r.until, r.guard_usd) == (date(2026, 10, 1), date(2026, 10, 31), Decimal(100))


def test_no_data_is_zero_percent_with_no_source() -> None:
    r = build_agent_report(AGENT, [], D1, D3)
    assert (r.spend_source, r.spend_usd, r.pct_of_budget, r.runs, r.cost_per_run_usd) == (None, 0, 0, 0, None)
    assert to_json([r])["agents"][0]["spend_by_source"] == {"budget": None, "cost_explorer": None, "guard": None}


def _sample() -> list:
    led = _ledger()
    led.record_cost_explorer("bot", D1, "EC2", "10.005")
    led.record_cost_explorer("bot", D2, "EC2", "5")
    led.record_guard_charge("bot", D1, "c1", "3.333", run_id="r1")
    led.record_budget_alert("bot", D2, "b", "ACTUAL", 10, "12", 200)
    return [build_agent_report(AGENT, led.entries("bot"), D1, D3)]


def test_json_shape() -> None:
    doc = json.loads(json.dumps(to_json(_sample())))
    [a] = doc["agents"]
    assert a["spend_by_source"] == {"budget": 12.0, "cost_explorer": 15.0, "guard": 3.33}
    assert a["budget"] == {"amount_usd": 200.0, "period": "MONTHLY", "warn_at_pct": 80.0, "kill_at_pct": 100.0}
    assert (a["spend_usd"], a["spend_source"], a["pct_of_budget"], a["state"]) == (15.0, "cost_explorer", 7.5, "ok")
    assert a["top_services"] == [{"service": "EC2", "amount_usd": 15.0}]
    assert a["daily"]["2026-11-01"] == {"cost_explorer": 10.0, "guard": 3.33}
    assert (a["runs"], a["cost_per_run_usd"], a["correction_factor"]) == (1, 3.33, 3.0018)


def test_csv_shape() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(_sample()))))
    assert list(rows[0].keys()) == list(CSV_COLUMNS)
    assert rows[0]["cost_explorer_usd"] == "15.00"
    assert rows[0]["budget_usd"] == "12.00"
    assert rows[0]["pct_of_budget"] == "7.5"
    assert rows[0]["top_services"] == "EC2=15.00"


def test_cumulative_series_accumulates_and_carries_budget_forward() -> None:
    series = cumulative_series(_sample()[0])
    # Cost Explorer's curve stops at its last reported day (D2), not flat to the end of the window.
    assert series["cost_explorer"] == [(D1, 10.005), (D2, 15.005)]
    assert series["budget"] == [(D2, 12.0), (D3, 12.0)]


def test_chart_is_a_png(tmp_path: Path) -> None:
    out = render_chart(_sample() * 2, tmp_path / "sub" / "spend.png")
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000


@pytest.mark.parametrize(
    ("spend", "kill_state", "state"),
    [
        ("250", "restored", "over budget, restored"),
        ("250", "ok", "over budget"),
        ("250", None, "over budget"),
        ("250", "killed", "over budget, killed"),
        ("170", "restored", "thrift, restored"),
        ("10", "restored", "restored"),
        ("10", "killed", "killed"),
        ("10", "thrift", "thrift"),
        ("10", None, "ok"),
    ],
)
def test_over_budget_shows_whatever_the_kill_state(spend: str, kill_state: str | None, state: str) -> None:
    led = _ledger()
    led.record_guard_charge("bot", D1, "c", spend)
    r = build_agent_report(AGENT, led.entries("bot"), D1, D1, state=kill_state)
    assert r.state == state
    assert r.kill_state == kill_state
    assert r.budget_state == {"250": "over budget", "170": "thrift", "10": "ok"}[spend]
    doc = to_json([r])["agents"][0]
    assert (doc["state"], doc["kill_state"]) == (state, kill_state)


def test_chart_has_a_panel_per_agent_with_data_dates_and_y_from_zero() -> None:
    import matplotlib.pyplot as plt

    from killswitch.spend.report import chart_figure

    other = AgentConfig.model_validate({"name": "idle", "budget": {"amount_usd": 50}})
    day_one = [*_sample(), build_agent_report(other, [], D1, D3)]
    fig = chart_figure(day_one)
    try:
        axes = [ax for ax in fig.axes if ax.get_visible()]
        assert len(axes) == 1  # the agent without data gets no empty panel...
        assert "no data: idle" in [t.get_text() for t in fig.texts]  # ...but is named
        (ax,) = axes
        assert ax.get_ylim()[0] == 0
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels == ["2026-11-01", "2026-11-02", "2026-11-03"]
        legend = ax.get_legend()
        assert legend is not None and legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1  # beside the plot
    finally:
        plt.close(fig)
