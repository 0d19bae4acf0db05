"""The management stack keeps `protect-kill-switch` attached to every sandbox account (issue 15); the other SCPs
are only attached by a kill."""

from __future__ import annotations

import shutil
from pathlib import Path

from aws_cdk.assertions import Template

from tests.infra.infra_support import SANDBOX_A, SANDBOX_B, make_config, resources, synth_app, write_scps

REPO = Path(__file__).resolve().parents[2]


def test_protect_kill_switch_is_attached_to_every_sandbox_account(tmp_path: Path) -> None:
    scp_dir = write_scps(tmp_path / "scp")
    shutil.copy(REPO / "scp_policies" / "protect-kill-switch.json", scp_dir)
    _, [(_, management)] = synth_app([make_config()], scp_dir, tmp_path / "cdk.out")
    assert management is not None
    policies = {
        p["Properties"]["Name"]: p["Properties"]
        for p in resources(Template.from_stack(management), "AWS::Organizations::Policy").values()
    }
    assert sorted(policies["ks-protect-kill-switch"]["TargetIds"]) == sorted([SANDBOX_A, SANDBOX_B])
    assert "TargetIds" not in policies["ks-deny-agent-compute"]  # attached by a kill, detached by restore
    assert "TargetIds" not in policies["ks-hard-freeze"]
