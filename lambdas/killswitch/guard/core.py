"""The guard: caps, runs, charges, leases, thrift mode, loop breaking and the kill path.

Runs in the AGENT's process. Logging goes to the stdlib logger `killswitch.guard`.
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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

from killswitch.events import KillSwitchEvent
from killswitch.guard import leasing
from killswitch.guard.errors import BudgetExceeded, GuardError, LoopDetected, RunFrozen, cap_field
from killswitch.guard.escalation import ApprovalRequest, ApprovalRequired, ApprovalSink, EscalatePolicy
from killswitch.guard.ids import new_id
from killswitch.guard.instrument import instrument as _instrument
from killswitch.guard.ledger import ZERO, CapLimit, Hold, InMemoryLedger, Ledger, sweep
from killswitch.guard.loops import (
    HEADER_AGENT,
    HEADER_CHAIN,
    HEADER_DEPTH,
    HEADER_RUN_ID,
    Lineage,
    LoopLimits,
    StepTracker,
    check_lineage,
    signature,
)
from killswitch.guard.metrics import EmfMetrics, MetricsSink
from killswitch.guard.outcomes import OutcomeRecord, OutcomeSink, check_outcome_caps
from killswitch.guard.prices import ModelPrice, PriceTable, default_prices, usd
from killswitch.guard.publisher import NullPublisher, Publisher
from killswitch.guard.stepdown import Throttle, ThrottlePolicy
from killswitch.states import AgentState
from killswitch.tags import AGENT_NAME, AGENT_RUN_ID

log = logging.getLogger("killswitch.guard")

Period = Literal["day", "month"]
_DAY = 86400


Mode = AgentState  # the guard's name for the one agent state (`Mode.STOPPED` is `AgentState.KILLED`)


@dataclass(frozen=True)
class Caps:
    """Real-time caps in USD. None = not limited (the agent's period spend is still tracked)."""

    per_run_usd: float | None = None
    per_period_usd: float | None = None  # per agent per period (a UTC day by default)
    per_workflow_usd: Mapping[str, float] = field(default_factory=dict)  # per workflow label per period
    per_outcome_usd: Mapping[str, float] = field(default_factory=dict)  # per run, per outcome (`run.outcome`)

    @classmethod
    def from_config(cls, caps: Any) -> Caps:
        """From `AgentConfig.caps` (`per_run_usd`, `per_day_usd`, `per_workflow_usd`, `per_outcome_usd`)."""
        return cls(
            per_run_usd=caps.per_run_usd,
            per_period_usd=caps.per_day_usd,
            per_workflow_usd=dict(caps.per_workflow_usd),
            per_outcome_usd=dict(getattr(caps, "per_outcome_usd", {}) or {}),
        )


@dataclass(frozen=True)
class LeasePolicy:
    """Budget leases: a run reserves a slice of headroom once and spends it locally.

    Slice = min(`fraction` x the smallest remaining headroom of the shared caps, the run cap's headroom), at least
    the charge at hand and `min_usd`, at most `max_usd`. Unused headroom goes back when the run ends, when a new
    lease is needed, or (at the lease's full amount, conservatively) when the sweeper finds it expired.
    """

    fraction: float = 0.10
    min_usd: float = 0.01
    max_usd: float | None = None
    ttl_seconds: float = 300.0
    uncapped_usd: float = 1.0  # slice when no cap limits the agent at all
    # A lease stops taking charges this long before its deadline; an idle one is then handed back (a daemon timer
    # does it while the run waits), so the sweeper never charges a live run's unused lease in full.
    return_margin_seconds: float = 60.0
    auto_return: bool = True


@dataclass(frozen=True)
class ChargeRecord:
    """One settled charge, handed to the spend sink. `attributes()` uses OpenTelemetry GenAI names."""

    agent: str
    run_id: str
    workflow: str | None
    charge_id: str
    kind: str  # llm | tool | other
    name: str  # model id for llm, tool/service name otherwise
    amount_usd: Decimal
    estimated_usd: Decimal
    day: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    state: str = "settled"  # settled | swept (settled at the estimate by the sweeper)

    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "gen_ai.agent.name": self.agent,
            "gen_ai.operation.name": "chat" if self.kind == "llm" else "execute_tool",
            "killswitch.agent.run_id": self.run_id,
            "killswitch.charge_id": self.charge_id,
            "killswitch.cost_usd": float(self.amount_usd),
            "killswitch.estimated_usd": float(self.estimated_usd),
        }
        if self.kind == "llm":
            attrs["gen_ai.request.model"] = self.name
            attrs["gen_ai.usage.input_tokens"] = self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
            attrs["gen_ai.usage.output_tokens"] = self.output_tokens
            if self.cache_read_tokens:
                attrs["gen_ai.usage.cache_read.input_tokens"] = self.cache_read_tokens
            if self.cache_write_tokens:
                attrs["gen_ai.usage.cache_creation.input_tokens"] = self.cache_write_tokens
        else:
            attrs["gen_ai.tool.name"] = self.name
        if self.workflow:
            attrs["killswitch.workflow"] = self.workflow
        return attrs


SpendSink = Callable[[ChargeRecord], None]

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
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not agent:
            raise ValueError("agent name is required")
        self.agent = agent
        self.caps = caps or Caps()
        self.ledger: Ledger = ledger if ledger is not None else InMemoryLedger()
        self.publisher: Publisher = publisher or NullPublisher()
        self.prices = prices or default_prices()
        self.loop = loop or LoopLimits()
        self.warn_at_pct = warn_at_pct
        self.models = _models(models)
        self.leases = leases
        self.spend_sink = spend_sink
        self.clock = clock
        self.period = period
        self.reservation_ttl = reservation_ttl
        self.sweep_interval = sweep_interval
        self.kill_on_run_cap = kill_on_run_cap
        self.metrics = metrics
        self.outcome_sink = outcome_sink
        self.escalate = escalate
        self.approval_sink = approval_sink
        self._approved: set[str] = set()  # run ids approved since their last pause
        self.throttle = (
            None
            if throttle is None
            else Throttle(throttle, clock=clock, sleep=sleep, used_pct=self._used_pct_of_period_cap)
        )
        self._outcome_caps = {k: usd(v) for k, v in self.caps.per_outcome_usd.items()}
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
        from killswitch.config import load_config
        from killswitch.guard.dynamo import DynamoLedger
        from killswitch.guard.publisher import SnsPublisher
        from killswitch.intakes import guard_topic_arn
        from killswitch.settings import ENV_GUARD_TOPIC, ENV_KILL_TOPIC, ENV_TABLE, MissingEnvironment

        cfg = config or load_config(config_path)
        agent_cfg = cfg.agent(agent)
        table = table_name or os.environ.get(ENV_TABLE)
        if not table:
            raise MissingEnvironment([ENV_TABLE])
        alerts_topic = os.environ.get(ENV_KILL_TOPIC)
        topic = (
            topic_arn
            or os.environ.get(ENV_GUARD_TOPIC)
            or (guard_topic_arn(alerts_topic, cfg.prefix, agent) if alerts_topic else None)
        )
        ledger = DynamoLedger(table, client=dynamodb_client, region=cfg.deploy_region)
        kwargs: dict[str, Any] = {
            "publisher": SnsPublisher(topic, client=sns_client) if topic else NullPublisher(),
            "warn_at_pct": agent_cfg.budget.warn_at_pct,
            "models": agent_cfg.models,
            "loop": LoopLimits.from_config(agent_cfg.loop),
            "leases": LeasePolicy(),
            "spend_sink": _spend_ledger_sink(table, cfg.deploy_region),
            "outcome_sink": _outcome_ledger_sink(table, cfg.deploy_region),
            "throttle": None if agent_cfg.throttle is None else ThrottlePolicy.from_config(agent_cfg.throttle),
            "escalate": None if agent_cfg.escalate is None else EscalatePolicy.from_config(agent_cfg.escalate),
            # In Lambda, EMF lines on stdout become CloudWatch metrics by themselves; elsewhere pass metrics=...
            "metrics": EmfMetrics() if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else None,
        }
        kwargs.update(overrides)
        return cls(agent, Caps.from_config(agent_cfg.caps), ledger, **kwargs)

    # -- periods and caps ---------------------------------------------------------------------------------------
    def period_key(self, now: float | None = None) -> str:
        day = _day(self.clock() if now is None else now)
        return day if self.period == "day" else day[:7]

    def cap_limits(self, run_id: str, workflow: str | None, now: float) -> list[CapLimit]:
        """The caps one charge of this run draws on (the agent's period item is always there, for spend)."""
        period = self.period_key(now)
        keep = int(now) + (40 if self.period == "day" else 70) * _DAY
        out = [CapLimit("agent", period, _dec(self.caps.per_period_usd), keep)]
        if workflow is not None and workflow in self.caps.per_workflow_usd:
            out.append(CapLimit("workflow", f"{workflow}#{period}", _dec(self.caps.per_workflow_usd[workflow]), keep))
        if self.caps.per_run_usd is not None:
            out.append(CapLimit("run", run_id, _dec(self.caps.per_run_usd), int(now) + 7 * _DAY))
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
            self._kill(("loop", rid, exc.kind), f"loop detected ({exc.kind}): {exc}", rid, None, None)
            raise
        run = Run(self, rid, workflow, lineage.depth, chain)
        with self._lock:
            self._runs.add(run)
        return run

    def live_runs(self) -> list[Run]:
        """The runs of this guard that are open in this process."""
        with self._lock:
            return list(self._runs)

    # -- state ------------------------------------------------------------------------------------------------
    def spent_usd(self) -> float:
        """Committed spend of the agent in the current period (leased headroom counts when its run settles)."""
        return float(self.ledger.usage(self.agent, "agent", self.period_key()).committed)

    @property
    def mode(self) -> Mode:
        if self.stopped:
            return Mode.STOPPED
        period = self.period_key()
        cap = _dec(self.caps.per_period_usd)
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

    @property
    def throttled(self) -> bool:
        """True while the throttle (`throttle.from_pct`) slows this agent's charges down."""
        return self.throttle is not None and self.throttle.active

    def _used_pct_of_period_cap(self) -> Decimal | None:
        cap = _dec(self.caps.per_period_usd)
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
            cap = _dec(self.caps.per_period_usd)
            raise BudgetExceeded(
                self.agent, "agent", self.period_key(), cap, None, ZERO, reason=f"agent {self.agent!r} is STOPPED"
            )
        if mode is Mode.THRIFT:
            return premium if c >= 0.95 else cheap
        return premium if c >= 0.5 else cheap

    @property
    def stopped(self) -> bool:
        """True once the agent's period cap was crossed: every further charge this period is refused."""
        return self._stopped_scope(None) is not None

    def resume(self) -> None:
        """Operator override: accept charges again this period (the caps still apply)."""
        with self._lock:
            self._stopped.clear()
            self._published = {k for k in self._published if k[0] != "cap"}
            self._leases_paused = None

    def _stopped_scope(self, workflow: str | None) -> tuple[str, str, Decimal | None] | None:
        period = self.period_key()
        with self._lock:
            if ("agent", period) in self._stopped:
                return "agent", period, _dec(self.caps.per_period_usd)
            if workflow is not None and ("workflow", f"{workflow}#{period}") in self._stopped:
                return "workflow", f"{workflow}#{period}", _dec(self.caps.per_workflow_usd.get(workflow))
        return None

    # -- sweeping ---------------------------------------------------------------------------------------------
    def sweep(self, now: float | None = None) -> list[Hold]:
        """Settle the agent's expired reservations and leases at their estimate; returns what was swept."""
        t = self.clock() if now is None else now
        with self._lock:
            self._last_sweep = t
        swept = sweep(self.ledger, self.agent, t)
        for hold in swept:
            if hold.kind == "charge":
                m = hold.meta
                self._sink(
                    ChargeRecord(
                        agent=self.agent,
                        run_id=m.get("run_id", ""),
                        workflow=m.get("workflow") or None,
                        charge_id=hold.hold_id,
                        kind=m.get("kind", "other"),
                        name=m.get("name", ""),
                        amount_usd=hold.amount,
                        estimated_usd=hold.amount,
                        day=_day(t),
                        input_tokens=int(m.get("input_tokens", "0")),
                        output_tokens=int(m.get("max_output_tokens", "0")),
                        state="swept",
                    )
                )
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

    # -- internals ----------------------------------------------------------------------------------------------
    def _stop(self, scope: str, key: str) -> None:
        with self._lock:
            self._stopped.add((scope, key))

    def _kill(
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
        self._metric("GuardKills", 1)
        try:
            self.publisher.publish(event)
        except Exception:
            log.exception("publishing the kill event failed (agent=%s run=%s)", self.agent, run_id)
        return True

    def _metric(self, name: str, value: float, unit: str = "Count") -> None:
        if self.metrics is None:
            return
        try:
            self.metrics(name, value, unit, {"agent": self.agent})
        except Exception:
            log.exception("metrics sink failed for %s", name)

    def _sink(self, record: ChargeRecord) -> None:
        self._metric("GuardSpendUsd", float(record.amount_usd), "None")
        if self.spend_sink is None:
            return
        try:
            self.spend_sink(record)
        except Exception:
            log.exception("spend sink failed for charge %s", record.charge_id)


class _Lease:
    __slots__ = ("deadline", "held", "hold", "timer", "used")

    def __init__(self, hold: Hold):
        self.hold = hold
        self.used = ZERO  # settled locally
        self.held = ZERO  # in flight locally (estimates)
        self.deadline = hold.deadline
        self.timer: threading.Timer | None = None

    @property
    def free(self) -> Decimal:
        return self.hold.amount - self.used - self.held


class Run:
    """One run of an agent. Create through `Guard.run()`; thread-safe."""

    def __init__(self, guard: Guard, run_id: str, workflow: str | None, depth: int, chain: tuple[str, ...]):
        self.guard = guard
        self.run_id = run_id
        self.workflow = workflow
        self.depth = depth
        self.chain = chain
        self._tracker = StepTracker(guard.loop, run_id)
        self._lock = threading.RLock()
        self._frozen: str | None = None
        self._closed = False
        self._leases: list[_Lease] = []
        self._calls: dict[str, Call] = {}
        self._spent = ZERO
        self._inflight = ZERO  # estimates of calls reserved and not yet settled (per-outcome caps)
        self._outcomes: dict[str, int] = {}
        self._costly_calls = 0  # calls counted by `escalate` since the last approval
        self._approval_requested = False
        self.ledger_reservations = 0  # reservations that reached the ledger (leases or direct holds)

    # -- public -----------------------------------------------------------------------------------------------
    @property
    def spent_usd(self) -> float:
        """What this run's settled charges in this process add up to."""
        with self._lock:
            return float(self._spent)

    @property
    def frozen(self) -> str | None:
        return self._frozen

    @property
    def tags(self) -> dict[str, str]:
        return {AGENT_NAME: self.guard.agent, AGENT_RUN_ID: self.run_id}

    def headers(self) -> dict[str, str]:
        """Headers to send with a call to another agent (it passes them to its own `Guard.run(headers=...)`)."""
        return {
            HEADER_RUN_ID: self.run_id,
            HEADER_DEPTH: str(self.depth + 1),
            HEADER_CHAIN: ",".join(self.chain),
            HEADER_AGENT: self.guard.agent,
        }

    def instrument(self, target: Any, *, meter_bedrock: bool = True, default_max_tokens: int = 4096) -> Any:
        """Tag what `target` (boto3 Session or client) creates with agent-name / agent-run-id, and charge its
        bedrock-runtime model calls to this run (`killswitch.guard.bedrock`; `default_max_tokens` is reserved when a
        request names no output limit)."""
        _instrument(target, self.tags)
        if meter_bedrock:
            from killswitch.guard.bedrock import meter_bedrock as _meter

            _meter(target, self, default_max_tokens=default_max_tokens)
        return target

    def wrap(self, client: Any, *, default_max_tokens: int = 4096) -> Any:
        """A copy of an Anthropic or OpenAI SDK client (sync or async) whose model calls are charged to this run
        (`killswitch.guard.adapters.clients`): refused before the request when a cap would be crossed."""
        from killswitch.guard.adapters.clients import wrap_client

        return wrap_client(self, client, default_max_tokens=default_max_tokens)

    def charge(
        self,
        model: str,
        input_tokens: int,
        max_output_tokens: int,
        *,
        price: ModelPrice | None = None,
        charge_id: str | None = None,
        fingerprint: Any = None,
    ) -> Call:
        """Reserve the worst case of an LLM call now (BudgetExceeded if it does not fit); use as a context manager.

        `fingerprint` (e.g. the prompt) feeds the identical-calls detector; by default LLM calls only count steps.
        """
        p = price or self.guard.prices.price(model)  # UnknownModel before anything else happens
        estimate = p.worst_case(input_tokens, max_output_tokens)
        cid = charge_id or new_id()
        existing = self._retry(cid)
        if existing is not None:
            return existing
        sig = None if fingerprint is None else signature(f"llm:{model}", fingerprint)
        self._step(sig)
        call = Call(self, cid, "llm", model, estimate, p, input_tokens, max_output_tokens)
        self._reserve(call, settled=False)
        return call

    def charge_usd(
        self,
        amount: float | Decimal,
        *,
        kind: str = "tool",
        name: str = "",
        args: Any = None,
        charge_id: str | None = None,
    ) -> Call:
        """Reserve and settle a known USD amount in one step (a tool, an API, a compute job)."""
        value = usd(amount)
        if value < 0:
            raise ValueError("amount must be >= 0")
        cid = charge_id or new_id()
        existing = self._retry(cid)
        if existing is not None:
            return existing
        self._escalation_check(name, value)
        self._step(signature(f"{kind}:{name}", args) if kind == "tool" else None)
        call = Call(self, cid, kind, name, value, None, 0, 0)
        self._reserve(call, settled=True)
        return call

    def outcome(self, name: str, count: int = 1, *, outcome_id: str | None = None) -> OutcomeRecord:
        """Record a business outcome the run achieved (e.g. "ticket_resolved"): counted against
        `caps.per_outcome_usd` and written to the outcome sink for `killswitch report`'s cost per outcome."""
        if not name:
            raise ValueError("outcome name is required")
        if count < 1:
            raise ValueError(f"outcome count must be >= 1 (got {count})")
        g = self.guard
        with self._lock:
            self._outcomes[name] = self._outcomes.get(name, 0) + count
            spent = self._spent
        record = OutcomeRecord(
            agent=g.agent,
            run_id=self.run_id,
            workflow=self.workflow,
            outcome=name,
            count=count,
            outcome_id=outcome_id or new_id(),
            day=_day(g.clock()),
            run_cost_usd=spent,
        )
        if g.outcome_sink is not None:
            try:
                g.outcome_sink(record)
            except Exception:
                log.exception("outcome sink failed for %s %s", name, record.outcome_id)
        return record

    @property
    def outcomes(self) -> dict[str, int]:
        with self._lock:
            return dict(self._outcomes)

    def cost_per_outcome(self) -> dict[str, float | None]:
        """Settled cost of the run divided by each outcome's count (None before the first one)."""
        with self._lock:
            return {k: float(self._spent / n) for k, n in self._outcomes.items()} | {
                k: None for k in self.guard._outcome_caps if k not in self._outcomes
            }

    def tool_call(self, name: str, args: Any = None) -> None:
        """Record a free tool call for the loop breaker (raises LoopDetected on a loop)."""
        self._escalation_check(name, ZERO)
        self._step(signature(f"tool:{name}", args))

    def close(self) -> None:
        """End the run: settle its leases and return their unused headroom. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            leases, self._leases = self._leases, []
        with self.guard._lock:
            self.guard._runs.discard(self)
        for lease in leases:
            self._settle_lease(lease)

    def shrink_leases(self) -> Decimal:
        """Hand back idle leases and shrink busy ones to used + in flight. Returns the headroom returned."""
        g = self.guard
        returned = ZERO
        with self._lock:
            keep: list[_Lease] = []
            for lease in self._leases:
                free = lease.free
                if lease.held == 0:
                    self._settle_lease(lease)
                    returned += free
                    continue
                if free > 0:
                    shrunk = g.ledger.shrink(g.agent, lease.hold, lease.used + lease.held)
                    if shrunk is not None:
                        lease.hold = shrunk
                        returned += free
                keep.append(lease)
            self._leases = keep
        return returned

    def lease_snapshot(self) -> list[tuple[str, tuple[str, ...], Decimal]]:
        """(lease id, cap keys, free headroom) of each lease this run holds."""
        with self._lock:
            return [(lease.hold.hold_id, lease.hold.caps, lease.free) for lease in self._leases]

    def return_idle_leases(self, *, force: bool = False) -> int:
        """Hand back leases with no call in flight that are near their deadline (all idle ones with `force`).

        Returns how many were settled. Runs on its own from a daemon timer (`LeasePolicy.auto_return`).
        """
        policy = self.guard.leases
        if policy is None:
            return 0
        with self._lock:
            now = self.guard.clock()
            done = [
                lease
                for lease in self._leases
                if lease.held == 0 and (force or now >= lease.deadline - policy.return_margin_seconds)
            ]
            if not done:
                return 0
            self._leases = [lease for lease in self._leases if lease not in done]
            for lease in done:
                self._settle_lease(lease)
            return len(done)

    # -- internals --------------------------------------------------------------------------------------------
    def _escalation_check(self, name: str, amount: Decimal) -> None:
        """Count a costly tool call; past `escalate.after_calls` raise ApprovalRequired until the run is approved."""
        g = self.guard
        policy = g.escalate
        if policy is None or not policy.counts(name, amount):
            return
        with g._lock:
            approved = self.run_id in g._approved
            g._approved.discard(self.run_id)
        with self._lock:
            if approved:
                self._costly_calls, self._approval_requested = 0, False
            if self._costly_calls < policy.after_calls:
                self._costly_calls += 1
                return
            first = not self._approval_requested
            self._approval_requested = True
            spent = self._spent
        request = ApprovalRequest(
            agent=g.agent,
            run_id=self.run_id,
            tool=name,
            calls=policy.after_calls,
            spent_usd=spent,
            reason=(
                f"agent {g.agent!r} run {self.run_id} called {name!r} {policy.after_calls} times"
                + ("" if policy.over_usd is None else f" at over ${policy.over_usd} each")
                + " (escalate.after_calls)"
            ),
        )
        if first:
            g._metric("GuardApprovalRequests", 1)
            if g.approval_sink is not None:
                try:
                    g.approval_sink(request)
                except Exception:
                    log.exception("approval sink failed for run %s", self.run_id)
        raise ApprovalRequired(request)

    def _retry(self, charge_id: str) -> Call | None:
        with self._lock:
            return self._calls.get(charge_id)

    def _check_open(self) -> None:
        if self._closed:
            raise GuardError(f"run {self.run_id} is closed")
        if self._frozen:
            raise RunFrozen(self.run_id, self._frozen)

    def _step(self, sig: str | None) -> None:
        with self._lock:
            self._check_open()
        try:
            self._tracker.step(sig)
        except LoopDetected as exc:
            with self._lock:
                self._frozen = f"loop detected: {exc.kind}"
            self.guard._metric("GuardLoopTrips", 1)
            self.guard._kill(
                ("loop", self.run_id, exc.kind),
                f"loop detected ({exc.kind}): {exc}",
                self.run_id,
                Decimal(str(self.spent_usd)),
                None,
            )
            raise

    def _meta(self, call: Call) -> dict[str, str]:
        m = {"run_id": self.run_id, "kind": call.kind, "name": call.name, "workflow": self.workflow or ""}
        if call.kind == "llm":
            m["input_tokens"] = str(call.input_tokens)
            m["max_output_tokens"] = str(call.max_output_tokens)
        return m

    def _reserve(self, call: Call, *, settled: bool) -> None:
        g = self.guard
        with self._lock:
            self._check_open()
        stop = g._stopped_scope(self.workflow)
        if stop is not None:
            scope, key, cap = stop
            g._metric("GuardDenials", 1)
            raise BudgetExceeded(
                g.agent,
                scope,
                key,
                cap,
                None,
                call.estimate,
                reason=f"agent {g.agent!r} is STOPPED: {cap_field(scope, key)} ({key}) was crossed",
            )
        if g.throttle is not None:
            waited = g.throttle.wait()
            if waited:
                g._metric("GuardThrottledSeconds", waited, "Seconds")
                with self._lock:
                    self._check_open()
        if g._outcome_caps:
            with self._lock:
                try:
                    check_outcome_caps(
                        g.agent,
                        self.run_id,
                        caps=g._outcome_caps,
                        counts=self._outcomes,
                        run_cost=self._spent + self._inflight,
                        amount=call.estimate,
                    )
                except BudgetExceeded:
                    g._metric("GuardDenials", 1)
                    raise
                self._inflight += call.estimate
                call._inflight = True
            try:
                self._reserve_ledger(call, settled=settled)
            except BaseException:
                self._drop_inflight(call)
                raise
        else:
            self._reserve_ledger(call, settled=settled)
        with self._lock:
            self._calls[call.charge_id] = call
        if settled:
            call._finish(call.estimate, {}, state="settled")
        elif call._state != "reserved":
            self._drop_inflight(call)  # a replayed charge the ledger had already settled

    def _drop_inflight(self, call: Call) -> None:
        with self._lock:
            if call._inflight:
                call._inflight = False
                self._inflight -= call.estimate

    def _reserve_ledger(self, call: Call, *, settled: bool) -> None:
        g = self.guard
        if g.leases is not None and g._leases_paused != g.period_key():
            try:
                call._lease = self._take_from_lease(call.estimate)
            except BudgetExceeded as exc:
                if exc.scope not in leasing.SHARED_SCOPES:
                    self._on_budget_exceeded(exc)
                    raise
                # Other runs' leases may hold the headroom: pause leasing for the period, reclaim, go direct.
                log.info("lease refused on %s (%s); leases paused, charging directly", exc.cap_field, exc.key)
                with g._lock:
                    g._leases_paused = g.period_key()
                leasing.reclaim(g)
                self._reserve_direct(call, settled=settled)
        else:
            self._reserve_direct(call, settled=settled)

    def _reserve_direct(self, call: Call, *, settled: bool) -> None:
        """One ledger hold for this charge. A refusal of a shared cap stops the agent only when it is real."""
        g = self.guard
        for attempt in range(leasing.RETRY_ROUNDS + 1):
            now = g.clock()
            try:
                hold = g.ledger.reserve(
                    g.agent,
                    call.charge_id,
                    call.estimate,
                    g.cap_limits(self.run_id, self.workflow, now),
                    deadline=now + g.reservation_ttl,
                    meta=self._meta(call),
                    settled=settled,
                )
            except BudgetExceeded as exc:
                if exc.scope not in leasing.SHARED_SCOPES:
                    self._on_budget_exceeded(exc)
                    raise
                if attempt < leasing.RETRY_ROUNDS and leasing.reclaim(g) > 0:
                    continue  # this process's leases gave headroom back: try again
                if leasing.refusal_is_real(g, exc):
                    self._on_budget_exceeded(exc)
                    raise
                g._metric("GuardDenials", 1)
                raise leasing.contended(exc) from exc
            with self._lock:
                self.ledger_reservations += 1
            call._hold = hold
            if hold.state != "reserved" and not settled:
                call._state = "settled"  # a retry of a charge the ledger already settled
            return

    def _on_budget_exceeded(self, exc: BudgetExceeded) -> None:
        g = self.guard
        g._metric("GuardDenials", 1)
        if exc.scope in ("agent", "workflow"):
            g._stop(exc.scope, exc.key)
            g._kill(
                ("cap", exc.scope, exc.key),
                f"{exc.scope} cap {exc.key} crossed: {exc}",
                self.run_id,
                exc.used_usd,
                exc.cap_usd,
            )
        elif exc.scope == "run" and g.kill_on_run_cap:
            g._kill(("cap", "run", self.run_id), f"run cap crossed: {exc}", self.run_id, exc.used_usd, exc.cap_usd)

    # -- leases -----------------------------------------------------------------------------------------------
    def _take_from_lease(self, amount: Decimal) -> _Lease:
        g = self.guard
        policy = g.leases
        assert policy is not None
        with self._lock:
            now = g.clock()
            margin = policy.return_margin_seconds
            for lease in self._leases:
                if lease.free >= amount and now < lease.deadline - margin:
                    lease.held += amount
                    return lease
            lease = self._acquire_lease(amount, now, policy)
            lease.held += amount
            return lease

    def _acquire_lease(self, needed: Decimal, now: float, policy: LeasePolicy) -> _Lease:
        """Called with the run lock held: hand back idle leases, then lease a new slice (at least `needed`)."""
        g = self.guard
        keep: list[_Lease] = []
        for lease in self._leases:
            if lease.held == 0:
                self._settle_lease(lease)  # returns its unused headroom
            else:
                shrunk = g.ledger.shrink(g.agent, lease.hold, lease.used + lease.held)
                if shrunk is not None:
                    lease.hold = shrunk
                keep.append(lease)
        self._leases = keep
        caps = g.cap_limits(self.run_id, self.workflow, now)
        usages = g.ledger.usages(g.agent, caps)
        shared = [u.headroom for c, u in zip(caps, usages, strict=True) if c.scope != "run" and u.headroom is not None]
        run_room = [
            u.headroom for c, u in zip(caps, usages, strict=True) if c.scope == "run" and u.headroom is not None
        ]
        fraction = Decimal(str(policy.fraction))
        size = min(shared) * fraction if shared else Decimal(str(policy.uncapped_usd))
        if run_room:
            size = min(size, run_room[0])
        size = max(size, Decimal(str(policy.min_usd)))
        if policy.max_usd is not None:
            size = min(size, Decimal(str(policy.max_usd)))
        rooms = [*shared, *run_room]
        if rooms:
            size = min(size, max(min(rooms), ZERO))
        size = max(usd(size), needed)
        attempts = [size] if size == needed else [size, needed]
        last: BudgetExceeded | None = None
        for amount in attempts:
            try:
                hold = g.ledger.reserve(
                    g.agent,
                    new_id(),
                    amount,
                    caps,
                    kind="lease",
                    deadline=now + policy.ttl_seconds,
                    meta={"run_id": self.run_id, "workflow": self.workflow or ""},
                )
            except BudgetExceeded as exc:
                last = exc
                continue
            self.ledger_reservations += 1
            lease = _Lease(hold)
            self._leases.append(lease)
            if policy.auto_return:
                self._schedule_return(lease, policy)
            return lease
        assert last is not None
        raise last

    def _schedule_return(self, lease: _Lease, policy: LeasePolicy) -> None:
        delay = max(1.0, lease.deadline - policy.return_margin_seconds - self.guard.clock())

        def fire() -> None:
            try:
                if not self.return_idle_leases():
                    with self._lock:  # a call was still in flight: look again shortly, while the lease lives
                        if lease in self._leases and self.guard.clock() < lease.deadline:
                            self._schedule_return(lease, policy)
            except Exception:
                log.exception("returning idle lease %s failed", lease.hold.hold_id)

        timer = threading.Timer(delay if lease.timer is None else max(1.0, policy.return_margin_seconds / 4), fire)
        timer.daemon = True
        lease.timer = timer
        timer.start()

    def _settle_lease(self, lease: _Lease) -> None:
        g = self.guard
        if lease.timer is not None:
            lease.timer.cancel()
        actual = lease.used + lease.held  # in-flight calls at their estimate
        try:
            if not g.ledger.settle(g.agent, lease.hold, actual):
                log.warning(
                    "lease %s of run %s was already settled (expired and swept at $%s); local use was $%s",
                    lease.hold.hold_id,
                    self.run_id,
                    lease.hold.amount,
                    actual,
                )
        except Exception:
            log.exception("settling lease %s failed; the sweeper will settle it at its amount", lease.hold.hold_id)

    def _settle(self, call: Call, actual: Decimal, state: str) -> bool:
        """Ledger side of Call.settle/release. True if this call changed the books."""
        if call._lease is not None:
            with self._lock:
                call._lease.held -= call.estimate
                call._lease.used += actual
            return True
        if call._hold is None:
            return False
        g = self.guard
        return g.ledger.settle(g.agent, call._hold, actual, state="released" if state == "released" else "settled")


class Call:
    """One charge: reserved when created, settled with the actual usage (or released on an exception)."""

    def __init__(  # noqa: PLR0917 (internal constructor)
        self,
        run: Run,
        charge_id: str,
        kind: str,
        name: str,
        estimate: Decimal,
        price: ModelPrice | None,
        input_tokens: int,
        max_output_tokens: int,
    ):
        self.run = run
        self.charge_id = charge_id
        self.kind = kind
        self.name = name
        self.estimate = estimate
        self.price = price
        self.input_tokens = input_tokens
        self.max_output_tokens = max_output_tokens
        self.record: ChargeRecord | None = None
        self._state = "reserved"
        self._hold: Hold | None = None
        self._lease: _Lease | None = None
        self._inflight = False  # counted in the run's in-flight estimates
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        return self._state

    @property
    def estimate_usd(self) -> float:
        return float(self.estimate)

    def __enter__(self) -> Call:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._state != "reserved":
            return
        if exc_type is not None:
            self.release()
        else:
            log.warning(
                "charge %s left its block unsettled; settling at the estimate $%s", self.charge_id, self.estimate
            )
            self._finish(self.estimate, {"output_tokens": self.max_output_tokens}, state="settled")

    def settle(
        self,
        output_tokens: int | None = None,
        *,
        input_tokens: int | None = None,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        usd_amount: float | Decimal | None = None,
    ) -> ChargeRecord | None:
        """Record the actual usage; the difference to the reservation is released. A second settle is a no-op
        (returns None)."""
        if usd_amount is not None:
            actual = usd(usd_amount)
        elif self.price is not None:
            actual = self.price.cost(
                self.input_tokens if input_tokens is None else input_tokens,
                output_tokens or 0,
                cache_read_tokens,
                cache_write_tokens,
            )
        else:
            actual = self.estimate
        usage = {
            "input_tokens": self.input_tokens if input_tokens is None else input_tokens,
            "output_tokens": output_tokens or 0,
            "cache_read_tokens": cache_read_tokens,
            "cache_write_tokens": cache_write_tokens,
        }
        return self._finish(actual, usage, state="settled")

    def release(self) -> bool:
        """Give the whole reservation back (the call did not happen). No-op if already settled."""
        return self._finish(ZERO, {}, state="released") is not None

    def _finish(self, actual: Decimal, usage: Mapping[str, int], *, state: str) -> ChargeRecord | None:
        with self._lock:
            if self._state != "reserved":
                return None
            self._state = state
        run = self.run
        if actual > self.estimate:
            log.warning(
                "charge %s settled at $%s above its reservation $%s: recorded as spent",
                self.charge_id,
                actual,
                self.estimate,
            )
        hold = self._hold
        if self._lease is not None or (hold is not None and hold.state == "reserved"):
            changed = run._settle(self, actual, state)
        else:
            # reserve+settle happened in one ledger step (charge_usd), unless the ledger replayed an earlier one
            changed = hold is not None and hold.state == "settled" and not hold.replayed and state == "settled"
        counted = changed and state == "settled"
        with run._lock:  # spent and in flight change together: the per-outcome check never sees neither
            if counted:
                run._spent += actual
            if self._inflight:
                self._inflight = False
                run._inflight -= self.estimate
        if not counted:
            return None
        g = run.guard
        record = ChargeRecord(
            agent=g.agent,
            run_id=run.run_id,
            workflow=run.workflow,
            charge_id=self.charge_id,
            kind=self.kind,
            name=self.name,
            amount_usd=actual,
            estimated_usd=self.estimate,
            day=_day(g.clock()),
            input_tokens=int(usage.get("input_tokens", 0)),
            output_tokens=int(usage.get("output_tokens", 0)),
            cache_read_tokens=int(usage.get("cache_read_tokens", 0)),
            cache_write_tokens=int(usage.get("cache_write_tokens", 0)),
        )
        self.record = record
        g._sink(record)
        return record


def _dec(value: float | None) -> Decimal | None:
    return None if value is None else usd(value)


_day_cache: tuple[int, str] = (-1, "")


def _day(now: float) -> str:
    """UTC day of an epoch time; formatted once per second (it is on every charge's path, strftime is slow)."""
    global _day_cache
    second = int(now // 1)
    cached = _day_cache
    if cached[0] == second:
        return cached[1]
    day = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%d")
    _day_cache = (second, day)
    return day


def _models(models: Any) -> tuple[str, str] | None:
    if models is None:
        return None
    if isinstance(models, tuple | list):
        cheap, premium = models
        return str(cheap), str(premium)
    return str(models.cheap), str(models.premium)


def spend_ledger_sink(spend: Any) -> SpendSink:
    """A spend sink writing each settled charge to `killswitch.spend.ledger.SpendLedger.record_guard_charge`."""

    def sink(rec: ChargeRecord) -> None:
        spend.record_guard_charge(
            rec.agent,
            date.fromisoformat(rec.day),
            rec.charge_id,
            rec.amount_usd,
            estimated_usd=rec.estimated_usd,
            run_id=rec.run_id,
            workflow=rec.workflow,
            kind="llm" if rec.kind == "llm" else "tool",
            name=rec.name,
            input_tokens=rec.input_tokens + rec.cache_read_tokens + rec.cache_write_tokens,
            output_tokens=rec.output_tokens,
        )

    return sink


def _outcome_ledger_sink(table_name: str, region: str | None) -> OutcomeSink | None:
    """Write outcomes next to the agent's spend entries (`killswitch.spend.outcomes`) when it is installed."""
    try:
        from killswitch.spend.ledger import DynamoSpendStore
        from killswitch.spend.outcomes import OutcomeLedger
    except ImportError:
        return None
    import boto3

    ledger = OutcomeLedger(DynamoSpendStore(table_name, session=boto3.Session(region_name=region)))

    def sink(rec: OutcomeRecord) -> None:
        ledger.record(
            rec.agent,
            date.fromisoformat(rec.day),
            rec.outcome_id,
            rec.outcome,
            rec.count,
            run_id=rec.run_id,
            workflow=rec.workflow,
        )

    return sink


def _spend_ledger_sink(table_name: str, region: str | None) -> SpendSink | None:
    """Wire the spend ledger on the stack's table when `killswitch.spend.ledger` is installed."""
    try:
        from killswitch.spend.ledger import DynamoSpendStore, SpendLedger
    except ImportError:
        log.info("killswitch.spend.ledger not available: guard charges are not written to the spend ledger")
        return None
    import boto3

    return spend_ledger_sink(SpendLedger(DynamoSpendStore(table_name, session=boto3.Session(region_name=region))))
