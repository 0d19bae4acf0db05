"""Acting: the only step of a kill or restore that changes AWS. One `Outcome` per resource, never an exception
for a single bad resource. What each kind does is in its module under `killswitch.kill.kinds`; this module runs
the kinds in kill order and reports the results of each API batch as soon as they are known.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Protocol

from killswitch.kill.common import (
    TRANSIENT_CODES,
    ActResult,
    BisectStats,
    ClientFactory,
    bisect_call,
    is_transient,
)
from killswitch.kill.kinds import KILL_ORDER, ActContext, kind_of
from killswitch.kill.model import Decision, Resource, result_for
from killswitch.results import Outcome, ResourceResult

__all__ = [
    "TRANSIENT_CODES",
    "ActResult",
    "BisectStats",
    "ScpActions",
    "bisect_call",
    "execute",
    "is_transient",
]


class ScpActions(Protocol):
    """The sandbox-account path (Organizations deny SCP), implemented by `killswitch.kill.scp`."""

    def targets(self, agent: str) -> list[Resource]: ...

    def attach(self, resource: Resource) -> tuple[ResourceResult, bool]: ...

    def detach(self, resource: Resource) -> ResourceResult: ...


def execute(
    decisions: Sequence[Decision],
    clients: ClientFactory,
    *,
    scp: ScpActions | None = None,
    reason: str = "agent kill switch",
    stats: BisectStats | None = None,
    on_results: Callable[[list[ActResult]], None] | None = None,
    ctx: ActContext | None = None,
) -> list[ActResult]:
    """Carry out the decisions that change AWS, kind by kind in `KILL_ORDER`.

    `on_results` is called as soon as the results of one API batch are known (all instances of a StopInstances
    call, or one service/task/group/account), so the engine writes them to the ledger in one batch write and a
    Lambda that dies half-way leaves a ledger that says what was already done.
    """
    ctx = ctx or ActContext(clients, reason=reason, stats=stats or BisectStats(), scp=scp)
    by_type: dict[str, list[Decision]] = defaultdict(list)
    for d in decisions:
        if d.changes_aws:
            by_type[d.resource.resource_type].append(d)
    out: list[ActResult] = []

    def emit(ars: list[ActResult]) -> None:
        out.extend(ars)
        if on_results is not None and ars:
            on_results(ars)

    for t in [*KILL_ORDER, *sorted(set(by_type) - set(KILL_ORDER))]:
        ds = by_type.get(t, [])
        kind = kind_of(t)
        if not ds:
            continue
        if kind is None:
            emit(
                [
                    ActResult(d, result_for(d, Outcome.ERROR, f"unsupported resource type {t}", "Unsupported"))
                    for d in ds
                ]
            )
        elif kind.batched:
            emit(kind.act(ds, ctx))  # e.g. one StopInstances batch per region: one ledger write per batch
        else:
            for d in ds:
                emit(kind.act([d], ctx))
    return out
