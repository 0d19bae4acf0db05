"""IAM roles and users tagged `agent-name`: the deny policy attached (`deny_iam`).

The deny policy is the managed policy `<prefix>-deny-agent` in the principal's account, created by the workload
stack from `iam_policies/deny-agent.json` (ops may edit it; `killswitch validate` checks it). The default denies
every action: Bedrock/LLM calls, new resources and untagging stop at the principal's next request (IAM evaluates
policies per request, so sessions it already holds are denied too). Restore detaches exactly what the kill
attached. Never touched: the kill switch's own roles (`<prefix>-*`), break-glass roles, service-linked roles, a
principal without the tag, a principal that already carries the deny policy (not ours to detach).

IAM is global and the Tagging API does not list IAM principals: `ListRoles`/`ListUsers` (paginated) then one
`List*Tags` per principal outside the service-linked path, once per kill (not per region).
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from killswitch import tags as T
from killswitch.arns import parse_arn
from killswitch.config import Action
from killswitch.kill.common import ActResult, success
from killswitch.kill.kinds.base import TAG_PRESENT, ActContext, IamGrant, Kind, PlanRules, RegionScan
from killswitch.kill.model import GLOBAL_REGION, IAM_ROLE, IAM_USER, Act, Decision, Resource

DENY_POLICY_SUFFIX = "deny-agent"
SERVICE_LINKED_PATH = "/aws-service-role/"
DENY_POLICY_PATTERN = "arn:{partition}:iam::{account}:policy/{prefix}-" + DENY_POLICY_SUFFIX


def deny_policy_name(prefix: str) -> str:
    return f"{prefix}-{DENY_POLICY_SUFFIX}"


def deny_policy_arn(principal_arn: str, prefix: str) -> str:
    """The deny policy in the principal's own account (managed policies are per account)."""
    arn = parse_arn(principal_arn)
    if arn is None:
        raise ValueError(f"not an IAM principal ARN: {principal_arn!r}")
    return arn.sibling("iam", f"policy/{deny_policy_name(prefix)}")


class _Principals(Kind):
    config_action = Action.DENY_IAM
    kill_act = Act.DENY
    restore_action = "detach_deny"
    is_global = True
    noun: ClassVar[str]  # Role | User
    list_key: ClassVar[str]  # Roles | Users

    def discover(self, scan: RegionScan) -> list[Resource]:
        iam = scan.clients("iam", scan.client_region)
        out = []
        for page in iam.get_paginator(f"list_{self.noun.lower()}s").paginate():
            for p in page.get(self.list_key, []):
                if p.get("Path", "/").startswith(SERVICE_LINKED_PATH):
                    continue  # never denied: spare the tag reads
                name = p[f"{self.noun}Name"]
                tags: dict[str, str] = {}
                for tag_page in iam.get_paginator(f"list_{self.noun.lower()}_tags").paginate(
                    **{f"{self.noun}Name": name}
                ):
                    tags.update(T.tag_list_to_dict(tag_page.get("Tags")))
                if tags.get(T.AGENT_NAME) != scan.agent:
                    continue
                attached = [
                    a["PolicyArn"]
                    for ap in iam.get_paginator(f"list_attached_{self.noun.lower()}_policies").paginate(
                        **{f"{self.noun}Name": name}
                    )
                    for a in ap.get("AttachedPolicies", [])
                ]
                out.append(
                    Resource(
                        resource_type=self.resource_type,
                        resource_id=p["Arn"],
                        region=GLOBAL_REGION,
                        tags=tags,
                        state="active",
                        name=name,
                        extra={"path": p.get("Path", "/"), "attached_policies": attached},
                    )
                )
        return out

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        if str(r.extra.get("path", "/")).startswith(SERVICE_LINKED_PATH):
            return "service-linked role: never denied"
        for pattern in rules.protected_principals:
            if fnmatchcase(r.resource_id, pattern):
                return f"protected principal ({pattern}): the kill switch's own or a break-glass role"
        suffix = f":policy/{rules.deny_policy_name}"
        if any(str(a).endswith(suffix) for a in r.extra.get("attached_policies") or ()):
            return "deny policy already attached (not by this kill: left as it is)"
        return None

    def act_reason(self, r: Resource) -> str:
        return f"{self.noun.lower()} {r.name}: deny policy attached"

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r = d.resource
        iam = ctx.clients("iam", ctx.home_region)
        policy = deny_policy_arn(r.resource_id, ctx.prefix)
        getattr(iam, f"attach_{self.noun.lower()}_policy")(**{f"{self.noun}Name": r.name, "PolicyArn": policy})
        return ActResult(d, success(d, f"{deny_policy_name(ctx.prefix)} attached"), attached_by_us=True)

    def restore_one(self, entry: Any, ctx: ActContext) -> str:
        r = entry.resource
        iam = ctx.clients("iam", ctx.home_region)
        policy = deny_policy_arn(r.resource_id, ctx.prefix)
        getattr(iam, f"detach_{self.noun.lower()}_policy")(**{f"{self.noun}Name": r.name, "PolicyArn": policy})
        return f"{deny_policy_name(ctx.prefix)} detached"

    def not_restorable(self, entry: Any) -> str | None:
        return None if entry.attached_by_us else "deny policy was not attached by this kill: left attached"

    def restore_text(self, entry: Any) -> str:
        return "detach the deny policy" if entry.attached_by_us else "nothing (deny policy not attached by the kill)"

    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        iam = ctx.clients("iam", ctx.home_region)
        out: dict[tuple[str, str], str] = {}
        for r in resources:
            policy = deny_policy_arn(r.resource_id, ctx.prefix)
            pages = iam.get_paginator(f"list_attached_{self.noun.lower()}_policies").paginate(
                **{f"{self.noun}Name": r.name}
            )
            if not any(a["PolicyArn"] == policy for p in pages for a in p.get("AttachedPolicies", [])):
                out[r.key] = "deny policy not attached"
        return out

    def grants(self) -> list[IamGrant]:
        n = self.noun
        return [
            IamGrant("Discover", (f"iam:List{n}s", f"iam:List{n}Tags", f"iam:ListAttached{n}Policies")),
            IamGrant(
                "DenyTaggedPrincipals",
                (f"iam:Attach{n}Policy", f"iam:Detach{n}Policy"),
                (f"arn:{{partition}}:iam::{{account}}:{n.lower()}/*",),
                {**TAG_PRESENT, "ArnEquals": {"iam:PolicyARN": DENY_POLICY_PATTERN}},
                "Agent principals have unknown names; attach/detach is limited to principals carrying the agent-name "
                "tag and to the one deny policy of this kill switch (iam:PolicyARN)",
            ),
        ]


class IamRoles(_Principals):
    resource_type = IAM_ROLE
    noun = "Role"
    list_key = "Roles"


class IamUsers(_Principals):
    resource_type = IAM_USER
    noun = "User"
    list_key = "Users"
