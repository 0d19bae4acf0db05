"""Business outcomes recorded by the guard (`run.outcome(...)`), next to the agent's guard spend entries.

Items: pk `GUARD#<agent>` (the only partition an agent's guard may write, see `killswitch.keys`),
sk `OUTCOME#<day>#<outcome id>`: the outcome id is the idempotency key (a retried record overwrites itself). Spend
queries read `DAY#...` only, so outcomes never count as spend. `killswitch report` divides the agent's spend in the
window by the outcomes in the same window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from killswitch.items import sort_key_range_end
from killswitch.keys import PK, SK, guard_pk, outcome_prefix, outcome_sk
from killswitch.spend.ledger import SpendStore


class OutcomeLedger:
    def __init__(self, store: SpendStore):
        self.store = store

    def record(
        self,
        agent: str,
        day: date,
        outcome_id: str,
        outcome: str,
        count: int = 1,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
    ) -> None:
        if not agent or not outcome or not outcome_id:
            raise ValueError("agent, outcome and outcome_id are required")
        if count < 1:
            raise ValueError(f"count must be >= 1 (got {count})")
        item: dict[str, Any] = {
            PK: guard_pk(agent),
            SK: outcome_sk(day.isoformat(), outcome_id),
            "agent": agent,
            "day": day.isoformat(),
            "outcome": outcome,
            "count": count,
        }
        if run_id:
            item["run_id"] = run_id
        if workflow:
            item["workflow"] = workflow
        self.store.put(item)

    def counts(self, agent: str, since: date | None = None, until: date | None = None) -> dict[str, int]:
        """Outcome name -> how many, for since <= day <= until (inclusive, open when None)."""
        low = outcome_prefix(since.isoformat() if since else None)
        high = sort_key_range_end(outcome_prefix(until.isoformat() if until else None))
        out: Counter[str] = Counter()
        for item in self.store.query_between(guard_pk(agent), low, high):
            out[str(item["outcome"])] += int(item.get("count", 1))
        return dict(out)


@dataclass(frozen=True)
class OutcomeCost:
    """One agent's cost per outcome in a report window: the agent's spend there / that outcome's count."""

    agent: str
    outcome: str
    count: int
    spend_usd: Decimal

    @property
    def cost_per_outcome_usd(self) -> Decimal:
        return self.spend_usd / self.count

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "outcome": self.outcome,
            "count": self.count,
            "cost_per_outcome_usd": float(round(self.cost_per_outcome_usd, 4)),
        }


def outcome_costs(ledger: OutcomeLedger, windows: Iterable[tuple[str, date, date, Decimal]]) -> list[OutcomeCost]:
    """(agent, since, until, spend) per agent -> a row per outcome the agent recorded in that window."""
    out: list[OutcomeCost] = []
    for agent, since, until, spend in windows:
        for outcome, count in sorted(ledger.counts(agent, since, until).items()):
            out.append(OutcomeCost(agent, outcome, count, spend))
    return out
