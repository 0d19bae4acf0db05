"""Cost Explorer ingestion: daily UnblendedCost per agent and service (and per run) into the spend ledger.

Two queries per invocation window (`GetCostAndUsage`, DAILY, metric UnblendedCost, every `NextPageToken` followed):
1. one for all configured agents: filter `agent-name` ∈ config, group by `TAG agent-name` + `DIMENSION SERVICE`;
2. one per agent: filter `agent-name` = agent, group by `TAG agent-run-id` + `DIMENSION SERVICE` (per-run cost,
   where resources carry the run tag).
Each call costs $0.01, so a run makes 1 + (number of agents) calls, plus extra pages.

The window is the last `lookback_days` complete days, [today - N, today) (End is exclusive), because Cost Explorer
revises recent days: every re-read replaces the day's rows (changed amounts overwrite, services that disappeared
are deleted), so a day converges on Cost Explorer's final figure.

Tag group keys come back as `agent-name$<value>`; an empty value means untagged cost. Untagged cost and agents that
are not in the config are skipped (counted in the summary, never recorded): the ledger only holds configured
agents. Runs without an `agent-run-id` tag are likewise skipped in the per-run query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from killswitch import aws
from killswitch.spend.ledger import SpendLedger, to_money
from killswitch.tags import AGENT_NAME, AGENT_RUN_ID

METRIC = "UnblendedCost"
DEFAULT_LOOKBACK_DAYS = 3
MAX_LOOKBACK_DAYS = 90
CE_REGION = "us-east-1"  # Cost Explorer's single endpoint

UNTAGGED = "untagged"
UNKNOWN_AGENT = "unknown_agent"


@dataclass(frozen=True)
class CostRow:
    """One Cost Explorer group on one day. `tag` is the agent (query 1) or the run id (query 2)."""

    day: date
    tag: str
    service: str
    amount_usd: Decimal
    estimated: bool = False


@dataclass
class PageRows:
    rows: list[CostRow] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def tag_value(key: str, tag_key: str) -> str | None:
    """`agent-name$foo` → `foo`; `agent-name$` (untagged) → None. A key without the prefix is taken as the value."""
    prefix = f"{tag_key}$"
    value = key[len(prefix) :] if key.startswith(prefix) else key
    return value.strip() or None


def parse_page(page: Mapping[str, Any], tag_key: str, keep: Collection[str] | None = None) -> PageRows:
    """Pure: a GetCostAndUsage page grouped by (TAG tag_key, DIMENSION SERVICE) → rows.

    Groups whose tag is empty are skipped as `untagged`; when `keep` is given, tags outside it are skipped as
    `unknown_agent`. `days` lists every day the page answers for (even with no groups), so the caller can
    clear a day whose cost vanished in a revision."""
    out = PageRows()
    skipped: dict[str, int] = defaultdict(int)
    for result in page.get("ResultsByTime", []):
        day = date.fromisoformat(result["TimePeriod"]["Start"][:10])
        out.days.append(day)
        estimated = bool(result.get("Estimated", False))
        for group in result.get("Groups", []):
            keys = group.get("Keys", [])
            if len(keys) != 2:
                raise ValueError(f"expected 2 group keys (tag, service), got {keys!r}")
            tag = tag_value(keys[0], tag_key)
            if tag is None:
                skipped[UNTAGGED] += 1
                continue
            if keep is not None and tag not in keep:
                skipped[UNKNOWN_AGENT] += 1
                continue
            metric = group.get("Metrics", {}).get(METRIC)
            if metric is None:
                raise ValueError(f"group {keys!r} on {day} has no {METRIC}")
            unit = metric.get("Unit", "USD")
            if unit != "USD":
                raise ValueError(f"group {keys!r} on {day} is in {unit}, not USD")
            out.rows.append(CostRow(day, tag, str(keys[1]), to_money(metric["Amount"]), estimated))
    out.skipped = dict(skipped)
    return out


def window(today: date, lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> tuple[date, date]:
    """[start, end) of the re-read: the last `lookback_days` complete days."""
    if not 1 <= lookback_days <= MAX_LOOKBACK_DAYS:
        raise ValueError(f"lookback_days must be 1..{MAX_LOOKBACK_DAYS} (got {lookback_days})")
    return today - timedelta(days=lookback_days), today


def _tag_filter(agents: list[str]) -> dict[str, Any]:
    return {"Tags": {"Key": AGENT_NAME, "Values": agents, "MatchOptions": ["EQUALS"]}}


def agents_request(start: date, end: date, agents: list[str]) -> dict[str, Any]:
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": [METRIC],
        "Filter": _tag_filter(sorted(agents)),
        "GroupBy": [{"Type": "TAG", "Key": AGENT_NAME}, {"Type": "DIMENSION", "Key": "SERVICE"}],
    }


def runs_request(start: date, end: date, agent: str) -> dict[str, Any]:
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": [METRIC],
        "Filter": _tag_filter([agent]),
        "GroupBy": [{"Type": "TAG", "Key": AGENT_RUN_ID}, {"Type": "DIMENSION", "Key": "SERVICE"}],
    }


def fetch_pages(ce: Any, request: Mapping[str, Any], max_pages: int = 1000) -> Iterator[dict[str, Any]]:
    """Every page of one GetCostAndUsage request, following NextPageToken."""
    token: str | None = None
    for _ in range(max_pages):
        kwargs = dict(request)
        if token:
            kwargs["NextPageToken"] = token
        page = ce.get_cost_and_usage(**kwargs)
        yield page
        token = page.get("NextPageToken")
        if not token:
            return
    raise RuntimeError(f"GetCostAndUsage returned more than {max_pages} pages")


def collect(pages: Iterator[Mapping[str, Any]], tag_key: str, keep: Collection[str] | None = None) -> PageRows:
    """Pure: all pages of one request → rows, answered days (deduplicated, sorted) and skip counts."""
    total = PageRows()
    days: set[date] = set()
    skipped: dict[str, int] = defaultdict(int)
    for page in pages:
        part = parse_page(page, tag_key, keep)
        total.rows.extend(part.rows)
        days.update(part.days)
        for k, v in part.skipped.items():
            skipped[k] += v
    total.days = sorted(days)
    total.skipped = dict(skipped)
    return total


def by_day(rows: list[CostRow]) -> dict[date, dict[str, Decimal]]:
    """Pure: rows of one tag value → day → service → amount (groups split across pages add up)."""
    out: dict[date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in rows:
        out[r.day][r.service] += r.amount_usd
    return {d: dict(s) for d, s in out.items()}


@dataclass
class AgentIngest:
    rows_written: int = 0
    rows_deleted: int = 0
    run_rows_written: int = 0
    run_rows_deleted: int = 0
    runs: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class IngestSummary:
    start: date
    end: date
    pages: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    agents: dict[str, AgentIngest] = field(default_factory=dict)

    @property
    def failed_agents(self) -> list[str]:
        return sorted(a for a, r in self.agents.items() if r.errors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "pages": self.pages,
            "skipped": dict(self.skipped),
            "agents": {
                a: {
                    "rows_written": r.rows_written,
                    "rows_deleted": r.rows_deleted,
                    "run_rows_written": r.run_rows_written,
                    "run_rows_deleted": r.run_rows_deleted,
                    "runs": r.runs,
                    "errors": list(r.errors),
                }
                for a, r in sorted(self.agents.items())
            },
            "failed_agents": self.failed_agents,
        }


def _error(exc: BaseException) -> str:
    return f"{aws.error_code(exc)}: {exc}"


class CostExplorerIngester:
    """Reads the window from Cost Explorer and syncs the ledger. One agent's failure never loses the others."""

    def __init__(
        self,
        ledger: SpendLedger,
        agents: Collection[str],
        *,
        ce_client: Any | None = None,
        lookback_days: int = DEFAULT_LOOKBACK_DAYS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.ledger = ledger
        self.agents = sorted(set(agents))
        self.ce = ce_client if ce_client is not None else aws.client("ce", region=CE_REGION)
        self.lookback_days = lookback_days
        self._clock = clock

    def ingest(self, today: date | None = None) -> IngestSummary:
        start, end = window(today or self._clock().astimezone(UTC).date(), self.lookback_days)
        summary = IngestSummary(start, end, agents={a: AgentIngest() for a in self.agents})
        if not self.agents:
            return summary
        skipped: dict[str, int] = defaultdict(int)

        # 1. per agent and service (one request for all agents)
        agent_rows: PageRows | None = None
        try:
            pages = list(fetch_pages(self.ce, agents_request(start, end, self.agents)))
            summary.pages += len(pages)
            agent_rows = collect(iter(pages), AGENT_NAME, keep=set(self.agents))
        except Exception as exc:  # the per-run queries below still run, agent by agent
            for r in summary.agents.values():
                r.errors.append(f"agents query: {_error(exc)}")
        if agent_rows is not None:
            for k, v in agent_rows.skipped.items():
                skipped[k] += v
            for agent in self.agents:
                result = summary.agents[agent]
                try:
                    days = by_day([r for r in agent_rows.rows if r.tag == agent])
                    for day in agent_rows.days:
                        amounts: dict[tuple[str | None, str], Decimal] = {
                            (None, svc): amt for svc, amt in days.get(day, {}).items()
                        }
                        written, deleted = self.ledger.sync_cost_explorer_day(agent, day, amounts)
                        result.rows_written += written
                        result.rows_deleted += deleted
                except Exception as exc:
                    result.errors.append(f"ledger: {_error(exc)}")

        # 2. per run and service (one request per agent)
        for agent in self.agents:
            outcome = summary.agents[agent]
            try:
                pages = list(fetch_pages(self.ce, runs_request(start, end, agent)))
                summary.pages += len(pages)
                run_rows = collect(iter(pages), AGENT_RUN_ID)
                for k, v in run_rows.skipped.items():
                    skipped[f"runs_{k}"] += v
                outcome.runs = len({row.tag for row in run_rows.rows})
                per_day: dict[date, dict[tuple[str | None, str], Decimal]] = defaultdict(dict)
                for row in run_rows.rows:
                    key: tuple[str | None, str] = (row.tag, row.service)
                    per_day[row.day][key] = per_day[row.day].get(key, Decimal(0)) + row.amount_usd
                for day in run_rows.days:
                    written, deleted = self.ledger.sync_cost_explorer_day(agent, day, per_day.get(day, {}), runs=True)
                    outcome.run_rows_written += written
                    outcome.run_rows_deleted += deleted
            except Exception as exc:
                outcome.errors.append(f"runs query: {_error(exc)}")
        summary.skipped = dict(skipped)
        return summary
