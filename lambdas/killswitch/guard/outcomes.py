"""Business outcomes and per-outcome caps: unit economics inside the run.

`run.outcome("ticket_resolved")` records that the run achieved one outcome. `caps.per_outcome_usd` caps what a run
may spend per outcome of a kind: with n outcomes recorded, the run's cost (settled charges plus calls in flight)
may reach cap x (n + 1), the outcomes achieved plus the one being worked on. A charge that would pass that is
refused before the call (`BudgetExceeded`, scope `outcome`); the run is refused, the agent is not stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from killswitch.guard.errors import BudgetExceeded


@dataclass(frozen=True)
class OutcomeRecord:
    """One recorded outcome, handed to the outcome sink (from_config: the spend table, for `killswitch report`)."""

    agent: str
    run_id: str
    workflow: str | None
    outcome: str
    count: int
    outcome_id: str
    day: str
    run_cost_usd: Decimal  # the run's settled cost when the outcome was recorded


OutcomeSink = Callable[[OutcomeRecord], None]


def check_outcome_caps(
    agent: str,
    run_id: str,
    *,
    caps: Mapping[str, Decimal],
    counts: Mapping[str, int],
    run_cost: Decimal,
    amount: Decimal,
) -> None:
    """Raise BudgetExceeded if `amount` more would put the run's cost per outcome over a cap."""
    for outcome, cap in caps.items():
        done = counts.get(outcome, 0)
        allowed = cap * (done + 1)
        if run_cost + amount > allowed:
            per = f"${run_cost / done:.4f} per outcome so far" if done else "no outcome recorded yet"
            raise BudgetExceeded(
                agent,
                "outcome",
                outcome,
                cap,
                run_cost,
                amount,
                reason=(
                    f"agent {agent!r} run {run_id}: caps.per_outcome_usd.{outcome} of ${cap:.4f} per outcome would "
                    f"be passed: the run cost ${run_cost:.4f} ({done} {outcome} recorded, {per}) + ${amount:.4f} "
                    f"requested > ${allowed:.4f} allowed before the next {outcome}"
                ),
            )


def cost_per_outcome(spend_usd: Decimal, counts: Mapping[str, int]) -> dict[str, Decimal | None]:
    """Spend divided by each outcome's count (None when there is none)."""
    return {name: (spend_usd / n if n else None) for name, n in sorted(counts.items())}
