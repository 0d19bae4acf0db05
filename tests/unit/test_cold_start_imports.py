"""The kill handler's cold start imports only what every invocation needs (issue 14 item 8).

Structural, never timed: a fresh interpreter imports the handler module, then reports which of the modules that
only some paths need (or that never run in Lambda) were loaded. Each of them costs import (and, in the read-only
Lambda code directory, bytecode compile) time on every cold start. `python -m bench --only cold_start` prints the
time itself.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HANDLER = "killswitch.handlers.kill"

# module prefix -> why the kill handler must not load it at import
LAZY = {
    "yaml": "config files are YAML only for the CLI; the Lambda reads the synth-validated JSON",
    "killswitch.cli": "the CLI is not in the Lambda asset",
    "killswitch.testing": "the moto builders are not in the Lambda asset",
    "killswitch.scp": "the SCP/IAM validators are not in the Lambda asset",
    "killswitch.sandbox": "the sandbox organization is offline tooling",
    "killswitch.meter": "price tables load on the first SageMaker endpoint scan only",
    "killswitch.guard": "the guard SDK runs in the agent, not in the kill Lambda",
    "moto": "test-only",
    "aws_xray_sdk": "tracing is not used by the kill Lambda",
    "aws_lambda_powertools.utilities.parser": "the kill Lambda parses its events itself",
    "aws_lambda_powertools.utilities.typing": "LambdaContext is only a type annotation",
}


def modules_after_import(module: str) -> list[str]:
    code = f"import sys, json; import {module}; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(proc.stdout))


@pytest.fixture(scope="module")
def loaded() -> list[str]:
    return modules_after_import(HANDLER)


def test_the_handler_and_its_engine_are_loaded(loaded: list[str]) -> None:
    # guards the test itself: the subprocess really imported the handler's dependency tree
    assert {HANDLER, "killswitch.kill.engine", "killswitch.kill.kinds.sagemaker", "boto3"} <= set(loaded)


@pytest.mark.parametrize("prefix", sorted(LAZY))
def test_the_handler_does_not_load(loaded: list[str], prefix: str) -> None:
    found = [m for m in loaded if m == prefix or m.startswith(prefix + ".")]
    assert not found, f"importing {HANDLER} loads {found[:3]}: {LAZY[prefix]}"
