"""Framework adapters against the real packages, offline: Strands (BedrockModel over a mocked bedrock-runtime),
OpenAI Agents SDK (OpenAIResponsesModel over an httpx2 MockTransport), LangChain (its own fake chat model)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import boto3
import httpx2
import openai
import pytest
from agents import Agent, ModelSettings, OpenAIResponsesModel, RunConfig, Runner
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from strands import Agent as StrandsAgent
from strands.models.bedrock import BedrockModel

from killswitch.guard import BudgetExceeded, Caps, ChargeRecord, Guard, InMemoryLedger
from killswitch.guard.adapters.langchain import KillSwitchCallbackHandler
from killswitch.guard.adapters.openai_agents import KillSwitchRunHooks
from killswitch.guard.adapters.strands import KillSwitchHooks
from tests.unit.bedrock_support import FakeBedrock, event_message
from tests.unit.llm_support import RESPONSE, Server

HAIKU_PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"  # $1 in / $5 out per 1M tokens


def setup(caps: Caps | None = None) -> tuple[Guard, Any, list[ChargeRecord]]:
    records: list[ChargeRecord] = []
    guard = Guard("support-bot", caps or Caps(per_run_usd=1.0), InMemoryLedger(), spend_sink=records.append)
    return guard, guard.start_run(run_id="run-1"), records


def reserved(guard: Guard) -> Any:
    return guard.ledger.usage("support-bot", "agent", guard.period_key()).reserved


# -- Strands ------------------------------------------------------------------------------------------------------
def strands_agent(run: Any) -> tuple[StrandsAgent, FakeBedrock]:
    session = boto3.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    model = BedrockModel(model_id=HAIKU_PROFILE, boto_session=session, max_tokens=500, streaming=True)
    fake = FakeBedrock(model.client)
    return StrandsAgent(model=model, hooks=[KillSwitchHooks(run)], callback_handler=None), fake


def test_strands_model_calls_are_charged_from_the_reported_usage() -> None:
    guard, run, records = setup()
    agent, fake = strands_agent(run)
    fake.reply_stream(
        event_message("messageStart", {"role": "assistant"}),
        event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "done"}}),
        event_message("contentBlockStop", {"contentBlockIndex": 0}),
        event_message("messageStop", {"stopReason": "end_turn"}),
        event_message("metadata", {"usage": {"inputTokens": 120, "outputTokens": 30, "totalTokens": 150}}),
    )
    result = agent("triage ticket 42")
    assert "done" in str(result)
    assert run.spent_usd == pytest.approx((120 + 30 * 5) / 1e6)
    assert records[0].name == HAIKU_PROFILE and records[0].estimated_usd >= 500 * 5 / 1e6 and reserved(guard) == 0


def test_strands_refuses_before_the_model_call() -> None:
    guard, run, records = setup(Caps(per_run_usd=0.001))  # 500 output tokens at $5/1M = $0.0025 worst case
    agent, fake = strands_agent(run)
    with pytest.raises(BudgetExceeded):
        agent("triage ticket 42")
    assert fake.sent == [] and records == [] and reserved(guard) == 0


def test_strands_failed_model_call_releases() -> None:
    guard, run, records = setup()
    agent, fake = strands_agent(run)
    fake.reply_error("ValidationException", "messages are malformed")
    with pytest.raises(Exception, match="malformed"):
        agent("triage ticket 42")
    assert len(fake.sent) == 1 and records == [] and reserved(guard) == 0


# -- OpenAI Agents SDK --------------------------------------------------------------------------------------------
def openai_agent(server: Server, max_tokens: int = 100) -> Agent[Any]:
    client = openai.AsyncOpenAI(
        api_key="test", http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(server)), max_retries=0
    )
    return Agent(
        name="triage",
        instructions="Triage the ticket.",
        model=OpenAIResponsesModel(model="gpt-4.1-mini", openai_client=client),
        model_settings=ModelSettings(max_tokens=max_tokens),
    )


def run_agent(agent: Agent[Any], hooks: KillSwitchRunHooks) -> Any:
    return asyncio.run(Runner.run(agent, "ticket 42", hooks=hooks, run_config=RunConfig(tracing_disabled=True)))


def test_openai_agents_run_hooks_charge_each_model_call() -> None:
    guard, run, records = setup()
    server = Server()
    server.json(RESPONSE)
    result = run_agent(openai_agent(server), KillSwitchRunHooks(run))
    assert result.final_output == "hi"
    assert run.spent_usd == pytest.approx((200 * 0.4 + 30 * 1.6) / 1e6)
    assert records[0].estimated_usd >= 100 * 1.6 / 1e6 and reserved(guard) == 0


def test_openai_agents_refused_before_the_request() -> None:
    guard, run, records = setup(Caps(per_run_usd=0.0001))
    server = Server()
    with pytest.raises(BudgetExceeded):
        run_agent(openai_agent(server, max_tokens=1000), KillSwitchRunHooks(run))  # $0.0016 worst case
    assert server.sent == [] and records == [] and reserved(guard) == 0


def test_openai_agents_failed_call_is_released_on_the_way_out() -> None:
    guard, run, records = setup()
    server = Server()
    server.json({"error": {"message": "bad request", "type": "invalid_request_error"}}, status=400)
    hooks = KillSwitchRunHooks(run)

    async def main() -> None:
        async with hooks:
            await Runner.run(
                openai_agent(server), "ticket 42", hooks=hooks, run_config=RunConfig(tracing_disabled=True)
            )

    with pytest.raises(openai.BadRequestError):
        asyncio.run(main())
    assert records == [] and reserved(guard) == 0 and len(hooks.pending) == 0


# -- LangChain ----------------------------------------------------------------------------------------------------
class FakeChat(GenericFakeChatModel):
    model_name: str = "gpt-4o-mini"  # $0.15 in / $0.075 cache read / $0.60 out
    max_tokens: int = 200


def reply(text: str, input_tokens: int, output_tokens: int, cache_read: int = 0) -> AIMessage:
    usage: Any = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": 0}
    if cache_read:
        usage["input_token_details"] = {"cache_read": cache_read}
    return AIMessage(content=text, usage_metadata=usage)


def test_langchain_handler_charges_from_usage_metadata() -> None:
    guard, run, records = setup()
    model = FakeChat(messages=iter([reply("hi", 1000, 50, cache_read=400)]))
    out = model.invoke("triage ticket 42", config={"callbacks": [KillSwitchCallbackHandler(run)]})
    assert out.content == "hi"
    assert records[0].input_tokens == 600 and records[0].cache_read_tokens == 400
    assert run.spent_usd == pytest.approx((600 * 0.15 + 400 * 0.075 + 50 * 0.6) / 1e6)
    assert records[0].estimated_usd >= 200 * 0.6 / 1e6 and reserved(guard) == 0


def test_langchain_refuses_before_the_model_is_called() -> None:
    guard, run, records = setup(Caps(per_run_usd=0.0001))
    model = FakeChat(messages=iter([reply("hi", 10, 10)]), max_tokens=1000)  # $0.0006 worst case
    with pytest.raises(BudgetExceeded):
        model.invoke("triage", config={"callbacks": [KillSwitchCallbackHandler(run)]})
    assert next(model.messages).content == "hi"  # the model never produced its reply
    assert records == [] and reserved(guard) == 0


def test_langchain_model_error_releases() -> None:
    guard, run, records = setup()
    model = FakeChat(messages=iter([]))  # the model raises: nothing left to say
    with pytest.raises(StopIteration):
        model.invoke("triage", config={"callbacks": [KillSwitchCallbackHandler(run)]})
    assert records == [] and reserved(guard) == 0


def test_the_guard_imports_without_any_adapter_package() -> None:
    code = (
        "import sys, killswitch.guard\n"
        "loaded = [m for m in ('anthropic', 'openai', 'httpx2', 'strands', 'agents', 'langchain_core')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
