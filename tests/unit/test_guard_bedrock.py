"""Bedrock metered by the session: `run.instrument(session)` charges bedrock-runtime calls from their usage."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.config import Config

from killswitch.guard import BudgetExceeded, Caps, ChargeRecord, Guard, InMemoryLedger, UnknownModel
from tests.unit.bedrock_support import FakeBedrock, chunk, event_message

D = Decimal
HAIKU_PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"  # $1 in / $5 out per 1M tokens
NOVA_GLOBAL = "global.amazon.nova-lite-v1:0"  # $0.06 / $0.24
MSGS = [{"role": "user", "content": [{"text": "summarise the logs"}]}]


def setup(caps: Caps | None = None) -> tuple[Guard, Any, Any, FakeBedrock, list[ChargeRecord]]:
    records: list[ChargeRecord] = []
    guard = Guard("log-summarizer", caps or Caps(per_run_usd=1.0), InMemoryLedger(), spend_sink=records.append)
    run = guard.start_run(run_id="run-1")
    session = boto3.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    run.instrument(session)
    client = session.client("bedrock-runtime", config=Config(retries={"max_attempts": 1}))
    return guard, run, client, FakeBedrock(client), records


def reserved(guard: Guard) -> Decimal:
    return guard.ledger.usage("log-summarizer", "agent", guard.period_key()).reserved


def test_converse_is_charged_from_usage_and_tagged_with_the_run() -> None:
    guard, run, client, fake, records = setup()
    fake.reply(
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 1000, "outputTokens": 200, "totalTokens": 1200, "cacheReadInputTokens": 500},
            "metrics": {"latencyMs": 10},
        }
    )
    reply = client.converse(
        modelId=HAIKU_PROFILE, messages=MSGS, inferenceConfig={"maxTokens": 800}, requestMetadata={"team": "ops"}
    )
    assert reply["output"]["message"]["content"][0]["text"] == "ok"
    # 1000 in * $1 + 500 cache read * $0.10 + 200 out * $5, per 1M
    assert run.spent_usd == pytest.approx(0.00205)
    assert reserved(guard) == 0
    assert records[0].name == HAIKU_PROFILE and records[0].output_tokens == 200 and records[0].cache_read_tokens == 500
    assert records[0].estimated_usd > records[0].amount_usd  # reserved the worst case: 800 output tokens
    assert fake.body()["requestMetadata"] == {"team": "ops", "agent-name": "log-summarizer", "agent-run-id": "run-1"}


def test_refused_before_sending_when_the_cap_would_be_crossed() -> None:
    guard, run, client, fake, records = setup(Caps(per_run_usd=0.001))
    with pytest.raises(BudgetExceeded) as err:
        client.converse(modelId=HAIKU_PROFILE, messages=MSGS, inferenceConfig={"maxTokens": 800})  # $0.004 worst
    assert err.value.scope == "run"
    assert fake.sent == []  # no request left the process
    assert run.spent_usd == 0 and reserved(guard) == 0 and records == []


def test_unknown_model_is_refused_before_sending() -> None:
    _, _, client, fake, _ = setup()
    with pytest.raises(UnknownModel):
        client.converse(modelId="acme.mystery-model-v1:0", messages=MSGS)
    assert fake.sent == []


def test_a_failed_call_releases_and_the_caller_sees_the_service_error() -> None:
    guard, run, client, fake, records = setup()
    fake.reply_error("ValidationException", "The provided model identifier is invalid.")
    with pytest.raises(client.exceptions.ValidationException, match="model identifier is invalid"):
        client.converse(modelId=HAIKU_PROFILE, messages=MSGS, inferenceConfig={"maxTokens": 800})
    assert len(fake.sent) == 1
    assert run.spent_usd == 0 and reserved(guard) == 0 and records == []


def test_a_connection_failure_releases() -> None:
    guard, run, client, _fake, records = setup()

    def boom(**_: Any) -> None:
        raise ConnectionResetError("peer went away")

    client.meta.events.register_first("before-send.bedrock-runtime", boom)
    with pytest.raises(Exception, match="peer went away"):
        client.converse(modelId=HAIKU_PROFILE, messages=MSGS, inferenceConfig={"maxTokens": 800})
    assert run.spent_usd == 0 and reserved(guard) == 0 and records == []


def test_converse_stream_settles_on_the_metadata_event() -> None:
    guard, run, client, fake, records = setup()
    fake.reply_stream(
        event_message("messageStart", {"role": "assistant"}),
        event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hello"}}),
        event_message("messageStop", {"stopReason": "end_turn"}),
        event_message("metadata", {"usage": {"inputTokens": 100, "outputTokens": 40, "totalTokens": 140}}),
    )
    reply = client.converse_stream(modelId=HAIKU_PROFILE, messages=MSGS, inferenceConfig={"maxTokens": 500})
    assert reserved(guard) > 0  # in flight until the stream is read
    events = list(reply["stream"])
    assert [next(iter(e)) for e in events] == ["messageStart", "contentBlockDelta", "messageStop", "metadata"]
    assert run.spent_usd == pytest.approx((100 * 1 + 40 * 5) / 1e6)
    assert reserved(guard) == 0 and records[0].output_tokens == 40
    assert fake.body()["requestMetadata"]["agent-run-id"] == "run-1"


def test_a_stream_without_usage_settles_at_the_estimate() -> None:
    guard, _run, client, fake, records = setup()
    fake.reply_stream(event_message("messageStart", {"role": "assistant"}))
    reply = client.converse_stream(modelId=HAIKU_PROFILE, messages=MSGS, inferenceConfig={"maxTokens": 500})
    list(reply["stream"])
    assert records[0].amount_usd == records[0].estimated_usd > 0 and reserved(guard) == 0


def test_invoke_model_settles_from_the_token_count_headers() -> None:
    _guard, run, client, fake, records = setup()
    fake.reply(
        {"content": [{"type": "text", "text": "hi"}], "usage": {"input_tokens": 1, "output_tokens": 1}},
        headers={"X-Amzn-Bedrock-Input-Token-Count": "300", "X-Amzn-Bedrock-Output-Token-Count": "70"},
    )
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 600,
        "messages": [{"role": "user", "content": "x"}],
    }
    reply = client.invoke_model(modelId=HAIKU_PROFILE, body=json.dumps(body))
    assert json.loads(reply["body"].read())["content"][0]["text"] == "hi"
    assert run.spent_usd == pytest.approx((300 + 70 * 5) / 1e6)  # the headers win over the body
    metadata = json.loads(fake.sent[0].headers["X-Amzn-Bedrock-Request-Metadata"])
    assert metadata == {"agent-name": "log-summarizer", "agent-run-id": "run-1"}
    assert records[0].estimated_usd >= D(600 * 5) / 1_000_000  # max_tokens of the body reserved


def test_invoke_model_falls_back_to_the_body_usage_and_keeps_the_body_readable() -> None:
    _guard, run, client, fake, records = setup()
    fake.reply({"output": {"message": {}}, "usage": {"inputTokens": 1000, "outputTokens": 1000}})
    body = {"messages": [{"role": "user", "content": [{"text": "x"}]}], "inferenceConfig": {"max_new_tokens": 2000}}
    reply = client.invoke_model(modelId=NOVA_GLOBAL, body=json.dumps(body), requestMetadata='{"team": "ops"}')
    assert json.loads(reply["body"].read())["usage"]["outputTokens"] == 1000
    assert json.loads(fake.sent[0].headers["X-Amzn-Bedrock-Request-Metadata"])["team"] == "ops"  # theirs kept
    assert run.spent_usd == pytest.approx((1000 * 0.06 + 1000 * 0.24) / 1e6)
    assert records[0].estimated_usd >= D(2000) * D("0.24") / 1_000_000


def test_invoke_model_with_response_stream_settles_on_the_invocation_metrics() -> None:
    guard, run, client, fake, records = setup()
    fake.reply_stream(
        chunk({"type": "message_start", "message": {"usage": {"input_tokens": 50, "output_tokens": 1}}}),
        chunk({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}}),
        chunk({"type": "message_delta", "usage": {"output_tokens": 30}}),
        chunk(
            {
                "type": "message_stop",
                "amazon-bedrock-invocationMetrics": {"inputTokenCount": 60, "outputTokenCount": 31},
            }
        ),
    )
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "x"}],
    }
    reply = client.invoke_model_with_response_stream(modelId=HAIKU_PROFILE, body=json.dumps(body))
    assert len(list(reply["body"])) == 4
    assert run.spent_usd == pytest.approx((60 + 31 * 5) / 1e6)
    assert reserved(guard) == 0 and records[0].input_tokens == 60


def test_anthropic_stream_events_alone_settle_the_charge() -> None:
    _, run, client, fake, _ = setup()
    fake.reply_stream(
        chunk({"type": "message_start", "message": {"usage": {"input_tokens": 50, "output_tokens": 1}}}),
        chunk({"type": "message_delta", "usage": {"output_tokens": 30}}),
    )
    body = {"max_tokens": 300, "messages": [{"role": "user", "content": "x"}]}
    list(client.invoke_model_with_response_stream(modelId=HAIKU_PROFILE, body=json.dumps(body))["body"])
    assert run.spent_usd == pytest.approx((50 + 30 * 5) / 1e6)


def test_a_new_run_replaces_the_meter_and_other_operations_pass_through() -> None:
    guard, run, _, _, records = setup()
    session = boto3.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    run.instrument(session)
    second = guard.start_run(run_id="run-2")
    second.instrument(session)
    client = session.client("bedrock-runtime")
    fake = FakeBedrock(client)
    fake.reply({"output": {"message": {}}, "usage": {"inputTokens": 10, "outputTokens": 10}})
    client.converse(modelId=HAIKU_PROFILE, messages=MSGS, inferenceConfig={"maxTokens": 10})
    assert [r.run_id for r in records] == ["run-2"]
    assert fake.body()["requestMetadata"]["agent-run-id"] == "run-2"


def test_metering_can_be_left_off() -> None:
    guard = Guard("log-summarizer", Caps(per_run_usd=0.000001), InMemoryLedger())
    run = guard.start_run()
    session = boto3.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    run.instrument(session, meter_bedrock=False)
    client = session.client("bedrock-runtime")
    fake = FakeBedrock(client)
    fake.reply({"output": {"message": {}}, "usage": {"inputTokens": 10, "outputTokens": 10}})
    client.converse(modelId=HAIKU_PROFILE, messages=MSGS)
    assert run.spent_usd == 0 and "requestMetadata" not in fake.body()


def test_a_stream_closed_unread_settles_once_at_the_estimate() -> None:
    guard, _, client, fake, records = setup()
    fake.reply_stream(event_message("messageStart", {"role": "assistant"}))
    reply = client.converse_stream(modelId=HAIKU_PROFILE, messages=MSGS, inferenceConfig={"maxTokens": 500})
    reply["stream"].close()
    reply["stream"].close()
    assert len(records) == 1 and records[0].amount_usd == records[0].estimated_usd and reserved(guard) == 0
