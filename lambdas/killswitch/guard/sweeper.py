"""Sweeping for agents whose process died and never started again.

A running agent sweeps its own expired reservations (`Guard.maybe_sweep`, on every new run). An agent that crashed
and never restarts would leave its last reservations unsettled: their estimate would hold cap headroom and never
reach the spend ledger. The daily spend recorder calls `sweep_agents` for every configured agent, so each expired
reservation is settled at its estimate (the conservative figure) and written to the spend ledger as `guard` spend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from killswitch.guard.guard import Guard
from killswitch.guard.ledger import Ledger
from killswitch.guard.records import SpendSink

log = logging.getLogger("killswitch.guard")


def sweep_agents(
    ledger: Ledger, agents: Iterable[str], *, spend_sink: SpendSink | None = None, now: float | None = None
) -> tuple[dict[str, int], dict[str, str]]:
    """Settle every expired reservation of each agent at its estimate.

    Returns (holds swept per agent, error per agent that could not be swept); one agent's failure never stops
    the others.
    """
    t = time.time() if now is None else now
    swept: dict[str, int] = {}
    errors: dict[str, str] = {}
    for agent in agents:
        try:
            swept[agent] = len(Guard(agent, ledger=ledger, spend_sink=spend_sink, sweep_interval=0).sweep(t))
        except Exception as exc:  # a ledger problem for one agent is reported, never hides the others
            log.exception("sweeping %s failed", agent)
            errors[agent] = f"{type(exc).__name__}: {exc}"
    return swept, errors
