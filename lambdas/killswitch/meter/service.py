"""The meter: one pass over a log batch or one compute tick → spend facts → estimate → the kill path.

Decisions are raised in-process into `KillEngine.handle_alert` as `killswitch.meter` alerts (the meter runs in
the kill switch's own account with its own role: a trusted source, never a message an agent could send), so the
kill, warn, notifications and ledger are exactly the budget alert's path.

Failure rule: bad data (malformed line, missing token counts, unknown model, a caller that no longer exists or is
not an agent) is counted per reason, logged and skipped; the rest of the batch is still priced and nothing raises.
AWS failures (throttling after botocore's retries, 5xx) while reading IAM tags, writing facts or pricing raise, so
the Lambda's asynchronous retry (Logs → Lambda) or the next schedule redelivers: every fact key is derived from its
record ids / tick time, so a retry overwrites instead of adding.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger

from killswitch.config import AgentConfig, KillSwitchConfig
from killswitch.guard.errors import UnknownModel
from killswitch.kill.model import KillReport
from killswitch.meter import estimate as E
from killswitch.meter.callers import CallerDirectory
from killswitch.meter.compute import ComputeSource, HourlyPrices, accrue
from killswitch.meter.pricing import RecordPricer
from killswitch.meter.records import InvocationRecord, parse_batch
from killswitch.spend.ledger import SOURCE_METER, SpendEntry, SpendLedger, to_money

if TYPE_CHECKING:
    # The kill path's alert model (and the guard event model behind it) loads with the first alert, in `evaluate`:
    # the meter runs every minute and most passes raise none, so a cold start does not pay for it.
    from killswitch.kill.alerts import Alert

logger = Logger(child=True)


class AlertSink(Protocol):
    """`KillEngine` (only the call the meter makes)."""

    def handle_alert(self, alert: Alert, *, dry_run: bool = False) -> KillReport: ...


class TickState(Protocol):
    def last_tick(self) -> datetime | None: ...

    def set_last_tick(self, at: datetime) -> None: ...


@dataclass
class MeterReport:
    kind: str  # "logs" | "tick"
    dry_run: bool = False
    records: int = 0
    priced: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason → count (bad lines, unknown callers/models)
    unknown_models: Counter[str] = field(default_factory=Counter)
    units: int = 0  # compute units seen by a tick
    facts: list[SpendEntry] = field(default_factory=list)
    estimates: dict[str, E.Estimate] = field(default_factory=dict)
    decisions: list[KillReport] = field(default_factory=list)
    note: str = ""

    @property
    def metered_usd(self) -> Decimal:
        return sum((f.amount_usd for f in self.facts), Decimal(0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dry_run": self.dry_run,
            "records": self.records,
            "priced": self.priced,
            "units": self.units,
            "skipped": dict(self.skipped),
            "unknown_models": dict(self.unknown_models),
            "metered_usd": str(self.metered_usd),
            "facts": [f.to_dict() for f in self.facts],
            "estimates": {a: e.to_dict() for a, e in self.estimates.items()},
            "decisions": [r.to_event() for r in self.decisions],
            "note": self.note,
        }


def _utcnow() -> datetime:
    return datetime.now(UTC)


def batch_id(record_ids: Iterable[str]) -> str:
    """Stable id of a group of records: the same records redelivered give the same fact key."""
    return hashlib.sha256("\n".join(sorted(record_ids)).encode("utf-8")).hexdigest()[:20]


@dataclass
class _Group:
    amount: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    latest: datetime | None = None
    ids: list[str] = field(default_factory=list)


class Meter:
    def __init__(
        self,
        config: KillSwitchConfig,
        spend: SpendLedger,
        sink: AlertSink,
        *,
        pricer: RecordPricer,
        callers: CallerDirectory,
        compute_sources: list[ComputeSource] | None = None,
        compute_prices: HourlyPrices | None = None,
        state: TickState | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ):
        self.config = config
        self.spend = spend
        self.sink = sink
        self.pricer = pricer
        self.callers = callers
        self.compute_sources = compute_sources or []
        self.compute_prices = compute_prices
        self.state = state
        self.clock = clock
        self.agents = {a.name: a for a in config.agents}

    # ------------------------------------------------------------------------------------------------------
    # Bedrock invocation logs
    # ------------------------------------------------------------------------------------------------------
    def process_logs(self, event: Any, *, dry_run: bool = False) -> MeterReport:
        report = MeterReport("logs", dry_run=dry_run)
        batch = parse_batch(event)
        if batch.control:
            report.note = "CloudWatch Logs control message (subscription check): nothing to price"
            return report
        report.records = len(batch.records) + len(batch.skipped)
        for s in batch.skipped:
            report.skipped[s.reason] += 1
            logger.warning("log record skipped", extra={"reason": s.reason, "detail": s.detail, "record": s.record_id})
        # Tokens are summed per (agent, day, run, model) and priced once per group: cost is linear in tokens, so
        # this is the sum of the per-call costs without a Decimal computation per record.
        groups: dict[tuple[str, str, str | None], _Group] = {}
        tokens: dict[tuple[str, str, str | None, str], list[int]] = {}
        for r in batch.records:
            agent = self._agent_of(r, report)
            if agent is None:
                continue
            try:
                self.pricer.price_of(r.model_id)
            except UnknownModel:
                report.skipped["unknown_model"] += 1
                report.unknown_models[r.model_id] += 1
                continue
            report.priced += 1
            day = r.timestamp.date().isoformat()
            t = tokens.setdefault((agent, day, r.run_id, r.model_id), [0, 0, 0, 0])
            t[0] += r.input_tokens
            t[1] += r.output_tokens
            t[2] += r.cache_read_tokens
            t[3] += r.cache_write_tokens
            g = groups.get((agent, day, r.run_id))
            if g is None:
                g = groups[(agent, day, r.run_id)] = _Group()
            g.latest = r.timestamp if g.latest is None or r.timestamp > g.latest else g.latest
            g.ids.append(r.record_id)
        for (agent, day, run_id, model), (i, o, cr, cw) in tokens.items():
            g = groups[(agent, day, run_id)]
            g.amount += self.pricer.price_of(model).cost(i, o, cr, cw)
            g.input_tokens += i + cr + cw
            g.output_tokens += o
        if report.unknown_models:
            logger.warning("unknown models: not priced", extra={"models": dict(report.unknown_models)})
        for (agent, day, run_id), g in groups.items():
            fact = SpendEntry(
                agent=agent,
                day=datetime.fromisoformat(day).date(),
                source=SOURCE_METER,
                detail=f"logs:{batch_id(g.ids)}#{run_id or '-'}",
                amount_usd=to_money(g.amount),
                recorded_at=(g.latest or self.clock()).astimezone(UTC).isoformat(timespec="seconds"),
                run_id=run_id,
                service="Amazon Bedrock",
                kind="bedrock",
                input_tokens=g.input_tokens,
                output_tokens=g.output_tokens,
            )
            self._write(fact, dry_run)
            report.facts.append(fact)
        self._decide({f.agent for f in report.facts}, report)
        return report

    def _agent_of(self, record: InvocationRecord, report: MeterReport) -> str | None:
        """The agent a record is charged to: the caller principal's `agent-name` tag, nothing else."""
        who = self.callers.attribute(record.caller_arn)
        if who.agent is None:
            report.skipped[who.reason] += 1
            logger.info("caller not attributed", extra={"reason": who.reason, "caller": record.caller_arn})
            return None
        if who.agent not in self.agents:
            report.skipped["agent_not_in_config"] += 1
            return None
        if record.claimed_agent and record.claimed_agent != who.agent:
            # requestMetadata is the caller's word: it never moves spend to another agent.
            logger.warning(
                "requestMetadata names another agent: charged to the caller's tag",
                extra={"claimed": record.claimed_agent, "agent": who.agent, "record": record.record_id},
            )
        return who.agent

    def _write(self, fact: SpendEntry, dry_run: bool) -> None:
        if dry_run:
            return
        self.spend.record_meter(
            fact.agent,
            fact.day,
            fact.detail,
            fact.amount_usd,
            at=datetime.fromisoformat(fact.recorded_at),
            kind=fact.kind or "bedrock",
            service=fact.service or "",
            run_id=fact.run_id,
            input_tokens=fact.input_tokens,
            output_tokens=fact.output_tokens,
        )

    # ------------------------------------------------------------------------------------------------------
    # compute tick
    # ------------------------------------------------------------------------------------------------------
    def tick(self, at: datetime | None = None, *, dry_run: bool = False) -> MeterReport:
        """Accrue running compute since the last tick. `at` is the schedule's time (EventBridge `time`): a
        redelivered tick (at or before the last one) does nothing."""
        report = MeterReport("tick", dry_run=dry_run)
        now = (at or self.clock()).astimezone(UTC).replace(microsecond=0)
        last = self.state.last_tick() if self.state else None
        if last is not None and now <= last:
            report.note = f"tick {now.isoformat()} is not after the last tick {last.isoformat()}: nothing to do"
            return report
        if self.compute_prices is None:
            report.note = "compute metering is off"
            return report
        units = [u for s in self.compute_sources for region in self.config.regions for u in s.running(region)]
        report.units = len(units)
        interval = timedelta(minutes=self.config.meter.tick_minutes if self.config.meter else 5)
        if last is not None and now - last > timedelta(hours=1):
            last = now - timedelta(hours=1)  # after an outage count one hour at most: a guess is worse than a gap
        groups: dict[tuple[str, str | None], Decimal] = {}
        for a in accrue(units, self.compute_prices, last, now, interval):
            if a.unit.agent not in self.agents:
                report.skipped["agent_not_in_config"] += 1
                continue
            if a.amount_usd is None:
                report.skipped["unpriced_compute"] += 1
                logger.warning("no price for compute", extra={"resource": a.unit.resource_id, "items": a.unit.items})
                continue
            key = (a.unit.agent, a.unit.run_id)
            groups[key] = groups.get(key, Decimal(0)) + a.amount_usd
        for (agent, run_id), amount in groups.items():
            fact = SpendEntry(
                agent=agent,
                day=now.date(),
                source=SOURCE_METER,
                detail=f"tick:{now:%Y-%m-%dT%H:%M:%SZ}#{run_id or '-'}",
                amount_usd=to_money(amount),
                recorded_at=now.isoformat(timespec="seconds"),
                run_id=run_id,
                service="compute",
                kind="compute",
            )
            self._write(fact, dry_run)
            report.facts.append(fact)
        if self.state is not None and not dry_run:
            self.state.set_last_tick(now)
        self._decide({f.agent for f in report.facts}, report, now=now)
        return report

    # ------------------------------------------------------------------------------------------------------
    # estimate → decisions
    # ------------------------------------------------------------------------------------------------------
    def _decide(self, agents: set[str], report: MeterReport, now: datetime | None = None) -> None:
        now = now or self.clock()
        for name in sorted(agents):
            pending = [f for f in report.facts if f.agent == name] if report.dry_run else []
            est, alerts = self.evaluate(self.agents[name], now, pending=pending)
            report.estimates[name] = est
            for alert in alerts:
                report.decisions.append(self.sink.handle_alert(alert, dry_run=report.dry_run))

    def evaluate(
        self, agent: AgentConfig, now: datetime, *, pending: list[SpendEntry] | None = None
    ) -> tuple[E.Estimate, list[Alert]]:
        """The agent's estimate and the alerts it calls for (threshold crossed, burn rate exceeded)."""
        today = now.astimezone(UTC).date()
        start = E.period_start(agent.budget.period, today)
        window = timedelta(minutes=agent.burn_rate.window_minutes) if agent.burn_rate else None
        since = min(start, (now - window).date()) if window else start
        entries = {e.sk: e for e in self.spend.entries(agent.name, since=since, until=today)}
        entries.update({e.sk: e for e in pending or []})
        est = E.estimate(agent.name, entries.values(), start, today)
        alerts: list[Alert] = []
        period = E.period_key(agent.budget.period, today)
        crossed = E.crossing(est.total_usd, agent)
        budget = agent.budget.amount_usd
        if crossed is not None:
            from killswitch.kill.alerts import Alert, AlertKind, AlertSource  # on the first alert (see the imports)
            from killswitch.kill.levels import fmt_pct, fmt_usd

            alerts.append(
                Alert(
                    source=AlertSource.METER,
                    kind=AlertKind.METERED,
                    agent=agent.name,
                    reason=f"meter estimate {fmt_usd(float(est.total_usd))} is {fmt_pct(crossed.percent)} of the "
                    f"{fmt_usd(budget)} {agent.budget.period.value.lower()} budget",
                    amount_usd=float(est.total_usd),
                    budgeted_usd=budget,
                    percent_of_budget=round(crossed.percent, 6),
                    alert_date=today.isoformat(),
                    period=period,
                    budget_period=agent.budget.period,
                    dedupe_key=E.meter_dedupe_key(agent.name, period, crossed.threshold),
                )
            )
        if window is not None and agent.burn_rate and (crossed is None or crossed.threshold != "kill"):
            spent = E.window_spend(entries.values(), now, window)
            pct = E.burn_rate_exceeded(spent, agent)
            if pct is not None:
                from killswitch.kill.alerts import Alert, AlertKind, AlertSource  # on the first alert
                from killswitch.kill.levels import fmt_pct, fmt_usd

                alerts.append(
                    Alert(
                        source=AlertSource.METER,
                        kind=AlertKind.EXPLICIT,
                        action="kill",
                        agent=agent.name,
                        reason=f"burn rate: {fmt_usd(float(spent))} in the last {agent.burn_rate.window_minutes} min "
                        f"is {fmt_pct(round(pct, 2))} of the {fmt_usd(budget)} budget "
                        f"(limit {fmt_pct(agent.burn_rate.max_pct_of_budget)})",
                        amount_usd=float(spent),
                        budgeted_usd=budget,
                        alert_date=today.isoformat(),
                        dedupe_key=E.burn_dedupe_key(agent.name, now, agent.burn_rate.window_minutes),
                    )
                )
        return est, alerts
