"""`killswitch demo` runs the whole story on its embedded moto backend and proves the restore."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from killswitch.cli.main import app
from tests.conftest import REPO


@pytest.fixture(scope="module")
def demo_output() -> str:
    before = dict(os.environ)
    res = CliRunner().invoke(app, ["demo", "--config", str(REPO / "killswitch.yaml")])
    assert res.exit_code == 0, res.output
    assert dict(os.environ) == before  # the demo's fake credentials do not leak
    return res.output


def test_demo_exits_zero_and_proves_the_restore(demo_output: str) -> None:
    out = demo_output
    assert "AWS Budget Notification" in out and "The plan" in out
    assert "OperationNotPermitted" in out and "needs_approval" in out
    assert "duplicate delivery" in out
    assert "The fleet is back exactly as it was" in out and "NO" not in out.split("9. Before")[1]


def test_demo_denies_the_agents_role_and_user_and_zeroes_its_function(demo_output: str) -> None:
    out = " ".join(demo_output.split())  # rich wraps long lines
    killed, restored = out.split("8. Restore", 1)
    assert (
        "IAM and Lambda after the kill: denied (killswitch-deny-agent): log-summarizer-role, log-summarizer-ci · "
        "zeroed (concurrency 0): log-summarizer-summarize" in killed
    )
    assert "research-crawler-role" not in killed.split("IAM and Lambda after the kill:")[1].split("·")[0]
    assert (
        "IAM and Lambda after restore: denied (killswitch-deny-agent): none · zeroed (concurrency 0): none" in restored
    )
    # the before / after table: the function's reserved concurrency 5 → 0 → 5, the deny policy attached then gone
    table = restored.split("9. Before")[1]
    assert "Lambda │ 5 │ 0 │ 5 │ yes │" in table
