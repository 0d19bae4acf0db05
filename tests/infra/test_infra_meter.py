"""The meter in the workload stack: log group (created or adopted), invocation logging, subscription, schedule,
least-privilege role. Off when the config has no `meter` section."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.workload_stack import WorkloadStack
from tests.infra.infra_support import (
    SANDBOX_A,
    as_list,
    flat,
    make_config,
    only,
    render,
    resources,
    statement,
    synth_app,
    write_scps,
)

METERED = make_config(prefix="metered", meter={"tick_minutes": 5})
ADOPTED = make_config(
    prefix="adopted",
    meter={"log_group_name": "/aws/bedrock/modelinvocations", "enable_invocation_logging": False, "compute": False},
)
PLAIN = make_config(prefix="plain")


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    base = tmp_path_factory.mktemp("meter")
    _, built = synth_app([METERED, ADOPTED, PLAIN], write_scps(base / "scp"), base / "cdk.out")
    out = {}
    for cfg, (workload, _) in zip([METERED, ADOPTED, PLAIN], built, strict=True):
        assert isinstance(workload, WorkloadStack)
        out[cfg.prefix] = Template.from_stack(workload)
    return out


def _meter_fn(t: Template) -> dict[str, Any]:
    (fn,) = [
        r
        for r in resources(t, "AWS::Lambda::Function").values()
        if r["Properties"].get("FunctionName") == "metered-meter"
        or r["Properties"].get("FunctionName") == "adopted-meter"
    ]
    return fn


def test_no_meter_section_no_meter(templates: dict[str, Template]) -> None:
    t = templates["plain"]
    names = [r["Properties"].get("FunctionName") for r in resources(t, "AWS::Lambda::Function").values()]
    assert "plain-meter" not in names
    assert resources(t, "AWS::Logs::SubscriptionFilter") == {}


def test_meter_function_handler_environment_and_concurrency(templates: dict[str, Template]) -> None:
    fn = _meter_fn(templates["metered"])["Properties"]
    assert fn["Handler"] == "killswitch.handlers.meter.handler" and fn["Runtime"] == "python3.13"
    assert fn["ReservedConcurrentExecutions"] == 5
    env = fn["Environment"]["Variables"]
    assert {"KILLSWITCH_TABLE", "KILLSWITCH_EVENTS_TOPIC_ARN", "KILLSWITCH_CONFIG_FILE"} <= set(env)
    assert env["POWERTOOLS_SERVICE_NAME"] == "metered-meter" and "KILLSWITCH_DLQ_URL" not in env


def test_created_log_group_is_encrypted_and_subscribed(templates: dict[str, Template]) -> None:
    t = templates["metered"]
    groups = [g["Properties"] for g in resources(t, "AWS::Logs::LogGroup").values()]
    (group,) = [g for g in groups if g["LogGroupName"] == "/metered/bedrock-invocations"]
    assert group["RetentionInDays"] == 30 and "KmsKeyId" in group
    sub = only(t, "AWS::Logs::SubscriptionFilter")["Properties"]
    assert sub["FilterPattern"] == "" and "MeterFunction" in flat(sub["DestinationArn"])
    perms = [p["Properties"] for p in resources(t, "AWS::Lambda::Permission").values()]
    assert any(p["Principal"] == "logs.amazonaws.com" and "MeterFunction" in flat(p["FunctionName"]) for p in perms)


def test_invocation_logging_is_turned_on_through_the_meter(templates: dict[str, Template]) -> None:
    t = templates["metered"]
    cr = only(t, "Custom::BedrockInvocationLogging")["Properties"]
    assert "MeterFunction" in flat(cr["ServiceToken"]) and "BedrockLoggingRole" in flat(cr["RoleArn"])
    roles = [r["Properties"] for r in resources(t, "AWS::IAM::Role").values()]
    (logging_role,) = [r for r in roles if "bedrock-logging" in flat(r.get("RoleName"))]
    (trust,) = logging_role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "bedrock.amazonaws.com"} and "aws:SourceAccount" in flat(
        trust["Condition"]
    )
    passrole = statement(t, "MeterPassLoggingRole")
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}
    assert "BedrockLoggingRole" in flat(passrole["Resource"])


def test_adopted_group_is_subscribed_and_nothing_is_created(templates: dict[str, Template]) -> None:
    t = templates["adopted"]
    sub = only(t, "AWS::Logs::SubscriptionFilter")["Properties"]
    assert sub["LogGroupName"] == "/aws/bedrock/modelinvocations"
    groups = [g["Properties"]["LogGroupName"] for g in resources(t, "AWS::Logs::LogGroup").values()]
    assert not any("bedrock" in flat(g) for g in groups)
    assert resources(t, "Custom::BedrockInvocationLogging") == {}
    rules = [
        r["Properties"]
        for r in resources(t, "AWS::Events::Rule").values()
        if "meter" in r["Properties"].get("Description", "")
    ]
    assert [r["State"] for r in rules] == ["DISABLED"]  # compute: false


def test_compute_tick_every_five_minutes(templates: dict[str, Template]) -> None:
    rules = [r["Properties"] for r in resources(templates["metered"], "AWS::Events::Rule").values()]
    (tick,) = [r for r in rules if r.get("ScheduleExpression") == "rate(5 minutes)"]
    assert tick["State"] == "ENABLED" and "MeterFunction" in flat(tick["Targets"])


def test_meter_role_reads_only_what_metering_needs(templates: dict[str, Template]) -> None:
    t = templates["metered"]
    tags = statement(t, "MeterCallerTags")
    assert sorted(as_list(tags["Action"])) == ["iam:ListRoleTags", "iam:ListUserTags"]
    assert [render(r) for r in tags["Resource"]] == [
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*",
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*",
    ]
    assert statement(t, "MeterInferenceProfiles")["Action"] == "bedrock:GetInferenceProfile"
    assert statement(t, "MeterPrices")["Action"] == "pricing:GetProducts"
    # the meter kills in-process: the same tag-conditioned writes as the kill Lambda, nothing untagged
    stop = [s for s in _meter_statements(t) if "ec2:StopInstances" in as_list(s["Action"])]
    assert stop and all(s["Condition"] == {"Null": {"aws:ResourceTag/agent-name": "false"}} for s in stop)
    assert not any("iam:Tag" in flat(s["Action"]) or "iam:Untag" in flat(s["Action"]) for s in _meter_statements(t))
    assert SANDBOX_A not in flat(_meter_statements(t))  # SCPs go through the org role, as for the kill Lambda


def _meter_statements(t: Template) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for res in resources(t, "AWS::IAM::Policy").values():
        if "Meter" in flat(res["Properties"].get("Roles")):
            out.extend(res["Properties"]["PolicyDocument"]["Statement"])
    return out
