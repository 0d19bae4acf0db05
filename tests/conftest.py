"""Shared fixtures. Feature-specific helpers live beside their tests (tests/<kind>/<feature>_*.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from killswitch.config import KillSwitchConfig, load_config

REPO = Path(__file__).resolve().parents[1]
# Every AWS call the Lambdas make in these tests must be allowed by their synthesized roles (tests/iam_coverage).
pytest_plugins = ["tests.iam_coverage.plugin"]


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test may reach real AWS: fake credentials, a default region, no endpoint override, no metadata."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "KILLSWITCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "KillSwitchTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "killswitch-test")
    yield


EXAMPLE_CONFIG = REPO / "tests" / "fixtures" / "example-config.yaml"


@pytest.fixture(scope="session")
def example_config() -> KillSwitchConfig:
    """The tests' own config (two agents, two regions, a sandbox account): not the shipped killswitch.yaml."""
    return load_config(EXAMPLE_CONFIG)
