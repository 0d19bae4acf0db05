"""The pure plan function: (agent config, discovered resources, scope) → one decision with a reason per resource.

No AWS calls, no clock, no ledger: everything it needs is passed in, so it is unit-tested as a table.

Rules, first match wins:
0. `agent-name` differs from the agent only by case or surrounding whitespace → skip, reported as a tag variant
1. tag mismatch (`agent-name` is not the agent, or a run-scoped kill and `agent-run-id` is not the run) → skip
2. `killswitch:exempt=true` → skip
3. already handled by an earlier, not yet restored kill → skip ("already handled by kill <id>")
4. the action is not enabled for the agent in the config → skip
5. nothing to do in its current state (instance stopped, service at 0, DAEMON service, Auto Scaling member,
   task that belongs to a service, ...) → skip
6. `killswitch:criticality=critical`, or the agent's `approval: manual` → needs_approval
7. otherwise → stop / scale_to_zero / stop_task / attach_scp
Then the blast-radius limit: more actionable resources (act + needs_approval) than the limit → the plan is refused
as a whole, unless `force`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from killswitch import tags as T
from killswitch.config import Action, AgentConfig, Approval
from killswitch.kill.model import (
    ACCOUNT,
    ACTION_FOR_TYPE,
    ASG,
    EC2_INSTANCE,
    ECS_SERVICE,
    ECS_TASK,
    KILL_ORDER,
    Act,
    Decision,
    Plan,
    Resource,
)

CONFIG_ACTION: dict[str, Action] = {
    EC2_INSTANCE: Action.STOP_EC2,
    ECS_SERVICE: Action.SCALE_ECS,
    ECS_TASK: Action.STOP_ECS_TASKS,
    ASG: Action.SCALE_ASG,
    ACCOUNT: Action.APPLY_SCP,
}
EC2_DONE_STATES = {"stopping", "stopped", "terminated", "shutting-down"}
TASK_DONE_STATES = {"STOPPED", "STOPPING", "DEPROVISIONING", "DELETED"}


def plan_kill(
    agent: AgentConfig,
    resources: Sequence[Resource],
    *,
    limit: int,
    run_id: str | None = None,
    force: bool = False,
    handled: Mapping[tuple[str, str], str] | None = None,
    approved: bool = False,
) -> Plan:
    """Decide what to do with every resource. `handled` maps (region, id) → kill id of an active earlier kill.

    `approved=True` (the `approve` command) lifts the approval rules (critical tag, manual approval).
    """
    handled = handled or {}
    decisions = [_decide(agent, r, run_id=run_id, handled=handled, approved=approved) for r in resources]
    order = {t: i for i, t in enumerate(KILL_ORDER)}
    decisions.sort(key=lambda d: (order.get(d.resource.resource_type, 99), d.resource.region, d.resource.resource_id))
    plan = Plan(agent=agent.name, run_id=run_id, decisions=tuple(decisions), limit=limit)
    n = plan.actionable_count
    if n > limit and not force:
        return Plan(
            agent=agent.name,
            run_id=run_id,
            decisions=plan.decisions,
            limit=limit,
            refused=f"{n} actionable resources exceed the blast-radius limit of {limit}; nothing was done "
            "(re-run with --force to proceed)",
        )
    return plan


def _decide(
    agent: AgentConfig,
    r: Resource,
    *,
    run_id: str | None,
    handled: Mapping[tuple[str, str], str],
    approved: bool,
) -> Decision:
    def skip(reason: str) -> Decision:
        return Decision(r, Act.SKIP, reason)

    tag_agent = r.tags.get(T.AGENT_NAME)
    if r.resource_type != ACCOUNT and T.is_name_variant(tag_agent, agent.name):
        return skip(
            f"{T.AGENT_NAME} variant: {tag_agent!r} differs from {agent.name!r} only by case or whitespace (an escape "
            "or a typo, invisible to the budget's tag filter too): not touched, fix the tag"
        )
    action = ACTION_FOR_TYPE.get(r.resource_type)
    if action is None:
        return skip(f"unsupported resource type {r.resource_type}")

    if r.resource_type == ACCOUNT:
        if run_id:
            return skip("run-scoped kill: an account-wide SCP is not applied")
    else:
        if tag_agent != agent.name:
            return skip(f"tag mismatch: {T.AGENT_NAME}={tag_agent!r}, not {agent.name!r}")
        if run_id and r.tags.get(T.AGENT_RUN_ID) != run_id:
            return skip(f"tag mismatch: {T.AGENT_RUN_ID}={r.tags.get(T.AGENT_RUN_ID)!r}, not {run_id!r}")
        if T.is_exempt(r.tags):
            return skip(f"{T.EXEMPT}=true")

    earlier = handled.get(r.key)
    if earlier:
        return skip(f"already handled by kill {earlier}")

    needed = CONFIG_ACTION[r.resource_type]
    if needed not in agent.actions:
        return skip(f"action {needed.value} is not enabled for agent {agent.name}")

    state_reason = _state_skip(r)
    if state_reason:
        return skip(state_reason)

    if not approved:
        if T.is_critical(r.tags):
            return Decision(r, Act.NEEDS_APPROVAL, f"{T.CRITICALITY}=critical: never stopped automatically", action)
        if agent.approval is Approval.MANUAL:
            return Decision(r, Act.NEEDS_APPROVAL, "agent approval is manual: waits for `killswitch approve`", action)

    return Decision(r, action, _act_reason(r, action))


def _state_skip(r: Resource) -> str | None:
    t = r.resource_type
    if t == EC2_INSTANCE:
        if r.state in EC2_DONE_STATES:
            return f"already {r.state}"
        if r.asg_name:
            return f"member of Auto Scaling group {r.asg_name}: handled through the group"
    elif t == ECS_SERVICE:
        if r.state and r.state != "ACTIVE":
            return f"service is {r.state}"
        if (r.scheduling_strategy or "").upper() == "DAEMON":
            return "DAEMON service: one task per container instance, stopped with its instances"
        if r.desired_count == 0:
            return "already scaled to zero"
    elif t == ECS_TASK:
        if r.state in TASK_DONE_STATES:
            return f"task already {r.state}"
        group = r.task_group or ""
        if group.startswith("service:"):
            return f"belongs to service {group.removeprefix('service:')}: handled through the service"
    elif t == ASG and r.desired_count == 0 and r.min_size == 0:
        return "already scaled to zero"
    return None


def _act_reason(r: Resource, action: Act) -> str:
    if action is Act.STOP:
        return f"instance {r.state or 'running'}"
    if action is Act.SCALE_TO_ZERO and r.resource_type == ECS_SERVICE:
        extra = " (autoscaling suspended, min 0)" if r.scalable_target else ""
        return f"desired {r.desired_count} → 0{extra}"
    if action is Act.SCALE_TO_ZERO:
        return f"min {r.min_size}/desired {r.desired_count} → 0, processes suspended"
    if action is Act.STOP_TASK:
        return f"standalone task {r.state or 'RUNNING'}"
    return r.note or "sandbox account of the agent: deny SCP"
