"""The meter handler's cold start imports only what a meter pass runs (it runs every minute: frequent cold starts).

Structural, never timed: a fresh interpreter imports `killswitch.handlers.meter` and reports what was loaded. From
the guard SDK the meter needs the price table only (`killswitch.guard.prices`, with the errors it raises); the kill
engine, the kill handler module and the alert model load on the first alert, not at import. Then, in a fresh
interpreter on moto, a pass without an alert still loads none of them and a pass that crosses the budget kills.
`python -m bench --only cold_start` prints the time itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.imports_support import modules_after_import

HANDLER = "killswitch.handlers.meter"
REPO = Path(__file__).resolve().parents[2]

# What the meter may load from the guard SDK: its price table and what that imports. Not the SDK (`guard`, `run`,
# `call`, `leasing`, the ledgers, the event model behind them).
GUARD_ALLOWED = {"killswitch.guard", *(f"killswitch.guard.{m}" for m in ("prices", "errors", "instrument"))}
# module prefix -> why the meter handler must not load it at import
LAZY = {
    "killswitch.handlers.kill": "the kill handler module loads with the engine, on the first alert",
    "killswitch.kill.engine": "the kill engine is built on the first alert (most meter passes raise none)",
    "killswitch.kill.wiring": "the engine factory loads with the engine",
    "killswitch.kill.accounts": "the hub path is the engine's",
    "killswitch.kill.act": "acting is the engine's",
    "killswitch.kill.alerts": "the alert model loads with the first alert the meter raises",
    "killswitch.events": "the guard event model (a pydantic schema) is the kill path's, not a meter pass's",
    "killswitch.cli": "the CLI is not in the Lambda asset",
    "killswitch.testing": "the moto builders are not in the Lambda asset",
    "yaml": "config files are YAML only for the CLI; the Lambda reads the synth-validated JSON",
    "moto": "test-only",
    "aws_lambda_powertools.utilities.typing": "LambdaContext is only a type annotation",
}


@pytest.fixture(scope="module")
def loaded() -> list[str]:
    return modules_after_import(HANDLER)


def test_the_handler_and_the_meter_are_loaded(loaded: list[str]) -> None:
    # guards the test itself: the subprocess really imported the handler's dependency tree
    assert {HANDLER, "killswitch.meter.service", "killswitch.guard.prices", "killswitch.kill.kinds.rds"} <= set(loaded)


def test_the_handler_loads_the_price_table_without_the_guard_sdk(loaded: list[str]) -> None:
    guard = {m for m in loaded if m == "killswitch.guard" or m.startswith("killswitch.guard.")}
    assert guard <= GUARD_ALLOWED, f"importing {HANDLER} loads guard SDK modules: {sorted(guard - GUARD_ALLOWED)}"


@pytest.mark.parametrize("prefix", sorted(LAZY))
def test_the_handler_does_not_load(loaded: list[str], prefix: str) -> None:
    found = [m for m in loaded if m == prefix or m.startswith(prefix + ".")]
    assert not found, f"importing {HANDLER} loads {found[:3]}: {LAZY[prefix]}"


def test_the_lazy_guard_package_keeps_every_public_name() -> None:
    code = (
        "import json, killswitch.guard as g; from killswitch.guard import *; "
        "print(json.dumps({n: f'{getattr(g, n).__module__}' for n in g.__all__ if hasattr(getattr(g, n), '__module__')}"
        " | {'missing': [n for n in g.__all__ if n not in dir(g)]}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names = json.loads(proc.stdout)
    assert names.pop("missing") == []
    assert names["Guard"] == "killswitch.guard.guard" and names["default_prices"] == "killswitch.guard.prices"
    assert names["instrument"] == "killswitch.guard.instrument"  # the function, not the submodule of that name
    with pytest.raises(AttributeError, match="no attribute 'NotAName'"):
        import killswitch.guard

        _ = killswitch.guard.NotAName  # type: ignore[attr-defined]


# A meter Lambda cold start on moto: the handler imported, a schedule (compute metering off: no alert), then a log
# batch whose $12 crosses the $10 budget. Prints whether the kill engine was loaded after each pass (nothing the
# script imports itself loads it).
COLD_START = """
import json, os, sys
import killswitch.handlers.meter as handler

import boto3
from killswitch.config import parse_config
from killswitch.kill.common import Clients
from killswitch.meter.records import encode_subscription_event, invocation_log
from killswitch.testing import sim

CONFIG = '''
regions: [us-east-1]
agents:
  - name: log-summarizer
    budget: {amount_usd: 10, period: MONTHLY}
    actions: [stop_ec2]
meter: {compute: false}
'''
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
context = type("Context", (), {"function_name": "meter", "memory_limit_in_mb": 256, "aws_request_id": "r-1",
                               "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:meter"})
with sim.moto_aws():
    sim.create_ledger_table(boto3.client("dynamodb"), "ledger")
    topic = boto3.client("sns").create_topic(Name="events")["TopicArn"]
    os.environ.update(KILLSWITCH_TABLE="ledger", KILLSWITCH_EVENTS_TOPIC_ARN=topic,
                      KILLSWITCH_CONFIG_JSON=parse_config(CONFIG, "meter.yaml").to_json())
    instance = sim.run_instance(Clients(), "us-east-1", sim.agent_tags("log-summarizer"))
    boto3.client("iam").create_role(RoleName="agent", AssumeRolePolicyDocument="{}",
                                    Tags=[{"Key": "agent-name", "Value": "log-summarizer"}])
    caller = "arn:aws:sts::123456789012:assumed-role/agent/run-1"
    tick = handler.handler({"detail-type": "Scheduled Event", "time": "2026-11-22T10:15:00Z"}, context())
    engine_after_tick = "killswitch.kill.engine" in sys.modules or "killswitch.kill.alerts" in sys.modules
    calls = [invocation_log(caller, SONNET, 1_000_000, 200_000, request_id=r) for r in ("r1", "r2")]  # $6.00 each
    batch = encode_subscription_event(
        [{"id": f"ev-{i}", "timestamp": 1763806500000, "message": json.dumps(c)} for i, c in enumerate(calls)]
    )
    out = handler.handler(batch, context())
    state = boto3.client("ec2").describe_instances(InstanceIds=[instance])
state = state["Reservations"][0]["Instances"][0]["State"]["Name"]
print(json.dumps({"tick": tick["note"], "engine_after_tick": engine_after_tick,
                  "engine_after_logs": "killswitch.kill.engine" in sys.modules,
                  "decisions": [d["operation"] for d in out["decisions"]], "instance": state}))
"""


def test_a_cold_start_loads_the_kill_engine_on_the_first_alert_only(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "offline",
        "AWS_SECRET_ACCESS_KEY": "offline",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.run(
        [sys.executable, "-c", COLD_START], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["tick"] == "compute metering is off"
    assert report["engine_after_tick"] is False
    assert report["engine_after_logs"] is True and report["decisions"] == ["kill"]
    assert report["instance"] == "stopped"
