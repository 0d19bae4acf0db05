"""The guard of one agent: caps and periods, runs, the agent's mode, the kill path and the sinks.

Runs in the AGENT's process. Logging goes to the stdlib logger `killswitch.guard`. A run (`killswitch.guard.run`)
and its charges (`killswitch.guard.call`) talk to the guard through the small public methods below.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from killswitch.events import KillSwitchEvent
from killswitch.guard.approvals import ApprovalReader
from killswitch.guard.caps import DAY_SECONDS, Caps, LeasePolicy, Mode, Period, dec, utc_day
from killswitch.guard.errors import BudgetExceeded, GuardError, LoopDetected
from killswitch.guard.escalation import ApprovalRequest, ApprovalSink, EscalatePolicy
from killswitch.guard.ledger import ZERO, CapLimit, Hold, InMemoryLedger, Ledger, sweep
from killswitch.guard.loops import Lineage, LoopLimits, check_lineage
from killswitch.guard.metrics import MetricsSink
from killswitch.guard.outcomes import OutcomeRecord, OutcomeSink
from killswitch.guard.prices import PriceTable, default_prices, usd
from killswitch.guard.publisher import NullPublisher, Publisher
from killswitch.guard.recent_calls import RETRY_WINDOW
from killswitch.guard.records import ChargeRecord, SpendSink, swept_charge
from killswitch.guard.run import Run
from killswitch.guard.stepdown import Throttle, ThrottlePolicy
from killswitch.guard.wiring import guard_from_config, models_pair

log = logging.getLogger("killswitch.guard")

_COMPLEXITY = {"low": 0.2, "medium": 0.5, "high": 0.8, "critical": 1.0}


class Guard:
    """Spend guard for one agent. Thread-safe; share one instance per agent per process."""

    def __init__(
        self,
        agent: str,
        caps: Caps | None = None,
        ledger: Ledger | None = None,
        *,
        publisher: Publisher | None = None,
        prices: PriceTable | None = None,
        loop: LoopLimits | None = None,
        warn_at_pct: float = 80.0,
        models: Any = None,  # ModelsConfig, or (cheap, premium)
        leases: LeasePolicy | None = None,
        spend_sink: SpendSink | None = None,
        clock: Callable[[], float] = time.time,
        period: Period = "day",
        reservation_ttl: float = 900.0,
        sweep_interval: float = 60.0,
        kill_on_run_cap: bool = False,
        metrics: MetricsSink | None = None,
        outcome_sink: OutcomeSink | None = None,
        throttle: ThrottlePolicy | None = None,
        escalate: EscalatePolicy | None = None,
        approval_sink: ApprovalSink | None = None,
        approvals: ApprovalReader | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retry_window: int = RETRY_WINDOW,
    ):
        if not agent:
            raise ValueError("agent name is required")
        if retry_window < 0:
            raise ValueError(f"retry_window must be >= 0 (got {retry_window})")
        self.agent = agent
        self.caps = caps or Caps()
        self.ledger: Ledger = ledger if ledger is not None else InMemoryLedger()
        self.publisher: Publisher = publisher or NullPublisher()
        self.prices = prices or default_prices()
        self.loop = loop or LoopLimits()
        self.warn_at_pct = warn_at_pct
        self.models = models_pair(models)
        self.leases = leases
        self.spend_sink = spend_sink
        self.clock = clock
        self.period = period
        self.reservation_ttl = reservation_ttl
        self.sweep_interval = sweep_interval
        self.kill_on_run_cap = kill_on_run_cap
        # finished calls each run remembers by charge id, so a retry returns the same call (`guard.recent_calls`)
        self.retry_window = retry_window
        self.metrics = metrics
        self.outcome_sink = outcome_sink
        self.escalate = escalate
        self.approval_sink = approval_sink
        # Where ops approvals of paused runs are read (`killswitch approve-run`): the ledger's approval partition.
        self.approvals: ApprovalReader | None = approvals
        if approvals is None and isinstance(self.ledger, ApprovalReader):
            self.approvals = self.ledger
        self.throttle = (
            None
            if throttle is None
            else Throttle(throttle, clock=clock, sleep=sleep, used_pct=self._used_pct_of_period_cap)
        )
        self.outcome_caps: dict[str, Decimal] = {k: usd(v) for k, v in self.caps.per_outcome_usd.items()}
        self._approved: set[str] = set()  # run ids approved since their last pause
        self._seen_approvals: dict[str, str] = {}  # run id -> the approval id that last resumed it
        self._lock = threading.Lock()
        self._stopped: set[tuple[str, str]] = set()  # (agent, period) | (workflow, label#period) caps crossed
        self._published: set[tuple[str, ...]] = set()
        self._last_sweep = float("-inf")
        self._runs: weakref.WeakSet[Run] = weakref.WeakSet()  # open runs of this process (lease reclaim)
        self._leases_paused: str | None = None  # period in which lease contention was seen: charge directly

    # -- construction from the config file ----------------------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        agent: str,
        config_path: str | os.PathLike[str] | None = None,
        table_name: str | None = None,
        topic_arn: str | None = None,
        *,
        config: Any = None,
        dynamodb_client: Any = None,
        sns_client: Any = None,
        **overrides: Any,
    ) -> Guard:
        """Guard on the stack's table (`KILLSWITCH_TABLE`) publishing to this agent's own guard topic: `topic_arn`,
        else `KILLSWITCH_GUARD_TOPIC_ARN`, else the `<prefix>-guard-<agent>` topic next to `KILLSWITCH_KILL_TOPIC_ARN`
        (the alerts topic itself accepts only AWS Budgets and Cost Anomaly Detection).

        Caps, warn percentage, thrift models and loop limits come from the agent's entry in the config file.
        """
        return guard_from_config(
            cls,
            agent,
            config_path,
            table_name,
            topic_arn,
            config=config,
            dynamodb_client=dynamodb_client,
            sns_client=sns_client,
            **overrides,
        )

    # -- periods and caps ---------------------------------------------------------------------------------------
    def period_key(self, now: float | None = None) -> str:
        day = utc_day(self.clock() if now is None else now)
        return day if self.period == "day" else day[:7]

    def cap_limits(self, run_id: str, workflow: str | None, now: float) -> list[CapLimit]:
        """The caps one charge of this run draws on (the agent's period item is always there, for spend)."""
        period = self.period_key(now)
        keep = int(now) + (40 if self.period == "day" else 70) * DAY_SECONDS
        out = [CapLimit("agent", period, dec(self.caps.per_day_usd), keep)]
        if workflow is not None and workflow in self.caps.per_workflow_usd:
            out.append(CapLimit("workflow", f"{workflow}#{period}", dec(self.caps.per_workflow_usd[workflow]), keep))
        if self.caps.per_run_usd is not None:
            out.append(CapLimit("run", run_id, dec(self.caps.per_run_usd), int(now) + 7 * DAY_SECONDS))
        return out

    # -- runs -------------------------------------------------------------------------------------------------
    @contextmanager
    def run(
        self, workflow: str | None = None, *, run_id: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[Run]:
        """A run of the agent: a new agent-run-id (uuid4) unless one is passed in or arrives in `headers`."""
        r = self.start_run(workflow, run_id=run_id, headers=headers)
        try:
            yield r
        finally:
            r.close()

    def start_run(
        self, workflow: str | None = None, *, run_id: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Run:
        """Like `run()` without the context manager: call `close()` when done."""
        self.maybe_sweep()
        lineage = Lineage.from_headers(headers)
        rid = run_id or lineage.run_id or str(uuid.uuid4())
        try:
            chain = check_lineage(self.agent, lineage, self.loop, rid)
        except LoopDetected as exc:
            self.publish_kill(("loop", rid, exc.kind), f"loop detected ({exc.kind}): {exc}", rid, None, None)
            raise
        run = Run(self, rid, workflow, lineage.depth, chain)
        with self._lock:
            self._runs.add(run)
        return run

    def live_runs(self) -> list[Run]:
        """The runs of this guard that are open in this process."""
        with self._lock:
            return list(self._runs)

    def forget_run(self, run: Run) -> None:
        """The run closed: it no longer takes part in lease reclaim."""
        with self._lock:
            self._runs.discard(run)

    # -- state ------------------------------------------------------------------------------------------------
    def spent_usd(self) -> float:
        """Committed spend of the agent in the current period (leased headroom counts when its run settles)."""
        return float(self.ledger.usage(self.agent, "agent", self.period_key()).committed)

    @property
    def mode(self) -> Mode:
        if self.stopped:
            return Mode.STOPPED
        period = self.period_key()
        cap = dec(self.caps.per_day_usd)
        if cap is None:
            return Mode.OK
        committed = self.ledger.usage(self.agent, "agent", period).committed
        if committed >= cap:
            return Mode.STOPPED
        if committed * 100 >= cap * Decimal(str(self.warn_at_pct)):
            return Mode.THRIFT
        return Mode.OK

    def approve_run(self, run_id: str) -> None:
        """Let a run paused by `escalate` go on (its count of costly tool calls starts again)."""
        with self._lock:
            self._approved.add(run_id)

    def take_approval(self, run_id: str, *, paused: bool) -> bool:
        """True (once) when the run was approved since its last pause: in process (`approve_run`) or, while it is
        paused, by an ops approval in the approval store that has not resumed it yet (`killswitch approve-run`)."""
        with self._lock:
            approved = run_id in self._approved
            self._approved.discard(run_id)
        if approved or not paused or self.approvals is None:
            return approved
        try:
            approval = self.approvals.get_approval(self.agent, run_id)
        except Exception:  # the run stays paused: a failed read never lets a costly call through
            log.exception("reading the approval of run %s failed; the run stays paused", run_id)
            return False
        if approval is None or approval.agent != self.agent:
            return False
        with self._lock:
            if self._seen_approvals.get(run_id) == approval.approval_id:
                return False  # this approval already resumed the run once
            self._seen_approvals[run_id] = approval.approval_id
        log.info("run %s resumed by approval %s (%s)", run_id, approval.approval_id, approval.approved_by or "ops")
        return True

    def request_approval(self, request: ApprovalRequest) -> None:
        """A run paused (`escalate`): count it, publish `approval_requested` on the agent's guard topic (the kill
        Lambda forwards it to ops on the events topic) and hand the request to the approval sink. Never raises."""
        self.metric("GuardApprovalRequests", 1)
        event = KillSwitchEvent(
            source="killswitch.guard",
            action="approval_requested",
            agent=self.agent,
            run_id=request.run_id,
            reason=request.reason,
            spend_usd=float(request.spent_usd),
            tool=request.tool,
            calls=request.calls,
        )
        try:
            self.publisher.publish(event)
        except Exception:
            log.exception("publishing the approval request failed (agent=%s run=%s)", self.agent, request.run_id)
        if self.approval_sink is not None:
            try:
                self.approval_sink(request)
            except Exception:
                log.exception("approval sink failed for run %s", request.run_id)

    @property
    def throttled(self) -> bool:
        """True while the throttle (`throttle.from_pct`) slows this agent's charges down."""
        return self.throttle is not None and self.throttle.active

    def _used_pct_of_period_cap(self) -> Decimal | None:
        cap = dec(self.caps.per_day_usd)
        if not cap:
            return None
        return self.ledger.usage(self.agent, "agent", self.period_key()).used * 100 / cap

    def route(self, complexity: float | str = "high") -> str:
        """The model to use: premium for complex work while OK; in THRIFT only `critical` work gets premium.

        `complexity` is `low|medium|high|critical` or a number in [0, 1]. STOPPED raises BudgetExceeded.
        """
        if self.models is None:
            raise GuardError(f"agent {self.agent!r} has no models (cheap/premium) configured for routing")
        cheap, premium = self.models
        c = _COMPLEXITY[complexity] if isinstance(complexity, str) else float(complexity)
        mode = self.mode
        if mode is Mode.STOPPED:
            cap = dec(self.caps.per_day_usd)
            raise BudgetExceeded(
                self.agent, "agent", self.period_key(), cap, None, ZERO, reason=f"agent {self.agent!r} is STOPPED"
            )
        if mode is Mode.THRIFT:
            return premium if c >= 0.95 else cheap
        return premium if c >= 0.5 else cheap

    @property
    def stopped(self) -> bool:
        """True once the agent's period cap was crossed: every further charge this period is refused."""
        return self.stopped_scope(None) is not None

    def resume(self) -> None:
        """Operator override: accept charges again this period (the caps still apply)."""
        with self._lock:
            self._stopped.clear()
            self._published = {k for k in self._published if k[0] != "cap"}
            self._leases_paused = None

    def stopped_scope(self, workflow: str | None, period: str | None = None) -> tuple[str, str, Decimal | None] | None:
        """(scope, key, cap) of the crossed cap that stops a charge of `workflow` this period, else None."""
        if not self._stopped:  # every charge asks: no lock while nothing was ever stopped (a set read is atomic)
            return None
        period = period or self.period_key()
        with self._lock:
            if ("agent", period) in self._stopped:
                return "agent", period, dec(self.caps.per_day_usd)
            if workflow is not None and ("workflow", f"{workflow}#{period}") in self._stopped:
                return "workflow", f"{workflow}#{period}", dec(self.caps.per_workflow_usd.get(workflow))
        return None

    def stop_scope(self, scope: str, key: str) -> None:
        """A shared cap was really crossed: refuse every further charge under it until `resume()`."""
        with self._lock:
            self._stopped.add((scope, key))

    def leases_active(self, period: str | None = None) -> bool:
        """False once lease contention was seen this period (charges then go to the ledger directly)."""
        paused = self._leases_paused
        return paused is None or paused != (period or self.period_key())

    def pause_leases(self) -> None:
        with self._lock:
            self._leases_paused = self.period_key()

    # -- sweeping ---------------------------------------------------------------------------------------------
    def sweep(self, now: float | None = None) -> list[Hold]:
        """Settle the agent's expired reservations and leases at their estimate; returns what was swept."""
        t = self.clock() if now is None else now
        with self._lock:
            self._last_sweep = t
        swept = sweep(self.ledger, self.agent, t)
        for hold in swept:
            if hold.kind == "charge":
                self.record_charge(swept_charge(self.agent, hold, utc_day(t)))
        return swept

    def maybe_sweep(self) -> None:
        if self.sweep_interval <= 0:
            return
        now = self.clock()
        with self._lock:
            due = now - self._last_sweep >= self.sweep_interval
        if due:
            try:
                self.sweep(now)
            except Exception:
                log.exception("sweeping expired reservations failed; will retry later")

    # -- events, metrics and sinks (never raise into the agent) -------------------------------------------------
    def publish_kill(
        self,
        dedupe: tuple[str, ...],
        reason: str,
        run_id: str | None,
        spend: Decimal | None,
        cap: Decimal | None,
    ) -> bool:
        """Publish one kill event per cause; never raises into the agent. True if this call published."""
        with self._lock:
            if dedupe in self._published:
                return False
            self._published.add(dedupe)
        event = KillSwitchEvent(
            source="killswitch.guard",
            action="kill",
            agent=self.agent,
            run_id=run_id,
            reason=reason,
            spend_usd=None if spend is None else float(spend),
            cap_usd=None if cap is None else float(cap),
        )
        log.error("kill: agent=%s run=%s reason=%s", self.agent, run_id, reason)
        self.metric("GuardKills", 1)
        try:
            self.publisher.publish(event)
        except Exception:
            log.exception("publishing the kill event failed (agent=%s run=%s)", self.agent, run_id)
        return True

    def metric(self, name: str, value: float, unit: str = "Count") -> None:
        if self.metrics is None:
            return
        try:
            self.metrics(name, value, unit, {"agent": self.agent})
        except Exception:
            log.exception("metrics sink failed for %s", name)

    def record_charge(self, record: ChargeRecord) -> None:
        """A settled (or swept) charge: the spend metric and the spend sink."""
        self.metric("GuardSpendUsd", float(record.amount_usd), "None")
        if self.spend_sink is None:
            return
        try:
            self.spend_sink(record)
        except Exception:
            log.exception("spend sink failed for charge %s", record.charge_id)

    def record_outcome(self, record: OutcomeRecord) -> None:
        if self.outcome_sink is None:
            return
        try:
            self.outcome_sink(record)
        except Exception:
            log.exception("outcome sink failed for %s %s", record.outcome, record.outcome_id)
