"""`killswitch validate` on config files, as a user runs it: exit codes and `file:line:col: CODE message` lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
