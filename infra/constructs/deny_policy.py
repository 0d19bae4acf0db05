"""`<prefix>-deny-agent`: the managed IAM policy a kill attaches to the agent's tagged roles and users (`deny_iam`).

The document is `iam_policies/deny-agent.json` (ops may edit it); it is validated at synth with the same checker as
`killswitch validate` (an error fails synth, naming file, line and column). The kill Lambda may attach exactly this
policy, and only to principals carrying the `agent-name` tag (`killswitch.kill.kinds.iam`).
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import aws_iam as iam
from constructs import Construct

from killswitch.kill.kinds.iam import deny_policy_name
from killswitch.scp.iam_deny import validate_deny_path

DENY_POLICY_FILE = Path(__file__).resolve().parents[2] / "iam_policies" / "deny-agent.json"


class DenyPolicyError(ValueError):
    pass


class AgentDenyPolicy(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, path: Path = DENY_POLICY_FILE) -> None:
        super().__init__(scope, construct_id)
        errors = [f for f in validate_deny_path(path) if f.severity == "error"]
        if errors:
            raise DenyPolicyError("\n".join(str(f) for f in errors))
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=deny_policy_name(prefix),
            description="Agent Kill Switch: attached to a killed agent's roles and users (explicit deny)",
            document=iam.PolicyDocument.from_json(json.loads(path.read_text(encoding="utf-8"))),
        )
