"""Adapter from the kill engine's `ScpActions` port to `killswitch.sandbox.org` (Organizations deny SCP).

A sandbox account is one more resource (`organizations:account`, region `global`): the plan decides `attach_scp`,
the engine records `attached_by_us`, and restore detaches only what this kill attached.
"""

from __future__ import annotations

from typing import Any

from killswitch.config import KillSwitchConfig
from killswitch.kill.model import ACCOUNT, GLOBAL_REGION, Resource
from killswitch.results import Outcome, ResourceResult
from killswitch.sandbox.org import (
    ScpTarget,
    attach_deny_scp,
    detach_deny_scp,
    find_policy_id,
    find_sandbox_targets,
    org_client,
)


class OrgScp:
    def __init__(
        self,
        config: KillSwitchConfig,
        policy_name: str,
        *,
        role_arn: str | None = None,
        org: Any = None,
        session: Any = None,
    ):
        self.config = config
        self.policy_name = policy_name
        self.role_arn = role_arn
        self._org = org
        self._session = session
        self._policy_id: str | None = None

    @property
    def org(self) -> Any:
        if self._org is None:
            self._org = org_client(self.role_arn, session=self._session)
        return self._org

    @property
    def management_account_id(self) -> str | None:
        return self.config.sandbox.management_account_id if self.config.sandbox else None

    def policy_id(self) -> str | None:
        if self._policy_id is None:
            self._policy_id = find_policy_id(self.org, self.policy_name)
        return self._policy_id

    def targets(self, agent: str) -> list[Resource]:
        cfg = self.config.agent(agent)
        return [
            Resource(ACCOUNT, t.account_id, GLOBAL_REGION, state="ACTIVE", name=t.account_id, note=t.reason)
            for t in find_sandbox_targets(self.org, cfg, self.management_account_id)
        ]

    def _missing(self, resource: Resource, action: str) -> ResourceResult:
        msg = f"no SCP named {self.policy_name!r} in the organization (deploy the management stack)"
        return ResourceResult(
            resource.resource_id, ACCOUNT, GLOBAL_REGION, action, Outcome.ERROR, "PolicyNotFound", msg
        )

    def attach(self, resource: Resource) -> tuple[ResourceResult, bool]:
        pid = self.policy_id()
        if pid is None:
            return self._missing(resource, "attach_scp"), False
        target = ScpTarget(resource.resource_id, resource.note or "sandbox account")
        return attach_deny_scp(self.org, pid, target, management_account_id=self.management_account_id)

    def detach(self, resource: Resource) -> ResourceResult:
        pid = self.policy_id()
        if pid is None:
            return self._missing(resource, "detach_scp")
        return detach_deny_scp(self.org, pid, resource.resource_id)
