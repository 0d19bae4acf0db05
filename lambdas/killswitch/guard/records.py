"""What the guard writes down: one settled charge (`ChargeRecord`) and the sinks that store charges and outcomes in
the spend ledger next to the agent's other spend."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from killswitch.guard.ledger import Hold
from killswitch.guard.outcomes import OutcomeRecord, OutcomeSink

log = logging.getLogger("killswitch.guard")


@dataclass(frozen=True)
class ChargeRecord:
    """One settled charge, handed to the spend sink. `attributes()` uses OpenTelemetry GenAI names."""

    agent: str
    run_id: str
    workflow: str | None
    charge_id: str
    kind: str  # llm | tool | other
    name: str  # model id for llm, tool/service name otherwise
    amount_usd: Decimal
    estimated_usd: Decimal
    day: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    state: str = "settled"  # settled | swept (settled at the estimate by the sweeper)

    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "gen_ai.agent.name": self.agent,
            "gen_ai.operation.name": "chat" if self.kind == "llm" else "execute_tool",
            "killswitch.agent.run_id": self.run_id,
            "killswitch.charge_id": self.charge_id,
            "killswitch.cost_usd": float(self.amount_usd),
            "killswitch.estimated_usd": float(self.estimated_usd),
        }
        if self.kind == "llm":
            attrs["gen_ai.request.model"] = self.name
            attrs["gen_ai.usage.input_tokens"] = self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
            attrs["gen_ai.usage.output_tokens"] = self.output_tokens
            if self.cache_read_tokens:
                attrs["gen_ai.usage.cache_read.input_tokens"] = self.cache_read_tokens
            if self.cache_write_tokens:
                attrs["gen_ai.usage.cache_creation.input_tokens"] = self.cache_write_tokens
        else:
            attrs["gen_ai.tool.name"] = self.name
        if self.workflow:
            attrs["killswitch.workflow"] = self.workflow
        return attrs


SpendSink = Callable[[ChargeRecord], None]


def swept_charge(agent: str, hold: Hold, day: str) -> ChargeRecord:
    """The record of a charge the sweeper settled at its reservation (its process never settled it)."""
    m = hold.meta
    return ChargeRecord(
        agent=agent,
        run_id=m.get("run_id", ""),
        workflow=m.get("workflow") or None,
        charge_id=hold.hold_id,
        kind=m.get("kind", "other"),
        name=m.get("name", ""),
        amount_usd=hold.amount,
        estimated_usd=hold.amount,
        day=day,
        input_tokens=int(m.get("input_tokens", "0")),
        output_tokens=int(m.get("max_output_tokens", "0")),
        state="swept",
    )


def spend_ledger_sink(spend: Any) -> SpendSink:
    """A spend sink writing each settled charge to `killswitch.spend.ledger.SpendLedger.record_guard_charge`."""

    def sink(rec: ChargeRecord) -> None:
        spend.record_guard_charge(
            rec.agent,
            date.fromisoformat(rec.day),
            rec.charge_id,
            rec.amount_usd,
            estimated_usd=rec.estimated_usd,
            run_id=rec.run_id,
            workflow=rec.workflow,
            kind="llm" if rec.kind == "llm" else "tool",
            name=rec.name,
            input_tokens=rec.input_tokens + rec.cache_read_tokens + rec.cache_write_tokens,
            output_tokens=rec.output_tokens,
        )

    return sink


def outcome_ledger_sink(table_name: str, region: str | None) -> OutcomeSink | None:
    """Write outcomes next to the agent's spend entries (`killswitch.spend.outcomes`) when it is installed."""
    try:
        from killswitch.spend.ledger import DynamoSpendStore
        from killswitch.spend.outcomes import OutcomeLedger
    except ImportError:
        return None
    import boto3

    ledger = OutcomeLedger(DynamoSpendStore(table_name, session=boto3.Session(region_name=region)))

    def sink(rec: OutcomeRecord) -> None:
        ledger.record(
            rec.agent,
            date.fromisoformat(rec.day),
            rec.outcome_id,
            rec.outcome,
            rec.count,
            run_id=rec.run_id,
            workflow=rec.workflow,
        )

    return sink


def spend_ledger_sink_on_table(table_name: str, region: str | None) -> SpendSink | None:
    """Wire the spend ledger on the stack's table when `killswitch.spend.ledger` is installed."""
    try:
        from killswitch.spend.ledger import DynamoSpendStore, SpendLedger
    except ImportError:
        log.info("killswitch.spend.ledger not available: guard charges are not written to the spend ledger")
        return None
    import boto3

    return spend_ledger_sink(SpendLedger(DynamoSpendStore(table_name, session=boto3.Session(region_name=region))))
