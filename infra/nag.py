"""cdk-nag 3.x acknowledgements, always placed on the construct that owns the finding, always with a reason."""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, Aws, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str, findings: Iterable[str] = ()) -> None:
    """Acknowledge `rule` (e.g. `AwsSolutions-IAM5`) on `scope` and its children.

    With `findings` (e.g. `Resource::*`, `Action::ecs:List*`) only those findings are acknowledged, so a new
    wildcard added later still fails synth."""
    ids = [f"{PACK}::{rule}[{f}]" for f in findings] or [f"{PACK}::{rule}"]
    Validations.of(scope).acknowledge(*(Acknowledgment(id=i, reason=reason) for i in ids))


def arn(pattern: str) -> str:
    """Fill an ARN pattern (`{partition}`, `{account}` placeholders) with this stack's pseudo parameters."""
    return pattern.format(partition=Aws.PARTITION, account=Aws.ACCOUNT_ID)


def resource_finding(pattern: str) -> str:
    """The IAM5 finding id cdk-nag reports for a wildcard ARN built by `arn(pattern)`."""
    return "Resource::" + pattern.format(partition="<AWS::Partition>", account="<AWS::AccountId>")
