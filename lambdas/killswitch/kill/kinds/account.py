"""Sandbox accounts: the deny SCP attached through Organizations (`killswitch.kill.scp`); only an SCP this kill
attached is detached on restore. Targets come from the config and the organization's tags (the engine asks
`ScpActions.targets`), not from a regional scan; the Organizations IAM statements depend on where the stack runs and
stay in the CDK construct."""

from __future__ import annotations

from typing import Any

from killswitch.config import Action
from killswitch.kill.common import ActResult
from killswitch.kill.kinds.base import ActContext, Kind, PlanRules
from killswitch.kill.model import ACCOUNT, Act, Decision, Resource, result_for
from killswitch.results import Outcome, ResourceResult


class SandboxAccounts(Kind):
    resource_type = ACCOUNT
    config_action = Action.APPLY_SCP
    kill_act = Act.ATTACH_SCP
    restore_action = "detach_scp"
    discovered_by_engine = True
    tag_checked = False  # an account is the agent's through the config or its Organizations tag, not a tag here

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        return None

    def act_reason(self, r: Resource) -> str:
        return r.note or "sandbox account of the agent: deny SCP"

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        if ctx.scp is None:
            return ActResult(d, result_for(d, Outcome.ERROR, "no Organizations access configured", "NoOrgAccess"))
        rr, ours = ctx.scp.attach(d.resource)
        return ActResult(d, rr, attached_by_us=ours)

    def restore(self, entries: Any, ctx: ActContext) -> list[ResourceResult]:
        from killswitch.kill.kinds.base import restore_decision

        out = []
        for e in entries:
            d = restore_decision(e)
            if ctx.scp is None:
                r = result_for(d, Outcome.ERROR, "no Organizations access configured", "NoOrgAccess")
                out.append(
                    ResourceResult(
                        r.resource_id, r.resource_type, r.region, self.restore_action, r.outcome, r.code, r.message
                    )
                )
                continue
            try:
                out.append(ctx.scp.detach(e.resource))
            except Exception as exc:  # Organizations errors of one account never block the others
                from killswitch.aws import error_code

                out.append(
                    ResourceResult(
                        e.resource.resource_id,
                        e.resource.resource_type,
                        e.resource.region,
                        self.restore_action,
                        Outcome.ERROR,
                        error_code(exc),
                        str(exc),
                    )
                )
        return out

    def not_restorable(self, entry: Any) -> str | None:
        return None if entry.attached_by_us else "SCP was attached before the kill: left attached"

    def restore_text(self, entry: Any) -> str:
        return "detach deny SCP" if entry.attached_by_us else "nothing (SCP was attached before the kill)"
