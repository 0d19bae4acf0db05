"""Data model of the kill engine: discovered resources, plan decisions, kill reports.

Everything here is plain data (no AWS calls), JSON-serialisable through `to_dict`, so that the ledger can store the
plan and the prior state of every resource, and `restore`/`approve` can read them back later.

A sandbox account that gets a deny SCP is just another resource (`organizations:account`, region `global`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from killswitch import tags as T
from killswitch.results import Outcome, ResourceResult, Summary
from killswitch.states import AgentState, ReportStatus  # noqa: F401 (AgentState: imported from here by the engine)

# Resource types (the Resource Groups Tagging API spelling where there is one).
EC2_INSTANCE = "ec2:instance"
ECS_SERVICE = "ecs:service"
ECS_TASK = "ecs:task"
ASG = "autoscaling:group"
ACCOUNT = "organizations:account"
IAM_ROLE = "iam:role"
IAM_USER = "iam:user"
LAMBDA_FUNCTION = "lambda:function"
GLOBAL_REGION = "global"
EVENT_LIST_LIMIT = 100  # entries per list in a result event (failures, needs_approval)


class Act(StrEnum):
    """What the plan does to one resource. Everything but SKIP and NEEDS_APPROVAL changes AWS."""

    ATTACH_SCP = "attach_scp"
    SCALE_TO_ZERO = "scale_to_zero"  # ECS service or Auto Scaling group
    STOP_TASK = "stop_task"
    STOP = "stop"  # EC2 instance, RDS instance/cluster, SageMaker notebook
    DENY = "deny"  # IAM role/user: the deny policy attached
    THROTTLE = "throttle"  # Lambda function: reserved concurrency 0
    DISABLE = "disable"  # Batch job queue
    DELETE = "delete"  # SageMaker endpoint, after approval (restore re-creates it from its endpoint config)
    SKIP = "skip"
    NEEDS_APPROVAL = "needs_approval"


class KillStatus(StrEnum):
    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    DONE = "done"
    PARTIAL = "partial"
    RESTORED = "restored"


@dataclass(frozen=True)
class ScalableTarget:
    """Application Auto Scaling target of an ECS service (what the kill changes and restore puts back)."""

    min_capacity: int
    max_capacity: int
    suspended: Mapping[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"min_capacity": self.min_capacity, "max_capacity": self.max_capacity, "suspended": dict(self.suspended)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScalableTarget:
        return cls(int(d["min_capacity"]), int(d["max_capacity"]), {k: bool(v) for k, v in d["suspended"].items()})


@dataclass(frozen=True)
class Resource:
    """One discovered resource with the state the plan needs and restore puts back."""

    resource_type: str
    resource_id: str  # instance id | service ARN | task ARN | ASG name | account id
    region: str
    tags: Mapping[str, str] = field(default_factory=dict)
    state: str = ""  # running/stopped/... | ACTIVE | RUNNING/STOPPED | InService | account
    name: str = ""
    asg_name: str | None = None  # EC2: `aws:autoscaling:groupName`
    cluster: str | None = None  # ECS
    scheduling_strategy: str | None = None  # ECS service: REPLICA | DAEMON
    task_group: str | None = None  # ECS task: `service:<name>` or `family:<name>`
    desired_count: int | None = None  # ECS service desiredCount, ASG DesiredCapacity
    min_size: int | None = None  # ASG
    max_size: int | None = None  # ASG
    suspended_processes: tuple[str, ...] = ()  # ASG
    scalable_target: ScalableTarget | None = None  # ECS service
    note: str = ""  # free text (e.g. why an account is a sandbox target)
    # Kind-specific prior state (JSON values), e.g. a Lambda function's reserved concurrency or an IAM
    # principal's attached deny policy: what restore puts back for the kinds added after the fields above.
    extra: Mapping[str, Any] = field(default_factory=dict)
    account: str = ""  # hub kill: the organization account it lives in ("" = the kill Lambda's own account)

    @property
    def key(self) -> tuple[str, str]:
        return (scope_of(self.account, self.region), self.resource_id)

    @property
    def label(self) -> str:
        return self.name or self.resource_id

    def with_tags(self, tags: Mapping[str, str]) -> Resource:
        return replace(self, tags=dict(tags))

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "region": self.region,
            "tags": dict(self.tags),
            "state": self.state,
            "name": self.name,
            "asg_name": self.asg_name,
            "cluster": self.cluster,
            "scheduling_strategy": self.scheduling_strategy,
            "task_group": self.task_group,
            "desired_count": self.desired_count,
            "min_size": self.min_size,
            "max_size": self.max_size,
            "suspended_processes": list(self.suspended_processes),
            "scalable_target": self.scalable_target.to_dict() if self.scalable_target else None,
            "note": self.note,
            "extra": dict(self.extra),
            **({"account": self.account} if self.account else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Resource:
        st = d.get("scalable_target")
        return cls(
            resource_type=d["resource_type"],
            resource_id=d["resource_id"],
            region=d["region"],
            tags=dict(d.get("tags") or {}),
            state=d.get("state") or "",
            name=d.get("name") or "",
            asg_name=d.get("asg_name"),
            cluster=d.get("cluster"),
            scheduling_strategy=d.get("scheduling_strategy"),
            task_group=d.get("task_group"),
            desired_count=_opt_int(d.get("desired_count")),
            min_size=_opt_int(d.get("min_size")),
            max_size=_opt_int(d.get("max_size")),
            suspended_processes=tuple(d.get("suspended_processes") or ()),
            scalable_target=ScalableTarget.from_dict(st) if st else None,
            note=d.get("note") or "",
            extra=dict(d.get("extra") or {}),
            account=d.get("account") or "",
        )


def scope_of(account: str, region: str) -> str:
    """First half of a resource key: the region, prefixed by the account in a hub kill (`<account>/<region>`), so
    the same id in two accounts (or regions) stays two resources in the plan, the ledger and restore."""
    return f"{account}/{region}" if account else region


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


@dataclass(frozen=True)
class Decision:
    resource: Resource
    act: Act
    reason: str
    intended: Act | None = None  # for NEEDS_APPROVAL: what approval would do

    @property
    def changes_aws(self) -> bool:
        return self.act not in (Act.SKIP, Act.NEEDS_APPROVAL)

    @property
    def actionable(self) -> bool:
        """Counts against the blast-radius limit: acted on now or after approval."""
        return self.act is not Act.SKIP

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource": self.resource.to_dict(),
            "act": self.act.value,
            "reason": self.reason,
            "intended": self.intended.value if self.intended else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decision:
        return cls(
            Resource.from_dict(d["resource"]),
            Act(d["act"]),
            d["reason"],
            Act(d["intended"]) if d.get("intended") else None,
        )


@dataclass(frozen=True)
class Plan:
    agent: str
    run_id: str | None
    decisions: tuple[Decision, ...]
    limit: int
    refused: str | None = None  # blast-radius refusal: nothing is done

    def of(self, act: Act) -> list[Decision]:
        return [d for d in self.decisions if d.act is act]

    @property
    def to_act(self) -> list[Decision]:
        return [d for d in self.decisions if d.changes_aws]

    @property
    def needs_approval(self) -> list[Decision]:
        return self.of(Act.NEEDS_APPROVAL)

    @property
    def actionable_count(self) -> int:
        return sum(1 for d in self.decisions if d.actionable)

    @property
    def tag_variants(self) -> list[Decision]:
        """Resources whose `agent-name` differs from the agent only by case or whitespace (left alone, reported)."""
        return [d for d in self.decisions if T.is_name_variant(d.resource.tags.get(T.AGENT_NAME), self.agent)]

    def tag_variant_dicts(self) -> list[dict[str, Any]]:
        return [
            {
                "region": d.resource.region,
                "resource_id": d.resource.resource_id,
                T.AGENT_NAME: d.resource.tags.get(T.AGENT_NAME),
            }
            for d in self.tag_variants
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "run_id": self.run_id,
            "limit": self.limit,
            "refused": self.refused,
            "decisions": [d.to_dict() for d in self.decisions],
            "tag_variants": self.tag_variant_dicts(),
        }

    def summary(self) -> dict[str, Any]:
        """Compact form for the kill record (the per-resource items hold the full prior state)."""
        return {
            "agent": self.agent,
            "run_id": self.run_id,
            "limit": self.limit,
            "refused": self.refused,
            "counts": {a.value: len(self.of(a)) for a in Act if self.of(a)},
            "tag_variants": self.tag_variant_dicts(),  # kept by `killswitch status`
            "decisions": [
                [d.act.value, d.resource.resource_type, d.resource.region, d.resource.resource_id, d.reason]
                + ([d.resource.account] if d.resource.account else [])
                for d in self.decisions
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        return cls(
            agent=d["agent"],
            run_id=d.get("run_id"),
            decisions=tuple(Decision.from_dict(x) for x in d["decisions"]),
            limit=int(d["limit"]),
            refused=d.get("refused"),
        )


class Operation(StrEnum):
    NONE = "none"  # below the warn threshold
    WARN = "warn"
    KILL = "kill"
    RESTORE = "restore"
    APPROVE = "approve"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    APPROVAL_REQUESTED = "approval_requested"  # a guard paused a run: forwarded to ops (`killswitch approve-run`)


@dataclass
class KillReport:
    """What one alert / command did. Becomes the JSON result event, the CLI output and the handler's return."""

    operation: Operation
    agent: str | None
    kill_id: str | None = None
    run_id: str | None = None
    reason: str = ""
    dry_run: bool = False
    status: ReportStatus = ReportStatus.NONE
    plan: Plan | None = None
    summary: Summary = field(default_factory=Summary)
    refused: str | None = None
    message: str = ""
    level: str = ""
    duration_ms: float = 0.0
    transient_failure: bool = False
    verification: str = ""  # verified | not_verified (re-described after acting) | "" (nothing acted on)
    still_running: list[dict[str, str]] = field(default_factory=list)
    detail: dict[str, Any] | None = None  # operation-specific fields (approval_requested: run, tool, command)

    @property
    def needs_approval(self) -> list[str]:
        return [r.resource_id for r in self.summary.results if r.outcome is Outcome.NEEDS_APPROVAL]

    @property
    def stopped(self) -> int:
        return sum(1 for r in self.summary.results if r.outcome is Outcome.SUCCESS and r.action in _STOPPING_ACTIONS)

    def exit_code(self) -> int:
        if self.refused or self.operation is Operation.REJECTED:
            return 1
        return self.summary.exit_code()

    def to_event(self) -> dict[str, Any]:
        extra = {} if self.detail is None else {"detail": self.detail}
        return extra | {
            "type": "killswitch.result",
            "operation": self.operation.value,
            "level": self.level or self.operation.value,
            "agent": self.agent,
            "kill_id": self.kill_id,
            "run_id": self.run_id,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "dry_run": self.dry_run,
            "refused": self.refused,
            "counts": self.summary.counts,
            # SNS messages are limited to 256 KB: the event lists the first failures and approvals, with totals.
            "failures": [
                {
                    "resource_id": r.resource_id,
                    "region": r.region,
                    "code": r.code,
                    "message": r.message[:300],
                    **({"account": r.account} if r.account else {}),
                }
                for r in self.summary.failures[:EVENT_LIST_LIMIT]
            ],
            "failures_total": len(self.summary.failures),
            "needs_approval": self.needs_approval[:EVENT_LIST_LIMIT],
            "needs_approval_total": len(self.needs_approval),
            # agent-name case/whitespace variants: left alone, ops fix the tag (or it was an escape attempt).
            "tag_variants": (self.plan.to_dict()["tag_variants"][:EVENT_LIST_LIMIT] if self.plan else []),
            "duration_ms": round(self.duration_ms, 1),
            "verification": self.verification,
            "still_running": self.still_running[:EVENT_LIST_LIMIT],
        }

    def to_dict(self) -> dict[str, Any]:
        d = self.to_event()
        d["plan"] = self.plan.to_dict() if self.plan else None
        d["results"] = [r.to_dict() for r in self.summary.results]
        return d


_STOPPING_ACTIONS = {a.value for a in Act if a not in (Act.SKIP, Act.NEEDS_APPROVAL)}


def result_for(decision: Decision, outcome: Outcome, message: str = "", code: str | None = None) -> ResourceResult:
    """The result of one decision (a skipped resource is `no_action` with the plan's reason)."""
    r = decision.resource
    return ResourceResult(
        resource_id=r.resource_id,
        resource_type=r.resource_type,
        region=r.region,
        action=(decision.intended or decision.act).value,
        outcome=outcome,
        code=code,
        message=message,
        account=r.account,
    )
