"""`killswitch validate` on SCP files and directories, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from killswitch.cli.main import app

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "scp"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def test_shipped_directory_is_ok() -> None:
    result = runner.invoke(app, ["validate", "scp_policies/"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("OK: scp_policies")
    assert result.stderr == ""


def test_no_arguments_validates_config_and_scp_policies() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "killswitch.cli.main", "validate"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "OK: killswitch.yaml, scp_policies" in proc.stdout


def test_bad_file_exits_one_with_located_lines() -> None:
    bad = "tests/fixtures/scp/unknown-service.json"
    result = runner.invoke(app, ["validate", bad])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"{bad}:7:38: SCP031 unknown service prefix 'bedrok' in 'bedrok:InvokeModel'"
    assert lines[-1] == "1 error(s), 0 warning(s)"


def test_errors_from_several_files_and_a_good_directory() -> None:
    result = runner.invoke(
        app, ["validate", "scp_policies", "tests/fixtures/scp/principal.json", "tests/fixtures/scp/comment.json"]
    )
    assert result.exit_code == 1
    assert "tests/fixtures/scp/principal.json:7:7: SCP022 Principal is not allowed" in result.stderr
    assert "tests/fixtures/scp/comment.json:8:24: SCP003 comments are not allowed in JSON" in result.stderr
    assert "scp_policies/" not in result.stderr


@pytest.mark.parametrize("name", ["missing-sid.json", "near-size-limit.json"])
def test_warnings_alone_exit_zero(name: str) -> None:
    path = f"tests/fixtures/scp/{name}"
    result = runner.invoke(app, ["validate", path])
    assert result.exit_code == 0
    assert f"{path}:" in result.stdout
    assert " SCP0" in result.stdout
    assert "(1 warning(s))" in result.stdout


def test_break_glass_roles_come_from_the_config(tmp_path: Path) -> None:
    config = (REPO / "killswitch.yaml").read_text().replace("role/BreakGlass", "role/Emergency")
    (tmp_path / "killswitch.yaml").write_text(config)
    scp = tmp_path / "deny.json"
    scp.write_text((REPO / "scp_policies" / "deny-agent-compute.json").read_text())
    result = runner.invoke(app, ["validate", str(tmp_path / "killswitch.yaml"), str(scp)])
    assert result.exit_code == 1
    assert "does not exempt break-glass role arn:aws:iam::*:role/Emergency" in result.stderr
    # The same SCP with the exemption updated passes.
    policy = json.loads(scp.read_text())
    for stmt in policy["Statement"]:
        stmt["Condition"]["ArnNotLike"]["aws:PrincipalARN"].append("arn:aws:iam::*:role/Emergency")
    scp.write_text(json.dumps(policy, indent=2))
    result = runner.invoke(app, ["validate", str(tmp_path / "killswitch.yaml"), str(scp)])
    assert result.exit_code == 0, result.stderr


def test_unknown_file_kind_is_refused() -> None:
    result = runner.invoke(app, ["validate", "README.md"])
    assert result.exit_code == 1
    assert "README.md:1:1: KS001" in result.stderr
