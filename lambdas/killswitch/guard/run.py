"""One run of an agent: its charges, outcomes, loop tracking, escalation and the way a charge reaches the ledger
(a lease of the run, or a hold of its own)."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from killswitch.guard import leasing
from killswitch.guard.call import Call
from killswitch.guard.caps import utc_day
from killswitch.guard.errors import BudgetExceeded, GuardError, LoopDetected, RunFrozen, cap_field
from killswitch.guard.escalation import RunEscalation
from killswitch.guard.ids import new_id
from killswitch.guard.instrument import instrument as _instrument
from killswitch.guard.ledger import ZERO
from killswitch.guard.loops import HEADER_AGENT, HEADER_CHAIN, HEADER_DEPTH, HEADER_RUN_ID, StepTracker, signature
from killswitch.guard.outcomes import OutcomeRecord, check_outcome_caps
from killswitch.guard.prices import ModelPrice, usd
from killswitch.guard.recent_calls import RecentCalls
from killswitch.guard.run_caps import RunCaps
from killswitch.tags import AGENT_NAME, AGENT_RUN_ID

if TYPE_CHECKING:
    from killswitch.guard.guard import Guard

log = logging.getLogger("killswitch.guard")


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
        self._leases = leasing.RunLeases(guard, run_id, workflow, self._lock)
        self._frozen: str | None = None
        self._closed = False
        self._calls = RecentCalls(guard.retry_window)  # reserved calls and the last finished ones, by charge id
        self._spent = ZERO
        self._inflight = ZERO  # estimates of calls reserved and not yet settled (per-outcome caps)
        self._inflight_ids: set[str] = set()
        self._outcomes: dict[str, int] = {}
        self._escalation = RunEscalation(guard, run_id, self._lock)
        self._direct_reservations = 0  # direct holds that reached the ledger
        self._caps = RunCaps(guard, run_id, workflow)

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
    def ledger_reservations(self) -> int:
        """Reservations that reached the ledger (leases or direct holds)."""
        with self._lock:
            return self._direct_reservations + self._leases.reservations

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
        if charge_id is None:
            cid = new_id()  # fresh: cannot be a retry
        else:
            cid = charge_id
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
        self._escalation.check(name, value, self._spent_now)
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
            day=utc_day(g.clock()),
            run_cost_usd=spent,
        )
        g.record_outcome(record)
        return record

    @property
    def outcomes(self) -> dict[str, int]:
        with self._lock:
            return dict(self._outcomes)

    def cost_per_outcome(self) -> dict[str, float | None]:
        """Settled cost of the run divided by each outcome's count (None before the first one)."""
        with self._lock:
            return {k: float(self._spent / n) for k, n in self._outcomes.items()} | {
                k: None for k in self.guard.outcome_caps if k not in self._outcomes
            }

    def tool_call(self, name: str, args: Any = None) -> None:
        """Record a free tool call for the loop breaker (raises LoopDetected on a loop)."""
        self._escalation.check(name, ZERO, self._spent_now)
        self._step(signature(f"tool:{name}", args))

    def close(self) -> None:
        """End the run: settle its leases and return their unused headroom. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.guard.forget_run(self)
        self._leases.close()

    def shrink_leases(self) -> Decimal:
        """Hand back idle leases and shrink busy ones to used + in flight. Returns the headroom returned."""
        return self._leases.shrink()

    def lease_snapshot(self) -> list[tuple[str, tuple[str, ...], Decimal]]:
        """(lease id, cap keys, free headroom) of each lease this run holds."""
        return self._leases.snapshot()

    def return_idle_leases(self, *, force: bool = False) -> int:
        """Hand back leases with no call in flight that are near their deadline (all idle ones with `force`).

        Returns how many were settled. Runs on its own from a daemon timer (`LeasePolicy.auto_return`).
        """
        return self._leases.return_idle(force=force)

    # -- called by Call when it finishes ----------------------------------------------------------------------
    def settle_call(self, call: Call, actual: Decimal, state: str) -> bool:
        """Ledger side of Call.settle/release. True if this call changed the books."""
        if call.lease is not None:
            self._leases.use(call.lease, call.estimate, actual)
            return True
        hold = call.hold
        if hold is None:
            return False
        g = self.guard
        return g.ledger.settle(g.agent, hold, actual, state="released" if state == "released" else "settled")

    def book_finished(self, call: Call, counted: Decimal | None) -> None:
        """The call is no longer in flight; `counted` (its actual) adds to the run's spend. Spent and in flight
        change together: the per-outcome check never sees neither."""
        with self._lock:
            if counted is not None:
                self._spent += counted
            if self._inflight_ids:
                self._end_inflight(call)
            self._calls.finished(call)

    # -- internals --------------------------------------------------------------------------------------------
    def _spent_now(self) -> Decimal:
        return self._spent

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
            self.guard.metric("GuardLoopTrips", 1)
            self.guard.publish_kill(
                ("loop", self.run_id, exc.kind),
                f"loop detected ({exc.kind}): {exc}",
                self.run_id,
                Decimal(str(self.spent_usd)),
                None,
            )
            raise

    def _reserve(self, call: Call, *, settled: bool) -> None:
        """Right after `_step` (which checked that the run is open): the stop, throttle and outcome checks, then
        the ledger."""
        g = self.guard
        now = g.clock()  # one clock read for the stop check, the lease check and the ledger hold
        period = g.period_key(now)
        stop = g.stopped_scope(self.workflow, period)
        if stop is not None:
            scope, key, cap = stop
            g.metric("GuardDenials", 1)
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
                g.metric("GuardThrottledSeconds", waited, "Seconds")
                with self._lock:
                    self._check_open()
                now = g.clock()
                period = g.period_key(now)
        if g.outcome_caps:
            with self._lock:
                try:
                    check_outcome_caps(
                        g.agent,
                        self.run_id,
                        caps=g.outcome_caps,
                        counts=self._outcomes,
                        run_cost=self._spent + self._inflight,
                        amount=call.estimate,
                    )
                except BudgetExceeded:
                    g.metric("GuardDenials", 1)
                    raise
                self._inflight += call.estimate
                self._inflight_ids.add(call.charge_id)
            try:
                self._reserve_ledger(call, settled=settled, now=now, period=period)
            except BaseException:
                with self._lock:
                    self._end_inflight(call)
                raise
        else:
            self._reserve_ledger(call, settled=settled, now=now, period=period)
        with self._lock:
            self._calls.add(call)
        if settled:
            call.finish_counts(call.estimate, (0, 0, 0, 0), "settled")
        elif call.state != "reserved":
            with self._lock:
                self._end_inflight(call)  # a replayed charge the ledger had already settled
                self._calls.finished(call)

    def _end_inflight(self, call: Call) -> None:
        """With the lock held: the call's estimate no longer counts as in flight (idempotent)."""
        if call.charge_id in self._inflight_ids:
            self._inflight_ids.discard(call.charge_id)
            self._inflight -= call.estimate

    def _reserve_ledger(self, call: Call, *, settled: bool, now: float, period: str) -> None:
        g = self.guard
        if g.leases is not None and g.leases_active(period):
            try:
                call.bind_lease(self._leases.take(call.estimate, g.leases))
            except BudgetExceeded as exc:
                if exc.scope not in leasing.SHARED_SCOPES:
                    self._caps.refused(exc)
                    raise
                # Other runs' leases may hold the headroom: pause leasing for the period, reclaim, go direct.
                log.info("lease refused on %s (%s); leases paused, charging directly", exc.cap_field, exc.key)
                g.pause_leases()
                leasing.reclaim(g)
                self._reserve_direct(call, settled=settled)
        else:
            self._reserve_direct(call, settled=settled, now=now, period=period)

    def _reserve_direct(
        self, call: Call, *, settled: bool, now: float | None = None, period: str | None = None
    ) -> None:
        """One ledger hold for this charge. A refusal of a shared cap stops the agent only when it is real."""
        g = self.guard
        for attempt in range(leasing.RETRY_ROUNDS + 1):
            if now is None or period is None or attempt:
                now = g.clock()
                period = g.period_key(now)
            try:
                hold = g.ledger.reserve(
                    g.agent,
                    call.charge_id,
                    call.estimate,
                    self._caps.limits(now, period),
                    deadline=now + g.reservation_ttl,
                    meta=call.hold_meta(),
                    settled=settled,
                )
            except BudgetExceeded as exc:
                if exc.scope not in leasing.SHARED_SCOPES:
                    self._caps.refused(exc)
                    raise
                if attempt < leasing.RETRY_ROUNDS and leasing.reclaim(g) > 0:
                    continue  # this process's leases gave headroom back: try again
                if leasing.refusal_is_real(g, exc):
                    self._caps.refused(exc)
                    raise
                g.metric("GuardDenials", 1)
                raise leasing.contended(exc) from exc
            with self._lock:
                self._direct_reservations += 1
            call.bind_hold(hold, settled=settled)
            return
