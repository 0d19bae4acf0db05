"""Invocation log records: decoding, pricing, caller attribution. Pure (Stubber for the Bedrock profile call)."""

from __future__ import annotations

import json
from decimal import Decimal

import boto3
import pytest
from botocore.stub import Stubber

from killswitch.guard.errors import UnknownModel
from killswitch.guard.prices import default_prices
from killswitch.meter.callers import CallerDirectory, Principal, principal_of
from killswitch.meter.pricing import BedrockProfileResolver, RecordPricer, StaticProfileResolver
from killswitch.meter.records import (
    InvocationRecord,
    Skipped,
    encode_subscription_event,
    invocation_log,
    parse_batch,
    parse_log_event,
)

CALLER = "arn:aws:sts::123456789012:assumed-role/agent-role/s1"


def _event(record: dict, event_id: str = "e1") -> dict:
    return {"id": event_id, "timestamp": 1763806500000, "message": json.dumps(record)}


def test_a_record_is_read_with_cache_counts_and_run_id() -> None:
    rec = invocation_log(
        CALLER,
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        10,
        20,
        request_id="q",
        run_id="run-1",
        cache_read=300,
        metadata={"agent-name": "someone-else"},
    )
    r = parse_log_event(_event(rec))
    assert isinstance(r, InvocationRecord)
    assert (r.record_id, r.input_tokens, r.output_tokens, r.cache_read_tokens) == ("e1", 10, 20, 300)
    assert r.run_id == "run-1" and r.claimed_agent == "someone-else" and r.caller_arn == CALLER


def test_cache_counts_fall_back_on_the_converse_usage_block() -> None:
    rec = invocation_log(CALLER, "anthropic.claude-sonnet-4-5", 1, 1, request_id="q")
    rec["output"]["outputBodyJson"] = {"usage": {"cacheReadInputTokens": 7, "cacheWriteInputTokens": 9}}
    r = parse_log_event(_event(rec))
    assert isinstance(r, InvocationRecord) and (r.cache_read_tokens, r.cache_write_tokens) == (7, 9)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda r: r.pop("identity"), "missing_caller"),
        (lambda r: r.pop("modelId"), "missing_model"),
        (lambda r: r["input"].pop("inputTokenCount"), "missing_tokens"),
        (lambda r: r["output"].update(outputTokenCount=-1), "missing_tokens"),
        (lambda r: r["output"].update(outputTokenCount="12"), "missing_tokens"),
        (lambda r: r.update(schemaType="Other"), "not_invocation_log"),
    ],
)
def test_bad_records_are_skipped_with_a_reason(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    rec = invocation_log(CALLER, "anthropic.claude-sonnet-4-5", 1, 1, request_id="q")
    mutate(rec)
    r = parse_log_event(_event(rec), 3)
    assert isinstance(r, Skipped) and r.reason == reason and "logEvents[3]" in r.detail


def test_an_undecodable_batch_is_one_skip_not_a_crash() -> None:
    for event in ({}, {"awslogs": {"data": "!!!"}}, {"awslogs": {"data": "aGVsbG8="}}, [1]):
        batch = parse_batch(event)
        assert batch.records == [] and len(batch.skipped) == 1 and batch.skipped[0].reason == "malformed_event"


def test_encode_and_parse_round_trip() -> None:
    recs = [invocation_log(CALLER, "anthropic.claude-sonnet-4-5", i, i, request_id=f"q{i}") for i in range(3)]
    batch = parse_batch(encode_subscription_event([_event(r, f"e{i}") for i, r in enumerate(recs)]))
    assert [r.record_id for r in batch.records] == ["e0", "e1", "e2"] and batch.skipped == []


def _record(model: str, **tokens: int) -> InvocationRecord:
    r = parse_log_event(
        _event(
            invocation_log(
                CALLER, model, tokens.get("i", 0), tokens.get("o", 0), request_id="q", cache_read=tokens.get("c")
            )
        )
    )
    assert isinstance(r, InvocationRecord)
    return r


@pytest.mark.parametrize(
    "model",
    [
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ],
)
def test_cross_region_and_global_ids_price_like_the_model(model: str) -> None:
    pricer = RecordPricer(default_prices())
    # $3/M input, $15/M output, $0.30/M cache read
    assert pricer.cost(_record(model, i=1_000_000, o=100_000, c=1_000_000)) == Decimal("4.8")


def test_unknown_models_are_not_guessed() -> None:
    with pytest.raises(UnknownModel):
        RecordPricer(default_prices()).cost(_record("acme.mystery-v1:0", i=1))


def test_application_inference_profiles_resolve_through_get_inference_profile() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"
    client = boto3.client("bedrock", "us-east-1")
    stub = Stubber(client)
    stub.add_response(
        "get_inference_profile",
        {
            "inferenceProfileName": "team-a",
            "inferenceProfileArn": arn,
            "inferenceProfileId": "abc123",
            "status": "ACTIVE",
            "type": "APPLICATION",
            "models": [
                {"modelArn": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0"}
            ],
        },
        {"inferenceProfileIdentifier": arn},
    )
    gone = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/gone"
    stub.add_client_error(
        "get_inference_profile", "ResourceNotFoundException", expected_params={"inferenceProfileIdentifier": gone}
    )
    with stub:
        pricer = RecordPricer(default_prices(), BedrockProfileResolver(lambda region: client))
        assert pricer.cost(_record(arn, i=1_000_000)) == Decimal("1")  # haiku 4.5: $1/M input
        assert pricer.cost(_record(arn, o=1_000_000)) == Decimal("5")  # cached: one API call
        with pytest.raises(UnknownModel):
            pricer.cost(_record(gone, i=1))
        with pytest.raises(UnknownModel):
            pricer.cost(_record(gone, i=1))  # the miss is cached too
    stub.assert_no_pending_responses()


def test_static_profiles_for_offline_runs() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/x"
    pricer = RecordPricer(default_prices(), StaticProfileResolver({arn: "anthropic.claude-sonnet-4-5"}))
    assert pricer.cost(_record(arn, i=1_000_000)) == Decimal("3")


@pytest.mark.parametrize(
    ("arn", "principal"),
    [
        (CALLER, Principal("123456789012", "role", "agent-role")),
        ("arn:aws:iam::123456789012:role/team/agents/agent-role", Principal("123456789012", "role", "agent-role")),
        ("arn:aws:iam::123456789012:user/bots/runner", Principal("123456789012", "user", "runner")),
        ("arn:aws:iam::123456789012:root", None),
        ("arn:aws:sts::123456789012:federated-user/bob", None),
        ("not an arn", None),
    ],
)
def test_principal_of(arn: str, principal: Principal | None) -> None:
    assert principal_of(arn) == principal


class _Tags:
    def __init__(self, tags: dict[str, str | None]):
        self.tags = tags
        self.calls = 0

    def agent_tag(self, principal: Principal) -> str | None:
        self.calls += 1
        if principal.name not in self.tags:
            raise LookupError(principal.name)
        return self.tags[principal.name]


def test_caller_lookups_are_cached_for_the_ttl() -> None:
    now = [0.0]
    reader = _Tags({"agent-role": "a1", "plain": None})
    d = CallerDirectory(reader, "123456789012", ttl_seconds=60, clock=lambda: now[0])
    assert d.attribute(CALLER).agent == "a1"
    assert d.attribute("arn:aws:sts::123456789012:assumed-role/agent-role/other-session").agent == "a1"
    assert reader.calls == 1
    reader.tags["agent-role"] = "a2"  # retagged: seen after the TTL
    now[0] = 61
    assert d.attribute(CALLER).agent == "a2" and reader.calls == 2
    assert d.attribute("arn:aws:sts::123456789012:assumed-role/plain/s").reason == "untagged_caller"
    assert d.attribute("arn:aws:sts::123456789012:assumed-role/deleted/s").reason == "no_such_entity"
    assert d.attribute("arn:aws:sts::210987654321:assumed-role/agent-role/s").reason == "other_account"
