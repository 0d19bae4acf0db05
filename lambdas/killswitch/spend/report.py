"""Per-agent spend report: pure builder over ledger entries, plus JSON/CSV rendering and an optional PNG chart.

Figures for a window [since, until] (default: the agent's current budget period up to today):
- `budget_usd`: the latest ACTUAL figure of an AWS Budgets alert in the window. Budget alerts carry period-to-date
  amounts, so the latest one is the spend so far; they are never summed. FORECASTED figures are not spend.
- `cost_explorer_usd`: sum of Cost Explorer's per-service daily rows (per-run rows are a breakdown, not added).
- `guard_usd`: sum of the guard's charges.
- `spend_usd` / `pct_of_budget`: the authoritative figure is Cost Explorer if it has rows in the window, else the
  budget figure, else the guard's sum; the percentage is of the configured budget amount for the period.
- `budget_state` follows spend whatever the kill state: `over budget` at or past 100 %, `thrift` at or past
  `warn_at_pct`, otherwise `ok`; `kill_state` is the kill engine's (`killed`, `restored`, `thrift`, `ok`) when the
  ledger has one. `state` shows both where they differ: an agent over its budget after a restore is
  `over budget, restored`, never `ok` (docs/contracts.md).
- cost per run (see `economics`) and the top 3 services by Cost Explorer cost.

The chart shows cumulative spend per source against the budget amount (and the warn line), one panel per agent:
for a period budget, "how close are we to the line" reads better as a cumulative curve than as daily bars against
amount / days-in-period.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from killswitch.config import AgentConfig
from killswitch.meter.estimate import meter_error_pct
from killswitch.periods import period_start
from killswitch.spend.economics import correction_factor, deviation_series, run_costs, unit_economics
from killswitch.spend.ledger import (
    ALERT_ACTUAL,
    SOURCE_BUDGET,
    SOURCE_COST_EXPLORER,
    SOURCE_GUARD,
    SpendEntry,
    SpendLedger,
    daily_totals,
)
from killswitch.states import AgentState

CENT = Decimal("0.01")
PCT_QUANT = Decimal("0.1")
STATES = (*(s.label for s in AgentState), "restored")  # ok, thrift, killed from the ledger; restored from kills
OVER_BUDGET = "over budget"


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class AgentReport:
    agent: str
    since: date
    until: date
    budget_amount_usd: Decimal
    period: str
    warn_at_pct: float
    kill_at_pct: float
    budget_usd: Decimal | None
    budget_as_of: date | None
    cost_explorer_usd: Decimal | None
    guard_usd: Decimal | None
    spend_source: str | None
    spend_usd: Decimal
    pct_of_budget: Decimal
    state: str
    state_from: str  # "kill_engine" | "derived"
    runs: int
    cost_per_run_usd: Decimal | None
    top_services: list[tuple[str, Decimal]]
    correction_factor: Decimal | None
    daily: dict[date, dict[str, Decimal]] = field(default_factory=dict)
    meter_error_pct: Decimal | None = None  # the meter's estimate against Cost Explorer, over days both cover
    budget_state: str = "ok"  # from spend: ok | thrift | over budget
    kill_state: str | None = None  # from the kill ledger: ok | thrift | killed | restored

    @property
    def has_data(self) -> bool:
        return self.spend_source is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON shape: amounts are numbers rounded to cents (the exact values stay in the ledger)."""

        def num(v: Decimal | None) -> float | None:
            return None if v is None else float(cents(v))

        return {
            "agent": self.agent,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "budget": {
                "amount_usd": float(self.budget_amount_usd),
                "period": self.period,
                "warn_at_pct": self.warn_at_pct,
                "kill_at_pct": self.kill_at_pct,
            },
            "spend_by_source": {
                SOURCE_BUDGET: num(self.budget_usd),
                SOURCE_COST_EXPLORER: num(self.cost_explorer_usd),
                SOURCE_GUARD: num(self.guard_usd),
            },
            "budget_figure_as_of": self.budget_as_of.isoformat() if self.budget_as_of else None,
            "spend_usd": num(self.spend_usd),
            "spend_source": self.spend_source,
            "pct_of_budget": float(self.pct_of_budget),
            "state": self.state,
            "state_from": self.state_from,
            "budget_state": self.budget_state,
            "kill_state": self.kill_state,
            "runs": self.runs,
            "cost_per_run_usd": num(self.cost_per_run_usd),
            "top_services": [{"service": s, "amount_usd": num(a)} for s, a in self.top_services],
            "correction_factor": None if self.correction_factor is None else float(self.correction_factor),
            "meter_error_pct": None if self.meter_error_pct is None else float(self.meter_error_pct),
            "daily": {
                d.isoformat(): {s: num(v) for s, v in sorted(by_source.items())}
                for d, by_source in sorted(self.daily.items())
            },
        }


def build_agent_report(
    agent: AgentConfig,
    entries: Iterable[SpendEntry],
    since: date,
    until: date,
    state: str | None = None,
) -> AgentReport:
    """Pure: one agent's figures from its entries (entries outside [since, until] are ignored)."""
    window = [e for e in entries if since <= e.day <= until and e.agent == agent.name]
    budget_rows = [e for e in window if e.source == SOURCE_BUDGET and e.alert_type == ALERT_ACTUAL]
    latest = max(budget_rows, key=lambda e: (e.day, e.amount_usd), default=None)
    ce_rows = [e for e in window if e.source == SOURCE_COST_EXPLORER and not e.is_run_breakdown]
    guard_rows = [e for e in window if e.source == SOURCE_GUARD]
    ce_usd = sum((e.amount_usd for e in ce_rows), Decimal(0)) if ce_rows else None
    guard_usd = sum((e.amount_usd for e in guard_rows), Decimal(0)) if guard_rows else None
    budget_usd = latest.amount_usd if latest else None

    spend_source: str | None = None
    spend = Decimal(0)
    for source, value in ((SOURCE_COST_EXPLORER, ce_usd), (SOURCE_BUDGET, budget_usd), (SOURCE_GUARD, guard_usd)):
        if value is not None:
            spend_source, spend = source, value
            break
    amount = Decimal(str(agent.budget.amount_usd))
    pct = (spend * 100 / amount).quantize(PCT_QUANT, rounding=ROUND_HALF_EVEN)

    spend_state = budget_state(pct, agent.budget.warn_at_pct)
    kill_state = state.lower() if state and state.lower() in STATES else None
    final_state = combined_state(spend_state, kill_state)
    state_from = "kill_engine" if kill_state in ("killed", "restored") or final_state == kill_state else "derived"

    services: dict[str, Decimal] = defaultdict(Decimal)
    for e in ce_rows:
        services[e.service or e.detail] += e.amount_usd
    top = sorted(services.items(), key=lambda kv: (-kv[1], kv[0]))[:3]

    economics = unit_economics(run_costs(window))
    return AgentReport(
        agent=agent.name,
        since=since,
        until=until,
        budget_amount_usd=amount,
        period=agent.budget.period.value,
        warn_at_pct=agent.budget.warn_at_pct,
        kill_at_pct=agent.budget.kill_at_pct,
        budget_usd=budget_usd,
        budget_as_of=latest.day if latest else None,
        cost_explorer_usd=ce_usd,
        guard_usd=guard_usd,
        spend_source=spend_source,
        spend_usd=spend,
        pct_of_budget=pct,
        state=final_state,
        state_from=state_from,
        runs=economics.runs,
        cost_per_run_usd=economics.mean_usd,
        top_services=top,
        correction_factor=correction_factor(deviation_series(window)),
        daily=daily_totals(window),
        budget_state=spend_state,
        kill_state=kill_state,
        meter_error_pct=meter_error_pct(window),
    )


def budget_state(pct: Decimal, warn_at_pct: float) -> str:
    if pct >= 100:
        return OVER_BUDGET
    return "thrift" if pct >= Decimal(str(warn_at_pct)) else "ok"


def combined_state(spend_state: str, kill_state: str | None) -> str:
    """One label: spend first (an agent over budget says so after a restore), then `killed`/`restored`."""
    if kill_state in ("killed", "restored"):
        return kill_state if spend_state == "ok" else f"{spend_state}, {kill_state}"
    if kill_state == "thrift" and spend_state == "ok":
        return "thrift"
    return spend_state


def build_reports(
    ledger: SpendLedger,
    agents: Iterable[AgentConfig],
    today: date,
    *,
    since: date | None = None,
    until: date | None = None,
    state_of: Callable[[str], str | None] | None = None,
) -> list[AgentReport]:
    """Read each agent's window from the ledger and build its report. Default window: from the start of the budget
    period that contains `until` (or today) up to `until` (or today)."""
    out = []
    for agent in agents:
        end = until or today
        start = since or period_start(agent.budget.period, end)
        state = state_of(agent.name) if state_of else None
        out.append(build_agent_report(agent, ledger.entries(agent.name, start, end), start, end, state))
    return out


# ----------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "agent",
    "since",
    "until",
    "budget_amount_usd",
    "period",
    "budget_usd",
    "cost_explorer_usd",
    "guard_usd",
    "spend_usd",
    "spend_source",
    "pct_of_budget",
    "state",
    "runs",
    "cost_per_run_usd",
    "top_services",
)


def _fmt(v: Decimal | None) -> str:
    return "" if v is None else f"{cents(v):.2f}"


def to_json(reports: list[AgentReport]) -> dict[str, Any]:
    return {"agents": [r.to_dict() for r in reports]}


def to_csv(reports: list[AgentReport]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in reports:
        writer.writerow(
            [
                r.agent,
                r.since.isoformat(),
                r.until.isoformat(),
                _fmt(r.budget_amount_usd),
                r.period,
                _fmt(r.budget_usd),
                _fmt(r.cost_explorer_usd),
                _fmt(r.guard_usd),
                _fmt(r.spend_usd),
                r.spend_source or "",
                f"{r.pct_of_budget:.1f}",
                r.state,
                r.runs,
                _fmt(r.cost_per_run_usd),
                "; ".join(f"{s}={_fmt(a)}" for s, a in r.top_services),
            ]
        )
    return buf.getvalue()


def cumulative_series(report: AgentReport) -> dict[str, list[tuple[date, float]]]:
    """Per source, (day, spend so far) for each day of the window: guard and Cost Explorer accumulate daily rows;
    budget figures are already period-to-date and are carried forward between alerts. A curve starts on its
    source's first day with a figure (no invented zeros before the first budget alert). Cost Explorer's curve
    stops at its last reported day: it lags by a day or more, and a flat tail would read as "no spend"."""
    days = [report.since + timedelta(days=i) for i in range((report.until - report.since).days + 1)]
    out: dict[str, list[tuple[date, float]]] = {}
    for source in (SOURCE_COST_EXPLORER, SOURCE_GUARD, SOURCE_BUDGET):
        reported = [d for d in days if source in report.daily.get(d, {})]
        if not reported:
            continue
        last = reported[-1] if source == SOURCE_COST_EXPLORER else days[-1]
        running: Decimal | None = None
        points = []
        for d in days:
            if d > last:
                break
            value = report.daily.get(d, {}).get(source)
            if source == SOURCE_BUDGET:
                running = value if value is not None else running
            elif value is not None or running is not None:
                running = (running or Decimal(0)) + (value or Decimal(0))
            if running is not None:  # a source's curve starts at its first figure
                points.append((d, float(running)))
        out[source] = points
    return out


def render_chart(reports: list[AgentReport], path: str | Path) -> Path:
    """Write `chart_figure(reports)` as a PNG."""
    import matplotlib.pyplot as plt

    out = Path(path)
    fig = chart_figure(reports)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
    return out


def chart_figure(reports: list[AgentReport]) -> Any:
    """The chart: one panel per agent with data (cumulative spend per source, budget amount and warn line; dates on the
    x axis over the whole window, y from zero, the legend beside the plot so no label sits on the budget line).
    Agents without data get no empty panel: one line under the last panel names them. matplotlib is imported here
    (Agg backend), so the Lambda package never needs it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    shown = [r for r in reports if r.has_data]
    empty = [r.agent for r in reports if not r.has_data]
    n = max(1, len(shown))
    fig, axes = plt.subplots(n, 1, figsize=(10, 3.2 * n), squeeze=False)
    colors = {SOURCE_COST_EXPLORER: "tab:blue", SOURCE_GUARD: "tab:orange", SOURCE_BUDGET: "tab:green"}
    for ax, r in zip(axes[:, 0], shown, strict=False):
        top = 0.0
        for source, points in cumulative_series(r).items():
            values = [v for _, v in points]
            ax.plot([d for d, _ in points], values, label=source, color=colors[source], marker=".")
            top = max([top, *values])
        budget = float(r.budget_amount_usd)
        ax.axhline(budget, color="tab:red", linestyle="-", label=f"budget ${budget:,.0f} ({r.period.lower()})")
        ax.axhline(budget * r.warn_at_pct / 100, color="tab:red", linestyle=":", label=f"warn {r.warn_at_pct:g}%")
        ax.set_title(f"{r.agent}: ${cents(r.spend_usd):,} ({r.pct_of_budget}% of budget, {r.state})")
        ax.set_ylabel("cumulative USD")
        ax.set_ylim(0, max(top, budget) * 1.08)
        # Half a day of margin: a one-day window still shows a date, never hours of a single day.
        ax.set_xlim(_day_edge(r.since, -0.5), _day_edge(r.until, 0.5))
        short = (r.until - r.since).days < 8  # a tick per day; longer windows let matplotlib space whole days
        ax.xaxis.set_major_locator(mdates.DayLocator() if short else mdates.AutoDateLocator(minticks=3, maxticks=10))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize="small")
    if not shown:
        axes[0, 0].set_axis_off()
        axes[0, 0].text(0.5, 0.5, "no spend recorded in the window", ha="center", va="center")
    if empty and shown:
        fig.text(0.01, 0.005, f"no data: {', '.join(empty)}", fontsize="small", color="dimgray")
    fig.autofmt_xdate()
    fig.tight_layout(rect=(0, 0.03 if empty and shown else 0, 1, 1))
    return fig


def _day_edge(day: date, offset_days: float) -> Any:
    from datetime import datetime, time

    return datetime.combine(day, time()) + timedelta(days=offset_days)
