"""`killswitch validate` on config files, as a user runs it: exit codes and `file:line:col: CODE message` lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "config"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "killswitch.cli.main", *args], cwd=REPO, capture_output=True, text=True, check=False
    )


def test_valid_config_exits_zero() -> None:
    proc = run_cli("validate", "killswitch.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


def test_broken_config_exits_one_with_located_errors() -> None:
    bad = FIXTURES / "negative-amount.yaml"
    proc = run_cli("validate", str(bad))
    assert proc.returncode == 1
    assert f"{bad}:5:7: KS105 agents[0].budget.amount_usd: -5 is out of range" in proc.stderr


SANDBOX_CONFIG = """\
regions: [us-east-1]
agents:
  - name: a
    budget: {amount_usd: 5}
    sandbox_accounts: ["111122223333"]
sandbox:
  break_glass_role_arns: ["arn:aws:iam::*:role/BreakGlass"]
  scp: policies/deny.json
"""


def test_validate_fails_when_the_config_names_a_policy_file_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from killswitch.cli.main import app

    monkeypatch.chdir(tmp_path)  # `cdk synth` reads sandbox.scp relative to the working directory
    (tmp_path / "ks.yaml").write_text(SANDBOX_CONFIG, encoding="utf-8")
    res = CliRunner().invoke(app, ["validate", "ks.yaml"])
    assert res.exit_code == 1
    assert "ks.yaml:8:3: KS108 sandbox.scp: policy file policies/deny.json does not exist" in res.output
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "deny.json").write_text("{}", encoding="utf-8")
    ok = CliRunner().invoke(app, ["validate", "ks.yaml"])
    assert ok.exit_code == 0, ok.output
