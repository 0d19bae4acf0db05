"""Workload stack template: encryption, topics, ledger, Lambdas, IAM, budgets, alarms, dashboard, outputs."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from killswitch import settings
from tests.infra.infra_support import (
    MANAGEMENT_ACCOUNT,
    as_list,
    logical_id,
    make_config,
    only,
    render,
    resources,
    statement,
    statements,
    synth_app,
    write_scps,
)

CONFIG = make_config()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synthed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Path]:
    base = tmp_path_factory.mktemp("workload")
    outdir = base / "cdk.out"
    _, [(workload, _)] = synth_app([CONFIG], write_scps(base / "scp"), outdir)
    return Template.from_stack(workload), outdir


@pytest.fixture(scope="module")
def template(synthed: tuple[Template, Path]) -> Template:
    return synthed[0]


def _ids(template: Template) -> dict[str, str]:
    return {
        "key": logical_id(template, "AWS::KMS::Key"),
        "kill_topic": logical_id(template, "AWS::SNS::Topic", TopicName="ks-kill"),
        "events_topic": logical_id(template, "AWS::SNS::Topic", TopicName="ks-events"),
        "kill_fn": logical_id(template, "AWS::Lambda::Function", FunctionName="ks-kill"),
        "spend_fn": logical_id(template, "AWS::Lambda::Function", FunctionName="ks-spend-recorder"),
        "dlq": logical_id(template, "AWS::SQS::Queue", QueueName="ks-kill-dlq"),
        "table": logical_id(template, "AWS::DynamoDB::Table", TableName="ks-ledger"),
    }


def _kill_fn(template: Template) -> dict[str, Any]:
    return resources(template, "AWS::Lambda::Function")[_ids(template)["kill_fn"]]["Properties"]


# -- KMS ----------------------------------------------------------------------------------------------------


def test_key_rotates_and_lets_budgets_and_anomaly_detection_encrypt(template: Template) -> None:
    key = only(template, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    stmts = key["Properties"]["KeyPolicy"]["Statement"]
    for service in ("budgets.amazonaws.com", "costalerts.amazonaws.com"):
        [stmt] = [s for s in stmts if s.get("Principal") == {"Service": service}]
        assert set(as_list(stmt["Action"])) == {"kms:GenerateDataKey*", "kms:Decrypt"}
        assert stmt["Effect"] == "Allow"
        assert stmt["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


# -- topics -------------------------------------------------------------------------------------------------


def _topic_policy_statements(template: Template, topic_id: str) -> list[dict[str, Any]]:
    policies = [
        p
        for p in resources(template, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]
    assert len(policies) == 1
    stmts: list[dict[str, Any]] = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    return stmts


def test_topics_are_encrypted_with_the_key(template: Template) -> None:
    ids = _ids(template)
    topics = resources(template, "AWS::SNS::Topic")
    for name in ("kill_topic", "events_topic"):
        assert topics[ids[name]]["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [ids["key"], "Arn"]}


@pytest.mark.parametrize(
    ("service", "source_arn"),
    [
        ("budgets.amazonaws.com", "arn:${AWS::Partition}:budgets::${AWS::AccountId}:*"),
        ("costalerts.amazonaws.com", "arn:${AWS::Partition}:ce::${AWS::AccountId}:anomalysubscription/*"),
    ],
)
def test_kill_topic_accepts_budgets_and_anomalies_from_this_account_only(
    template: Template, service: str, source_arn: str
) -> None:
    ids = _ids(template)
    stmts = _topic_policy_statements(template, ids["kill_topic"])
    [stmt] = [s for s in stmts if s.get("Principal") == {"Service": service}]
    assert stmt["Effect"] == "Allow"
    assert [a.lower() for a in as_list(stmt["Action"])] == ["sns:publish"]
    assert stmt["Resource"] == {"Ref": ids["kill_topic"]}
    assert render(stmt["Condition"]) == {
        "StringEquals": {"aws:SourceAccount": "${AWS::AccountId}"},
        "ArnLike": {"aws:SourceArn": source_arn},
    }


@pytest.mark.parametrize("topic", ["kill_topic", "events_topic"])
def test_topics_deny_publish_without_tls(template: Template, topic: str) -> None:
    stmts = _topic_policy_statements(template, _ids(template)[topic])
    denies = [s for s in stmts if s["Effect"] == "Deny" and s.get("Sid") != "OnlyAwsServicesPublish"]
    assert denies and all(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_only_aws_services_and_tls_statements_on_kill_topic(template: Template) -> None:
    """No account-wide or public publish grant sneaks into the topic policy."""
    stmts = _topic_policy_statements(template, _ids(template)["kill_topic"])
    allows = [s for s in stmts if s["Effect"] == "Allow"]
    assert {s["Principal"]["Service"] for s in allows} == {"budgets.amazonaws.com", "costalerts.amazonaws.com"}


def test_events_topic_accepts_this_stacks_alarms_only(template: Template) -> None:
    stmts = _topic_policy_statements(template, _ids(template)["events_topic"])
    allows = [s for s in stmts if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allows] == [{"Service": "cloudwatch.amazonaws.com"}]
    assert render(allows[0]["Condition"]) == {
        "StringEquals": {"aws:SourceAccount": "${AWS::AccountId}"},
        "ArnLike": {"aws:SourceArn": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:ks-*"},
    }
    alarm_names = [a["Properties"]["AlarmName"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    assert alarm_names and all(name.startswith("ks-") for name in alarm_names)


def test_events_topic_has_one_email_subscription_per_address(template: Template) -> None:
    events_topic = _ids(template)["events_topic"]
    emails = sorted(
        s["Properties"]["Endpoint"]
        for s in resources(template, "AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "email" and s["Properties"]["TopicArn"] == {"Ref": events_topic}
    )
    assert emails == sorted(CONFIG.notify.emails)


# -- ledger -------------------------------------------------------------------------------------------------


def test_ledger_table(template: Template) -> None:
    ids = _ids(template)
    table = resources(template, "AWS::DynamoDB::Table")[ids["table"]]
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Fn::GetAtt": [ids["key"], "Arn"]},
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


# -- kill Lambda --------------------------------------------------------------------------------------------


def test_kill_lambda_runtime_handler_and_sizing(template: Template) -> None:
    props = _kill_fn(template)
    assert props["Runtime"] == "python3.13"
    assert props["Handler"] == "killswitch.handlers.kill.handler"
    assert props["MemorySize"] == 512
    assert props["Timeout"] == 300
    assert 1 <= props["ReservedConcurrentExecutions"] <= 10
    assert props["LoggingConfig"]["LogFormat"] == "JSON"


def test_powertools_layer_is_pinned_to_the_release_the_tests_use(template: Template) -> None:
    """The versioned public SSM parameter of the Powertools release in requirements.txt (and installed), never
    `latest`, which would deploy an untested release."""
    pinned = next(
        line.split("==", 1)[1].strip()
        for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.startswith("aws-lambda-powertools==")
    )
    assert pinned == importlib.metadata.version("aws-lambda-powertools")
    [layer] = [ref for ref in _kill_fn(template)["Layers"] if ref["Ref"] in template.to_json().get("Parameters", {})]
    param = layer["Ref"]
    assert template.to_json()["Parameters"][param] == {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": f"/aws/service/powertools/python/x86_64/python3.13/{pinned}",
    }


def test_kill_lambda_environment(template: Template) -> None:
    ids = _ids(template)
    env = _kill_fn(template)["Environment"]["Variables"]
    assert env[settings.ENV_TABLE] == {"Ref": ids["table"]}
    assert env[settings.ENV_EVENTS_TOPIC] == {"Ref": ids["events_topic"]}
    assert env[settings.ENV_KILL_TOPIC] == {"Ref": ids["kill_topic"]}
    assert settings.ENV_CONFIG_JSON not in env
    assert env[settings.ENV_CONFIG_FILE] == "/opt/killswitch/config.json"
    assert env[settings.ENV_ORG_ROLE] == f"arn:aws:iam::{MANAGEMENT_ACCOUNT}:role/ks-org-kill"
    assert env[settings.ENV_SCP_POLICY_NAME] == "ks-deny-agent-compute" == CONFIG.scp_policy_name()
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "AgentKillSwitch"
    assert env["POWERTOOLS_SERVICE_NAME"] == "ks-kill"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    # Rejected alerts go to the DLQ: the URL names exactly the stack's dead-letter queue.
    queue_name = resources(template, "AWS::SQS::Queue")[ids["dlq"]]["Properties"]["QueueName"]
    assert queue_name == "ks-kill-dlq"
    region, suffix, account = ({"Ref": f"AWS::{name}"} for name in ("Region", "URLSuffix", "AccountId"))
    url_parts = ["https://sqs.", region, ".", suffix, "/", account, f"/{queue_name}"]
    assert env[settings.ENV_DLQ_URL] == {"Fn::Join": ["", url_parts]}


def test_both_lambdas_read_the_config_from_one_layer(synthed: tuple[Template, Path]) -> None:
    """The layer's content, extracted under /opt as Lambda does, is the validated config the Lambdas load."""
    template, outdir = synthed
    [(layer_id, layer)] = resources(template, "AWS::Lambda::LayerVersion").items()
    functions = resources(template, "AWS::Lambda::Function").values()
    assert all({"Ref": layer_id} in f["Properties"]["Layers"] for f in functions) and len(functions) == 2
    asset_hash = layer["Properties"]["Content"]["S3Key"].removesuffix(".zip")
    asset_dir = outdir / f"asset.{asset_hash}"
    assert sorted(p.relative_to(asset_dir).as_posix() for p in asset_dir.rglob("*") if p.is_file()) == [
        "killswitch/config.json"
    ]
    env = {
        settings.ENV_TABLE: "t",
        settings.ENV_EVENTS_TOPIC: "arn:aws:sns:us-east-1:111122223333:ks-events",
        settings.ENV_CONFIG_FILE: str(asset_dir / "killswitch/config.json"),
    }
    assert settings.KillSwitchEnv.from_env(env).config == CONFIG


def test_kill_lambda_subscribed_to_kill_topic_with_dead_letter_queue(template: Template) -> None:
    ids = _ids(template)
    dlq_arn = {"Fn::GetAtt": [ids["dlq"], "Arn"]}
    assert _kill_fn(template)["DeadLetterConfig"] == {"TargetArn": dlq_arn}
    [sub] = [
        s["Properties"]
        for s in resources(template, "AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "lambda"
    ]
    assert sub["TopicArn"] == {"Ref": ids["kill_topic"]}
    assert sub["Endpoint"] == {"Fn::GetAtt": [ids["kill_fn"], "Arn"]}
    assert sub["RedrivePolicy"] == {"deadLetterTargetArn": dlq_arn}


def test_dead_letter_queue_is_encrypted_and_tls_only(template: Template) -> None:
    ids = _ids(template)
    queue = resources(template, "AWS::SQS::Queue")[ids["dlq"]]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [ids["key"], "Arn"]}
    [policy] = [
        p
        for p in resources(template, "AWS::SQS::QueuePolicy").values()
        if {"Ref": ids["dlq"]} in p["Properties"]["Queues"]  # the guard intake queue has its own (test_infra_intake)
    ]
    policy_stmts = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy_stmts
    )
    # SNS may deliver failed kill alerts to it (subscription redrive).
    assert any(s["Effect"] == "Allow" and s["Principal"] == {"Service": "sns.amazonaws.com"} for s in policy_stmts)


# -- kill IAM -----------------------------------------------------------------------------------------------

TAG_CONDITION = {"Null": {"aws:ResourceTag/agent-name": "false"}}
WRITE_ACTIONS = {
    "ec2:StopInstances": TAG_CONDITION,
    "ec2:StartInstances": TAG_CONDITION,
    "ecs:UpdateService": TAG_CONDITION,
    "ecs:StopTask": TAG_CONDITION,
    "autoscaling:UpdateAutoScalingGroup": {"Null": {"autoscaling:ResourceTag/agent-name": "false"}},
    "autoscaling:SuspendProcesses": {"Null": {"autoscaling:ResourceTag/agent-name": "false"}},
    "autoscaling:ResumeProcesses": {"Null": {"autoscaling:ResourceTag/agent-name": "false"}},
    "lambda:PutFunctionConcurrency": TAG_CONDITION,
    "lambda:DeleteFunctionConcurrency": TAG_CONDITION,
}
DENY_CONDITION = {
    **TAG_CONDITION,
    "ArnEquals": {"iam:PolicyARN": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/ks-deny-agent"},
}


@pytest.mark.parametrize(("action", "condition"), sorted(WRITE_ACTIONS.items()))
def test_every_grant_of_a_stop_action_requires_the_agent_tag(template: Template, action: str, condition: Any) -> None:
    grants = [s for s in statements(template) if s["Effect"] == "Allow" and action in as_list(s["Action"])]
    assert grants, f"{action} is not granted at all"
    assert all(s.get("Condition") == condition for s in grants)


def test_iam_deny_attaches_only_the_deny_policy_to_tagged_principals(template: Template) -> None:
    deny = statement(template, "DenyTaggedPrincipals")
    assert set(deny["Action"]) == {
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:AttachUserPolicy",
        "iam:DetachUserPolicy",
    }
    assert {k: {kk: render(vv) for kk, vv in v.items()} for k, v in deny["Condition"].items()} == DENY_CONDITION
    grants = [s for s in statements(template) if "iam:AttachRolePolicy" in as_list(s["Action"])]
    assert grants == [deny]
    policies = [
        p["Properties"]
        for p in resources(template, "AWS::IAM::ManagedPolicy").values()
        if p["Properties"].get("ManagedPolicyName") == "ks-deny-agent"
    ]
    assert policies and policies[0]["PolicyDocument"]["Statement"] == [
        {"Sid": "KillSwitchDenyEverything", "Effect": "Deny", "Action": "*", "Resource": "*"}
    ]


def test_tagged_write_statements(template: Template) -> None:
    ec2 = statement(template, "StopStartTaggedInstances")
    assert sorted(ec2["Action"]) == ["ec2:StartInstances", "ec2:StopInstances"]
    assert render(ec2["Resource"]) == "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:instance/*"
    ecs = statement(template, "ScaleStopTaggedEcs")
    assert sorted(render(r) for r in ecs["Resource"]) == [
        "arn:${AWS::Partition}:ecs:*:${AWS::AccountId}:service/*",
        "arn:${AWS::Partition}:ecs:*:${AWS::AccountId}:task/*",
    ]


def test_discovery_app_autoscaling_and_kms_grant(template: Template) -> None:
    discover = statement(template, "Discover")
    # The reads the kill makes (IAM coverage trace), no Describe*/List* families; the kinds add their own.
    assert set(discover["Action"]) >= {
        "tag:GetResources",
        "ec2:DescribeInstances",
        "ecs:DescribeServices",
        "ecs:DescribeTasks",
        "autoscaling:DescribeAutoScalingGroups",
        "application-autoscaling:DescribeScalableTargets",
    }
    # Discovery is read-only: every action the kinds add there lists, describes or gets.
    assert all(a.split(":")[1].startswith(("List", "Describe", "Get")) for a in discover["Action"])
    scaling = statement(template, "EcsServiceScaling")
    assert scaling["Action"] == "application-autoscaling:RegisterScalableTarget"
    # Resource "*" (no resource-level permissions): only ECS service desired counts, nothing else scalable.
    assert scaling["Condition"] == {
        "StringEquals": {
            "application-autoscaling:service-namespace": "ecs",
            "application-autoscaling:scalable-dimension": "ecs:service:DesiredCount",
        }
    }
    grant = statement(template, "RestartEncryptedVolumes")
    assert grant["Action"] == "kms:CreateGrant"
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_kill_role_assumes_org_role_and_has_no_direct_organizations_access(template: Template) -> None:
    assume = statement(template, "AssumeOrgKillRole")
    assert assume["Action"] == "sts:AssumeRole"
    assert assume["Resource"] == f"arn:aws:iam::{MANAGEMENT_ACCOUNT}:role/ks-org-kill"
    assert not [a for s in statements(template) for a in as_list(s["Action"]) if a.startswith("organizations:")]


def test_kill_role_name_matches_the_org_role_trust_pattern(template: Template) -> None:
    role_names = [render(r["Properties"].get("RoleName")) for r in resources(template, "AWS::IAM::Role").values()]
    assert "ks-kill-${AWS::Region}" in role_names


def test_kill_role_writes_ledger_and_publishes_results(template: Template) -> None:
    ids = _ids(template)
    allowed = [
        (a, render(r))
        for s in statements(template)
        if s["Effect"] == "Allow"
        for a in as_list(s["Action"])
        for r in as_list(s["Resource"])
    ]
    assert ("sns:Publish", f"${{{ids['events_topic']}}}") in allowed
    assert ("dynamodb:PutItem", f"${{{ids['table']}.Arn}}") in allowed
    assert ("sqs:SendMessage", f"${{{ids['dlq']}.Arn}}") in allowed  # rejected alerts are forwarded to the DLQ


def test_function_roles_get_only_the_ledger_and_queue_actions_their_code_calls(template: Template) -> None:
    """Trimmed from CDK's read/write grants to what the IAM coverage trace shows (and the code calls)."""
    ids = _ids(template)
    table = f"${{{ids['table']}.Arn}}"
    on_table: dict[str, set[str]] = {}
    for res in resources(template, "AWS::IAM::Policy").values():
        role = render(res["Properties"]["Roles"][0])
        for s in res["Properties"]["PolicyDocument"]["Statement"]:
            if table in [render(r) for r in as_list(s["Resource"])]:
                on_table.setdefault(role, set()).update(as_list(s["Action"]))
    kill_role, spend_role = (f"${{{r}}}" for r in _function_roles(template))
    assert on_table[kill_role] == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    }
    assert on_table[spend_role] == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    # Queues: send to the DLQ (rejected alerts); consume the guard intake queue (its event source mapping) only.
    [intake] = [
        qid
        for qid, q in resources(template, "AWS::SQS::Queue").items()
        if str(q["Properties"].get("QueueName", "")).endswith("guard-intake")
    ]
    consume = {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }
    for s in statements(template):
        sqs = {a for a in as_list(s["Action"]) if a.startswith("sqs:")}
        if not sqs:
            continue
        targets = as_list(s["Resource"])
        if targets == [{"Fn::GetAtt": [ids["dlq"], "Arn"]}]:
            assert sqs == {"sqs:SendMessage"}
        else:
            assert targets == [{"Fn::GetAtt": [intake, "Arn"]}] and sqs <= consume, s


def _function_roles(template: Template) -> tuple[str, str]:
    by_handler = {
        f["Properties"]["Handler"]: f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in resources(template, "AWS::Lambda::Function").values()
    }
    return by_handler["killswitch.handlers.kill.handler"], by_handler["killswitch.handlers.spend_recorder.handler"]


def test_no_managed_policies_on_function_roles(template: Template) -> None:
    for role in resources(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_lambda_asset_ships_the_package_without_caches(synthed: tuple[Template, Path]) -> None:
    _, outdir = synthed
    [asset] = [p for p in outdir.glob("asset.*") if (p / "killswitch" / "__init__.py").is_file()]
    assert (asset / "killswitch" / "config.py").is_file()
    assert (asset / "killswitch" / "handlers").is_dir()
    assert not list(asset.rglob("__pycache__"))
    assert not list(asset.glob("*.egg-info"))


# -- spend recorder -----------------------------------------------------------------------------------------


def test_spend_recorder_runs_daily_at_six_utc(template: Template) -> None:
    ids = _ids(template)
    (rule,) = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if r["Properties"].get("ScheduleExpression", "").startswith("cron(")
    ]
    assert rule["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": [ids["spend_fn"], "Arn"]}]
    fn = resources(template, "AWS::Lambda::Function")[ids["spend_fn"]]["Properties"]
    assert fn["Handler"] == "killswitch.handlers.spend_recorder.handler"
    assert fn["Runtime"] == "python3.13"
    assert statement(template, "ReadCosts")["Action"] == "ce:GetCostAndUsage"
    # Exactly what `SpendRecorderEnv` reads: no topic ARNs it would never use.
    env = fn["Environment"]["Variables"]
    assert env[settings.ENV_TABLE] == {"Ref": ids["table"]}
    assert settings.ENV_CONFIG_FILE in env and settings.ENV_CONFIG_JSON not in env  # the config rides in a layer
    assert settings.ENV_EVENTS_TOPIC not in env and settings.ENV_KILL_TOPIC not in env


# -- alarms and dashboard -----------------------------------------------------------------------------------


def test_alarms_on_kill_errors_and_dead_letters_notify_events_topic(template: Template) -> None:
    ids = _ids(template)
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {"Errors", "ApproximateNumberOfMessagesVisible"}
    errors = alarms["Errors"]
    assert errors["Namespace"] == "AWS/Lambda"
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": ids["kill_fn"]}}]
    dlq = alarms["ApproximateNumberOfMessagesVisible"]
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [ids["dlq"], "QueueName"]}}]
    for alarm in alarms.values():
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmActions"] == [{"Ref": ids["events_topic"]}]


def _expressions(graph: dict[str, Any]) -> list[str]:
    return [m[0]["expression"] for m in graph["metrics"] if isinstance(m[0], dict) and "expression" in m[0]]


def test_dashboard_shows_spend_per_agent_against_budget_and_the_kill_metrics(template: Template) -> None:
    dash = only(template, "AWS::CloudWatch::Dashboard")["Properties"]
    assert dash["DashboardName"] == "ks-agents"
    body = json.loads(render(dash["DashboardBody"]))
    graphs = [w["properties"] for w in body["widgets"] if w["type"] == "metric"]
    for agent in CONFIG.agents:
        [spend] = [g for g in graphs if g.get("title", "").startswith(f"{agent.name}:")]
        assert (
            f'SEARCH(\'Namespace="AgentKillSwitch" MetricName="AgentSpendUSD" agent="{agent.name}"\', '
            "'Maximum', 86400)" in _expressions(spend)
        )
        assert [a["value"] for a in spend["annotations"]["horizontal"]] == [agent.budget.amount_usd]
    expressions = [e for g in graphs for e in _expressions(g)]
    assert all(e.startswith('SEARCH(\'Namespace="AgentKillSwitch" MetricName=') for e in expressions)
    shown = {e.split('MetricName="')[1].split('"')[0] for e in expressions}
    assert shown == {
        "AgentSpendUSD",
        "AgentBudgetPct",
        "KillsExecuted",
        "ResourcesStopped",
        "ResourceFailures",
        "GuardDenials",
        "AgentsInThrift",
        "AlertsRejected",
    }


# -- guard policy and outputs -------------------------------------------------------------------------------


def test_guard_publisher_policy_limits_ledger_access_to_the_callers_own_partition(template: Template) -> None:
    ids = _ids(template)
    [policy] = [
        r["Properties"]
        for r in resources(template, "AWS::IAM::ManagedPolicy").values()
        if r["Properties"]["ManagedPolicyName"] == "ks-guard-publisher"
    ]
    stmts = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert stmts["PublishGuardEvents"]["Action"] == "sns:Publish"  # guard topics only: see test_infra_intake.py
    assert {"Ref": ids["kill_topic"]} not in as_list(stmts["PublishGuardEvents"]["Resource"])
    ledger = stmts["GuardLedgerItems"]
    assert ledger["Resource"] == {"Fn::GetAtt": [ids["table"], "Arn"]}
    # Only the caller's own partition (its agent-name principal tag), never SPEND#/AGENT#/KILL# items.
    assert ledger["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["GUARD#${aws:PrincipalTag/agent-name}"]}
    }
    # Only what the guard SDK calls: no deletes, batch writes or condition checks.
    assert sorted(ledger["Action"]) == [
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ]


def test_outputs(template: Template) -> None:
    ids = _ids(template)
    outputs = template.to_json()["Outputs"]
    assert outputs["KillTopicArn"]["Value"] == {"Ref": ids["kill_topic"]}
    assert outputs["EventsTopicArn"]["Value"] == {"Ref": ids["events_topic"]}
    assert outputs["LedgerTableName"]["Value"] == {"Ref": ids["table"]}


# -- watch ------------------------------------------------------------------------------------------------------


def test_watch_rule_sends_compute_start_events_and_a_recheck_to_the_kill_lambda(template: Template) -> None:
    rules = {r["Properties"].get("Name"): r["Properties"] for r in resources(template, "AWS::Events::Rule").values()}
    watch = rules["ks-watch"]
    pattern = watch["EventPattern"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    assert {"RunInstances", "StartInstances", "RunTask", "UpdateService", "UpdateAutoScalingGroup"} <= set(
        pattern["detail"]["eventName"]
    )
    assert all(s.startswith("aws.") for s in pattern["source"])
    assert len(watch["Targets"]) == 1 and "DeadLetterConfig" in watch["Targets"][0]
    assert watch["Targets"][0]["Arn"] == {"Fn::GetAtt": [_ids(template)["kill_fn"], "Arn"]}
    recheck = rules["ks-recheck"]
    assert recheck["ScheduleExpression"] == "rate(15 minutes)"
    assert json.loads(recheck["Targets"][0]["Input"]) == {"killswitch": "recheck"}
    assert recheck["Targets"][0]["Arn"] == watch["Targets"][0]["Arn"]
