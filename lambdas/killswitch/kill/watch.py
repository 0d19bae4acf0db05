"""A kill stays applied: what a killed agent (or run) launches or restarts afterwards is stopped on sight.

Two inputs reach the kill Lambda:
- watch events: EventBridge rules (one per configured region) on the CloudTrail management events of the kinds'
  `watch_events` (RunInstances, StartInstances, CreateService/UpdateService, RunTask, UpdateAutoScalingGroup,
  CreateFunction, PutFunctionConcurrency, ...). Only AWS can put `aws.*` events on a bus, so the event is trusted as
  "something changed here", never as an order: it only makes the watch look again at agents that are killed.
- the re-check: a schedule (default every 15 minutes) for what events miss (RDS restarts a stopped database after 7
  days; CloudTrail delivery to EventBridge is best effort).

Hub and spokes (`accounts:`): every spoke account's rules forward their events to the hub's default bus (the
`<prefix>-spoke-watch` StackSet, `infra.constructs.spoke_watch`); EventBridge keeps the source account in `account`.
The watch acts in that account through the hub's spoke role (`killswitch.kill.accounts`), with the same plan rules,
recording under the active kill with account-scoped keys. An account that is neither the hub's own nor a spoke (a
configured account id, an account the agent's active kill reached, or an account under a configured OU, listed at
run time) acts on nothing and is kept as a rejected input (`REJECTED#`, the DLQ): the hub bus policy already
admits only the spokes' forwarding roles, this is the second check. The re-check discovers in the hub's own
account and every spoke account, like a kill.

Cost for agents that are not killed: an event whose request names an `agent-name` tag reads that agent's state item
(one GetItem) and stops there; an event without the tag reads the state of each configured agent. Only for a killed
agent does the watch discover (in the event's region) and act, under the agent's active kill:
- something new (not in the kill's ledger) is planned like any kill (exempt/critical/other agents never touched) and
  recorded under the active kill, so `restore` covers it;
- something the kill already changed that runs again (an instance restarted, a deny policy detached, a function's
  concurrency reset) is changed again; its ledger entry keeps the prior state from before the kill, so restore still
  puts back the original settings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from killswitch import tags as T
from killswitch.arns import parse_arn
from killswitch.config import Approval
from killswitch.kill.accounts import SpokeUnavailableError, discover_everywhere, in_account
from killswitch.kill.alerts import Rejected, cap_raw
from killswitch.kill.discover import DiscoveryFailure, discover
from killswitch.kill.kinds import discovery_kinds, watch_events
from killswitch.kill.ledger import KillRecord, ResourceEntry
from killswitch.kill.model import AgentState, KillReport, KillStatus, Operation, Resource, result_for
from killswitch.kill.plan import plan_kill
from killswitch.results import Outcome, ResourceResult
from killswitch.states import ReportStatus

if TYPE_CHECKING:
    from killswitch.kill.engine import KillEngine

logger = Logger(child=True)

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
RECHECK_KEY = "killswitch"
RECHECK_VALUE = "recheck"
RECHECK_EVENT: dict[str, str] = {RECHECK_KEY: RECHECK_VALUE}
DEFAULT_RECHECK_MINUTES = 15


def is_watch_event(event: Any) -> bool:
    return isinstance(event, Mapping) and (
        event.get("detail-type") == CLOUDTRAIL_DETAIL_TYPE or event.get(RECHECK_KEY) == RECHECK_VALUE
    )


def event_pattern() -> dict[str, Any]:
    """The EventBridge pattern of the watch rules, built from the registry's `watch_events`."""
    by_source = watch_events()
    return {
        "source": sorted({"aws." + s.split(".")[0] for s in by_source}),
        "detail-type": [CLOUDTRAIL_DETAIL_TYPE],
        "detail": {
            "eventSource": sorted(by_source),
            "eventName": sorted({n for names in by_source.values() for n in names}),
        },
    }


def tagged_agents(value: Any) -> set[str]:
    """`agent-name` values anywhere in a CloudTrail request: `{"agent-name": v}` maps (Lambda) and
    `{"key"|"Key": "agent-name", "value"|"Value": v}` lists (EC2 tag specifications, ECS, Auto Scaling)."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        key = value.get("key", value.get("Key"))
        if key == T.AGENT_NAME and isinstance(value.get("value", value.get("Value")), str):
            found.add(value.get("value", value.get("Value")))
        elif isinstance(value.get(T.AGENT_NAME), str):
            found.add(value[T.AGENT_NAME])
        for v in value.values():
            found |= tagged_agents(v)
    elif isinstance(value, list):
        for v in value:
            found |= tagged_agents(v)
    return found


class KillWatch:
    def __init__(self, engine: KillEngine):
        self.engine = engine

    def handle(self, event: Mapping[str, Any], *, dry_run: bool = False) -> list[KillReport]:
        config = self.engine.config
        account: str | None = None  # None: everywhere the kill reached (re-check); "": the hub's own account
        if event.get(RECHECK_KEY) == RECHECK_VALUE:
            candidates, regions = config.agent_names(), list(config.regions)
            what = "re-check"
        else:
            detail = event.get("detail") if isinstance(event.get("detail"), Mapping) else {}
            assert isinstance(detail, Mapping)
            region = str(detail.get("awsRegion") or event.get("region") or "")
            named = tagged_agents(detail.get("requestParameters")) & set(config.agent_names())
            candidates = sorted(named) or config.agent_names()
            regions = [region] if region in config.regions else []
            account = str(event.get("account") or "")
            what = f"{detail.get('eventSource', '?')} {detail.get('eventName', '?')} in {region or '?'}"
            if account:
                what += f" ({account})"
        killed = [a for a in candidates if self._killed(a)]
        if not killed or not regions:
            return [_no_action(f"{what}: no killed agent concerned")]
        if config.accounts is not None:
            self.engine.start_hub()  # fresh spoke sessions: a warm Lambda must not keep a failed account
        if account is not None:
            where = self._event_account(account, killed)
            if where is None:
                reason = f"{what}: account {account} is not a spoke of this hub: ignored"
                if dry_run:
                    return [_no_action(reason)]
                # Kept like any input the kill switch refuses (ledger REJECTED#, DLQ, AlertsRejected): the bus policy
                # should never have admitted it, so ops want to see it.
                raw = json.dumps(event, default=str, sort_keys=True)
                return [self.engine.reject(Rejected(reason, str(event.get("id") or "") or None, cap_raw(raw)))]
            account = where
        return [self.enforce(agent, regions, reason=what, account=account, dry_run=dry_run) for agent in killed]

    def _own_account(self) -> str | None:
        """The hub's own account: `accounts.hub_account_id` (or the sandbox's ids), else the account of the alerts
        topic the Lambda's environment names (always set when deployed)."""
        hub = self.engine.hub
        own = hub.own_account() if hub is not None else None
        arn = parse_arn(self.engine.intakes.alerts_topic_arn)
        return own or (arn.account if arn else None)

    def _event_account(self, account: str, killed: Sequence[str]) -> str | None:
        """Where a watch event's call was made: "" (the hub's own account), a spoke account id, or None (an
        account that is neither: ignored). Spokes are the configured account ids, the accounts the agents' active
        kills reached (their ledger), and the accounts under the configured OUs (listed once per invocation)."""
        accounts = self.engine.config.accounts
        own = self._own_account()
        if accounts is None or account == own:
            return ""  # single account: every event on the bus is the hub's own
        reached = {e.resource.account for agent in killed for e in self._active_entries(agent)}
        if account in {*accounts.account_ids, *reached}:
            return account
        hub = self.engine.hub
        if accounts.organizational_units and hub is not None and account in hub.accounts()[0]:
            return account
        # Not a spoke. Without a known own account (a local run with no alerts topic and no hub_account_id) it is
        # taken as the hub's own: the single-account path only ever acts in the hub account with its own role.
        return "" if own is None else None

    def _active_entries(self, agent: str) -> list[ResourceEntry]:
        ledger = self.engine.ledger
        return [e for k in ledger.list_kills(agent) if k.active for e in ledger.resources(k.kill_id)]

    def _killed(self, agent: str) -> bool:
        state = self.engine.ledger.agent_state(agent) or {}
        return state.get("state") == AgentState.KILLED.value

    def _active_kill(self, agent: str) -> KillRecord | None:
        active = [k for k in self.engine.ledger.list_kills(agent) if k.active]
        return active[-1] if active else None

    def _ledger_keys(self, agent: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        """(every resource the active kills recorded, those they changed and restore has not put back yet: the
        ones that must stay stopped)."""
        known: set[tuple[str, str]] = set()
        changed: set[tuple[str, str]] = set()
        for e in self._active_entries(agent):
            known.add(e.resource.key)
            if (e.changed or e.pending) and not e.restored:
                changed.add(e.resource.key)
        return known, changed

    def _discover(
        self, agent: str, regions: Sequence[str], account: str | None, run_id: str | None, actions: Any
    ) -> tuple[list[Resource], list[ResourceResult]]:
        """What the agent has now in `account` ("" the hub's own, None everywhere the hub reaches) × `regions`,
        with an error result for each account or region that could not be read."""
        eng = self.engine
        kinds = discovery_kinds(actions)
        hub = eng.hub
        if account is None and hub is not None:
            found, errors = discover_everywhere(agent, regions, eng.clients, hub, run_id=run_id, kinds=kinds)
            return found.resources, errors + _unread(found.failures, "")
        if not account or hub is None:
            found = discover(agent, regions, eng.clients, run_id=run_id, kinds=kinds)
            return found.resources, _unread(found.failures, "")
        try:
            clients = hub.clients(account)
        except SpokeUnavailableError as exc:
            return [], [exc.failure.result()]
        found = discover(agent, regions, clients, run_id=run_id, kinds=[k for k in kinds if not k.is_global])
        return in_account(found.resources, account), _unread(found.failures, account)

    def enforce(
        self,
        agent: str,
        regions: Sequence[str],
        *,
        reason: str,
        account: str | None = "",
        dry_run: bool = False,
    ) -> KillReport:
        """Stop what is new or running again under the agent's latest carried-out kill, in `regions` of `account`
        ("" the hub's own account, a spoke account id, None every account the hub reaches)."""
        eng = self.engine
        record = self._active_kill(agent)
        report = KillReport(Operation.KILL, agent, reason=f"kill stays applied: {reason}", dry_run=dry_run)
        report.level = "watch"
        if record is None:
            report.status, report.message = ReportStatus.NO_ACTION, "no active kill to keep applied"
            return report
        report.kill_id, report.run_id = record.kill_id, record.run_id
        cfg = eng.config.agent(agent)
        if cfg.approval is Approval.MANUAL and record.status in (KillStatus.DONE, KillStatus.PARTIAL):
            # ops approved this kill: what is new follows it (critical resources still wait for approval)
            cfg = cfg.model_copy(update={"approval": Approval.AUTOMATIC})
        found, unread = self._discover(agent, regions, account, record.run_id, cfg.actions)
        report.summary.extend(unread)
        handled = eng.handled_by_active_kills(agent)
        known, changed = self._ledger_keys(agent)
        rules = eng.plan_rules()
        # Known but unchanged (skipped, or failed with its error code in the ledger) is not retried on every event.
        new = [r for r in found if r.key not in known]
        again = [r for r in found if r.key in changed]
        plan_new = plan_kill(cfg, new, limit=10**9, run_id=record.run_id, force=True, handled=handled, rules=rules)
        plan_again = plan_kill(cfg, again, limit=10**9, run_id=record.run_id, force=True, rules=rules)
        to_again = [d for d in plan_again.decisions if d.changes_aws]
        waiting = plan_new.needs_approval
        if dry_run:
            report.status = ReportStatus.DRY_RUN
            report.message = f"dry run: {len(plan_new.to_act)} new and {len(to_again)} running again would be stopped"
            return report
        entries = [ResourceEntry(record.kill_id, d.resource, d.act.value, d.reason) for d in plan_new.decisions]
        eng.ledger.put_resources([e for e in entries if e.act != "skip"])
        acted = eng.execute_recorded(record.kill_id, plan_new)
        # Running again: the ledger keeps the prior state from before the kill.
        acted += eng.execute_unrecorded(to_again, f"killswitch {record.kill_id} (kept applied)")
        for ar in acted:
            report.summary.add(ar.result)
        for d in waiting:  # found and left running until ops approve: in the report and its event, as a kill does
            report.summary.add(result_for(d, Outcome.NEEDS_APPROVAL, d.reason))
        report.verification, report.still_running = eng.verify(acted)
        if waiting:
            eng.ledger.set_status(record, KillStatus.AWAITING_APPROVAL)
        stopped = sum(1 for r in report.summary.results if r.outcome is Outcome.SUCCESS)
        report.status = ReportStatus.PARTIAL if report.summary.failures else ReportStatus.DONE
        report.message = f"kill {record.kill_id} kept applied: {stopped} stopped (new or running again)" + (
            f", {len(waiting)} wait for `killswitch approve {record.kill_id}`" if waiting else ""
        )
        logger.info("kill kept applied", extra={"result": report.to_event()})
        eng.publish(report)
        return report


def _no_action(message: str) -> KillReport:
    return KillReport(Operation.NONE, None, status=ReportStatus.NO_ACTION, message=message)


def _unread(failures: Sequence[DiscoveryFailure], account: str) -> list[ResourceResult]:
    return [
        ResourceResult(f"region/{f.region}", "region", f.region, "discover", Outcome.ERROR, f.code, f.message, account)
        for f in failures
    ]
