"""`killswitch report` rendering: the kill ledger's `restored`, and a dash for an agent without data."""

from __future__ import annotations

from datetime import date

from rich.console import Console

from killswitch.cli.report import _table, kill_state_of
from killswitch.config import AgentConfig
from killswitch.spend.ledger import InMemorySpendStore, SpendLedger
from killswitch.spend.report import build_agent_report

DAY = date(2026, 11, 2)
BOT = AgentConfig.model_validate({"name": "bot", "budget": {"amount_usd": 100}})
IDLE = AgentConfig.model_validate({"name": "idle", "budget": {"amount_usd": 50}})


def test_restored_comes_from_the_last_kill_record() -> None:
    store = InMemorySpendStore()
    assert kill_state_of(store, "bot") is None
    store.put({"pk": "AGENT#bot", "sk": "STATE", "state": "KILLED"})
    store.put({"pk": "AGENT#bot", "sk": "KILL#k1", "status": "done", "created_at": "2026-11-02T10:00:00Z"})
    assert kill_state_of(store, "bot") == "killed"
    store.put({"pk": "AGENT#bot", "sk": "STATE", "state": "OK"})
    store.put({"pk": "AGENT#bot", "sk": "KILL#k1", "status": "restored", "created_at": "2026-11-02T10:00:00Z"})
    assert kill_state_of(store, "bot") == "restored"
    store.put({"pk": "AGENT#bot", "sk": "KILL#k2", "status": "done", "created_at": "2026-11-02T11:00:00Z"})
    assert kill_state_of(store, "bot") == "ok"  # the latest kill is not restored


def test_table_says_over_budget_after_a_restore_and_shows_a_dash_without_data() -> None:
    ledger = SpendLedger(InMemorySpendStore())
    ledger.record_guard_charge("bot", DAY, "c", "130")
    reports = [
        build_agent_report(BOT, ledger.entries("bot"), DAY, DAY, state="restored"),
        build_agent_report(IDLE, [], DAY, DAY),
    ]
    con = Console(width=250, record=True)
    con.print(_table(reports))
    text = con.export_text()
    bot_row = next(line for line in text.splitlines() if "│ bot" in line)
    idle_row = next(line for line in text.splitlines() if "│ idle" in line)
    assert "over budget, restored" in bot_row and "130.0% (guard)" in bot_row
    assert "no data" not in text and "0.0%" not in idle_row and "│ -" in idle_row
