"""Deploy-side defects of issue 15 (item 7) that the other template tests do not already pin down.

Covered elsewhere: shared-account pinning and the deny-SCP scoping (test_infra_variants), the exact kill role in
the org-kill trust (test_infra_management), RegisterScalableTarget conditions and the pinned Powertools layer
(test_infra_workload), refreshable org-kill credentials (tests/aws/test_org_credentials.py), the trimmed grants
(the IAM coverage run: tests/iam_coverage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.app_builder import add_stacks, new_app
from infra.workload_stack import StackConfigError
from tests.infra.infra_support import config_dict, make_config, write_scps

REPO = Path(__file__).resolve().parents[2]


def test_shared_account_mode_without_the_management_account_is_refused(tmp_path: Path) -> None:
    """Without either account id the stack would deploy anywhere, with Organizations grants on the wrong account."""
    sandbox = {**config_dict()["sandbox"], "management_account_id": None, "workload_account_id": None}
    with pytest.raises(StackConfigError) as info:
        add_stacks(
            new_app(str(tmp_path)), make_config(sandbox=sandbox), config_file="k.yaml", scp_dir=write_scps(tmp_path)
        )
    message = str(info.value)
    assert message.startswith("k.yaml: sandbox: set sandbox.management_account_id")
    assert "sandbox.workload_account_id" in message


def test_example_config_says_the_stack_creates_the_budget() -> None:
    """A deploy fails when a budget of that name exists, so the example must not call it "an existing budget"."""
    lines = (REPO / "killswitch.yaml").read_text(encoding="utf-8").splitlines()
    [line] = [text for text in lines if "budget_name:" in text]
    comment = line.split("#", 1)[1]
    assert "existing" not in comment
    assert "creates" in comment and "must not exist" in comment
