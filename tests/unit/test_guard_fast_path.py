"""Behaviour the metered fast path re-implements (issue 11 item 7): the input estimate, the charge record built on
demand, the cached price and cap lookups, and the in-memory ledger's refusal."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.serialize import create_serializer
from hypothesis import given, settings
from hypothesis import strategies as st

from killswitch.guard import BudgetExceeded, Caps, ChargeRecord, Guard, InMemoryLedger, ModelPrice
from killswitch.guard.bedrock import converse_input_tokens, with_request_metadata
from killswitch.guard.caps import utc_day
from killswitch.guard.ledger import CapLimit
from killswitch.guard.prices import default_prices
from killswitch.guard.usage import BINARY_BLOCK_TOKENS, CHARS_PER_TOKEN, estimate_tokens
from tests.unit.bedrock_support import FakeBedrock

D = Decimal
HAIKU_PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
REPLY = {"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}}, "usage": {"outputTokens": 5}}


def _reference_size(value: Any) -> tuple[int, int]:
    """The walk as it was before the one-pass rewrite (recursive): the definition the estimate keeps."""
    if value is None:
        return 0, 0
    if isinstance(value, str):
        return len(value), 0
    if isinstance(value, bytes | bytearray):
        return 0, 1
    if isinstance(value, Mapping):
        chars, blocks = 0, 0
        for key, item in value.items():
            c, b = _reference_size(item)
            chars += c + len(str(key))
            blocks += b
        return chars, blocks
    if isinstance(value, list | tuple):
        chars, blocks = 0, 0
        for item in value:
            c, b = _reference_size(item)
            chars += c
            blocks += b
        return chars, blocks
    if hasattr(value, "read"):
        return 0, 1
    return len(str(value)), 0


def _reference_estimate(value: Any) -> int:
    chars, blocks = _reference_size(value)
    return -(-chars // CHARS_PER_TOKEN) + blocks * BINARY_BLOCK_TOKENS


_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(max_size=8)
_prompts = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(_prompts)
def test_the_one_pass_estimate_equals_the_recursive_walk(prompt: Any) -> None:
    assert estimate_tokens(prompt) == _reference_estimate(prompt)


# -- Converse: the estimate from the serialised body --------------------------------------------------------------
def _client() -> Any:
    return boto3.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1").client(
        "bedrock-runtime", config=Config(retries={"max_attempts": 1})
    )


def _body(client: Any, params: dict[str, Any]) -> bytes:
    """The JSON body botocore sends for a Converse request (the body the meter measures)."""
    operation = client.meta.service_model.operation_model("Converse")
    return create_serializer("rest-json").serialize_to_request(params, operation)["body"]


FIXTURES: dict[str, dict[str, Any]] = {
    "plain text": {"messages": [{"role": "user", "content": [{"text": "summarise the last hour of logs " * 20}]}]},
    "system, tools, escapes": {
        "system": [{"text": 'You are "ops-bot".\nAnswer in JSON:\t{"ok": true}'}],
        "messages": [
            {"role": "user", "content": [{"text": "line one\nline two \\ backslash"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "grep", "input": {"q": "x"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"hits": 3}}]}}]},
        ],
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "grep",
                        "description": "search the logs",
                        "inputSchema": {"json": {"type": "object", "properties": {"q": {"type": "string"}}}},
                    }
                }
            ]
        },
    },
    "non-ASCII": {"messages": [{"role": "user", "content": [{"text": "日志摘要：过去一小时的错误。 émoji 🚀" * 10}]}]},
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_converse_body_estimate_is_never_below_the_walk_over_the_prompt(name: str) -> None:
    client = _client()
    params = {"modelId": HAIKU_PROFILE, "inferenceConfig": {"maxTokens": 100}, **FIXTURES[name]}
    prompt = (params.get("system"), params.get("messages"), params.get("toolConfig"))
    walk = estimate_tokens(prompt)
    assert converse_input_tokens(_body(client, params), prompt) >= walk >= 1


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=200), st.text(max_size=50))
def test_converse_body_estimate_is_never_below_the_walk_for_any_text(text: str, system: str) -> None:
    client = _client()
    params: dict[str, Any] = {"modelId": HAIKU_PROFILE, "messages": [{"role": "user", "content": [{"text": text}]}]}
    if system:
        params["system"] = [{"text": system}]
    prompt = (params.get("system"), params.get("messages"), params.get("toolConfig"))
    assert converse_input_tokens(_body(client, params), prompt) >= estimate_tokens(prompt)


def test_an_image_counts_as_one_binary_block_not_as_its_base64_length() -> None:
    client = _client()
    image = b"\x89PNG" + bytes(300_000)
    params = {
        "modelId": HAIKU_PROFILE,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "what is in the picture?"},
                    {"image": {"format": "png", "source": {"bytes": image}}},
                ],
            }
        ],
    }
    prompt = (None, params["messages"], None)
    body = _body(client, params)
    assert base64.b64encode(image).decode() in body.decode()
    assert converse_input_tokens(body, prompt) == estimate_tokens(prompt) < BINARY_BLOCK_TOKENS + 100


def test_an_instrumented_converse_reserves_at_least_the_walk_and_sends_the_body_it_measured() -> None:
    guard = Guard("log-summarizer", Caps(per_run_usd=1.0), InMemoryLedger())
    run = guard.start_run(run_id="run-1")
    session = boto3.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    run.instrument(session)
    client = session.client("bedrock-runtime", config=Config(retries={"max_attempts": 1}))
    fake = FakeBedrock(client)
    fake.reply(REPLY)
    reserved: list[int] = []
    charge = run.charge

    def spy(model: str, input_tokens: int, max_output_tokens: int, **kw: Any) -> Any:
        reserved.append(input_tokens)
        return charge(model, input_tokens, max_output_tokens, **kw)

    run.charge = spy  # type: ignore[method-assign]
    params = {"modelId": HAIKU_PROFILE, "inferenceConfig": {"maxTokens": 100}, **FIXTURES["system, tools, escapes"]}
    client.converse(**params)
    sent = fake.sent[0].body
    prompt = (params.get("system"), params.get("messages"), params.get("toolConfig"))
    assert reserved == [-(-len(sent) // CHARS_PER_TOKEN)]
    assert reserved[0] >= estimate_tokens(prompt)
    assert json.loads(sent)["requestMetadata"]["agent-run-id"] == "run-1"


# -- the charge record, built on demand ---------------------------------------------------------------------------
def test_settle_returns_the_record_the_sink_got_and_call_record_is_the_same() -> None:
    records: list[ChargeRecord] = []
    clock = lambda: 1_700_000_000.0  # noqa: E731
    guard = Guard("bot", Caps(per_run_usd=1.0), InMemoryLedger(), spend_sink=records.append, clock=clock)
    with guard.run(workflow="triage", run_id="r-1") as run:
        call = run.charge("m", 1000, 500, price=ModelPrice.of(3, 15))
        assert call.record is None
        returned = call.settle(200, input_tokens=900, cache_read_tokens=50, cache_write_tokens=10)
        assert call.settle(1) is None  # a second settle changes nothing
    assert records == [returned] and call.record is returned
    assert returned == ChargeRecord(
        agent="bot",
        run_id="r-1",
        workflow="triage",
        charge_id=call.charge_id,
        kind="llm",
        name="m",
        amount_usd=ModelPrice.of(3, 15).cost(900, 200, 50, 10),
        estimated_usd=ModelPrice.of(3, 15).worst_case(1000, 500),
        day=utc_day(1_700_000_000),
        input_tokens=900,
        output_tokens=200,
        cache_read_tokens=50,
        cache_write_tokens=10,
    )


def test_without_a_sink_the_record_is_still_there_for_the_caller_and_a_release_has_none() -> None:
    guard = Guard("bot", Caps(per_run_usd=1.0), InMemoryLedger(), clock=lambda: 1_700_000_000)
    with guard.run() as run:
        kept = run.charge("m", 10, 10, price=ModelPrice.of(1, 1))
        record = kept.settle(4, input_tokens=8)
        released = run.charge("m", 10, 10, price=ModelPrice.of(1, 1))
        assert released.release() is True
    assert record is not None and record.output_tokens == 4 and record.input_tokens == 8
    assert released.record is None
    tool = run.guard.start_run().charge_usd(0.25, name="search")
    assert tool.record is not None and tool.record.amount_usd == D("0.25") and tool.record.kind == "tool"


# -- cached lookups -----------------------------------------------------------------------------------------------
def test_price_lookups_are_cached_per_model_id_and_unknown_ids_still_raise() -> None:
    table = default_prices()
    first = table.price(HAIKU_PROFILE)
    assert table.price(HAIKU_PROFILE) is first == table.models[table.resolve(HAIKU_PROFILE)]
    with pytest.raises(Exception, match="no-such-model"):
        table.price("no-such-model")
    with pytest.raises(Exception, match="no-such-model"):
        table.price("no-such-model")


def test_cap_limits_follow_the_period_and_a_new_caps_object() -> None:
    now = [1_700_000_000.0]
    guard = Guard("bot", Caps(per_day_usd=1.0), InMemoryLedger(), clock=lambda: now[0])
    with guard.run() as run:
        run.charge_usd(0.75, name="a")
        with pytest.raises(BudgetExceeded):
            run.charge_usd(0.5, name="b")
        now[0] += 86_400  # next UTC day: a fresh period cap
        run.charge_usd(0.75, name="c")
        guard.caps = Caps(per_day_usd=0.8)  # a lower cap applies to the next charge of the same run
        with pytest.raises(BudgetExceeded) as err:
            run.charge_usd(0.1, name="d")
    assert err.value.cap_usd == D("0.8")


def test_in_memory_refusal_names_the_first_cap_without_room_and_changes_nothing() -> None:
    ledger = InMemoryLedger()
    caps = [CapLimit("agent", "2026-11-30", D(10)), CapLimit("run", "r", D(1))]
    ledger.reserve("bot", "h1", D("0.6"), caps, deadline=1.0)
    before = ledger.all_usages("bot")
    with pytest.raises(BudgetExceeded) as err:
        ledger.reserve("bot", "h2", D("0.6"), caps, deadline=1.0)
    assert (err.value.scope, err.value.key) == ("run", "r")
    assert ledger.all_usages("bot") == before and ledger.get_hold("bot", "charge", "h2") is None
    fresh = [CapLimit("agent", "2026-12-01", D(10)), CapLimit("run", "r2", D("0.5"))]
    with pytest.raises(BudgetExceeded):
        ledger.reserve("bot", "h3", D("0.6"), fresh, deadline=1.0)
    assert set(ledger.all_usages("bot")) == set(before)  # no empty cap rows left behind by a refusal


# -- request metadata added to the serialised body ------------------------------------------------------------------
def _metered_client() -> tuple[Any, FakeBedrock]:
    guard = Guard("log-summarizer", Caps(per_run_usd=1.0), InMemoryLedger())
    run = guard.start_run(run_id="run-1")
    session = boto3.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    run.instrument(session)
    client = session.client("bedrock-runtime", config=Config(retries={"max_attempts": 1}))
    return client, FakeBedrock(client)


@pytest.mark.parametrize("theirs", [None, {}, {"team": "ops"}])
def test_the_sent_body_is_what_botocore_serialises_with_our_request_metadata(theirs: dict[str, str] | None) -> None:
    client, fake = _metered_client()
    fake.reply(REPLY)
    params: dict[str, Any] = {"modelId": HAIKU_PROFILE, "inferenceConfig": {"maxTokens": 100}, **FIXTURES["non-ASCII"]}
    if theirs is not None:
        params["requestMetadata"] = theirs
    client.converse(**params)
    sent = fake.sent[0].body
    ours = {**(theirs or {}), "agent-name": "log-summarizer", "agent-run-id": "run-1"}
    expected = _body(_client(), {**params, "requestMetadata": ours})
    assert json.loads(sent) == json.loads(expected)
    assert sent.count(b'"requestMetadata"') == 1
    assert int(fake.sent[0].headers["Content-Length"]) == len(sent)


def test_request_metadata_goes_into_any_json_object_body() -> None:
    ours = {"agent-name": "a", "agent-run-id": "r"}
    assert json.loads(with_request_metadata(b"{}", ours)) == {"requestMetadata": ours}
    assert json.loads(with_request_metadata(b'{"messages":[]}', ours)) == {"messages": [], "requestMetadata": ours}
    assert json.loads(with_request_metadata(b' {"a": 1} \n', ours)) == {"a": 1, "requestMetadata": ours}
    assert json.loads(with_request_metadata('{"a": 1}', ours)) == {"a": 1, "requestMetadata": ours}
