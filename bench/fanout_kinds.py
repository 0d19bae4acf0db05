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
    wall_s: float = 0.0
    status: str = ""

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
    with offline_aws(), counting(log):  # type: ignore[arg-type]
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
    out.calls, out.status = Counter(log.calls), report.status
    for r in report.summary.results:
        if r.outcome.value == "success":
            out.acted[r.resource_type] += 1
    return out


def kind_notes(m: MixedResult) -> list[str]:
    """The per-kind breakdown for the fan-out section's notes."""
    parts = []
    for rtype in m.built:
        total = m.kind_total(rtype)
        parts.append(
            f"{rtype} {m.built[rtype]} built / {m.acted.get(rtype, 0)} acted: discover {m.step(rtype, 'discover')} + "
            f"act {m.step(rtype, 'act')} + verify {m.step(rtype, 'verify')} = {total} "
            f"({total / max(1, m.built[rtype]):.2f} per resource)"
        )
    outside = m.outside_kinds()
    shared = ", ".join(f"{op.split(':', 1)[1]} {v}" for op, v in sorted(outside.items())) or "none"
    skipped = "; ".join(f"{t}: {why}" for t, why in m.skipped.items()) or "none"
    return [
        f"Mixed fleet, calls per kind ({m.per_kind} resources of every kind with a builder, one kill, status "
        f"{m.status}): " + "; ".join(parts) + f". Outside the kinds (shared Tagging API walk, result event): {shared}. "
        f"Skipped kinds: {skipped}."
    ]
