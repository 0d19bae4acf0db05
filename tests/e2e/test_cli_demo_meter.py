"""The demo's meter step: an agent with no guard stopped from its Bedrock logs (embedded moto backend)."""

from __future__ import annotations

import io

from rich.console import Console

from killswitch.cli.demo_meter import run_meter_step
from killswitch.config import load_config
from killswitch.testing.sim import offline_env
from tests.conftest import REPO


def test_meter_step_stops_the_agent_and_nothing_else() -> None:
    out = io.StringIO()
    with offline_env("us-east-1"):
        code = run_meter_step(Console(file=out, width=200), load_config(REPO / "killswitch.yaml"))
    text = out.getvalue()
    assert code == 0, text
    assert "warn: thrift" in text and "kill: done" in text
    assert "untagged_caller 5" not in text  # the untagged batch is its own pass, not in the table
    assert "malformed_json 1" in text
    assert "log-summarizer's instances: stopped, stopped" in text or "stopping, stopping" in text
