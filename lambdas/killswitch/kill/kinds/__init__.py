"""The registry of resource kinds a kill reaches, in kill order.

Kill order: first what denies the agent new capacity and what would relaunch compute (IAM deny, groups, services),
then tasks, instances and the other compute, the sandbox SCP last (our own restore must not be blocked by it).
Restore runs in the reverse order. Adding a kind: one module with a `Kind` subclass, one line here, its tests.
"""

from __future__ import annotations

from collections.abc import Iterable

from killswitch.config import Action
from killswitch.kill.kinds.account import SandboxAccounts
from killswitch.kill.kinds.asg import AutoScalingGroups
from killswitch.kill.kinds.awslambda import LambdaFunctions
from killswitch.kill.kinds.base import ActContext, IamGrant, Kind, PlanRules, RegionScan
from killswitch.kill.kinds.batch import BatchComputeEnvironments, BatchJobQueues, BatchJobs
from killswitch.kill.kinds.ec2 import Ec2Instances
from killswitch.kill.kinds.ecs import EcsServices, EcsTasks
from killswitch.kill.kinds.eks import EksNodegroups
from killswitch.kill.kinds.iam import IamRoles, IamUsers
from killswitch.kill.kinds.rds import RdsClusters, RdsInstances
from killswitch.kill.kinds.sagemaker import (
    SageMakerEndpoints,
    SageMakerNotebooks,
    SageMakerProcessingJobs,
    SageMakerTrainingJobs,
)

REGISTRY: tuple[Kind, ...] = (
    IamRoles(),
    IamUsers(),
    BatchJobQueues(),  # no new Batch jobs first
    AutoScalingGroups(),
    EksNodegroups(),
    EcsServices(),
    EcsTasks(),
    BatchJobs(),
    BatchComputeEnvironments(),
    Ec2Instances(),
    LambdaFunctions(),
    RdsClusters(),
    RdsInstances(),
    SageMakerNotebooks(),
    SageMakerTrainingJobs(),
    SageMakerProcessingJobs(),
    SageMakerEndpoints(),
    SandboxAccounts(),
)
KINDS: dict[str, Kind] = {k.resource_type: k for k in REGISTRY}
KILL_ORDER: tuple[str, ...] = tuple(k.resource_type for k in REGISTRY)
ORDER_INDEX: dict[str, int] = {t: i for i, t in enumerate(KILL_ORDER)}


def kind_of(resource_type: str) -> Kind | None:
    return KINDS.get(resource_type)


def kinds_for(actions: Iterable[Action] | None = None) -> list[Kind]:
    """Kinds enabled by a config `actions` list (all kinds when None)."""
    if actions is None:
        return list(REGISTRY)
    wanted = set(actions)
    return [k for k in REGISTRY if k.config_action in wanted]


def discovery_kinds(actions: Iterable[Action]) -> list[Kind]:
    """Every regional kind (a disabled one is still reported as "not enabled"); global kinds (IAM: one tag read per
    principal of the account) only when the agent's actions enable them."""
    enabled = set(actions)
    return [k for k in REGISTRY if not k.is_global or k.config_action in enabled]


def tagging_types(kinds: Iterable[Kind] | None = None) -> list[str]:
    """Resource Groups Tagging API ResourceTypeFilters shared by the kinds' discovery (one page walk per region)."""
    return sorted({k.tagging_type for k in (REGISTRY if kinds is None else kinds) if k.tagging_type})


def restore_action(resource_type: str) -> str:
    k = KINDS.get(resource_type)
    return k.restore_action if k else "none"


BASE_GRANTS = (IamGrant("Discover", ("tag:GetResources",)),)


def iam_grants() -> list[IamGrant]:
    """Every statement the kill Lambda needs for the registered kinds; statements with the same Sid are merged (their
    conditions must agree), actions and resources keep their first-seen order."""
    merged: dict[str, IamGrant] = {}
    for g in [*BASE_GRANTS, *(g for k in REGISTRY for g in k.grants())]:
        prev = merged.get(g.sid)
        if prev is None:
            merged[g.sid] = g
            continue
        if dict(prev.conditions or {}) != dict(g.conditions or {}):
            raise ValueError(f"IAM statement {g.sid}: kinds disagree on its condition")
        merged[g.sid] = IamGrant(
            g.sid,
            tuple(dict.fromkeys([*prev.actions, *g.actions])),
            tuple(dict.fromkeys([*prev.resources, *g.resources])),
            prev.conditions,
            prev.why or g.why,
        )
    return list(merged.values())


def watch_events() -> dict[str, list[str]]:
    """CloudTrail event source → eventNames that create or restart compute of a registered kind."""
    out: dict[str, list[str]] = {}
    for k in REGISTRY:
        for source, name in k.watch_events:
            out.setdefault(source, [])
            if name not in out[source]:
                out[source].append(name)
    return out


__all__ = [
    "KILL_ORDER",
    "KINDS",
    "REGISTRY",
    "ActContext",
    "IamGrant",
    "Kind",
    "PlanRules",
    "RegionScan",
    "iam_grants",
    "kind_of",
    "kinds_for",
    "restore_action",
    "tagging_types",
    "watch_events",
]
