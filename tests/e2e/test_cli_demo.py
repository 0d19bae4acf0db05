"""`killswitch demo` runs the whole story on its embedded moto backend and proves the restore."""

from __future__ import annotations

import os

from typer.testing import CliRunner

from killswitch.cli.main import app
from tests.conftest import REPO


def test_demo_exits_zero_and_proves_the_restore() -> None:
    before = dict(os.environ)
    res = CliRunner().invoke(app, ["demo", "--config", str(REPO / "killswitch.yaml")])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "AWS Budget Notification" in out and "The plan" in out
    assert "OperationNotPermitted" in out and "needs_approval" in out
    assert "duplicate delivery" in out
    assert "The fleet is back exactly as it was" in out and "NO" not in out.split("9. Before")[1]
    assert dict(os.environ) == before  # the demo's fake credentials do not leak
