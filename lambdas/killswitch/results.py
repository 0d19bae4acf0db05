"""Result objects, not exceptions: every resource a kill/restore looks at ends with exactly one result."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    SUCCESS = "success"
    NO_ACTION = "no_action"
    NEEDS_APPROVAL = "needs_approval"
    ERROR = "error"


@dataclass(frozen=True)
class ResourceResult:
    resource_id: str  # ARN where the service has one, else the id (instance id, account id)
    resource_type: str  # ec2:instance | ecs:service | ecs:task | autoscaling:group | organizations:account
    region: str
    action: str  # stop | scale_to_zero | stop_task | attach_scp | start | restore_service | ...
    outcome: Outcome
    code: str | None = None  # AWS error code (or our own) when outcome is ERROR
    message: str = ""
    account: str = ""  # hub kill: the organization account of the resource ("" = the kill Lambda's own account)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outcome"] = self.outcome.value
        if not self.account:
            del d["account"]  # single-account output stays as it was
        return d


# CLI exit codes (docs/contracts.md): 0 done, 1 refused/invalid input, 2 partial failure, 3 AWS error.
EXIT_OK, EXIT_REFUSED, EXIT_PARTIAL, EXIT_AWS = 0, 1, 2, 3


@dataclass
class Summary:
    results: list[ResourceResult] = field(default_factory=list)

    def add(self, result: ResourceResult) -> None:
        self.results.append(result)

    def extend(self, results: list[ResourceResult]) -> None:
        self.results.extend(results)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r.outcome.value for r in self.results)
        return {o.value: c.get(o.value, 0) for o in Outcome}

    @property
    def failures(self) -> list[ResourceResult]:
        return [r for r in self.results if r.outcome is Outcome.ERROR]

    @property
    def ok(self) -> bool:
        return not self.failures

    def exit_code(self) -> int:
        if not self.failures:
            return EXIT_OK
        if len(self.failures) == len(self.results):
            return EXIT_AWS
        return EXIT_PARTIAL

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "failures": [{"resource_id": r.resource_id, "code": r.code, "message": r.message} for r in self.failures],
            "results": [r.to_dict() for r in self.results],
        }
