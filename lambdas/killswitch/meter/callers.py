"""Who made a call: the caller's ARN from the invocation log → its IAM role or user → that principal's
`agent-name` tag. The tag on the principal is the authority (agents cannot change it: the kill switch's protect
policy denies tagging agent principals); `requestMetadata` is whatever the caller wrote, so it never picks the agent.

ARNs seen in the logs: `arn:aws:sts::<acct>:assumed-role/<role>/<session>`, `arn:aws:iam::<acct>:role/<path>/<role>`,
`arn:aws:iam::<acct>:user/<path>/<user>`. Other principals (root, federated users, another account's roles, which
this account's IAM cannot read) are unknown callers: counted and reported, never guessed.

Lookups are cached with a TTL (a retagged role is seen again after `ttl_seconds`); a principal that no longer
exists (`NoSuchEntity`) is cached as unknown too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from killswitch import aws
from killswitch.tags import AGENT_NAME


@dataclass(frozen=True)
class Principal:
    account_id: str
    kind: str  # "role" | "user"
    name: str


@dataclass(frozen=True)
class Attribution:
    agent: str | None
    reason: str  # why not attributed ("" when attributed): unknown_caller_kind, other_account, no_such_entity, ...


def principal_of(arn: str) -> Principal | None:
    """The IAM role or user behind a caller ARN, or None for any other kind of principal."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    service, account, resource = parts[2], parts[4], parts[5]
    if service == "sts" and resource.startswith("assumed-role/"):
        segments = resource.split("/")
        return Principal(account, "role", segments[1]) if len(segments) >= 2 and segments[1] else None
    if service == "iam" and resource.startswith(("role/", "user/")):
        kind, _, rest = resource.partition("/")
        name = rest.rsplit("/", 1)[-1]
        return Principal(account, kind, name) if name else None
    return None


class TagReader(Protocol):
    def agent_tag(self, principal: Principal) -> str | None:
        """The principal's `agent-name` tag; None when untagged. Raises LookupError when it does not exist."""
        ...


class IamTagReader:
    """`iam:ListRoleTags` / `iam:ListUserTags` (tags on the principal; paths are not needed for either call)."""

    def __init__(self, iam: Any):
        self.iam = iam

    def agent_tag(self, principal: Principal) -> str | None:
        try:
            if principal.kind == "role":
                pages = self.iam.get_paginator("list_role_tags").paginate(RoleName=principal.name)
            else:
                pages = self.iam.get_paginator("list_user_tags").paginate(UserName=principal.name)
            for page in pages:
                for tag in page.get("Tags", []):
                    if tag.get("Key") == AGENT_NAME:
                        return str(tag.get("Value"))
        except ClientError as exc:
            if aws.error_code(exc) == "NoSuchEntity":
                raise LookupError(f"{principal.kind} {principal.name} no longer exists") from exc
            raise
        return None


class CallerDirectory:
    """Caller ARN → agent, with a TTL cache. Only principals of `account_id` (the meter's account) are looked up."""

    def __init__(
        self,
        reader: TagReader,
        account_id: str | None,
        *,
        ttl_seconds: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.reader = reader
        self.account_id = account_id
        self.ttl = ttl_seconds
        self.clock = clock
        self._cache: dict[tuple[str, str, str], tuple[float, Attribution]] = {}
        self._by_arn: dict[str, tuple[float, Attribution]] = {}  # fast path: one dict hit per record
        self.lookups = 0

    def attribute(self, caller_arn: str) -> Attribution:
        hit = self._by_arn.get(caller_arn)
        if hit is not None and self.clock() - hit[0] < self.ttl:
            return hit[1]
        result = self._attribute(caller_arn)
        self._by_arn[caller_arn] = (self.clock(), result)
        return result

    def _attribute(self, caller_arn: str) -> Attribution:
        principal = principal_of(caller_arn)
        if principal is None:
            return Attribution(None, "unknown_caller_kind")
        if self.account_id and principal.account_id != self.account_id:
            return Attribution(None, "other_account")
        key = (principal.account_id, principal.kind, principal.name)
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        self.lookups += 1
        try:
            agent = self.reader.agent_tag(principal)
            result = Attribution(agent, "" if agent else "untagged_caller")
        except LookupError:
            result = Attribution(None, "no_such_entity")
        self._cache[key] = (now, result)
        return result
