"""CLI black box (typer CliRunner, moto in-process): fire, kill, restore, approve, status and their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from killswitch.cli.main import app
from killswitch.kill.discover import Clients
from killswitch.testing import sim
from tests.aws.kill_support import (
    AGENT,
    EAST,
    OTHER,
    aws,
    budgets_sns_event,
    build_fleet,
    create_table,
    instance_state,
)

__all__ = ["aws"]
TABLE = "ledger"
CONFIG = """
prefix: killswitch
regions: [us-east-1, us-west-2]
agents:
  - name: log-summarizer
    budget: {amount_usd: 500}
    actions: [stop_ec2, scale_ecs, stop_ecs_tasks, scale_asg]
  - name: research-crawler
    budget: {amount_usd: 1200}
    approval: manual
    kill_scope: agent
"""


@pytest.fixture
def cli(aws: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[CliRunner, Path]:
    monkeypatch.setenv("COLUMNS", "250")  # wide tables: no cell wraps, whatever terminal runs the tests
    create_table(TABLE)
    path = tmp_path / "killswitch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return CliRunner(), path


def invoke(cli: tuple[CliRunner, Path], *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    runner, config = cli
    return runner.invoke(app, [*args, "--config", str(config), "--table", TABLE], input=input)


def test_kill_dry_run_prints_the_plan_and_changes_nothing(aws: Clients, cli: tuple[CliRunner, Path]) -> None:
    f = build_fleet(aws)
    before = sim.snapshot(aws, (EAST,))
    res = invoke(cli, "kill", "--agent", AGENT, "--dry-run")
    assert res.exit_code == 0, res.output
    assert "needs_approval (stop)" in res.output and "killswitch:exempt=true" in res.output
    assert "member of Auto Scaling group" in res.output and "dry run" in res.output
    assert "searched us-east-1, us-west-2" in res.output
    assert sim.snapshot(aws, (EAST,)).comparable() == before.comparable()
    assert instance_state(aws, EAST, f["plain"]) == "running"


def test_kill_status_restore_round_trip(aws: Clients, cli: tuple[CliRunner, Path]) -> None:
    f = build_fleet(aws)
    res = invoke(cli, "kill", "--agent", AGENT, "--yes", "--json")
    assert res.exit_code == 2, res.output  # the disableApiStop instance failed: partial
    report = json.loads(res.output)
    assert report["failures"][0]["code"] == "OperationNotPermitted" and report["counts"]["success"] >= 7
    assert instance_state(aws, EAST, f["plain"]) == "stopped"

    status = invoke(cli, "status", "--agent", AGENT, "--json")
    assert status.exit_code == 0
    (row,) = json.loads(status.output)
    assert row["state"] == "KILLED"
    plain = next(r for r in row["resources"] if r["resource_id"] == f["plain"])
    assert (plain["kill_id"], plain["restore"]) == (report["kill_id"], "start instance")
    table = invoke(cli, "status")
    assert table.exit_code == 0 and "KILLED" in table.output and "start instance" in table.output

    dry = invoke(cli, "restore", "--agent", AGENT, "--dry-run")
    assert dry.exit_code == 0 and instance_state(aws, EAST, f["plain"]) == "stopped"
    restored = invoke(cli, "restore", "--agent", AGENT)
    assert restored.exit_code == 0, restored.output
    assert instance_state(aws, EAST, f["plain"]) == "running"
    again = invoke(cli, "restore", "--agent", AGENT, "--kill-id", report["kill_id"], "--json")
    assert again.exit_code == 0 and json.loads(again.output)["counts"]["success"] == 0


def test_kill_asks_for_confirmation(aws: Clients, cli: tuple[CliRunner, Path]) -> None:
    f = build_fleet(aws)
    no = invoke(cli, "kill", "--agent", AGENT, input="n\n")
    assert no.exit_code == 1 and "aborted" in no.output
    assert instance_state(aws, EAST, f["plain"]) == "running"
    yes = invoke(cli, "kill", "--agent", AGENT, input="y\n")
    assert yes.exit_code == 2 and instance_state(aws, EAST, f["plain"]) == "stopped"
    assert "instances stopped" in yes.output and "services and groups scaled to zero" in yes.output


def test_manual_agent_then_approve(aws: Clients, cli: tuple[CliRunner, Path]) -> None:
    f = build_fleet(aws)
    res = invoke(cli, "kill", "--agent", OTHER, "--yes", "--json")
    assert res.exit_code == 0
    report = json.loads(res.output)
    assert report["status"] == "awaiting_approval" and f["other"] in report["needs_approval"]
    assert instance_state(aws, EAST, f["other"]) == "running"
    no = invoke(cli, "approve", report["kill_id"], input="n\n")
    assert no.exit_code == 1 and "aborted: nothing was done" in no.output
    assert f["other"] in no.output and instance_state(aws, EAST, f["other"]) == "running"
    ok = invoke(cli, "approve", report["kill_id"], input="y\n")
    assert ok.exit_code == 0, ok.output
    assert instance_state(aws, EAST, f["other"]) == "stopped"
    assert invoke(cli, "approve", report["kill_id"], "--yes").exit_code == 1  # nothing waits any more
    assert invoke(cli, "approve", "no-such-kill").exit_code == 1


def test_fire_event_file(aws: Clients, cli: tuple[CliRunner, Path], tmp_path: Path) -> None:
    f = build_fleet(aws)
    event = tmp_path / "event.json"
    event.write_text(json.dumps(budgets_sns_event("killswitch-log-summarizer", 530, 500, 500, "m-1")))
    dry = invoke(cli, "fire", str(event), "--dry-run")
    assert dry.exit_code == 0 and instance_state(aws, EAST, f["plain"]) == "running"
    res = invoke(cli, "fire", str(event), "--json")
    assert res.exit_code == 2 and json.loads(res.output)["level"] == "kill"
    assert instance_state(aws, EAST, f["plain"]) == "stopped"
    dup = invoke(cli, "fire", str(event), "--json")
    assert dup.exit_code == 0 and json.loads(dup.output)["operation"] == "duplicate"
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": "world"}')
    rejected = invoke(cli, "fire", str(bad))
    assert rejected.exit_code == 1 and "rejected" in rejected.output
    bad.write_text("{not json")
    assert invoke(cli, "fire", str(bad)).exit_code == 1


def test_blast_radius_refusal_and_force(aws: Clients, cli: tuple[CliRunner, Path]) -> None:
    f = build_fleet(aws)
    config = cli[1]
    config.write_text(CONFIG + "max_resources_per_kill: 2\n", encoding="utf-8")
    refused = invoke(cli, "kill", "--agent", AGENT, "--yes")
    assert refused.exit_code == 1 and "blast-radius limit of 2" in refused.output
    assert instance_state(aws, EAST, f["plain"]) == "running"
    forced = invoke(cli, "kill", "--agent", AGENT, "--yes", "--force")
    assert forced.exit_code == 2 and instance_state(aws, EAST, f["plain"]) == "stopped"


def test_invalid_input_and_aws_errors(aws: Clients, cli: tuple[CliRunner, Path]) -> None:
    runner, config = cli
    assert invoke(cli, "kill", "--agent", "nobody", "--yes").exit_code == 1
    assert invoke(cli, "restore").exit_code == 1
    no_table = runner.invoke(app, ["status", "--config", str(config)])
    assert no_table.exit_code == 1 and "no ledger table" in no_table.output
    for command in (["status"], ["kill", "--agent", AGENT, "--yes"], ["restore", "--agent", AGENT], ["approve", "k1"]):
        missing = runner.invoke(app, [*command, "--config", str(config), "--table", "does-not-exist"])
        assert missing.exit_code == 1, (command, missing.output)
        assert "ledger table 'does-not-exist' not found in region us-east-1" in missing.output, command
        assert "ResourceNotFoundException" not in missing.output


def test_restore_of_an_unknown_agent_names_the_known_ones(aws: Clients, cli: tuple[CliRunner, Path]) -> None:
    res = invoke(cli, "restore", "--agent", "nobody")
    assert res.exit_code == 1
    assert "agent 'nobody' is not in the config (known: log-summarizer, research-crawler)" in res.output


def test_approve_in_json_mode_needs_yes(aws: Clients, cli: tuple[CliRunner, Path]) -> None:
    f = build_fleet(aws)
    report = json.loads(invoke(cli, "kill", "--agent", OTHER, "--yes", "--json").output)
    res = invoke(cli, "approve", report["kill_id"], "--json")
    assert res.exit_code == 1 and "--json needs --yes" in res.output
    assert instance_state(aws, EAST, f["other"]) == "running"
    assert invoke(cli, "approve", report["kill_id"], "--json", "--yes").exit_code == 0
    assert instance_state(aws, EAST, f["other"]) == "stopped"
