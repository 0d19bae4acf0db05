"""Lambda functions tagged `agent-name`: reserved concurrency 0 (`stop_lambda`), which throttles every invocation.

Found through the shared Tagging API pages (the tags come with them); the prior setting is read with
`GetFunctionConcurrency` (a value, or none). Restore puts back exactly that: `PutFunctionConcurrency` with the
value, or `DeleteFunctionConcurrency` when the function had none (back to the unreserved pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from killswitch.config import Action
from killswitch.kill.common import ActResult, success
from killswitch.kill.kinds.base import TAG_PRESENT, ActContext, IamGrant, Kind, PlanRules, RegionScan
from killswitch.kill.model import LAMBDA_FUNCTION, Act, Decision, Resource

FUNCTIONS = "arn:{partition}:lambda:*:{account}:function:*"
PRIOR = "reserved_concurrency"


def reserved(client: Any, function: str) -> int | None:
    value = client.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
    return None if value is None else int(value)


class LambdaFunctions(Kind):
    resource_type = LAMBDA_FUNCTION
    config_action = Action.STOP_LAMBDA
    kill_act = Act.THROTTLE
    restore_action = "restore_concurrency"
    tagging_type = "lambda:function"
    watch_events = (
        ("lambda.amazonaws.com", "CreateFunction20150331"),
        ("lambda.amazonaws.com", "PutFunctionConcurrency20171031"),
        ("lambda.amazonaws.com", "DeleteFunctionConcurrency20171031"),
    )

    def discover(self, scan: RegionScan) -> list[Resource]:
        client = scan.clients("lambda", scan.region)
        out = []
        for arn in scan.arns_of(self.tagging_type):
            out.append(
                Resource(
                    resource_type=LAMBDA_FUNCTION,
                    resource_id=arn,
                    region=scan.region,
                    tags=scan.tagged.get(arn, {}),
                    state="active",
                    name=arn.rsplit(":", 1)[-1],
                    extra={PRIOR: reserved(client, arn)},
                )
            )
        return out

    def state_skip(self, r: Resource, rules: PlanRules) -> str | None:
        return "reserved concurrency already 0" if r.extra.get(PRIOR) == 0 else None

    def act_reason(self, r: Resource) -> str:
        prior = r.extra.get(PRIOR)
        return f"reserved concurrency {'unreserved' if prior is None else prior} → 0"

    def act_one(self, d: Decision, ctx: ActContext) -> ActResult:
        r = d.resource
        ctx.clients("lambda", r.region).put_function_concurrency(
            FunctionName=r.resource_id, ReservedConcurrentExecutions=0
        )
        return ActResult(d, success(d, "reserved concurrency 0: invocations throttled"))

    def restore_one(self, entry: Any, ctx: ActContext) -> str:
        r = entry.resource
        client = ctx.clients("lambda", r.region)
        prior = r.extra.get(PRIOR)
        if prior is None:
            client.delete_function_concurrency(FunctionName=r.resource_id)
            return "reserved concurrency removed (unreserved, as before)"
        client.put_function_concurrency(FunctionName=r.resource_id, ReservedConcurrentExecutions=int(prior))
        return f"reserved concurrency {prior}"

    def restore_text(self, entry: Any) -> str:
        prior = entry.resource.extra.get(PRIOR)
        return "remove reserved concurrency" if prior is None else f"reserved concurrency → {prior}"

    def still_running(self, resources: Sequence[Resource], ctx: ActContext) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        for r in resources:
            value = reserved(ctx.clients("lambda", r.region), r.resource_id)
            if value != 0:
                out[r.key] = f"reserved concurrency {value}"
        return out

    def grants(self) -> list[IamGrant]:
        return [
            IamGrant("Discover", ("lambda:GetFunctionConcurrency",)),
            IamGrant(
                "ThrottleTaggedFunctions",
                ("lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency"),
                (FUNCTIONS,),
                TAG_PRESENT,
                "Agent functions run in every configured region and have unknown names; every write is conditioned "
                "on the agent-name resource tag being present (Null: false)",
            ),
        ]
