"""The demo's identities and Lambda functions: the agent's IAM role and user get the deny policy, its Lambda
function is zeroed (reserved concurrency 0); restore detaches the policy and puts the concurrency back.

The deny policy is created as the workload stack creates it (`<prefix>-deny-agent`); other agents' principals and
functions are in the fleet to show they are never touched."""

from __future__ import annotations

from typing import Any

from killswitch.kill.kinds.iam import deny_policy_name
from killswitch.testing import sim
from killswitch.testing import sim_kinds as K

LAMBDA_REGION = "us-east-1"
AGENT_CONCURRENCY = 5  # the agent function's reserved concurrency before the kill (restore puts it back)


class DemoKinds:
    """IAM principals and Lambda functions of the demo fleet, with a label per snapshot key."""

    def __init__(self, clients: Any, prefix: str) -> None:
        self.c, self.prefix = clients, prefix
        self.principals: list[str] = []
        self.functions: list[tuple[str, str]] = []
        self.labels: dict[str, tuple[str, str]] = {}  # snapshot key → (agent, label)

    def build(self, agent: str, other: str | None) -> None:
        """The agent's role, user and function (concurrency 5); `other`'s role and function (never touched)."""
        K.deny_policy(self.c, self.prefix)
        principals = [(K.iam_role, f"{agent}-role", agent, "IAM role"), (K.iam_user, f"{agent}-ci", agent, "IAM user")]
        functions: list[tuple[str, str, int | None]] = [(f"{agent}-summarize", agent, AGENT_CONCURRENCY)]
        if other:
            principals.append((K.iam_role, f"{other}-role", other, "IAM role"))
            functions.append((f"{other}-fetch", other, None))
        for make, name, who, noun in principals:
            arn = make(self.c, name, sim.agent_tags(who))
            self.principals.append(arn)
            self.labels[f"iam/{arn}"] = (who, f"{noun} {name} (attached policies)")
        for fn, who, reserved in functions:
            K.lambda_function(self.c, LAMBDA_REGION, fn, sim.agent_tags(who), reserved=reserved)
            self.functions.append((LAMBDA_REGION, fn))
            self.labels[f"{LAMBDA_REGION}/{fn}"] = (who, f"Lambda {fn} (reserved concurrency)")

    def snapshot(self) -> dict[str, str]:
        """Snapshot key → shown state: the policies attached to each principal, each function's concurrency."""
        snap = K.kind_snapshot(self.c, self.principals, self.functions)
        out: dict[str, str] = {}
        for arn, policies in snap["principals"].items():
            names = [p.rsplit("/", 1)[-1] for p in policies]
            out[f"iam/{arn}"] = ", ".join(names) or "none"
        for key, reserved in snap["functions"].items():
            out[key] = "unreserved" if reserved is None else str(reserved)
        return out

    def summary(self, snap: dict[str, str]) -> str:
        """One line: which principals carry the deny policy and which functions are at 0."""
        policy = deny_policy_name(self.prefix)
        denied = [k.rsplit("/", 1)[-1] for k, v in snap.items() if k.startswith("iam/") and policy in v]
        zeroed = [k.rsplit("/", 1)[-1] for k, v in snap.items() if not k.startswith("iam/") and v == "0"]
        return (
            f"denied ({policy}): {', '.join(denied) or 'none'} · zeroed (concurrency 0): {', '.join(zeroed) or 'none'}"
        )
