"""LangChain: a callback handler that charges every chat-model / LLM call of a chain or agent to a guard run.

```python
from killswitch.guard.adapters.langchain import KillSwitchCallbackHandler
chain.invoke(inputs, config={"callbacks": [KillSwitchCallbackHandler(run)]})
```

`on_chat_model_start` / `on_llm_start` reserve the worst case (model from LangChain's `ls_model_name`, output limit
from `ls_max_tokens` / `max_tokens`) and raise `BudgetExceeded` before the model is called (`raise_error = True`:
LangChain propagates it instead of logging it); `on_llm_end` settles from `usage_metadata` (or the provider's
`token_usage`), `on_llm_error` releases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from killswitch.guard.adapters._pending import PendingCalls
from killswitch.guard.usage import Usage, estimate_tokens

if TYPE_CHECKING:
    from killswitch.guard.run import Run


class KillSwitchCallbackHandler(BaseCallbackHandler):
    raise_error = True  # a refusal must stop the chain, not be logged
    run_inline = True  # reserve in the caller's thread, before the model call

    def __init__(self, run: Run, *, model: str | None = None, default_max_tokens: int = 4096):
        self.run = run
        self.model = model  # overrides what LangChain reports (e.g. a deployment name missing from the price table)
        self.default_max_tokens = default_max_tokens
        self.pending = PendingCalls()

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        prompt = [getattr(m, "content", m) for batch in messages for m in batch]
        self._reserve(run_id, prompt, kwargs)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID, **kwargs: Any) -> None:
        self._reserve(run_id, prompts, kwargs)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.pending.settle(run_id, _usage(response))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.pending.release(run_id)

    def _reserve(self, run_id: UUID, prompt: Any, kwargs: Mapping[str, Any]) -> None:
        metadata = kwargs.get("metadata") or {}
        params = kwargs.get("invocation_params") or {}
        model = self.model or metadata.get("ls_model_name") or params.get("model") or params.get("model_name")
        if not model:
            raise ValueError(
                "LangChain reported no model name for this call: pass KillSwitchCallbackHandler(model=...)"
            )
        max_tokens = metadata.get("ls_max_tokens") or params.get("max_tokens") or self.default_max_tokens
        self.pending.put(run_id, self.run.charge(str(model), estimate_tokens(prompt), int(max_tokens)))


def _usage(response: Any) -> Usage | None:
    """Summed `usage_metadata` of the generations (input_tokens there include cache reads and writes), else the
    provider's `llm_output["token_usage"]`."""
    total: Usage | None = None
    for generations in getattr(response, "generations", None) or []:
        for generation in generations:
            meta = getattr(getattr(generation, "message", None), "usage_metadata", None)
            if not isinstance(meta, Mapping):
                continue
            details = meta.get("input_token_details") or {}
            read, write = int(details.get("cache_read") or 0), int(details.get("cache_creation") or 0)
            one = Usage(
                max(int(meta.get("input_tokens") or 0) - read - write, 0),
                int(meta.get("output_tokens") or 0),
                read,
                write,
            )
            total = (
                one
                if total is None
                else Usage(
                    total.input_tokens + one.input_tokens,
                    total.output_tokens + one.output_tokens,
                    total.cache_read_tokens + one.cache_read_tokens,
                    total.cache_write_tokens + one.cache_write_tokens,
                )
            )
    if total is not None:
        return total
    output = getattr(response, "llm_output", None) or {}
    return Usage.from_any(output.get("token_usage") or output.get("usage"))
