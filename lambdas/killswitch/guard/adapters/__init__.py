"""Adapters that charge other LLM clients and agent frameworks to a guard run. Each one imports its third-party
package lazily (optional extras: `agent-kill-switch[anthropic]`, `[openai]`, `[strands]`, `[openai-agents]`,
`[langchain]`), so `killswitch.guard` and the Lambda asset import without them.

- `clients.wrap_client` (`run.wrap(client)`): Anthropic / OpenAI SDK clients, sync and async, streaming included;
- `strands.KillSwitchHooks`: a Strands Agents hook provider;
- `openai_agents.KillSwitchRunHooks`: OpenAI Agents SDK `RunHooks`;
- `langchain.KillSwitchCallbackHandler`: a LangChain callback handler.
"""
