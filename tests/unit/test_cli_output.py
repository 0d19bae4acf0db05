"""What an ops engineer reads: help flags, counts that say what happened, terminal width, why an Organizations
call failed."""

from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from killswitch.cli.main import app
from killswitch.cli.render import console, what_happened
from killswitch.kill.model import ACCOUNT, ASG, EC2_INSTANCE, ECS_SERVICE, ECS_TASK, KillReport, Operation
from killswitch.results import Outcome, ResourceResult
from killswitch.sandbox.org import org_management_account_id


def test_booleans_render_as_flags_in_help() -> None:
    res = CliRunner().invoke(app, ["kill", "--help"], env={"COLUMNS": "120"})
    assert res.exit_code == 0
    assert "<bool>" not in res.output
    flags = {line.split()[0] for line in res.output.splitlines() if line.strip().startswith("--")}
    assert {"--dry-run", "--force", "--json"} <= flags


def test_tables_follow_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "90")
    assert console().width == 90
    monkeypatch.setenv("COLUMNS", "230")
    assert console().width == 230


def _result(resource_type: str, action: str, outcome: Outcome = Outcome.SUCCESS) -> ResourceResult:
    return ResourceResult(f"id-{resource_type}-{action}", resource_type, "us-east-1", action, outcome)


def test_counts_say_what_happened() -> None:
    report = KillReport(Operation.KILL, "bot", kill_id="k1")
    for r in (
        _result(EC2_INSTANCE, "stop"),
        _result(EC2_INSTANCE, "stop"),
        _result(ECS_SERVICE, "scale_to_zero"),
        _result(ASG, "scale_to_zero"),
        _result(ECS_TASK, "stop_task"),
        _result(ACCOUNT, "attach_scp"),
        _result(EC2_INSTANCE, "stop", Outcome.ERROR),
        _result(EC2_INSTANCE, "stop", Outcome.NO_ACTION),
        _result(EC2_INSTANCE, "stop", Outcome.NEEDS_APPROVAL),
    ):
        report.summary.add(r)
    assert what_happened(report) == (
        "2 instances stopped, 2 services and groups scaled to zero, 1 task stopped, 1 SCP attached, 1 failed, "
        "1 skipped, 1 wait for `killswitch approve k1`"
    )


def test_describe_organization_failure_says_why(caplog: pytest.LogCaptureFixture) -> None:
    class Org:
        def describe_organization(self) -> None:
            error = {"Code": "AWSOrganizationsNotInUseException", "Message": "not a member of an organization"}
            raise ClientError({"Error": error}, "DescribeOrganization")

    caplog.set_level(logging.WARNING)
    assert org_management_account_id(Org()) is None
    assert "describe_organization failed (AWSOrganizationsNotInUseException" in caplog.text
    assert "not a member of an organization" in caplog.text and "management_account_id" in caplog.text
