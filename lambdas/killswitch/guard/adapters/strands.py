"""Strands Agents: a hook provider that charges every model call of an agent to a guard run.

```python
from strands import Agent
from killswitch.guard.adapters.strands import KillSwitchHooks
agent = Agent(model=model, hooks=[KillSwitchHooks(run)])
```

`BeforeModelCallEvent` reserves the worst case (the model's `model_id`, its `max_tokens`, an input estimate from the
conversation, system prompt and tool specs) and raises `BudgetExceeded` before the model is called;
`AfterModelCallEvent` settles from the message's `metadata.usage` (Bedrock-style counts, whatever the provider),
or releases when the call failed. A Strands `BedrockModel` on a session that `run.instrument()` meters is charged
there already: use one or the other for the same calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strands.hooks import AfterModelCallEvent, BeforeModelCallEvent, HookProvider, HookRegistry

from killswitch.guard.adapters._pending import PendingCalls
from killswitch.guard.usage import Usage, estimate_tokens

if TYPE_CHECKING:
    from killswitch.guard.run import Run


class KillSwitchHooks(HookProvider):
    def __init__(self, run: Run, *, model: str | None = None, default_max_tokens: int = 4096):
        self.run = run
        self.model = model  # overrides the model's own id (e.g. an application inference profile ARN)
        self.default_max_tokens = default_max_tokens
        self.pending = PendingCalls()

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        registry.add_callback(BeforeModelCallEvent, self.before_model_call)
        registry.add_callback(AfterModelCallEvent, self.after_model_call)

    def before_model_call(self, event: BeforeModelCallEvent) -> None:
        agent = event.agent
        config = agent.model.get_config() if hasattr(agent.model, "get_config") else {}
        model = self.model or config.get("model_id")
        if not model:
            raise ValueError("the Strands model has no model_id: pass KillSwitchHooks(model=...)")
        params = config.get("params") or {}
        max_tokens = config.get("max_tokens") or params.get("max_tokens") or self.default_max_tokens
        specs = agent.tool_registry.get_all_tool_specs() if hasattr(agent, "tool_registry") else []
        estimate = estimate_tokens([agent.system_prompt, agent.messages, specs])
        input_tokens = max(estimate, event.projected_input_tokens or 0)
        self.pending.put(id(agent), self.run.charge(str(model), input_tokens, int(max_tokens)))

    def after_model_call(self, event: AfterModelCallEvent) -> None:
        if event.stop_response is None:  # the call failed (or our own refusal): nothing was generated
            self.pending.release(id(event.agent))
            return
        metadata = event.stop_response.message.get("metadata") or {}
        self.pending.settle(id(event.agent), Usage.from_bedrock(metadata.get("usage")))
