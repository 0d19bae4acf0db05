"""Spend ledger: one DynamoDB item per spend fact, three sources kept apart (see `killswitch.keys`).

Items live under pk `SPEND#<agent>` (budget, Cost Explorer) or `GUARD#<agent>` (guard charges: the partition the
agent's own role may write, see `killswitch.keys`), sk `DAY#<yyyy-mm-dd>#<source>#<detail>`:

| source | detail | amount means |
|---|---|---|
| `budget` | `<budget name>#<ACTUAL\\|FORECASTED>#<threshold>` | period-to-date figure printed in the alert |
| `cost_explorer` | `<service>` or `run:<run_id>#<service>` | that day's UnblendedCost (per-run rows are a breakdown) |
| `guard` | `<charge_id>` | one charge reported by the guard SDK |
| `meter` | `logs:<batch id>#<run or ->`, `tick:<time>#<run or ->` | Bedrock calls of a log batch / compute of a tick |

Every write is a put of the whole item under a key derived from the fact, so a re-read Cost Explorer day or a
retried event overwrites the item instead of adding a second one. Amounts are `Decimal`, rounded half-even to
1e-10 USD (Cost Explorer prints 10 decimals; LLM calls cost fractions of a cent); floats never reach DynamoDB.

Aggregation rules (used by `daily_totals`, the report and the metrics):
- `budget` amounts are period-to-date, not increments: a day's figure is the highest ACTUAL amount alerted that day
  and a period's figure is the latest one, never a sum. FORECASTED figures are kept but are not spend.
- `cost_explorer` per-run rows (`run_id` set) repeat cost that the per-service rows already hold: totals use the
  per-service rows only; the per-run rows feed cost-per-run.
- `guard` charges add up; `meter` facts add up (the estimate's no-double-counting rule between `meter`, `guard` and
  `cost_explorer` is in `killswitch.meter.estimate`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import boto3

from killswitch import aws
from killswitch.items import ItemTable, sort_key_range_end
from killswitch.keys import AGENT_STATE_SK, PK, SK, TTL_ATTR, agent_pk, spend_day_prefix, spend_fact_pk, spend_sk
from killswitch.states import AgentState

SOURCE_BUDGET = "budget"
SOURCE_COST_EXPLORER = "cost_explorer"
SOURCE_GUARD = "guard"
SOURCE_METER = "meter"
SOURCES: tuple[str, ...] = (SOURCE_BUDGET, SOURCE_COST_EXPLORER, SOURCE_GUARD, SOURCE_METER)

ALERT_ACTUAL = "ACTUAL"
ALERT_FORECASTED = "FORECASTED"

INPUT_TOKENS_ATTR = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS_ATTR = "gen_ai.usage.output_tokens"

MONEY_QUANT = Decimal("0.0000000001")
DEFAULT_RETENTION_DAYS = 400
MAX_SORT_KEY_BYTES = 1024

Money = Decimal | float | int | str


def to_money(value: Money) -> Decimal:
    """Any amount → Decimal rounded half-even to 1e-10 USD. Floats go through their shortest repr (0.1 → 0.1)."""
    if isinstance(value, bool):
        raise TypeError("an amount cannot be a bool")
    try:
        d = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not d.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return d.quantize(MONEY_QUANT, rounding=ROUND_HALF_EVEN)


def money_str(value: Decimal) -> str:
    """Canonical short text of an amount (400, 400.0 and '400.00' all give '400'), used inside sort keys."""
    return format(to_money(value).normalize(), "f")


# ----------------------------------------------------------------------------------------------------
# Entry model
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpendEntry:
    agent: str
    day: date
    source: str
    detail: str
    amount_usd: Decimal
    recorded_at: str = ""
    currency: str = "USD"
    # cost_explorer / guard
    run_id: str | None = None
    service: str | None = None
    # budget
    budget_name: str | None = None
    alert_type: str | None = None
    threshold_usd: Decimal | None = None
    budgeted_usd: Decimal | None = None
    # guard
    estimated_usd: Decimal | None = None
    workflow: str | None = None
    kind: str | None = None
    name: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def pk(self) -> str:
        return spend_fact_pk(self.agent, self.source)

    @property
    def sk(self) -> str:
        return spend_sk(self.day.isoformat(), self.source, self.detail)

    @property
    def is_run_breakdown(self) -> bool:
        """A Cost Explorer per-run row: its cost is already in the per-service rows of the same day."""
        return self.source == SOURCE_COST_EXPLORER and self.run_id is not None

    def to_item(self, expires_at: int | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {
            PK: self.pk,
            SK: self.sk,
            "agent": self.agent,
            "day": self.day.isoformat(),
            "source": self.source,
            "detail": self.detail,
            "amount_usd": self.amount_usd,
            "currency": self.currency,
            "recorded_at": self.recorded_at,
        }
        optional: dict[str, Any] = {
            "run_id": self.run_id,
            "service": self.service,
            "budget_name": self.budget_name,
            "alert_type": self.alert_type,
            "threshold_usd": self.threshold_usd,
            "budgeted_usd": self.budgeted_usd,
            "estimated_usd": self.estimated_usd,
            "workflow": self.workflow,
            "kind": self.kind,
            "name": self.name,
            INPUT_TOKENS_ATTR: self.input_tokens,
            OUTPUT_TOKENS_ATTR: self.output_tokens,
            TTL_ATTR: expires_at,
        }
        if self.kind == "llm" and self.name:
            optional["model"] = self.name
        item.update({k: v for k, v in optional.items() if v is not None})
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> SpendEntry:
        def dec(key: str) -> Decimal | None:
            v = item.get(key)
            return None if v is None else to_money(v)

        def integer(key: str) -> int | None:
            v = item.get(key)
            return None if v is None else int(v)

        return cls(
            agent=str(item["agent"]),
            day=date.fromisoformat(str(item["day"])),
            source=str(item["source"]),
            detail=str(item["detail"]),
            amount_usd=to_money(item["amount_usd"]),
            recorded_at=str(item.get("recorded_at", "")),
            currency=str(item.get("currency", "USD")),
            run_id=item.get("run_id"),
            service=item.get("service"),
            budget_name=item.get("budget_name"),
            alert_type=item.get("alert_type"),
            threshold_usd=dec("threshold_usd"),
            budgeted_usd=dec("budgeted_usd"),
            estimated_usd=dec("estimated_usd"),
            workflow=item.get("workflow"),
            kind=item.get("kind"),
            name=item.get("name", item.get("model")),
            input_tokens=integer(INPUT_TOKENS_ATTR),
            output_tokens=integer(OUTPUT_TOKENS_ATTR),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: dates as ISO text, amounts as strings (exact), None fields dropped."""
        out: dict[str, Any] = {}
        for k, v in asdict(self).items():
            if v is None:
                continue
            out[k] = v.isoformat() if isinstance(v, date) else str(v) if isinstance(v, Decimal) else v
        return out


# ----------------------------------------------------------------------------------------------------
# Stores
# ----------------------------------------------------------------------------------------------------


# The spend ledger, the outcomes and the meter's own items use the item layer directly.
SpendStore = ItemTable


class InMemorySpendStore(ItemTable):
    """The item layer on the in-memory twin of DynamoDB: items go through the wire format, so it refuses floats and
    returns Decimals exactly like `DynamoSpendStore`."""

    def __init__(self) -> None:
        from killswitch.memory_dynamo import MemoryDynamo  # imported here: Lambda never builds the twin

        super().__init__("ledger", MemoryDynamo())

    def __len__(self) -> int:
        return len(self.all_items())


class DynamoSpendStore(ItemTable):
    """The stack's single table (pk/sk strings). Queries follow `LastEvaluatedKey` until the last page."""

    def __init__(self, table_name: str, session: boto3.Session | None = None, *, page_size: int | None = None):
        super().__init__(table_name, aws.client("dynamodb", session=session), page_size=page_size)


def read_agent_state(store: SpendStore, agent: str) -> str | None:
    """The kill engine's state item (`AGENT#<agent>` / `STATE`, attribute `state`) as the report's label (`ok`,
    `thrift`, `killed`), if there is a known one."""
    for item in store.query(agent_pk(agent), AGENT_STATE_SK):
        if item.get(SK) == AGENT_STATE_SK:
            state = AgentState.parse(item.get("state"))
            return state.label if state else None
    return None


# ----------------------------------------------------------------------------------------------------
# Ledger
# ----------------------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _require(value: str | None, what: str) -> str:
    if value is None or not str(value).strip():
        raise ValueError(f"{what} must not be empty")
    return str(value).strip()


def _non_negative(value: Money, what: str) -> Decimal:
    d = to_money(value)
    if d < 0:
        raise ValueError(f"{what} must not be negative (got {value!r})")
    return d


def _opt_money(value: Money | None) -> Decimal | None:
    return None if value is None else to_money(value)


def _opt_tokens(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"{what} must be a non-negative integer (got {value!r})")
    return int(value)


def budget_detail(budget_name: str, alert_type: str, threshold_usd: Money | None) -> str:
    threshold = "none" if threshold_usd is None else money_str(to_money(threshold_usd))
    return f"{budget_name}#{alert_type}#{threshold}"


def cost_explorer_detail(service: str, run_id: str | None = None) -> str:
    return service if run_id is None else f"run:{run_id}#{service}"


class SpendLedger:
    """Records spend facts idempotently and reads them back as `SpendEntry` objects."""

    def __init__(
        self,
        store: SpendStore,
        *,
        retention_days: int | None = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], datetime] = _utcnow,
    ):
        self.store = store
        self.retention_days = retention_days
        self._clock = clock

    # -- writes -----------------------------------------------------------------------------------------
    def _expires_at(self, day: date) -> int | None:
        if not self.retention_days:
            return None
        end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=self.retention_days + 1)
        return int(end.timestamp())

    def _put(self, entry: SpendEntry) -> SpendEntry:
        if len(entry.sk.encode("utf-8")) > MAX_SORT_KEY_BYTES:
            raise ValueError(f"sort key over DynamoDB's {MAX_SORT_KEY_BYTES} bytes: {entry.sk[:80]}...")
        self.store.put(entry.to_item(self._expires_at(entry.day)))
        return entry

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="seconds")

    def record_budget_alert(  # noqa: PLR0917 (the signature other components call)
        self,
        agent: str,
        day: date,
        budget_name: str,
        alert_type: str,
        threshold_usd: Money | None,
        amount_usd: Money,
        budgeted_usd: Money | None,
    ) -> None:
        """One AWS Budgets alert. `amount_usd` is the period-to-date ACTUAL (or FORECASTED) figure."""
        kind = _require(alert_type, "alert_type").upper()
        if kind not in (ALERT_ACTUAL, ALERT_FORECASTED):
            raise ValueError(f"alert_type must be ACTUAL or FORECASTED (got {alert_type!r})")
        name = _require(budget_name, "budget_name")
        self._put(
            SpendEntry(
                agent=_require(agent, "agent"),
                day=day,
                source=SOURCE_BUDGET,
                detail=budget_detail(name, kind, threshold_usd),
                amount_usd=_non_negative(amount_usd, "amount_usd"),
                recorded_at=self._now(),
                budget_name=name,
                alert_type=kind,
                threshold_usd=_opt_money(threshold_usd),
                budgeted_usd=_opt_money(budgeted_usd),
            )
        )

    def record_guard_charge(
        self,
        agent: str,
        day: date,
        charge_id: str,
        amount_usd: Money,
        *,
        estimated_usd: Money | None = None,
        run_id: str | None = None,
        workflow: str | None = None,
        kind: str = "llm",
        name: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> None:
        """One charge settled by the guard SDK (`charge_id` is its idempotency key)."""
        if kind not in ("llm", "tool"):
            raise ValueError(f"kind must be 'llm' or 'tool' (got {kind!r})")
        self._put(
            SpendEntry(
                agent=_require(agent, "agent"),
                day=day,
                source=SOURCE_GUARD,
                detail=_require(charge_id, "charge_id"),
                amount_usd=_non_negative(amount_usd, "amount_usd"),
                recorded_at=self._now(),
                run_id=run_id or None,
                estimated_usd=_opt_money(estimated_usd),
                workflow=workflow or None,
                kind=kind,
                name=name or None,
                input_tokens=_opt_tokens(input_tokens, "input_tokens"),
                output_tokens=_opt_tokens(output_tokens, "output_tokens"),
            )
        )

    def record_meter(
        self,
        agent: str,
        day: date,
        detail: str,
        amount_usd: Money,
        *,
        at: datetime,
        kind: str,
        service: str,
        run_id: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> None:
        """One meter fact: the priced Bedrock calls of one log batch (`kind` "bedrock") or compute accrued in one
        tick (`kind` "compute"). `detail` is derived from the batch's record ids / the tick time, so a redelivered
        batch or a re-run tick overwrites its fact. `recorded_at` is `at` (the latest call / the tick), which the
        burn-rate window reads."""
        if kind not in ("bedrock", "compute"):
            raise ValueError(f"kind must be 'bedrock' or 'compute' (got {kind!r})")
        self._put(
            SpendEntry(
                agent=_require(agent, "agent"),
                day=day,
                source=SOURCE_METER,
                detail=_require(detail, "detail"),
                amount_usd=_non_negative(amount_usd, "amount_usd"),
                recorded_at=at.astimezone(UTC).isoformat(timespec="seconds"),
                run_id=run_id or None,
                service=service,
                kind=kind,
                input_tokens=_opt_tokens(input_tokens, "input_tokens"),
                output_tokens=_opt_tokens(output_tokens, "output_tokens"),
            )
        )

    def record_cost_explorer(
        self, agent: str, day: date, service: str, amount_usd: Money, run_id: str | None = None
    ) -> None:
        """One Cost Explorer group for one day (credits may make it negative). Re-reading the day overwrites it."""
        svc = _require(service, "service")
        self._put(
            SpendEntry(
                agent=_require(agent, "agent"),
                day=day,
                source=SOURCE_COST_EXPLORER,
                detail=cost_explorer_detail(svc, run_id or None),
                amount_usd=to_money(amount_usd),
                recorded_at=self._now(),
                run_id=run_id or None,
                service=svc,
            )
        )

    def sync_cost_explorer_day(
        self,
        agent: str,
        day: date,
        amounts: Mapping[tuple[str | None, str], Money],
        *,
        runs: bool = False,
    ) -> tuple[int, int]:
        """Make one day's Cost Explorer rows equal `amounts` ((run_id, service) → amount): write every row and
        delete rows of the same kind (per-service when `runs` is false, per-run when true) that the re-read no
        longer has. Returns (written, deleted)."""
        wanted = {
            cost_explorer_detail(service, run_id): (run_id, service, amount)
            for (run_id, service), amount in amounts.items()
        }
        if any(bool(run_id) != runs for run_id, _, _ in wanted.values()):
            raise ValueError("runs=True needs a run_id on every row, runs=False none")
        for run_id, service, amount in wanted.values():
            self.record_cost_explorer(agent, day, service, amount, run_id=run_id)
        deleted = 0
        for entry in self.entries(agent, since=day, until=day, source=SOURCE_COST_EXPLORER):
            if entry.is_run_breakdown == runs and entry.detail not in wanted:
                self.store.delete(entry.pk, entry.sk)
                deleted += 1
        return len(wanted), deleted

    # -- reads ------------------------------------------------------------------------------------------
    def entries(
        self,
        agent: str,
        since: date | None = None,
        until: date | None = None,
        source: str | None = None,
    ) -> list[SpendEntry]:
        """Entries of `agent` with since <= day <= until (both inclusive, open when None), in (day, source,
        detail) order; `source` narrows to one of SOURCES."""
        if source is not None and source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)} (got {source!r})")
        sources = (source,) if source is not None else SOURCES
        items: list[dict[str, Any]] = []
        for pk in dict.fromkeys(spend_fact_pk(agent, s) for s in sources):  # one query per partition
            if since is not None and since == until:
                items.extend(self.store.query(pk, spend_day_prefix(since.isoformat(), source)))
            elif since is None and until is None:
                items.extend(self.store.query(pk, spend_day_prefix()))
            else:
                low = spend_day_prefix(since.isoformat() if since else None)
                high = sort_key_range_end(spend_day_prefix(until.isoformat() if until else None))
                items.extend(self.store.query_between(pk, low, high))
        items.sort(key=lambda i: str(i[SK]).encode("utf-8"))  # (day, source, detail) order across partitions
        out = [SpendEntry.from_item(i) for i in items]
        if source is not None:
            out = [e for e in out if e.source == source]
        return out

    def daily_totals(
        self, agent: str, since: date | None = None, until: date | None = None
    ) -> dict[date, dict[str, Decimal]]:
        """day → source → amount, for the sources that have entries that day (see the module doc for rules)."""
        return daily_totals(self.entries(agent, since, until))


def daily_totals(entries: Iterable[SpendEntry]) -> dict[date, dict[str, Decimal]]:
    """Pure aggregation: guard charges add up, Cost Explorer per-service rows add up (per-run rows are left out:
    they repeat the same cost), budget is the day's highest ACTUAL period-to-date figure."""
    out: dict[date, dict[str, Decimal]] = {}
    for e in sorted(entries, key=lambda e: e.day):
        if e.is_run_breakdown:
            continue
        if e.source == SOURCE_BUDGET:
            if e.alert_type != ALERT_ACTUAL:
                continue
            day = out.setdefault(e.day, {})
            day[SOURCE_BUDGET] = max(day.get(SOURCE_BUDGET, e.amount_usd), e.amount_usd)
        else:
            day = out.setdefault(e.day, {})
            day[e.source] = day.get(e.source, Decimal(0)) + e.amount_usd
    return dict(sorted(out.items()))
