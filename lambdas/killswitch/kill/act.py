"""Acting: the only step of a kill or restore that changes AWS. One `Outcome` per resource, never an exception
for a single bad resource.

- `Ec2Stopper`: `StopInstances` with every instance of a region in one call (1000 per call), bisecting a failed
  batch down to single instances so that one bad instance (`OperationNotPermitted` from disableApiStop,
  `UnsupportedOperation` for one-time spot, `IncorrectInstanceState`) never blocks the rest. Throttling that
  outlived botocore's standard retries fails the whole batch with its code (splitting would only add calls).
  The same bisect starts instances on restore.
- `EcsServiceScaler`: Application Auto Scaling target suspended (in/out/scheduled) with min 0 first, or it scales
  the service back up; then `UpdateService(desiredCount=0)`. Restore: desired count, then the target's exact
  min/max/suspended state.
- `EcsTaskStopper`: `StopTask(reason=...)` for standalone tasks (not restorable: a stopped task is gone; the
  agent's launcher starts new ones).
- `AsgScaler`: suspend the processes that would launch instances (only those not already suspended are recorded as
  ours), then min 0 / desired 0. Restore: min/max/desired as they were, resume only the processes we suspended.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from killswitch import aws
from killswitch.kill.discover import ECS_DIMENSION, SUSPENDED_KEYS, ClientFactory, chunks, service_resource_id
from killswitch.kill.model import (
    ACCOUNT,
    ASG,
    EC2_INSTANCE,
    ECS_SERVICE,
    ECS_TASK,
    KILL_ORDER,
    RESTORE_ACTION,
    Act,
    Decision,
    Resource,
    result_for,
)
from killswitch.results import Outcome, ResourceResult

EC2_CALL_BATCH = 1000
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "Unavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        # Assumed-role credentials that expired between refreshes: the retry runs with fresh ones.
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
# Processes that would launch or replace instances while the group is meant to be at zero.
ASG_KILL_PROCESSES = ("Launch", "ReplaceUnhealthy", "AZRebalance", "AlarmNotification", "ScheduledActions")


def is_transient(code: str | None) -> bool:
    return bool(code) and code in TRANSIENT_CODES


@dataclass
class ActResult:
    decision: Decision
    result: ResourceResult
    attached_by_us: bool | None = None
    suspended_by_us: list[str] = field(default_factory=list)


@dataclass
class BisectStats:
    calls: int = 0


def bisect_call(
    ids: Sequence[str], call: Callable[[list[str]], Any], stats: BisectStats | None = None
) -> dict[str, tuple[str, str] | None]:
    """Call `call(batch)`; on failure split the batch in halves down to single ids.

    Returns id → None (succeeded) or (error code, message). Transient codes are not split.
    """
    stats = stats or BisectStats()
    out: dict[str, tuple[str, str] | None] = {}

    def go(batch: list[str]) -> None:
        stats.calls += 1
        try:
            call(batch)
        except (ClientError, BotoCoreError) as exc:
            code = aws.error_code(exc)
            if len(batch) == 1 or is_transient(code):
                for i in batch:
                    out[i] = (code, str(exc))
                return
            mid = len(batch) // 2
            go(batch[:mid])
            go(batch[mid:])
            return
        for i in batch:
            out[i] = None

    if ids:
        go(list(ids))
    return out


class ScpActions(Protocol):
    """The sandbox-account path (Organizations deny SCP), implemented by `killswitch.kill.scp`."""

    def targets(self, agent: str) -> list[Resource]: ...

    def attach(self, resource: Resource) -> tuple[ResourceResult, bool]: ...

    def detach(self, resource: Resource) -> ResourceResult: ...


def _error(decision: Decision, exc: BaseException, action: str | None = None) -> ResourceResult:
    r = result_for(decision, Outcome.ERROR, str(exc), aws.error_code(exc))
    return r if action is None else _with_action(r, action)


def _with_action(r: ResourceResult, action: str) -> ResourceResult:
    return ResourceResult(r.resource_id, r.resource_type, r.region, action, r.outcome, r.code, r.message)


class Ec2Stopper:
    def __init__(self, clients: ClientFactory, stats: BisectStats | None = None):
        self.clients = clients
        self.stats = stats or BisectStats()

    def _run(self, decisions: Sequence[Decision], op: str, action: str, done: str) -> list[ActResult]:
        by_region: dict[str, list[Decision]] = defaultdict(list)
        for d in decisions:
            by_region[d.resource.region].append(d)
        out: list[ActResult] = []
        for region, ds in by_region.items():
            ec2 = self.clients("ec2", region)
            fn = getattr(ec2, op)
            index = {d.resource.resource_id: d for d in ds}

            def call(ids: list[str], fn: Any = fn) -> Any:
                return fn(InstanceIds=ids)

            for batch in chunks(list(index), EC2_CALL_BATCH):
                res = bisect_call(batch, call, self.stats)
                for iid in batch:
                    d, err = index[iid], res[iid]
                    rr = (
                        result_for(d, Outcome.SUCCESS, done)
                        if err is None
                        else result_for(d, Outcome.ERROR, err[1], err[0])
                    )
                    out.append(ActResult(d, _with_action(rr, action)))
        return out

    def stop(self, decisions: Sequence[Decision]) -> list[ActResult]:
        return self._run(decisions, "stop_instances", Act.STOP.value, "stop requested")

    def start(self, decisions: Sequence[Decision]) -> list[ActResult]:
        return self._run(decisions, "start_instances", RESTORE_ACTION[EC2_INSTANCE], "start requested")


class EcsServiceScaler:
    def __init__(self, clients: ClientFactory):
        self.clients = clients

    def _target(self, r: Resource, min_capacity: int, max_capacity: int, suspended: dict[str, bool]) -> None:
        self.clients("application-autoscaling", r.region).register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=service_resource_id(r.cluster or "default", r.name),
            ScalableDimension=ECS_DIMENSION,
            MinCapacity=min_capacity,
            MaxCapacity=max_capacity,
            SuspendedState=suspended,
        )

    def scale_to_zero(self, d: Decision) -> ActResult:
        r, st = d.resource, d.resource.scalable_target
        try:
            if st:
                self._target(r, 0, st.max_capacity, dict.fromkeys(SUSPENDED_KEYS, True))
            try:
                self.clients("ecs", r.region).update_service(cluster=r.cluster, service=r.name, desiredCount=0)
            except (ClientError, BotoCoreError):
                if st:  # put autoscaling back as it was: the service was not changed
                    self._target(r, st.min_capacity, st.max_capacity, dict(st.suspended))
                raise
        except (ClientError, BotoCoreError) as exc:
            return ActResult(d, _error(d, exc))
        return ActResult(d, result_for(d, Outcome.SUCCESS, f"desired {r.desired_count} → 0"))

    def restore(self, d: Decision) -> ActResult:
        r, st = d.resource, d.resource.scalable_target
        action = RESTORE_ACTION[ECS_SERVICE]
        try:
            self.clients("ecs", r.region).update_service(
                cluster=r.cluster, service=r.name, desiredCount=r.desired_count or 0
            )
            if st:
                self._target(r, st.min_capacity, st.max_capacity, dict(st.suspended))
        except (ClientError, BotoCoreError) as exc:
            return ActResult(d, _error(d, exc, action))
        msg = f"desired 0 → {r.desired_count}" + (
            f", autoscaling min {st.min_capacity}/max {st.max_capacity}" if st else ""
        )
        return ActResult(d, _with_action(result_for(d, Outcome.SUCCESS, msg), action))


class EcsTaskStopper:
    def __init__(self, clients: ClientFactory, reason: str = "agent kill switch"):
        self.clients = clients
        self.reason = reason

    def stop(self, d: Decision) -> ActResult:
        r = d.resource
        try:
            self.clients("ecs", r.region).stop_task(cluster=r.cluster, task=r.resource_id, reason=self.reason[:1024])
        except (ClientError, BotoCoreError) as exc:
            return ActResult(d, _error(d, exc))
        return ActResult(d, result_for(d, Outcome.SUCCESS, "task stopped"))


class AsgScaler:
    def __init__(self, clients: ClientFactory):
        self.clients = clients

    def scale_to_zero(self, d: Decision) -> ActResult:
        r = d.resource
        asg = self.clients("autoscaling", r.region)
        ours = [p for p in ASG_KILL_PROCESSES if p not in r.suspended_processes]
        try:
            if ours:
                asg.suspend_processes(AutoScalingGroupName=r.resource_id, ScalingProcesses=ours)
            asg.update_auto_scaling_group(AutoScalingGroupName=r.resource_id, MinSize=0, DesiredCapacity=0)
        except (ClientError, BotoCoreError) as exc:
            return ActResult(d, _error(d, exc), suspended_by_us=ours)
        return ActResult(
            d,
            result_for(d, Outcome.SUCCESS, f"min {r.min_size}/desired {r.desired_count} → 0"),
            suspended_by_us=ours,
        )

    def restore(self, d: Decision, suspended_by_us: Sequence[str]) -> ActResult:
        r = d.resource
        action = RESTORE_ACTION[ASG]
        asg = self.clients("autoscaling", r.region)
        try:
            asg.update_auto_scaling_group(
                AutoScalingGroupName=r.resource_id,
                MinSize=r.min_size or 0,
                MaxSize=r.max_size or 0,
                DesiredCapacity=r.desired_count or 0,
            )
            if suspended_by_us:
                asg.resume_processes(AutoScalingGroupName=r.resource_id, ScalingProcesses=list(suspended_by_us))
        except (ClientError, BotoCoreError) as exc:
            return ActResult(d, _error(d, exc, action))
        msg = f"min {r.min_size}/max {r.max_size}/desired {r.desired_count}" + (
            f", resumed {', '.join(suspended_by_us)}" if suspended_by_us else ""
        )
        return ActResult(d, _with_action(result_for(d, Outcome.SUCCESS, msg), action))


def execute(
    decisions: Sequence[Decision],
    clients: ClientFactory,
    *,
    scp: ScpActions | None = None,
    reason: str = "agent kill switch",
    stats: BisectStats | None = None,
    on_results: Callable[[list[ActResult]], None] | None = None,
) -> list[ActResult]:
    """Carry out the decisions that change AWS, in `KILL_ORDER` (groups and services before instances, SCP last).

    `on_results` is called as soon as the results of one API batch are known (all instances of a StopInstances
    call, or one service/task/group/account), so the engine writes them to the ledger in one batch write and a
    Lambda that dies half-way leaves a ledger that says what was already done.
    """
    todo = [d for d in decisions if d.changes_aws]
    by_type: dict[str, list[Decision]] = defaultdict(list)
    for d in todo:
        by_type[d.resource.resource_type].append(d)
    out: list[ActResult] = []

    def emit_all(ars: list[ActResult]) -> None:
        out.extend(ars)
        if on_results is not None and ars:
            on_results(ars)

    def emit(ar: ActResult) -> None:
        emit_all([ar])

    for t in KILL_ORDER:
        ds = by_type.get(t, [])
        if not ds:
            continue
        if t == EC2_INSTANCE:
            emit_all(list(Ec2Stopper(clients, stats).stop(ds)))
        elif t == ECS_SERVICE:
            for d in ds:
                emit(EcsServiceScaler(clients).scale_to_zero(d))
        elif t == ECS_TASK:
            for d in ds:
                emit(EcsTaskStopper(clients, reason).stop(d))
        elif t == ASG:
            for d in ds:
                emit(AsgScaler(clients).scale_to_zero(d))
        elif t == ACCOUNT:
            for d in ds:
                if scp is None:
                    msg = "no Organizations access configured"
                    emit(ActResult(d, result_for(d, Outcome.ERROR, msg, "NoOrgAccess")))
                    continue
                try:
                    rr, ours = scp.attach(d.resource)
                except (ClientError, BotoCoreError) as exc:
                    emit(ActResult(d, _error(d, exc)))
                    continue
                emit(ActResult(d, rr, attached_by_us=ours))
    return out
