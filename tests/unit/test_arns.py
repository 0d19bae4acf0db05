"""ARN parsing (`killswitch.arns`): the one place topic regions and ECS short names come from."""

from __future__ import annotations

from killswitch.arns import account_of, ecs_short_name, parse_arn, region_of
from killswitch.kill.kinds.iam import deny_policy_arn


def test_parse_arn_splits_the_six_fields_and_keeps_colons_in_the_resource() -> None:
    arn = parse_arn("arn:aws:ecs:us-east-1:123456789012:service/agents/summarizer-api")
    assert arn is not None
    assert (arn.partition, arn.service, arn.region, arn.account) == ("aws", "ecs", "us-east-1", "123456789012")
    assert (arn.resource_type, arn.resource_path) == ("service", ["agents", "summarizer-api"])
    sns = parse_arn("arn:aws-cn:sns:cn-north-1:123456789012:topic:with:colons")
    assert sns is not None and sns.resource == "topic:with:colons" and sns.resource_type == ""


def test_region_of_is_none_for_global_arns_and_non_arns() -> None:
    assert region_of("arn:aws:sns:eu-west-1:123456789012:events") == "eu-west-1"
    assert region_of("arn:aws:iam::123456789012:role/x") is None
    assert region_of("not-an-arn") is None
    assert region_of("arn:aws:sns") is None
    assert region_of(None) is None


def test_ecs_short_names_for_tables() -> None:
    assert ecs_short_name("arn:aws:ecs:us-east-1:1:service/agents/api") == "agents/api"
    assert ecs_short_name("arn:aws:ecs:us-east-1:1:task/agents/0f3c") == "agents/0f3c"
    assert ecs_short_name("arn:aws:ecs:us-east-1:1:task/0f3c") == "0f3c"  # old ARN format: no cluster
    assert ecs_short_name("i-0123456789abcdef0") == "i-0123456789abcdef0"
    assert ecs_short_name("arn:aws:ec2:us-east-1:1:instance/i-1") == "arn:aws:ec2:us-east-1:1:instance/i-1"


def test_account_of_reads_the_account_field_only_from_an_arn() -> None:
    assert account_of("arn:aws:lambda:us-east-1:123456789012:function:ks-meter") == "123456789012"
    assert account_of("arn:aws:s3:::bucket") is None
    assert account_of("") is None and account_of(None) is None and account_of("a:b:c:d:e") is None


def test_the_deny_policy_lives_in_the_principals_own_account_and_partition() -> None:
    assert deny_policy_arn("arn:aws-us-gov:iam::123456789012:role/agents/summarizer", "ks") == (
        "arn:aws-us-gov:iam::123456789012:policy/ks-deny-agent"
    )
