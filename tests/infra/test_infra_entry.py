"""`app.py` entry (in-process): config and SCP errors stop synth with clear lines; a good config synthesizes;
`infra.summary` describes what would be deployed."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import yaml
from aws_cdk import App

from infra.app_builder import new_app
from infra.entry import main
from infra.summary import describe_app
from tests.infra.infra_support import SANDBOX_A, config_dict, write_scps


def _project(root: Path, **overrides: object) -> Path:
    """A project folder: killswitch config + scp_policies/, as `cdk` sees it from the working directory."""
    root.mkdir(parents=True, exist_ok=True)
    write_scps(root / "scp_policies")
    config = root / "killswitch.yaml"
    config.write_text(yaml.safe_dump(config_dict(**overrides), sort_keys=False), encoding="utf-8")
    return config


def _app(outdir: Path, config: Path | None = None) -> App:
    return new_app(str(outdir), {"config": str(config)} if config else None, builtin_validation=False)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[App, Path, str]:
    root = tmp_path_factory.mktemp("project")
    config = _project(root)
    outdir = root / "cdk.out"
    app = _app(outdir, config)
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("KILLSWITCH_CONFIG", raising=False)
        rc = main(app, out=out)
    assert rc == 0, out.getvalue()
    return app, outdir, out.getvalue()


def test_good_config_synthesizes_both_stacks(synthesized: tuple[App, Path, str]) -> None:
    _, outdir, output = synthesized
    assert "error" not in output  # SCP warnings, if any, do not stop synth; errors would
    assert sorted(p.name for p in outdir.glob("*.template.json")) == [
        "ks-budgets-0.template.json",
        "ks-management.template.json",
        "ks-watch-eu-west-1.template.json",  # the watch's forwarding rule in the other configured region
        "ks-workload.template.json",
    ]
    workload = json.loads((outdir / "ks-workload.template.json").read_text(encoding="utf-8"))
    assert any(r["Type"] == "AWS::Lambda::Function" for r in workload["Resources"].values())


def test_summary_describes_stacks_resources_and_budgets(synthesized: tuple[App, Path, str]) -> None:
    app, _, _ = synthesized
    text = describe_app(app)
    assert "ks-workload (aws://444455556666/us-east-1):" in text
    assert "ks-management (aws://999988887777/us-east-1):" in text
    assert "    2  AWS::Lambda::Function" in text
    assert "    2  AWS::Organizations::Policy" in text
    assert "ks-budgets-0 (aws://444455556666/us-east-1):" in text
    assert re.search(r"ks-summarizer-[0-9a-f]{8}: 500 USD MONTHLY \[TagKeyValue=user:agent-name\$summarizer\]", text)
    assert "FORECASTED>95% → 2 email+1 sns" in text
    assert re.search(
        rf"Crawler Budget-{SANDBOX_A}-[0-9a-f]{{8}}: APPLY_SCP_POLICY at 95% on {SANDBOX_A} \(manual approval\)", text
    )


def test_config_errors_print_file_line_field_and_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agents = config_dict()["agents"]
    config = _project(tmp_path, agents=[{**agents[0], "budget": {"amount_usd": 5, "warn_at_pct": 100}}])
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    assert main(_app(tmp_path / "cdk.out", config), out=out) == 1
    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith(f"{config}:") for line in lines)
    assert "warn_at_pct (100) must be below kill_at_pct (100)" in out.getvalue()
    assert not (tmp_path / "cdk.out" / "ks-workload.template.json").exists()


def test_killswitch_config_env_wins_over_the_cdk_json_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KILLSWITCH_CONFIG", str(tmp_path / "missing.yaml"))
    out = io.StringIO()
    assert main(_app(tmp_path / "cdk.out", tmp_path / "killswitch.yaml"), out=out) == 1
    assert out.getvalue().startswith(f"{tmp_path / 'missing.yaml'}:1:1: KS000 cannot read config")


def test_scp_validator_errors_stop_synth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _project(tmp_path)
    bad = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*"}],
    }
    (tmp_path / "scp_policies" / "no-break-glass.json").write_text(json.dumps(bad, indent=2), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    assert main(_app(tmp_path / "cdk.out", config), out=out) == 1
    text = out.getvalue()
    assert "scp_policies/no-break-glass.json:" in text
    assert "SCP error(s) in scp_policies: fix them before synth" in text


def test_stack_input_errors_exit_1_naming_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _project(tmp_path, sandbox={**config_dict()["sandbox"], "management_account_id": None})
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    assert main(_app(tmp_path / "cdk.out", config), out=out) == 1
    assert out.getvalue().startswith(f"{config}: sandbox.workload_account_id is set")
