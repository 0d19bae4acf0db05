"""`killswitch meter` black box (typer CliRunner, moto in-process): a Logs subscription event file from an agent's
tagged role stops that agent once its estimate crosses the budget; without --event, one compute tick."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from killswitch.cli.main import app
from killswitch.kill.discover import Clients
from killswitch.testing import sim
from tests.aws import meter_support as M
from tests.aws.kill_support import EAST, aws, create_table, instance_state

__all__ = ["aws"]
TABLE = "ledger"


@pytest.fixture
def cli(aws: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[CliRunner, Path]:
    monkeypatch.setenv("COLUMNS", "250")
    create_table(TABLE)
    path = tmp_path / "killswitch.yaml"
    path.write_text(M.CONFIG, encoding="utf-8")
    return CliRunner(), path


def invoke(cli: tuple[CliRunner, Path], *args: str):  # type: ignore[no-untyped-def]
    runner, config = cli
    return runner.invoke(app, ["meter", *args, "--config", str(config), "--table", TABLE])


def write_event(tmp_path: Path, name: str, *records: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(M.logs_event(*records)), encoding="utf-8")
    return path


def test_meter_event_stops_the_agent_with_no_guard(aws: Clients, cli: tuple[CliRunner, Path], tmp_path: Path) -> None:
    mine = sim.run_instance(aws, EAST, sim.agent_tags(M.AGENT))
    other = sim.run_instance(aws, EAST, sim.agent_tags(M.OTHER))
    caller = M.role("summarizer-role", M.AGENT)
    untagged = M.role("plain-role", None)

    quiet = write_event(tmp_path, "a.json", M.call(caller, "r1"), M.call(untagged, "u1"))
    res = invoke(cli, "--event", str(quiet))
    assert res.exit_code == 0, res.output
    assert "2 records, 1 priced" in res.output and "untagged_caller 1" in res.output
    assert instance_state(aws, EAST, mine) == "running"

    dry = write_event(tmp_path, "b.json", M.call(caller, "r2"))
    res = invoke(cli, "--event", str(dry), "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["decisions"][0]["operation"] == "kill" and out["decisions"][0]["dry_run"] is True
    assert instance_state(aws, EAST, mine) == "running"

    res = invoke(cli, "--event", str(dry))
    assert res.exit_code == 0, res.output
    assert "kill log-summarizer" in res.output and "METERED $12.00 is 120%" in res.output
    assert instance_state(aws, EAST, mine) == "stopped"
    assert instance_state(aws, EAST, other) == "running"


def test_meter_without_event_runs_one_compute_tick(aws: Clients, cli: tuple[CliRunner, Path]) -> None:
    sim.run_instance(aws, EAST, sim.agent_tags(M.AGENT))
    res = invoke(cli, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    # the instance was launched just now (moto stamps the real time), so the accrued amount is about zero
    assert out["kind"] == "tick" and out["units"] == 1
    assert [(f["agent"], f["kind"], f["service"]) for f in out["facts"]] == [(M.AGENT, "compute", "compute")]


def test_a_file_that_is_not_a_logs_event_is_refused(cli: tuple[CliRunner, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"Records": []}', encoding="utf-8")
    res = invoke(cli, "--event", str(bad))
    assert res.exit_code == 1 and "not a CloudWatch Logs subscription event" in res.output
