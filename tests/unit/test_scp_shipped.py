"""The SCP files we ship validate clean against the example config's break-glass roles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from killswitch.config import KillSwitchConfig
from killswitch.scp.validator import MAX_SCP_CHARS, errors, minify, validate_path

REPO = Path(__file__).resolve().parents[2]
SCP_DIR = REPO / "scp_policies"
SHIPPED = sorted(SCP_DIR.glob("*.json"))


def test_the_three_policies_are_shipped() -> None:
    assert [p.name for p in SHIPPED] == ["deny-agent-compute.json", "hard-freeze.json", "protect-kill-switch.json"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policy_has_no_findings(path: Path, example_config: KillSwitchConfig) -> None:
    assert example_config.sandbox is not None
    findings = validate_path(path, list(example_config.sandbox.break_glass_role_arns))
    assert findings == []


def test_directory_validation_covers_every_file() -> None:
    assert errors(validate_path(SCP_DIR)) == []
    assert errors(validate_path(SCP_DIR, ["arn:aws:iam::*:role/SomeOtherBreakGlass"]))  # not exempted there


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policy_fits_well_under_the_limit(path: Path) -> None:
    assert len(minify(json.loads(path.read_text()))) < 0.9 * MAX_SCP_CHARS
