"""The kill engine: alert → level → discover → plan → ledger → act → ledger → result event. Also restore, approve
and status. The Lambda handler and the CLI are thin wrappers around `KillEngine`.

Failure rule (SNS delivers at least once and retries a Lambda that raises, then dead-letters the event):
- input that cannot be read (malformed event, unknown agent, unknown budget) is *rejected*: logged with its
  reason, counted (`AlertsRejected`), kept in the ledger (`REJECTED#<day>`) and never raised — a retry could not
  fix it and SNS would retry until the dead-letter queue anyway;
- a permanent per-resource failure (`OperationNotPermitted`, `UnsupportedOperation`, `IncorrectInstanceState`,
  `AccessDenied`, ...) is reported in the result (codes per resource) and not raised — a retry would fail the same
  way;
- a *transient* failure (throttling after botocore's retries, 5xx, timeouts) is recorded in the ledger and the
  result event, then the dedupe marker is released and the report says `transient_failure`: the handler raises
  after everything is recorded, so SNS retries the event (and finally the DLQ keeps it). The retry is a new kill
  that only handles what is left: resources the first attempt changed plan as "already handled by kill <id>".
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger

from killswitch.config import Action, AgentConfig, KillSwitchConfig
from killswitch.intakes import Intakes
from killswitch.kill.accounts import (
    AccountFailure,
    SpokeSessions,
    SpokeUnavailableError,
    by_account,
    discover_everywhere,
    stamp,
)
from killswitch.kill.act import ActResult, BisectStats, ScpActions, execute, is_transient
from killswitch.kill.alerts import Alert, AlertKind, AlertSource, Rejected
from killswitch.kill.approval_requests import approval_request_report
from killswitch.kill.discover import ClientFactory, Clients, Discovery, discover
from killswitch.kill.intake import GuardCollapse, collapsed_report, read_event
from killswitch.kill.kinds import (
    KILL_ORDER,
    ORDER_INDEX,
    ActContext,
    PlanRules,
    discovery_kinds,
    kind_of,
    restore_action,
)
from killswitch.kill.kinds.base import restore_decision
from killswitch.kill.kinds.iam import deny_policy_name
from killswitch.kill.ledger import KillLedger, KillRecord, ResourceEntry
from killswitch.kill.levels import Level, decide_level
from killswitch.kill.model import (
    ACCOUNT,
    Act,
    AgentState,
    Decision,
    KillReport,
    KillStatus,
    Operation,
    Plan,
    Resource,
    result_for,
    scope_of,
)
from killswitch.kill.plan import plan_kill
from killswitch.kill.publish import DeadLetterSink, EventPublisher, NullPublisher
from killswitch.kill.watch import KillWatch, is_watch_event
from killswitch.results import Outcome, ResourceResult
from killswitch.states import ReportStatus

logger = Logger(child=True)
X = TypeVar("X")
Y = TypeVar("Y")
NO_ACCOUNTS = "the kill recorded this resource in an organization account, but the config has no accounts: section"


class SpendRecorder(Protocol):
    """`killswitch.spend.ledger.SpendLedger` (only the call the kill engine makes)."""

    def record_budget_alert(  # noqa: PLR0917 (the spend ledger's signature)
        self,
        agent: str,
        day: date,
        budget_name: str,
        alert_type: str,
        threshold_usd: float | None,
        amount_usd: float,
        budgeted_usd: float | None,
    ) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def new_kill_id(now: datetime) -> str:
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class StatusLine:
    """One resource changed by an active kill, and what restore would do to it."""

    kill_id: str
    kill_status: str
    resource_type: str
    resource_id: str
    region: str
    done: str  # what the kill did (or waits to do)
    outcome: str
    restore: str  # what `restore` would do
    account: str = ""  # hub kill: the organization account ("" = the kill Lambda's own account)

    def to_dict(self) -> dict[str, str]:
        d = dict(self.__dict__)
        if not self.account:
            del d["account"]
        return d


def _restore_text(e: ResourceEntry) -> str:
    r = e.resource
    if e.restored:
        return f"nothing (restored {e.restored_at or ''})".strip()
    if e.act == Act.NEEDS_APPROVAL.value:
        return "nothing (never stopped; restore cancels the pending approval)"
    if not (e.changed or e.pending):
        return "nothing (the kill did not change it)"
    kind = kind_of(r.resource_type)
    return kind.restore_text(e) if kind else "nothing"


class KillEngine:
    def __init__(
        self,
        config: KillSwitchConfig,
        ledger: KillLedger,
        *,
        clients: ClientFactory | None = None,
        publisher: EventPublisher | None = None,
        scp: ScpActions | None = None,
        spend: SpendRecorder | None = None,
        dead_letter: DeadLetterSink | None = None,
        clock: Callable[[], datetime] = _utcnow,
        kill_ids: Callable[[datetime], str] = new_kill_id,
        intakes: Intakes | None = None,
        spokes: Callable[[], SpokeSessions] | None = None,
    ):
        self.config = config
        self.ledger = ledger
        self.clients: ClientFactory = clients or Clients()
        self.publisher: EventPublisher = publisher or NullPublisher()
        self.scp = scp
        self.spend = spend
        self.dead_letter = dead_letter
        self.clock = clock
        self.kill_ids = kill_ids
        self.stats = BisectStats()
        # Hub and spokes (`accounts:`): fresh sessions per operation (a warm Lambda must not keep a failed account).
        self.spokes_factory = spokes
        self.hub: SpokeSessions | None = None
        self._record_lock = threading.Lock()
        # Which topic/queue is which intake (the handler pins the alerts topic ARN from its environment).
        self.intakes = intakes or Intakes(config.prefix, tuple(config.agent_names()))

    # ------------------------------------------------------------------------------------------------------
    # events and alerts
    # ------------------------------------------------------------------------------------------------------
    def handle_event(self, event: Any, *, dry_run: bool = False) -> list[KillReport]:
        """Every alert of a Lambda event (one report per record), read through its intake (`kill.intake`): rejected
        inputs are recorded and reported, never raised; repeated guard events of an agent collapse into one."""
        if is_watch_event(event):
            return KillWatch(self).handle(event, dry_run=dry_run)
        reports = []
        collapse = GuardCollapse(self.ledger, self.config, self.clock())
        for item in read_event(event, self.config, self.intakes):
            if isinstance(item, Rejected):
                reports.append(self.reject(item))
                continue
            into = None if dry_run or item.dry_run else collapse.into(item)
            if into is not None:
                reports.append(collapsed_report(item, into))
                continue
            reports.append(self.handle_alert(item, dry_run=dry_run))
            collapse.forget(item.agent)
        return reports

    def reject(self, item: Rejected) -> KillReport:
        logger.warning("alert rejected", extra={"reason": item.reason, "message_id": item.message_id})
        try:
            self.ledger.record_rejected(item.reason, item.message_id, item.raw)
        except Exception as exc:  # the dead-letter record is best effort: never turn a bad input into a crash loop
            logger.error("could not record rejected event", extra={"error": str(exc)})
        if self.dead_letter is not None:
            try:
                self.dead_letter.send(item.reason, item.message_id, item.raw)
            except Exception as exc:  # same rule: logged and in the ledger, never a retry loop
                logger.error("could not forward rejected event to the DLQ", extra={"error": str(exc)})
        return KillReport(
            Operation.REJECTED, None, reason=item.reason, status=ReportStatus.REJECTED, message=item.reason
        )

    def handle_alert(self, alert: Alert, *, dry_run: bool = False) -> KillReport:
        dry = dry_run or alert.dry_run
        if alert.action == "approval_requested":
            return self.forward_approval_request(alert, dry_run=dry)
        if not dry:
            self._record_spend(alert)
        level = decide_level(alert, self.config)
        if level.level is Level.KILL:
            agent = self._agent(alert.agent)
            scoped = alert.run_id if alert.run_id and agent is not None and agent.kill_scope == "run" else None
            report = self.kill(
                alert.agent,
                run_id=scoped,
                reason=level.reason,
                dry_run=dry,
                dedupe_key=alert.dedupe_key or None,
                source=alert.source.value,
                alert=_alert_summary(alert),
            )
        elif level.level is Level.WARN:
            report = self.warn(alert.agent, level.reason, dry_run=dry, dedupe_key=alert.dedupe_key or None)
        else:
            report = KillReport(
                Operation.NONE,
                alert.agent,
                reason=level.reason,
                dry_run=dry,
                status=ReportStatus.NO_ACTION,
                message=level.reason,
            )
            self._publish(report)
        report.level = level.level.value
        return report

    def _agent(self, name: str) -> AgentConfig | None:
        try:
            return self.config.agent(name)
        except KeyError:
            return None

    def _record_spend(self, alert: Alert) -> None:
        if self.spend is None or alert.source is not AlertSource.BUDGETS:
            return
        if alert.kind not in (AlertKind.ACTUAL, AlertKind.FORECASTED) or alert.amount_usd is None:
            return
        try:
            day = date.fromisoformat(alert.alert_date) if alert.alert_date else self.clock().date()
            self.spend.record_budget_alert(
                alert.agent,
                day,
                alert.budget_name or "",
                alert.kind.value,
                alert.threshold_usd,
                alert.amount_usd,
                alert.budgeted_usd,
            )
        except Exception as exc:  # spend bookkeeping must never block a kill
            logger.warning("could not record budget alert spend", extra={"error": str(exc), "agent": alert.agent})

    def _publish(self, report: KillReport) -> None:
        try:
            self.publisher.publish(report.to_event())
        except Exception as exc:  # the ledger is the record; a lost notification must not undo a kill
            logger.error("could not publish result event", extra={"error": str(exc)})

    def forward_approval_request(self, alert: Alert, *, dry_run: bool = False) -> KillReport:
        """A guard paused a run: tell ops on the events topic, once per delivery (SNS is at-least-once)."""
        report = approval_request_report(alert, dry_run=dry_run)
        if alert.dedupe_key and not dry_run:
            earlier = self.ledger.claim(alert.dedupe_key, f"approval-{self.clock().strftime('%Y%m%dT%H%M%SZ')}")
            if earlier:
                report.operation, report.status = Operation.DUPLICATE, ReportStatus.DUPLICATE
                report.message = f"duplicate delivery: already forwarded ({earlier}); nothing done"
                return report
        self._publish(report)
        return report

    # ------------------------------------------------------------------------------------------------------
    # warn
    # ------------------------------------------------------------------------------------------------------
    def warn(self, agent: str, reason: str, *, dry_run: bool = False, dedupe_key: str | None = None) -> KillReport:
        report = KillReport(Operation.WARN, agent, reason=reason, dry_run=dry_run, status=ReportStatus.THRIFT)
        if dedupe_key and not dry_run:
            # SNS is at-least-once: a redelivered warning must not notify ops a second time.
            earlier = self.ledger.claim(dedupe_key, f"warn-{self.clock().strftime('%Y%m%dT%H%M%SZ')}")
            if earlier:
                report.operation, report.status = Operation.DUPLICATE, ReportStatus.DUPLICATE
                report.message = f"duplicate delivery: already handled ({earlier}); nothing done"
                logger.info("duplicate warning", extra={"marker": earlier, "agent": agent})
                return report
        current = self.ledger.agent_state(agent) or {}
        if current.get("state") == AgentState.KILLED.value:
            report.status = ReportStatus.KILLED
            report.message = "agent is already killed: state left KILLED"
        elif not dry_run:
            self.ledger.set_agent_state(agent, AgentState.THRIFT, reason)
            report.message = "agent marked THRIFT (the guard routes it to the cheap model)"
        else:
            report.message = "dry run: would mark the agent THRIFT"
        self._publish(report)
        return report

    # ------------------------------------------------------------------------------------------------------
    # kill
    # ------------------------------------------------------------------------------------------------------
    def handled_by_active_kills(self, agent: str, *, exclude: str | None = None) -> dict[tuple[str, str], str]:
        """(region, resource id) → kill id, for resources changed by (or waiting for approval in) a kill that is not
        restored yet. `exclude`: the kill being approved."""
        out: dict[tuple[str, str], str] = {}
        for k in self.ledger.list_kills(agent):
            if not k.active or k.kill_id == exclude:
                continue
            for e in self.ledger.resources(k.kill_id):
                if ((e.changed or e.pending) and not e.restored) or e.awaiting_approval:
                    out[e.resource.key] = k.kill_id
        return out

    def _scp_targets(self, agent: AgentConfig) -> list[Resource]:
        if self.scp is None or Action.APPLY_SCP not in agent.actions or not agent.sandbox_accounts:
            return []
        return self.scp.targets(agent.name)

    def plan(self, agent: str, *, run_id: str | None = None, force: bool = False) -> tuple[Plan, list[ResourceResult]]:
        """Discover and plan (no changes). Returns the plan and error results for regions that could not be read."""
        cfg = self.config.agent(agent)
        found, unreachable = self._discover(agent, run_id, cfg)
        errors = [
            ResourceResult(f"region/{f.region}", "region", f.region, "discover", Outcome.ERROR, f.code, f.message)
            for f in found.failures
        ] + unreachable
        resources = found.resources
        try:
            resources = resources + self._scp_targets(cfg)
        except Exception as exc:
            errors.append(
                ResourceResult("organizations", ACCOUNT, "global", "discover", Outcome.ERROR, _code(exc), str(exc))
            )
        plan = plan_kill(
            cfg,
            resources,
            limit=self.config.max_resources_for(cfg),
            run_id=run_id,
            force=force,
            handled=self.handled_by_active_kills(agent),
            rules=self.plan_rules(),
        )
        return plan, errors

    def _start_hub(self) -> SpokeSessions | None:
        """New spoke sessions for one operation (kill, approve, restore): accounts listed and roles assumed once."""
        self.hub = self.spokes_factory() if self.spokes_factory else None
        return self.hub

    def start_hub(self) -> SpokeSessions | None:
        """Fresh spoke sessions for one operation that is not a kill/approve/restore (the watch)."""
        return self._start_hub()

    def _discover(self, agent: str, run_id: str | None, cfg: AgentConfig) -> tuple[Discovery, list[ResourceResult]]:
        """The hub's own account, plus every spoke account × region in a hub set-up (errors per account)."""
        kinds = discovery_kinds(cfg.actions)
        hub = self.hub or self._start_hub()
        if hub is None:
            return discover(agent, self.config.regions, self.clients, run_id=run_id, kinds=kinds), []
        return discover_everywhere(agent, self.config.regions, self.clients, hub, run_id=run_id, kinds=kinds)

    def _per_account(
        self,
        items: Sequence[X],
        account_of: Callable[[X], str],
        work: Callable[[str, ActContext, list[X]], list[Y]],
        failed: Callable[[list[X], SpokeUnavailableError], list[Y]],
        reason: str = "agent kill switch",
    ) -> list[Y]:
        """`work(account, ctx, items of that account)` for the hub's own account here and for spoke accounts on
        the hub's pool, each with its account's clients; an account whose role cannot be assumed gets `failed`."""
        groups = by_account(items, account_of)
        out = list(work("", self.act_context(reason), groups.pop(""))) if "" in groups else []
        if not groups:
            return out
        hub = self.hub or self._start_hub()
        if hub is None:  # spoke resources recorded by a hub kill, but no accounts: section any more
            exc = SpokeUnavailableError(AccountFailure("", "assume_role", "NoAccountsConfig", NO_ACCOUNTS))
            return out + [y for group in groups.values() for y in failed(group, exc)]

        def one(account: str) -> list[Y]:
            try:
                ctx = replace(self.act_context(reason), clients=hub.clients(account))
            except SpokeUnavailableError as exc:
                return failed(groups[account], exc)
            return work(account, ctx, groups[account])

        for done in hub.map(one, sorted(groups)):
            out += done
        return out

    def plan_rules(self) -> PlanRules:
        """Principals a kill must never deny: this kill switch's own roles and the break-glass roles."""
        own = (f"arn:*:iam::*:role/{self.config.prefix}-*", f"arn:*:iam::*:role/*/{self.config.prefix}-*")
        glass = tuple(self.config.sandbox.break_glass_role_arns) if self.config.sandbox else ()
        return PlanRules(protected_principals=own + glass, deny_policy_name=deny_policy_name(self.config.prefix))

    def act_context(self, reason: str = "agent kill switch") -> ActContext:
        return ActContext(
            self.clients,
            prefix=self.config.prefix,
            reason=reason,
            stats=self.stats,
            scp=self.scp,
            home_region=self.config.deploy_region,
        )

    def kill(
        self,
        agent: str,
        *,
        run_id: str | None = None,
        reason: str = "",
        dry_run: bool = False,
        force: bool = False,
        dedupe_key: str | None = None,
        source: str = "killswitch.cli",
        alert: Mapping[str, Any] | None = None,
    ) -> KillReport:
        t0 = time.monotonic()
        now = self.clock()
        kill_id = self.kill_ids(now)
        self._start_hub()
        report = KillReport(Operation.KILL, agent, kill_id=kill_id, run_id=run_id, reason=reason, dry_run=dry_run)
        if self._agent(agent) is None:
            report.refused = f"agent {agent!r} is not in the config (known: {', '.join(self.config.agent_names())})"
            report.status, report.kill_id = ReportStatus.REFUSED, None
            return self._finish(report, t0)
        if dedupe_key and not dry_run:
            earlier = self.ledger.claim(dedupe_key, kill_id)
            if earlier:
                report.operation, report.status, report.kill_id = Operation.DUPLICATE, ReportStatus.DUPLICATE, earlier
                report.message = f"duplicate delivery: already handled by kill {earlier}; nothing done"
                logger.info("duplicate alert", extra={"kill_id": earlier, "agent": agent})
                report.duration_ms = (time.monotonic() - t0) * 1000
                return report
        try:
            return self._kill(report, t0, now, source=source, alert=alert, force=force, dedupe_key=dedupe_key)
        except Exception:
            # Unexpected failure (ledger unavailable, ...): free the marker so that SNS's retry is not a "duplicate".
            if dedupe_key and not dry_run:
                self.ledger.release(dedupe_key)
            raise

    def _kill(
        self,
        report: KillReport,
        t0: float,
        now: datetime,
        *,
        source: str,
        alert: Mapping[str, Any] | None,
        force: bool,
        dedupe_key: str | None,
    ) -> KillReport:
        agent, kill_id, run_id, reason, dry_run = (
            str(report.agent),
            str(report.kill_id),
            report.run_id,
            report.reason,
            report.dry_run,
        )
        plan, errors = self.plan(agent, run_id=run_id, force=force)
        report.plan = plan
        report.summary.extend(errors)
        if plan.refused:
            report.refused, report.status, report.message = plan.refused, ReportStatus.REFUSED, plan.refused
            report.kill_id = None
            if dedupe_key and not dry_run:  # nothing was done or recorded: a redelivery is judged again
                self.ledger.release(dedupe_key)
            return self._finish(report, t0)
        if dry_run:
            report.status = ReportStatus.DRY_RUN
            report.kill_id = None
            report.summary.extend([_planned_result(d) for d in plan.decisions])
            report.message = f"dry run: {len(plan.to_act)} to act on, {len(plan.needs_approval)} need approval"
            return self._finish(report, t0)

        record = KillRecord(
            kill_id=kill_id,
            agent=agent,
            status=KillStatus.PLANNED,
            created_at=now.astimezone(UTC).isoformat(timespec="seconds"),
            updated_at=now.astimezone(UTC).isoformat(timespec="seconds"),
            reason=reason,
            run_id=run_id,
            source=source,
            dedupe_key=dedupe_key,
            alert=dict(alert or {}),
            plan=plan.summary(),
        )
        self.ledger.put_kill(record)
        # Prior state of everything the kill may change, written (in batches) before acting.
        self.ledger.put_resources(
            [ResourceEntry(kill_id, d.resource, d.act.value, d.reason) for d in plan.decisions if d.act is not Act.SKIP]
        )
        self.ledger.set_agent_state(agent, AgentState.KILLED, reason or "kill", kill_id)

        acted = self._execute(kill_id, plan)
        for d in plan.decisions:
            ar = acted.get(d.resource.key)
            report.summary.add(ar.result if ar else _planned_result(d))
        report.verification, report.still_running = self.verify(list(acted.values()))
        record.verification = report.verification
        # Transient failures, including a region whose discovery was throttled, make the handler raise for a retry.
        failures = report.summary.failures
        status = (
            KillStatus.AWAITING_APPROVAL
            if plan.needs_approval
            else (KillStatus.PARTIAL if report.summary.failures else KillStatus.DONE)
        )
        self.ledger.set_status(record, status)
        report.status = ReportStatus(status.value)
        if any(is_transient(r.code) for r in failures) and dedupe_key:
            self.ledger.release(dedupe_key)
            report.transient_failure = True
        report.message = _kill_message(report, plan)
        return self._finish(report, t0)

    def verify(self, acted: Sequence[ActResult]) -> tuple[str, list[dict[str, str]]]:
        """Re-describe what was changed successfully: ("verified" | "not_verified" | "", what still runs).

        A stop in progress (EC2 `stopping`) counts as verified; a kind that cannot be re-read is not verified, with
        the AWS error code."""
        changed = [ar.decision.resource for ar in acted if ar.result.outcome is Outcome.SUCCESS]
        if not changed:
            return "", []

        def unreachable(rs: list[Resource], exc: SpokeUnavailableError) -> list[dict[str, str]]:
            return [_running(r, f"not re-read: {exc.failure.code}") for r in rs]

        running = self._per_account(changed, lambda r: r.account, self._still_running, unreachable)
        if running:
            logger.warning("kill not verified", extra={"still_running": running[:20]})
        return ("not_verified" if running else "verified"), running

    def _still_running(self, account: str, ctx: ActContext, resources: list[Resource]) -> list[dict[str, str]]:
        by_type: dict[str, list[Resource]] = {}
        for r in resources:
            by_type.setdefault(r.resource_type, []).append(r)
        running: list[dict[str, str]] = []
        for t, rs in by_type.items():
            kind = kind_of(t)
            if kind is None:
                continue
            try:
                left = kind.still_running(rs, ctx)
            except Exception as exc:  # verification never undoes or blocks a kill: it is reported
                running += [_running(r, f"not re-read: {_code(exc)}") for r in rs]
                continue
            keyed = {r.key: r for r in rs}
            running += [_running(keyed[key], why) for key, why in sorted(left.items()) if key in keyed]
        return running

    def execute_recorded(self, kill_id: str, plan: Plan) -> list[ActResult]:
        return list(self._execute(kill_id, plan).values())

    def execute_unrecorded(self, decisions: Sequence[Decision], reason: str) -> list[ActResult]:
        """Act on `decisions` in their own accounts without writing the results to the ledger: the watch stopping
        again what a kill already changed (its ledger entry keeps the prior state from before the kill)."""

        def act(account: str, ctx: ActContext, group: list[Decision]) -> list[ActResult]:
            ars = execute(group, ctx.clients, ctx=ctx)
            for ar in ars:
                ar.result = stamp([ar.result], account)[0]
            return ars

        def unreachable(group: list[Decision], exc: SpokeUnavailableError) -> list[ActResult]:
            f = exc.failure
            return [ActResult(d, result_for(d, Outcome.ERROR, f.message, f.code)) for d in group]

        return self._per_account(list(decisions), lambda d: d.resource.account, act, unreachable, reason)

    def publish(self, report: KillReport) -> None:
        self._publish(report)

    def _execute(self, kill_id: str, plan: Plan) -> dict[tuple[str, str], ActResult]:
        """Act on the plan; the results of each API batch are written to the ledger as soon as they are known."""

        def record(ars: list[ActResult]) -> None:
            with self._record_lock:  # spoke accounts act on the hub's pool: one ledger write at a time
                self._put_results(kill_id, ars)

        def act(account: str, ctx: ActContext, decisions: list[Decision]) -> list[ActResult]:
            ars = execute(decisions, ctx.clients, on_results=record, ctx=ctx)
            for ar in ars:
                ar.result = stamp([ar.result], account)[0]
            return ars

        def unreachable(decisions: list[Decision], exc: SpokeUnavailableError) -> list[ActResult]:
            f = exc.failure
            ars = [ActResult(d, result_for(d, Outcome.ERROR, f.message, f.code)) for d in decisions]
            record(ars)
            return ars

        results = self._per_account(
            plan.to_act, lambda d: d.resource.account, act, unreachable, f"killswitch {kill_id}"
        )
        return {ar.decision.resource.key: ar for ar in results}

    def _put_results(self, kill_id: str, ars: list[ActResult]) -> None:
        if ars:
            self.ledger.put_resources(
                [
                    ResourceEntry(
                        kill_id,
                        ar.decision.resource,
                        ar.decision.act.value,
                        ar.decision.reason,
                        outcome=ar.result.outcome.value,
                        code=ar.result.code,
                        message=ar.result.message,
                        attached_by_us=ar.attached_by_us,
                        suspended_by_us=ar.suspended_by_us,
                    )
                    for ar in ars
                ]
            )

    def _finish(self, report: KillReport, t0: float) -> KillReport:
        report.duration_ms = (time.monotonic() - t0) * 1000
        logger.info("kill engine result", extra={"result": report.to_event()})
        self._publish(report)
        return report

    # ------------------------------------------------------------------------------------------------------
    # approve
    # ------------------------------------------------------------------------------------------------------
    def approve(self, kill_id: str) -> KillReport:
        t0 = time.monotonic()
        record = self.ledger.get_kill(kill_id)
        report = KillReport(Operation.APPROVE, record.agent if record else None, kill_id=kill_id)
        if record is None:
            report.refused, report.status = f"no kill {kill_id!r} in the ledger", ReportStatus.REFUSED
            return self._finish(report, t0)
        report.run_id, report.reason = record.run_id, record.reason
        if record.status is not KillStatus.AWAITING_APPROVAL:
            report.refused = f"kill {kill_id} is {record.status.value}: nothing waits for approval"
            report.status = ReportStatus.REFUSED
            return self._finish(report, t0)
        cfg = self.config.agent(record.agent)
        entries = self.ledger.resources(kill_id)
        waiting = [e for e in entries if e.awaiting_approval]
        # Re-discover: act on the current state, not on what was true when the kill was planned.
        self._start_hub()
        found, unreachable = self._discover(record.agent, record.run_id, cfg)
        report.summary.extend(unreachable)
        current = {r.key: r for r in found.resources}
        if any(e.resource.resource_type == ACCOUNT for e in waiting):
            current.update({r.key: r for r in self._scp_targets(cfg)})
        for f in found.failures:
            report.summary.add(
                ResourceResult(f"region/{f.region}", "region", f.region, "discover", Outcome.ERROR, f.code, f.message)
            )
        present = [current[e.resource.key] for e in waiting if e.resource.key in current]
        plan = plan_kill(
            cfg,
            present,
            limit=self.config.max_resources_for(cfg),
            run_id=record.run_id,
            force=True,
            handled=self.handled_by_active_kills(record.agent, exclude=kill_id),
            approved=True,
            rules=self.plan_rules(),
        )
        report.plan = plan
        for e in waiting:
            if e.resource.key not in current:
                d = Decision(e.resource, Act.SKIP, "no longer found with the agent's tags: nothing to do")
                report.summary.add(_planned_result(d))
                self.ledger.put_resource(ResourceEntry(kill_id, e.resource, Act.SKIP.value, d.reason, "no_action"))
        acted = self._execute(kill_id, plan)
        for d in plan.decisions:
            ar = acted.get(d.resource.key)
            if ar is not None:
                report.summary.add(ar.result)
                continue
            rr = _planned_result(d)
            report.summary.add(rr)
            entry = ResourceEntry(kill_id, d.resource, d.act.value, d.reason, outcome=rr.outcome.value)
            self.ledger.put_resource(entry)
        earlier_errors = any(e.outcome == "error" for e in entries)
        status = KillStatus.PARTIAL if report.summary.failures or earlier_errors else KillStatus.DONE
        self.ledger.set_status(record, status)
        self.ledger.set_agent_state(record.agent, AgentState.KILLED, f"approved kill {kill_id}", kill_id)
        report.status = ReportStatus(status.value)
        report.message = f"approved: {report.stopped} resources stopped"
        return self._finish(report, t0)

    # ------------------------------------------------------------------------------------------------------
    # restore
    # ------------------------------------------------------------------------------------------------------
    def restore(self, agent: str | None, *, kill_id: str | None = None, dry_run: bool = False) -> KillReport:
        t0 = time.monotonic()
        report = KillReport(Operation.RESTORE, agent, kill_id=kill_id, dry_run=dry_run)
        self._start_hub()
        if kill_id:
            record = self.ledger.get_kill(kill_id)
            if record is None or (agent and record.agent != agent):
                report.refused = f"no kill {kill_id!r} for agent {agent!r} in the ledger"
                report.status = ReportStatus.REFUSED
                return self._finish(report, t0)
            report.agent = agent = record.agent
            kills = [record]
        elif agent:
            kills = [k for k in self.ledger.list_kills(agent) if k.active]
        else:
            report.refused, report.status = "restore needs an agent or a kill id", ReportStatus.REFUSED
            return self._finish(report, t0)
        if not kills:
            report.status, report.message = (
                ReportStatus.NO_ACTION,
                f"nothing to restore: agent {agent} has no active kill",
            )
            return self._finish(report, t0)
        for record in sorted(kills, key=lambda k: (k.created_at, k.kill_id), reverse=True):
            report.summary.extend(self._restore_kill(record, dry_run))
        report.kill_id = kills[0].kill_id if len(kills) == 1 else ",".join(k.kill_id for k in kills)
        if not dry_run:
            assert agent is not None
            if not any(k.active for k in self.ledger.list_kills(agent)):
                self.ledger.set_agent_state(agent, AgentState.OK, f"restored {report.kill_id}")
        restored = sum(1 for r in report.summary.results if r.outcome is Outcome.SUCCESS)
        report.status = (
            ReportStatus.DRY_RUN
            if dry_run
            else (ReportStatus.PARTIAL if report.summary.failures else ReportStatus.RESTORED)
        )
        report.message = f"{restored} resources restored" if not dry_run else "dry run: nothing changed"
        return self._finish(report, t0)

    def _restore_kill(self, record: KillRecord, dry_run: bool) -> list[ResourceResult]:
        entries = self.ledger.resources(record.kill_id)
        entries.sort(
            key=lambda e: (-ORDER_INDEX.get(e.resource.resource_type, 99), e.resource.region, e.resource.resource_id)
        )
        results: list[ResourceResult] = []
        todo: list[ResourceEntry] = []
        for e in entries:
            d = _restore_decision(e)
            if e.restored:
                results.append(_rres(d, Outcome.NO_ACTION, f"already restored {e.restored_at or ''}".strip()))
            elif e.act == Act.NEEDS_APPROVAL.value:
                results.append(_rres(d, Outcome.NO_ACTION, "was waiting for approval: never stopped"))
                if not dry_run:
                    e.outcome, e.message = "no_action", "approval cancelled by restore"
                    self.ledger.put_resource(e)
            elif not (e.changed or e.pending):
                results.append(_rres(d, Outcome.NO_ACTION, f"not changed by the kill ({e.outcome})"))
            elif why := _why_not_restorable(e):
                results.append(_rres(d, Outcome.NO_ACTION, why))
            elif dry_run:
                results.append(_rres(d, Outcome.NO_ACTION, f"dry run: would {_restore_text(e)}"))
            else:
                todo.append(e)
        results.extend(self._restore_entries(todo))
        if not dry_run:
            now = self.clock().astimezone(UTC).isoformat(timespec="seconds")
            by_key = {(scope_of(r.account, r.region), r.resource_id): r for r in results}
            done = []
            for e in todo:
                rr = by_key.get(e.resource.key)
                if rr is not None and rr.outcome is Outcome.SUCCESS:
                    e.restored, e.restored_at = True, now
                    done.append(e)
            self.ledger.put_resources(done)
            if all(e.restored or not (e.changed or e.pending) or _not_restorable(e) for e in entries):
                self.ledger.set_status(record, KillStatus.RESTORED)
        return results

    def _restore_entries(self, todo: Sequence[ResourceEntry]) -> list[ResourceResult]:
        def restore(account: str, ctx: ActContext, entries: list[ResourceEntry]) -> list[ResourceResult]:
            out: list[ResourceResult] = []
            for t in reversed(KILL_ORDER):
                group = [e for e in entries if e.resource.resource_type == t]
                kind = kind_of(t)
                if group and kind is not None:
                    out += kind.restore(group, ctx)
            return stamp(out, account)

        def unreachable(entries: list[ResourceEntry], exc: SpokeUnavailableError) -> list[ResourceResult]:
            f = exc.failure
            return [_rres(_restore_decision(e), Outcome.ERROR, f.message, f.code) for e in entries]

        return self._per_account(todo, lambda e: e.resource.account, restore, unreachable)

    # ------------------------------------------------------------------------------------------------------
    # status
    # ------------------------------------------------------------------------------------------------------
    def status(self, agent: str | None = None) -> list[dict[str, Any]]:
        """Per agent: state item, active kills, and per changed resource what restore would do."""
        names = [agent] if agent else self.config.agent_names()
        out = []
        for name in names:
            state = self.ledger.agent_state(name) or {}
            kills = []
            lines: list[StatusLine] = []
            variants: dict[str, dict[str, Any]] = {}
            for k in self.ledger.list_kills(name):
                kills.append(
                    {
                        "kill_id": k.kill_id,
                        "status": k.status.value,
                        "created_at": k.created_at,
                        "reason": k.reason,
                        "verification": k.verification or "",
                    }
                )
                if not k.active:
                    continue
                for v in (k.plan or {}).get("tag_variants", []):
                    variants[str(v.get("resource_id"))] = v
                for e in self.ledger.resources(k.kill_id):
                    lines.append(
                        StatusLine(
                            kill_id=k.kill_id,
                            kill_status=k.status.value,
                            resource_type=e.resource.resource_type,
                            resource_id=e.resource.resource_id,
                            region=e.resource.region,
                            done=e.act,
                            outcome=e.outcome or "pending",
                            restore=_restore_text(e),
                            account=e.resource.account,
                        )
                    )
            out.append(
                {
                    "agent": name,
                    "state": state.get("state", AgentState.OK.value),
                    "state_reason": state.get("reason", ""),
                    "updated_at": state.get("updated_at", ""),
                    "kills": kills,
                    "resources": [line.to_dict() for line in lines],
                    # `agent-name` case/whitespace variants the active kills left alone (an escape or a typo).
                    "tag_variants": list(variants.values()),
                }
            )
        return out


def _running(r: Resource, why: str) -> dict[str, str]:
    out = {"resource_id": r.resource_id, "region": r.region, "why": why}
    return {**out, "account": r.account} if r.account else out


def _why_not_restorable(e: ResourceEntry) -> str | None:
    kind = kind_of(e.resource.resource_type)
    return kind.not_restorable(e) if kind else "unsupported resource type"


def _not_restorable(e: ResourceEntry) -> bool:
    return _why_not_restorable(e) is not None


_restore_decision = restore_decision


def _rres(d: Decision, outcome: Outcome, message: str, code: str | None = None) -> ResourceResult:
    """A restore result: named after the restore action of the resource type (start, restore_service, ...)."""
    r = result_for(d, outcome, message, code)
    action = restore_action(r.resource_type)
    return replace(r, action=action)


def _planned_result(d: Decision) -> ResourceResult:
    if d.act is Act.SKIP:
        return result_for(d, Outcome.NO_ACTION, d.reason)
    if d.act is Act.NEEDS_APPROVAL:
        return result_for(d, Outcome.NEEDS_APPROVAL, d.reason)
    return result_for(d, Outcome.NO_ACTION, f"dry run: would {d.act.value} ({d.reason})")


def _kill_message(report: KillReport, plan: Plan) -> str:
    c = report.summary.counts
    text = f"{report.stopped} stopped, {c['error']} failed, {c['no_action']} skipped"
    if plan.needs_approval:
        text += f", {len(plan.needs_approval)} wait for `killswitch approve {report.kill_id}`"
    return text


def _code(exc: BaseException) -> str:
    from killswitch.aws import error_code

    return error_code(exc)


def _alert_summary(alert: Alert) -> dict[str, Any]:
    keys = (
        "source",
        "kind",
        "budget_name",
        "budget_account",
        "amount_usd",
        "budgeted_usd",
        "percent_of_budget",
        "threshold_usd",
        "run_id",
        "message_id",
        "dedupe_key",
        "reason",
        "alert_date",
    )
    out = {}
    for k in keys:
        v = getattr(alert, k, None)
        if v is not None:
            out[k] = v.value if hasattr(v, "value") else v
    return out


__all__ = ["KillEngine", "KillReport", "SpendRecorder", "StatusLine"]
