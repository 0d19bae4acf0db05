"""Kill fan-out by kind: one kill of a mixed fleet with PER_KIND resources of every registered kind, on moto.

The fleet is built from the kind REGISTRY: every kind whose resource type has a moto builder in `BUILDERS` gets
PER_KIND resources of the agent; a kind without a builder is skipped and named in the notes (a kind added by the
registry shows up here as soon as its builder is added). Calls are attributed to the kind whose `discover`, `act`
or `still_running` made them; the shared Resource Groups Tagging API walk and the result event are counted apart.
The kill goes through `KillEngine` with the in-memory ledger (ledger writes are in the main fan-out rows).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from killswitch.config import KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.kinds import REGISTRY, Kind
from killswitch.testing import sim, sim_kinds

REGION = "us-east-1"
AGENT = "mixed-agent"
PER_KIND = 20
QUICK_PER_KIND = 3

# resource type → builder(clients, region, count, tags): `count` resources of the kind tagged `tags`.
Builder = Callable[[Clients, str, int, dict[str, str]], None]


def _instances(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    c("ec2", region).run_instances(
        ImageId=sim.AMI,
        MinCount=count,
        MaxCount=count,
        InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": sim.tag_list(tags)}],
    )


def _groups(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        sim.auto_scaling_group(c, region, f"{AGENT}-group-{i}", tags, min_size=1, max_size=2, desired=1)


def _services(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        sim.ecs_service(c, region, "agents", f"{AGENT}-svc-{i}", tags, desired=1, scaling=(1, 2) if i == 0 else None)


def _tasks(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for _ in range(count):
        sim.ecs_task(c, region, "agents", tags)


def _functions(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        sim_kinds.lambda_function(c, region, f"{AGENT}-fn-{i}", tags, reserved=2 if i % 2 else None)


def _roles(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        sim_kinds.iam_role(c, f"{AGENT}-role-{i}", tags)


def _users(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        sim_kinds.iam_user(c, f"{AGENT}-user-{i}", tags)


def _databases(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        c("rds", region).create_db_instance(
            DBInstanceIdentifier=f"{AGENT}-db-{i}",
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            AllocatedStorage=20,
            MasterUsername="admin",
            MasterUserPassword="password123",
            Tags=sim.tag_list(tags),
        )


def _clusters(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        c("rds", region).create_db_cluster(
            DBClusterIdentifier=f"{AGENT}-aurora-{i}",
            Engine="aurora-postgresql",
            MasterUsername="admin",
            MasterUserPassword="password123",
            Tags=sim.tag_list(tags),
        )


def _notebooks(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        sim_kinds.sagemaker_notebook(c, region, f"{AGENT}-nb-{i}", tags)


def _training_jobs(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        sim_kinds.training_job(c, region, f"{AGENT}-train-{i}", tags)  # InProgress: waits for approval


def _processing_jobs(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        sim_kinds.processing_job(c, region, f"{AGENT}-proc-{i}", tags)  # InProgress: waits for approval


def _endpoints(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        sim_kinds.sagemaker_endpoint(c, region, f"{AGENT}-ep-{i}", tags, count=1)  # waits for approval


def _nodegroups(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    sim_kinds.eks_cluster(c, region, "agents")  # an untagged shared cluster: only node groups are the agent's
    for i in range(count):
        sim_kinds.eks_nodegroup(c, region, "agents", f"{AGENT}-ng-{i}", tags, min=1, max=4, desired=2)


def _batch_queue(c: Clients, region: str, name: str, tags: dict[str, str]) -> None:
    """The job queue `name` on the shared UNMANAGED environment `agents` (both created on first use)."""
    batch = c("batch", region)
    if not batch.describe_compute_environments(computeEnvironments=["agents"])["computeEnvironments"]:
        sim_kinds.batch_compute_environment(c, region, "agents")
    if not batch.describe_job_queues(jobQueues=[name])["jobQueues"]:
        sim_kinds.batch_queue(c, region, "agents", name, tags)


def _job_queues(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        _batch_queue(c, region, f"{AGENT}-queue-{i}", tags)


def _batch_jobs(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    _batch_queue(c, region, f"{AGENT}-queue-0", tags)  # the queue builder's first queue (made here without it)
    for _ in range(count):
        sim_kinds.batch_job(c, region, f"{AGENT}-queue-0", "RUNNING")  # the agent's by its queue: needs approval


def _compute_environments(c: Clients, region: str, count: int, tags: dict[str, str]) -> None:
    for i in range(count):
        sim_kinds.batch_managed_environment(c, region, f"{AGENT}-ce-{i}", tags)


BUILDERS: dict[str, Builder] = {
    "iam:role": _roles,
    "iam:user": _users,
    "autoscaling:group": _groups,
    "ecs:service": _services,
    "ecs:task": _tasks,
    "ec2:instance": _instances,
    "lambda:function": _functions,
    "rds:cluster": _clusters,
    "rds:db": _databases,
    "eks:nodegroup": _nodegroups,
    "batch:job-queue": _job_queues,
    "batch:job": _batch_jobs,
    "batch:compute-environment": _compute_environments,
    "sagemaker:notebook-instance": _notebooks,
    "sagemaker:training-job": _training_jobs,
    "sagemaker:processing-job": _processing_jobs,
    "sagemaker:endpoint": _endpoints,
}
# Kinds that are not a fleet of tagged resources (why they are left out of the mixed fleet).
NOT_A_FLEET: dict[str, str] = {
    "organizations:account": "sandbox accounts come from the config (one SCP attach per account), not from tags",
}


@dataclass
class KindCalls:
    """Calls by (label, service:Operation): the label is the kind running when botocore made the call."""

    label: str = "engine"
    active: bool = False
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)

    def before(self, **_: Any) -> None:
        return None

    def after(self, model: Any, **_: Any) -> None:
        if self.active:
            self.calls[(self.label, f"{model.service_model.service_name}:{model.name}")] += 1

    def by_label(self, label: str) -> int:
        return sum(v for (lbl, _), v in self.calls.items() if lbl == label)


@contextlib.contextmanager
def attributed(log: KindCalls) -> Iterator[None]:
    """Every kind's discover / act / still_running labels the calls it makes with its resource type and step."""

    def wrap(kind: Kind, step: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            outer, log.label = log.label, f"{kind.resource_type}|{step}"
            try:
                return original(*args, **kwargs)
            finally:
                log.label = outer

        return run

    with contextlib.ExitStack() as stack:
        for kind in REGISTRY:
            for step, method in (("discover", "discover"), ("act", "act"), ("verify", "still_running")):
                stack.enter_context(mock.patch.object(kind, method, wrap(kind, step, getattr(kind, method))))
        yield


@dataclass
class MixedResult:
    per_kind: int
    built: dict[str, int] = field(default_factory=dict)  # resource type → resources of the agent
    skipped: dict[str, str] = field(default_factory=dict)  # resource type → why
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    acted: Counter[str] = field(default_factory=Counter)  # resource type → successful results
    waiting: Counter[str] = field(default_factory=Counter)  # resource type → results that need approval
    wall_s: float = 0.0
    status: str = ""
    verification: str = ""

    def step(self, rtype: str, step: str) -> int:
        return sum(v for (label, _), v in self.calls.items() if label == f"{rtype}|{step}")

    def kind_total(self, rtype: str) -> int:
        return sum(self.step(rtype, s) for s in ("discover", "act", "verify"))

    def outside_kinds(self) -> Counter[str]:
        return Counter({op: v for (label, op), v in self.calls.items() if "|" not in label})


def mixed_config(per_kind: int) -> KillSwitchConfig:
    return KillSwitchConfig.model_validate(
        {
            "regions": [REGION],
            "notify": {"emails": ["bench@example.com"]},
            "max_resources_per_kill": 20 * per_kind * (len(REGISTRY) + 1),
            # Default actions: every registered kind.
            "agents": [{"name": AGENT, "budget": {"amount_usd": 100, "period": "MONTHLY"}, "kill_scope": "agent"}],
        }
    )


def measure_mixed(per_kind: int = PER_KIND) -> MixedResult:
    """Build the mixed fleet, kill it once through `KillEngine` (in-memory ledger), attribute the calls."""
    from bench.fanout import counting, offline_aws, quiet_stdout
    from killswitch.kill.engine import KillEngine
    from killswitch.kill.ledger import InMemoryKillLedger

    out = MixedResult(per_kind)
    log = KindCalls()
    with (
        offline_aws(),
        sim_kinds.moto_lists_eks_and_batch(),  # moto's GetResources lists neither (AWS's lists every type)
        sim_kinds.moto_applies_batch_compute_resources(),  # moto ignores UpdateComputeEnvironment's vCPUs
        counting(log),  # type: ignore[arg-type]
    ):
        c = Clients()
        sim_kinds.deny_policy(c)  # the workload stack's deny policy (`deny_iam`)
        for kind in REGISTRY:
            builder = BUILDERS.get(kind.resource_type)
            if builder is None:
                out.skipped[kind.resource_type] = NOT_A_FLEET.get(
                    kind.resource_type, "no moto builder in bench.fanout_kinds.BUILDERS yet"
                )
                continue
            builder(c, REGION, per_kind, sim.agent_tags(AGENT))
            out.built[kind.resource_type] = per_kind
        engine = KillEngine(mixed_config(per_kind), InMemoryKillLedger(), clients=c)
        with attributed(log), quiet_stdout():
            log.active = True
            t0 = time.perf_counter()
            report = engine.kill(AGENT, reason="bench mixed fleet")
            out.wall_s = time.perf_counter() - t0
            log.active = False
    out.calls, out.status, out.verification = Counter(log.calls), report.status, report.verification
    for r in report.summary.results:
        if r.outcome.value == "success":
            out.acted[r.resource_type] += 1
        elif r.outcome.value == "needs_approval":
            out.waiting[r.resource_type] += 1
    return out


def kind_notes(m: MixedResult) -> list[str]:
    """The per-kind breakdown for the fan-out section's notes."""
    parts = []
    for rtype in m.built:
        total = m.kind_total(rtype)
        waiting = f" / {m.waiting[rtype]} wait for approval" if m.waiting.get(rtype) else ""
        parts.append(
            f"{rtype} {m.built[rtype]} built / {m.acted.get(rtype, 0)} acted{waiting}: "
            f"discover {m.step(rtype, 'discover')} + act {m.step(rtype, 'act')} + "
            f"verify {m.step(rtype, 'verify')} = {total} "
            f"({total / max(1, m.built[rtype]):.2f} per resource)"
        )
    outside = m.outside_kinds()
    shared = ", ".join(f"{op.split(':', 1)[1]} {v}" for op, v in sorted(outside.items())) or "none"
    skipped = "; ".join(f"{t}: {why}" for t, why in m.skipped.items()) or "none"
    return [
        f"Mixed fleet, calls per kind ({m.per_kind} resources of every kind with a builder, one kill, status "
        f"{m.status}, verification {m.verification}): "
        + "; ".join(parts)
        + f". Outside the kinds (shared Tagging API walk, result event): {shared}. "
        f"Skipped kinds: {skipped}."
    ]
