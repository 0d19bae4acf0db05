"""`killswitch report` shows cost per outcome per agent (outcomes recorded by the guard's `run.outcome`)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from killswitch.cli.main import app
from killswitch.guard import Caps, Guard, InMemoryLedger
from killswitch.guard.core import spend_ledger_sink
from killswitch.spend.ledger import DynamoSpendStore, SpendLedger
from killswitch.spend.outcomes import OutcomeLedger
from tests.aws.spend_support import create_table

CONFIG = """\
prefix: killswitch
regions: [us-east-1]
agents:
  - name: support-bot
    budget: {amount_usd: 100}
    caps: {per_outcome_usd: {ticket_resolved: 2.0}}
  - name: crawler
    budget: {amount_usd: 40}
"""


def test_report_divides_the_agents_spend_by_its_outcomes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "killswitch.yaml"
    cfg.write_text(CONFIG)
    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("KILLSWITCH_TABLE", "ks-outcomes")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        create_table("ks-outcomes")
        store = DynamoSpendStore("ks-outcomes")
        outcomes = OutcomeLedger(store)
        guard = Guard(
            "support-bot",
            Caps(per_outcome_usd={"ticket_resolved": 2.0}),
            InMemoryLedger(),
            spend_sink=spend_ledger_sink(SpendLedger(store)),
            outcome_sink=lambda r: outcomes.record(
                r.agent, date.fromisoformat(r.day), r.outcome_id, r.outcome, r.count, run_id=r.run_id
            ),
        )
        for tickets in (1, 3):
            with guard.run() as run:
                run.charge_usd(1.5, kind="compute")
                run.outcome("ticket_resolved", tickets)
        today = guard.period_key()
        result = CliRunner().invoke(app, ["report", "--config", str(cfg), "--since", today, "--json"])
        assert result.exit_code == 0, result.stderr
        doc = json.loads(result.stdout)
        assert doc["cost_per_outcome"] == [
            {"agent": "support-bot", "outcome": "ticket_resolved", "count": 4, "cost_per_outcome_usd": 0.75}
        ]
        assert doc["agents"][0]["spend_usd"] == 3.0  # outcomes are not spend
        table = CliRunner().invoke(app, ["report", "--config", str(cfg), "--since", today])
        assert table.exit_code == 0, table.stderr
        assert "Cost per outcome" in table.stdout and "ticket_resolved" in table.stdout and "$0.7500" in table.stdout
