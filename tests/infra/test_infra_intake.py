"""Issue 15 items 2, 3, 6 in the workload template: who may publish where, and the guard path's own concurrency."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.constructs.kill_function import KILL_RESERVED_CONCURRENCY
from killswitch.intakes import guard_topic_name
from tests.infra.infra_support import (
    as_list,
    config_dict,
    logical_id,
    make_config,
    only,
    render,
    resources,
    synth_app,
    write_scps,
)

AGENTS = ["summarizer", "crawler", "triage.bot@v2"]  # the last one has characters SNS topic names refuse


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Template]:
    """The workload template and the (one) budget stack's, which holds the agents' guard topics."""
    base = tmp_path_factory.mktemp("intake")
    data = config_dict()
    extra = {**data["agents"][0], "name": "triage.bot@v2", "sandbox_accounts": []}
    config = make_config(agents=[*data["agents"], extra])
    _, [(workload, _)] = synth_app([config], write_scps(base / "scp"), base / "cdk.out")
    [budget_stack] = workload.budget_stacks
    return Template.from_stack(workload), Template.from_stack(budget_stack)


@pytest.fixture(scope="module")
def template(stacks: tuple[Template, Template]) -> Template:
    return stacks[0]


@pytest.fixture(scope="module")
def agent_stack(stacks: tuple[Template, Template]) -> Template:
    return stacks[1]


def _topic_id(template: Template, name: str) -> str:
    return logical_id(template, "AWS::SNS::Topic", TopicName=name)


def _topic_policy(template: Template, topic_id: str) -> list[dict[str, Any]]:
    [policy] = [
        p
        for p in resources(template, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def _kill_fn(template: Template) -> str:
    return logical_id(template, "AWS::Lambda::Function", FunctionName="ks-kill")


def _guard_queue(template: Template) -> str:
    return logical_id(template, "AWS::SQS::Queue", QueueName="ks-guard-intake")


# -- item 2: the alerts topic takes AWS services only ---------------------------------------------------------


def test_alerts_topic_denies_every_publisher_that_is_not_an_aws_service(template: Template) -> None:
    stmts = _topic_policy(template, _topic_id(template, "ks-kill"))
    [deny] = [s for s in stmts if s.get("Sid") == "OnlyAwsServicesPublish"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert [a.lower() for a in as_list(deny["Action"])] == ["sns:publish"]
    # Missing key counts as "not a service" (IfExists): an agent role can never publish, whatever its IAM policy.
    assert deny["Condition"] == {"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}
    allows = [s for s in stmts if s["Effect"] == "Allow"]
    assert {s["Principal"]["Service"] for s in allows} == {"budgets.amazonaws.com", "costalerts.amazonaws.com"}
    assert all("aws:SourceAccount" in s["Condition"]["StringEquals"] for s in allows)


def test_guard_publisher_policy_cannot_reach_the_alerts_topic(template: Template) -> None:
    [policy] = [
        p
        for p in resources(template, "AWS::IAM::ManagedPolicy").values()
        if p["Properties"]["ManagedPolicyName"] == "ks-guard-publisher"
    ]
    stmts = policy["Properties"]["PolicyDocument"]["Statement"]
    publish = [s for s in stmts if "sns:Publish" in as_list(s["Action"])]
    assert len(publish) == 1
    # The guard topics by name (each one's policy admits only its agent); `ks-kill` does not match `ks-guard-*`.
    assert render(publish[0]["Resource"]) == "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:ks-guard-*"


# -- item 3: one guard topic per agent, only that agent publishes ---------------------------------------------


@pytest.mark.parametrize("agent", AGENTS)
def test_each_agent_has_a_guard_topic_only_its_own_principals_may_publish_to(
    template: Template, agent_stack: Template, agent: str
) -> None:
    assert resources(template, "AWS::SNS::Topic").keys().isdisjoint(resources(agent_stack, "AWS::SNS::Topic"))
    topic_id = _topic_id(agent_stack, guard_topic_name("ks", agent))
    topic = resources(agent_stack, "AWS::SNS::Topic")[topic_id]["Properties"]
    # The workload stack's key, by its alias: no cross-stack export ties the two stacks together.
    key = render(topic["KmsMasterKeyId"])
    assert key.startswith("arn:${AWS::Partition}:kms:") and key.endswith(":alias/ks"), key
    assert only(template, "AWS::KMS::Alias")["Properties"]["AliasName"] == "alias/ks"
    stmts = _topic_policy(agent_stack, topic_id)
    assert [s for s in stmts if s["Effect"] == "Allow"] == []  # same-account IAM grants only (guard-publisher)
    [deny] = [s for s in stmts if s.get("Sid") == "OnlyThisAgentPublishes"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert deny["Resource"] == {"Ref": topic_id}
    # Exact, case-sensitive match; an untagged principal (key missing) is denied too.
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalTag/agent-name": agent}}


def test_guard_topic_names_are_valid_and_distinct() -> None:
    names = {guard_topic_name("ks", a) for a in [*AGENTS, "triage-bot-v2", "triage.bot+v2"]}
    assert len(names) == len(AGENTS) + 2
    assert all(n.replace("-", "").replace("_", "").isalnum() and len(n) <= 256 for n in names)


# -- item 6: separate intake, bounded concurrency ----------------------------------------------------------------


def test_alerts_topic_feeds_the_kill_function_and_guard_topics_feed_only_the_queue(
    template: Template, agent_stack: Template
) -> None:
    subs = [s["Properties"] for s in resources(template, "AWS::SNS::Subscription").values()]
    alerts = [s for s in subs if s["TopicArn"] == {"Ref": _topic_id(template, "ks-kill")}]
    assert [(s["Protocol"], s["Endpoint"]) for s in alerts] == [("lambda", {"Fn::GetAtt": [_kill_fn(template), "Arn"]})]
    assert resources(agent_stack, "AWS::SNS::Subscription") == {}  # inline on each topic: 3 resources per agent
    for agent in AGENTS:
        topic = resources(agent_stack, "AWS::SNS::Topic")[_topic_id(agent_stack, guard_topic_name("ks", agent))]
        # Raw delivery off (the default, not settable inline): the envelope carries the TopicArn the Lambda reads.
        [(protocol, endpoint)] = [(s["Protocol"], render(s["Endpoint"])) for s in topic["Properties"]["Subscription"]]
        assert protocol == "sqs" and endpoint.startswith("arn:${AWS::Partition}:sqs:")
        assert endpoint.endswith(":ks-guard-intake"), endpoint


def test_guard_queue_runs_on_a_bounded_share_of_the_kill_reservation(template: Template) -> None:
    [mapping] = [m["Properties"] for m in resources(template, "AWS::Lambda::EventSourceMapping").values()]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [_guard_queue(template), "Arn"]}
    assert mapping["FunctionName"] == {"Ref": _kill_fn(template)}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]  # a transient failure never blocks a batch
    guard_max = mapping["ScalingConfig"]["MaximumConcurrency"]
    reserved = resources(template, "AWS::Lambda::Function")[_kill_fn(template)]["Properties"]
    assert reserved["ReservedConcurrentExecutions"] == KILL_RESERVED_CONCURRENCY
    assert KILL_RESERVED_CONCURRENCY - guard_max >= 3  # what a guard flood can never take from the alerts topic
    assert mapping["BatchSize"] >= 10  # repeated guard events of an agent collapse within a batch


def test_guard_queue_accepts_only_the_guard_topics(template: Template) -> None:
    queue_id = _guard_queue(template)
    queue = resources(template, "AWS::SQS::Queue")[queue_id]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [logical_id(template, "AWS::KMS::Key"), "Arn"]}
    dlq = logical_id(template, "AWS::SQS::Queue", QueueName="ks-kill-dlq")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq, "Arn"]}  # never lost; DLQ alarm
    timeout = resources(template, "AWS::Lambda::Function")[_kill_fn(template)]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    [policy] = [
        p
        for p in resources(template, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    stmts = policy["Properties"]["PolicyDocument"]["Statement"]
    [deny] = [s for s in stmts if s.get("Sid") == "OnlyGuardTopicsSend"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"} and deny["Action"] == "sqs:SendMessage"
    assert render(deny["Condition"]) == {
        "ArnNotLike": {"aws:SourceArn": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:ks-guard-*"}
    }
    [allow] = [s for s in stmts if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "sns.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert render(allow["Condition"]) == {
        "ArnLike": {"aws:SourceArn": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:ks-guard-*"}
    }
