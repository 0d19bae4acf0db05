"""`killswitch local`: a moto server on 127.0.0.1 whose ledger table is the stack's, and CLI commands that work
against it with nothing but the printed environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from killswitch.cli.local import LocalBackend, start_local
from killswitch.cli.main import app
from killswitch.config import load_config

CONFIG = """\
prefix: ks
regions: [us-east-1]
agents:
  - name: summarizer
    budget: {amount_usd: 100}
    actions: [stop_ec2]
  - name: crawler
    budget: {amount_usd: 50}
"""


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalBackend]:
    path = tmp_path / "killswitch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    local = start_local(load_config(path), path, port=0, fleet=True)
    try:
        for name, value in local.environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("COLUMNS", "200")
        yield local
    finally:
        local.stop()


def test_the_ledger_table_is_created_as_the_stack_does(backend: LocalBackend) -> None:
    ddb = boto3.client("dynamodb", region_name=backend.region, endpoint_url=backend.endpoint)
    table = ddb.describe_table(TableName="ks-ledger")["Table"]
    assert backend.table == "ks-ledger" and backend.endpoint.startswith("http://127.0.0.1:")
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName="ks-ledger")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    assert backend.events_topic_arn.endswith(":ks-events")


def test_cli_commands_run_against_the_printed_environment(backend: LocalBackend) -> None:
    runner = CliRunner()
    plain = backend.fleet["summarizer"][0]
    dry = runner.invoke(app, ["kill", "--agent", "summarizer", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert plain in dry.output and "needs_approval" in dry.output and "killswitch:exempt=true" in dry.output
    done = runner.invoke(app, ["kill", "--agent", "summarizer", "--yes"])
    assert done.exit_code == 0, done.output
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=backend.endpoint)
    state = ec2.describe_instances(InstanceIds=[plain])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "stopped"
    status = runner.invoke(app, ["status", "--agent", "summarizer"])
    assert status.exit_code == 0 and "KILLED" in status.output
    assert runner.invoke(app, ["restore", "--agent", "summarizer"]).exit_code == 0
    state = ec2.describe_instances(InstanceIds=[plain])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "running"


def test_a_port_in_use_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    import socket

    from killswitch.cli.main import app as cli_app

    path = tmp_path / "killswitch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = CliRunner().invoke(cli_app, ["local", "--port", str(port), "--config", str(path)])
    assert res.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in res.output
