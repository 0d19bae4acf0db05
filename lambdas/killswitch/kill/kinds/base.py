"""What a resource kind is: discovery, plan rule, act, restore, restore text, verify and the IAM it needs.

One subclass per kind (`killswitch.kill.kinds.<kind>`), registered in `killswitch.kill.kinds.REGISTRY`. The engine,
`status`, the CLI, the watch rules and the kill Lambda's IAM policy are all built from the registry, so adding a
kind is one module plus its tests.

Contract of a kind:
- `discover(scan)` returns the resources of the agent in one region (`scan.arns` holds what the shared Resource
  Groups Tagging API pages found for the kind's `tagging_type`; kinds the Tagging API cannot list read their own
  service, always with a server-side tag filter where the service has one). Never mutates AWS.
- `state_skip(r, rules)` is the pure plan rule: a reason to skip the resource in its current state, or None;
  `approval_reason(r)`: why the kind never acts on it without approval (not restorable, deletes it, or a Batch job
  would lose its work), or None.
- `act(decisions, ctx)` changes AWS for the decisions of this kind and returns one `ActResult` per decision; an
  AWS error of one resource becomes that resource's error result with the AWS error code, never an exception.
- `restore(entries, ctx)` puts back the recorded prior state; `not_restorable(entry)` says why not, when not.
- `still_running(resources, ctx)` re-reads what was acted on (verify after act): key → what is still running.
- `grants()` are the IAM statements the kill Lambda needs for the kind (as plain data: the CDK construct turns them
  into `iam.PolicyStatement`s; every write carries the `agent-name` tag condition where the service supports it).
- `watch_events` are the CloudTrail management events (source, eventName) that create or restart the kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from killswitch import tags as T
from killswitch.config import Action
from killswitch.kill.common import ActResult, AwsError, BisectStats, ClientFactory, error_result, success
from killswitch.kill.model import Act, Decision, Resource
from killswitch.results import ResourceResult

TAG_PRESENT: Mapping[str, Any] = {"Null": {f"aws:ResourceTag/{T.AGENT_NAME}": "false"}}


def ids_by_region(resources: Sequence[Resource]) -> dict[str, list[str]]:
    """Resource ids grouped by region, in order (verify re-reads each region's resources in batched calls)."""
    out: dict[str, list[str]] = {}
    for r in resources:
        out.setdefault(r.region, []).append(r.resource_id)
    return out


@dataclass(frozen=True)
class IamGrant:
    """One statement of the kill Lambda's policy. Resource patterns use `{partition}` and `{account}`."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...] = ("*",)
    conditions: Mapping[str, Any] | None = None
    why: str = ""  # why the statement cannot be narrower (the cdk-nag acknowledgement of its wildcards)


@dataclass(frozen=True)
class PlanRules:
    """What the pure plan needs beyond the agent config: principals that must never be denied."""

    protected_principals: tuple[str, ...] = ()  # ARN patterns (`*` wildcards): own roles, break glass
    deny_policy_name: str = "killswitch-deny-agent"  # the kill switch's IAM deny policy (already attached = skip)


@dataclass
class RegionScan:
    """Discovery input for one region (or `global` for IAM): the shared Tagging API results and the clients."""

    agent: str
    region: str
    clients: ClientFactory
    tag_filters: list[dict[str, Any]]
    run_id: str | None = None
    arns: dict[str, list[str]] = field(default_factory=dict)  # tagging type → ARNs
    tagged: dict[str, dict[str, str]] = field(default_factory=dict)  # ARN → tags from the Tagging API page
    client_region: str = ""  # the region to call a global service in
    shared: dict[str, Any] = field(default_factory=dict)  # reads one kind's discovery shares with the next (Batch)
    # Resources tagged with a case/whitespace variant of the agent's name (reported, never acted on); None: not
    # searched (a run-scoped kill).
    variants: list[Resource] | None = None

    def arns_of(self, tagging_type: str | None) -> list[str]:
        return sorted(set(self.arns.get(tagging_type or "", [])))


@dataclass
class ActContext:
    clients: ClientFactory
    prefix: str = "killswitch"
    reason: str = "agent kill switch"
    stats: BisectStats = field(default_factory=BisectStats)
    scp: Any = None  # `ScpActions` for the sandbox-account kind
    home_region: str = "us-east-1"  # where global services (IAM) are called


class Kind:
    resource_type: ClassVar[str]
    config_action: ClassVar[Action]
    kill_act: ClassVar[Act]
    restore_action: ClassVar[str]
    tagging_type: ClassVar[str | None] = None  # Resource Groups Tagging API ResourceTypeFilter, if it lists the kind
    # The kind's own describe call filters on the tag server-side with live state and as many results per page as
    # the Tagging API: discovery does not list the kind through the shared Tagging API pages (EC2).
    describe_by_tag: ClassVar[bool] = False
    is_global: ClassVar[bool] = False  # discovered once per kill, not per region (IAM)
    discovered_by_engine: ClassVar[bool] = False  # the SCP kind: targets come from Organizations, not a region
    batched: ClassVar[bool] = False  # `act` takes every decision of the kind at once (EC2: one call per region)
    tag_checked: ClassVar[bool] = True  # the plan checks agent-name/run-id/exempt tags on the resource itself
    watch_events: ClassVar[tuple[tuple[str, str], ...]] = ()

    # -- discovery -------------------------------------------------------------------------------------------
    def discover(self, scan: RegionScan) -> list[Resource]:
        return []

    # -- plan ------------------------------------------------------------------------------------------------
    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        return None

    def act_reason(self, r: Resource) -> str:
        return f"{r.state or 'running'}"

    def approval_reason(self, r: Resource) -> str | None:
        """Why this resource waits for `killswitch approve` even under automatic approval (a change restore cannot
        undo, like stopping a training job), or None."""
        return None

    # -- act / restore ---------------------------------------------------------------------------------------
    def act(self, decisions: Sequence[Decision], ctx: ActContext) -> list[ActResult]:
        out = []
        for d in decisions:
            try:
                out.append(self.act_one(d, ctx))
            except AwsError as exc:
                out.append(ActResult(d, error_result(d, exc)))
        return out

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        raise NotImplementedError

    def restore(self, entries: Sequence[Any], ctx: ActContext) -> list[ResourceResult]:
        out = []
        for e in entries:
            d = restore_decision(e)
            try:
                out.append(success(d, self.restore_one(e, ctx), self.restore_action))
            except AwsError as exc:
                out.append(error_result(d, exc, self.restore_action))
        return out

    def restore_one(self, entry: Any, ctx: ActContext) -> str:
        """Put one resource back; return what was done (raise the AWS error otherwise)."""
        raise NotImplementedError

    def not_restorable(self, entry: Any) -> str | None:
        """Why restore leaves this changed resource as it is (None: restore puts it back)."""
        return None

    def restore_text(self, entry: Any) -> str:
        return self.restore_action.replace("_", " ")

    # -- verify ----------------------------------------------------------------------------------------------
    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        """(region, id) → what is still running, for resources this kind acted on. Default: nothing to check."""
        return {}

    # -- IAM -------------------------------------------------------------------------------------------------
    def grants(self) -> list[IamGrant]:
        return []


def restore_decision(e: Any) -> Decision:
    """The decision a ledger entry recorded (for results named after the resource)."""
    return Decision(e.resource, Act(e.act) if e.act in Act.__members__.values() else Act.SKIP, e.reason)
