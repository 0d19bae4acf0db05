"""ARN parsing in one place: `arn:partition:service:region:account:resource` (see docs/aws-behaviour.md).

Tolerant on purpose: callers get `None` for parts a malformed or partial ARN lacks instead of an exception, so a
bad value in the environment or in a tagging API answer never crashes a handler.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    @property
    def resource_type(self) -> str:
        """`instance` of `instance/i-1`, `service` of `service/cluster/name`, `` of a bare resource name."""
        kind, sep, _ = self.resource.partition("/")
        return kind if sep else ""

    @property
    def resource_path(self) -> list[str]:
        """The `/`-separated parts after the resource type: `[cluster, name]` of `service/cluster/name`."""
        _, sep, rest = self.resource.partition("/")
        return rest.split("/") if sep else [self.resource]

    def sibling(self, service: str, resource: str) -> str:
        """The ARN of another resource in the same partition, region and account."""
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


def parse_arn(value: object) -> Arn | None:
    """The parts of an ARN, or None when `value` is not one (not a string, fewer than six `:`-separated fields, or
    no resource)."""
    if not isinstance(value, str):
        return None
    parts = value.strip().split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[5]:
        return None
    return Arn(*parts[1:])


def region_of(value: str | None) -> str | None:
    """The region of an ARN (`us-east-1` of an SNS topic ARN); None for global ARNs and non-ARNs."""
    arn = parse_arn(value) if value else None
    return (arn.region or None) if arn else None


def account_of(value: str | None) -> str | None:
    """The account of an ARN (`123456789012` of a Lambda function ARN); None for non-ARNs and ARNs without one."""
    arn = parse_arn(value) if value else None
    return (arn.account or None) if arn else None


def ecs_short_name(value: str) -> str:
    """ECS service and task ARNs as `cluster/name` / `cluster/task-id` for tables; anything else unchanged."""
    arn = parse_arn(value)
    if arn is None or arn.service != "ecs" or arn.resource_type not in ("service", "task"):
        return value
    return "/".join(arn.resource_path)
