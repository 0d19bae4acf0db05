"""OpenAI Agents SDK: `RunHooks` that charge every model call of a run (handoffs and sub-agents included).

```python
from killswitch.guard.adapters.openai_agents import KillSwitchRunHooks
hooks = KillSwitchRunHooks(run)
result = await Runner.run(agent, "triage ticket 42", hooks=hooks)
```

`on_llm_start` reserves the worst case (the agent's model name, `model_settings.max_tokens`) and raises
`BudgetExceeded` before the SDK calls the model; `on_llm_end` settles from `ModelResponse.usage` (cached input tokens
priced as cache reads). The SDK has no "model call failed" hook: a failed call's reservation is released by the
agent's next model call or by `hooks.release_pending()` (`async with hooks:` does it on the way out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents import RunHooks

from killswitch.guard.adapters._pending import PendingCalls
from killswitch.guard.usage import Usage, estimate_tokens

if TYPE_CHECKING:
    from killswitch.guard.run import Run


class KillSwitchRunHooks(RunHooks[Any]):
    def __init__(self, run: Run, *, model: str | None = None, default_max_tokens: int = 4096):
        super().__init__()
        self.run = run
        self.model = model  # overrides the agent's model name (e.g. a custom Model object without a name)
        self.default_max_tokens = default_max_tokens
        self.pending = PendingCalls()

    async def on_llm_start(self, context: Any, agent: Any, system_prompt: str | None, input_items: list[Any]) -> None:
        model = self.model or _model_name(agent)
        if not model:
            raise ValueError(f"agent {agent.name!r} names no model: pass KillSwitchRunHooks(model=...)")
        settings = getattr(agent, "model_settings", None)
        max_tokens = getattr(settings, "max_tokens", None) or self.default_max_tokens
        items = [item.model_dump() if hasattr(item, "model_dump") else item for item in input_items]
        tools = [getattr(tool, "params_json_schema", getattr(tool, "name", "")) for tool in agent.tools or []]
        input_tokens = estimate_tokens([system_prompt, items, tools])
        self.pending.put(id(agent), self.run.charge(model, input_tokens, int(max_tokens)))

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        usage = getattr(response, "usage", None)
        reported = None  # a model that reports no tokens at all is settled at the estimate
        if usage is not None and (usage.input_tokens or usage.output_tokens):
            details = getattr(usage, "input_tokens_details", None)
            cached = min(int(getattr(details, "cached_tokens", 0) or 0), usage.input_tokens)
            reported = Usage(usage.input_tokens - cached, usage.output_tokens, cached, 0)
        self.pending.settle(id(agent), reported)

    def release_pending(self) -> int:
        """Release the reservations of model calls that never reported an end (they failed). Returns how many."""
        return self.pending.release_all()

    async def __aenter__(self) -> KillSwitchRunHooks:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.release_pending()


def _model_name(agent: Any) -> str | None:
    model = getattr(agent, "model", None)
    if isinstance(model, str):
        return model
    if model is not None:  # a Model object: OpenAIResponsesModel / OpenAIChatCompletionsModel keep the name in .model
        name = getattr(model, "model", None)
        return name if isinstance(name, str) else None
    from agents.models import get_default_model

    return get_default_model()
