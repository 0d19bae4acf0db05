"""`killswitch report` as a user runs it (in-process CLI, moto DynamoDB): table, JSON, CSV, chart, errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from killswitch.cli.main import app
from killswitch.spend.ledger import DynamoSpendStore, SpendLedger
from tests.aws.spend_support import create_table, simulate_month

CONFIG = """\
prefix: killswitch
regions: [us-east-1]
agents:
  - name: bot
    budget: {amount_usd: 250, period: MONTHLY, warn_at_pct: 70, kill_at_pct: 100}
  - name: crawler
    budget: {amount_usd: 40}
"""
WINDOW = ["--since", "2026-10-01", "--until", "2026-10-30"]


def _aws_env(mp: pytest.MonkeyPatch, table: str) -> None:
    for name, value in (
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("KILLSWITCH_TABLE", table),
    ):
        mp.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "KILLSWITCH_CONFIG"):
        mp.delenv(name, raising=False)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    """One simulated month shared by the read-only tests (module scope: set the fake AWS env here too)."""
    cfg = tmp_path_factory.mktemp("report") / "killswitch.yaml"
    cfg.write_text(CONFIG)
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        _aws_env(mp, "ks-cli")
        create_table("ks-cli")
        ledger = SpendLedger(DynamoSpendStore("ks-cli"))
        expected = simulate_month(ledger, "bot", date(2026, 10, 1))
        ledger.record_guard_charge("crawler", date(2026, 10, 5), "c-1", "12.34", run_id="r-9")
        ledger.store.put({"pk": "AGENT#crawler", "sk": "STATE", "state": "KILLED", "kill_id": "k-1"})
        yield cfg, expected


@pytest.fixture
def setup(month: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    _aws_env(monkeypatch, "ks-cli")  # conftest's per-test env runs after the module fixture
    return month


def run(*args: str) -> object:
    return CliRunner().invoke(app, ["report", *args])


def test_json_is_machine_readable_and_matches_the_ledger(setup: tuple[Path, dict]) -> None:
    cfg, expected = setup
    result = run("--config", str(cfg), *WINDOW, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    bot, crawler = doc["agents"]
    assert bot["agent"] == "bot" and crawler["agent"] == "crawler"
    assert bot["spend_by_source"] == {
        "budget": float(expected["budget"]),
        "cost_explorer": float(expected["cost_explorer"]),
        "guard": float(expected["guard"]),
    }
    assert (bot["pct_of_budget"], bot["state"], bot["state_from"]) == (73.5, "thrift", "derived")
    assert (bot["runs"], bot["cost_per_run_usd"]) == (30, 2.45)
    assert [s["service"] for s in bot["top_services"]] == [s for s, _ in expected["top_services"]]
    assert (crawler["spend_usd"], crawler["spend_source"], crawler["pct_of_budget"]) == (
        12.34,
        "guard",
        30.8,
    )  # 30.85 half-even
    assert (crawler["state"], crawler["state_from"]) == ("killed", "kill_engine")


def test_csv_one_row_per_agent(setup: tuple[Path, dict]) -> None:
    cfg, _ = setup
    result = run("--config", str(cfg), *WINDOW, "--csv", "--agent", "bot")
    assert result.exit_code == 0, result.stderr
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["agent"], row["cost_explorer_usd"], row["guard_usd"], row["spend_source"]) == (
        "bot", "183.75", "49.80", "cost_explorer",
    )  # fmt: skip
    assert (row["since"], row["until"], row["state"]) == ("2026-10-01", "2026-10-30", "thrift")


def test_table_and_chart(setup: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, _ = setup
    monkeypatch.setenv("COLUMNS", "200")  # the table follows the terminal width
    png = tmp_path / "spend.png"
    result = run("--config", str(cfg), *WINDOW, "--chart", str(png), "--table", "ks-cli")
    assert result.exit_code == 0, result.stderr
    assert "bot" in result.stdout and "crawler" in result.stdout
    assert "killed" in result.stdout and "thrift" in result.stdout
    assert "$183.75" in result.stdout
    assert f"chart written to {png}" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--table", "no-such-table"], "ledger table 'no-such-table' not found in region us-east-1"),
        (["--agent", "ghost"], "agent 'ghost' is not in the config"),
        (["--since", "yesterday"], "--since 'yesterday' is not a date"),
        (["--since", "2026-10-05", "--until", "2026-10-01"], "is after --until"),
        (["--json", "--csv"], "mutually exclusive"),
    ],
)
def test_refusals_exit_one_with_a_clear_message(setup: tuple[Path, dict], args: list[str], message: str) -> None:
    cfg, _ = setup
    result = run("--config", str(cfg), *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_missing_table_name_and_missing_config(setup: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, _ = setup
    monkeypatch.delenv("KILLSWITCH_TABLE")
    result = run("--config", str(cfg))
    assert result.exit_code == 1 and "no ledger table" in result.stderr
    result = run("--config", str(cfg.parent / "missing.yaml"), "--table", "ks-cli")
    assert result.exit_code == 1 and "missing.yaml:1:1: KS000 cannot read config" in result.stderr


def test_region_defaults_to_the_deploy_region(setup: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, expected = setup
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    result = run("--config", str(cfg), *WINDOW, "--json", "--agent", "bot")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["agents"][0]["spend_usd"] == float(expected["cost_explorer"])
