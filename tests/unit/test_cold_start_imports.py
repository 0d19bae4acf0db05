"""The kill handler's cold start imports only what every invocation needs (issue 14 item 8).

Structural, never timed: a fresh interpreter imports the handler module, then reports which of the modules that
only some paths need (or that never run in Lambda) were loaded. Each of them costs import (and, in the read-only
Lambda code directory, bytecode compile) time on every cold start. `python -m bench --only cold_start` prints the
time itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.imports_support import modules_after_import

HANDLER = "killswitch.handlers.kill"
REPO = Path(__file__).resolve().parents[2]

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


# A cold start as the deployed kill Lambda has it: the handler imported, the synth-written config file read from
# the layer, one budget alert handled (moto, after the import). Prints what the config models built meanwhile.
COLD_START = """
import json, os, sys
import killswitch.handlers.kill as handler
from killswitch import config

import boto3
from killswitch.testing import sim
from killswitch.kill.common import Clients

with sim.moto_aws():
    sim.create_ledger_table(boto3.client("dynamodb"), "ledger")
    topic = boto3.client("sns").create_topic(Name="events")["TopicArn"]
    os.environ.update(KILLSWITCH_TABLE="ledger", KILLSWITCH_EVENTS_TOPIC_ARN=topic)
    instance = sim.run_instance(Clients(), "us-east-1", sim.agent_tags("log-summarizer"))
    letter = sim.budgets_letter("killswitch-log-summarizer", 530.0, 500.0, 500.0)
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"MessageId": "m-1", "Message": letter,
             "TopicArn": "arn:aws:sns:us-east-1:123456789012:killswitch-kill"}}]}
    context = type("Context", (), {"function_name": "kill", "memory_limit_in_mb": 256, "aws_request_id": "r-1",
                                   "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:kill"})
    out = handler.handler(event, context())
    state = boto3.client("ec2").describe_instances(InstanceIds=[instance])
state = state["Reservations"][0]["Instances"][0]["State"]["Name"]
built = sorted(name for name, model in vars(config).items()
               if isinstance(model, type) and issubclass(model, config.BaseModel) and model.__pydantic_complete__)
print(json.dumps({"results": out["results"], "instance": state, "schemas_built": built}))
"""


def test_a_cold_start_with_the_shipped_config_kills_without_building_a_config_schema(tmp_path: Path) -> None:
    from killswitch.config import load_config
    from killswitch.runtime_config import runtime_json

    layer_file = tmp_path / "config.json"  # what synth writes into the config layer
    layer_file.write_text(runtime_json(load_config(REPO / "killswitch.yaml")), encoding="utf-8")
    env = {
        **os.environ,
        "KILLSWITCH_CONFIG_FILE": str(layer_file),
        "AWS_ACCESS_KEY_ID": "offline",
        "AWS_SECRET_ACCESS_KEY": "offline",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }
    env.pop("KILLSWITCH_CONFIG_JSON", None)
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.run([sys.executable, "-c", COLD_START], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    (result,) = report["results"]
    assert result["operation"] == "kill" and result["agent"] == "log-summarizer"
    assert report["instance"] == "stopped"
    assert report["schemas_built"] == []  # the config was never validated in the Lambda
