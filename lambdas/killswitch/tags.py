"""Tag contract (docs/contracts.md): the only way the kill switch decides what belongs to an agent."""

from collections.abc import Mapping

AGENT_NAME = "agent-name"
AGENT_RUN_ID = "agent-run-id"
EXEMPT = "killswitch:exempt"
CRITICALITY = "killswitch:criticality"
# On the deny SCP (value: the prefix): the only SCP a shared-account kill Lambda may attach or detach.
DENY_SCP = "killswitch:deny-scp"


def cost_filter_value(agent: str) -> str:
    """Budgets `CostFilters.TagKeyValue` entry for one agent (`user:` prefix = user-defined cost tag)."""
    return f"user:{AGENT_NAME}${agent}"


def is_exempt(tags: Mapping[str, str]) -> bool:
    return tags.get(EXEMPT, "").strip().lower() == "true"


def is_critical(tags: Mapping[str, str]) -> bool:
    return tags.get(CRITICALITY, "").strip().lower() == "critical"


def tag_list_to_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    """AWS returns tags as [{'Key'|'key': ..., 'Value'|'value': ...}]; normalise to a dict."""
    out: dict[str, str] = {}
    for t in tags or []:
        key = t.get("Key", t.get("key"))
        if key is not None:
            out[key] = t.get("Value", t.get("value", "")) or ""
    return out


def is_name_variant(value: str | None, agent: str) -> bool:
    """`log-summarizer ` or `Log-Summarizer` for agent `log-summarizer`: differs only by case or surrounding
    whitespace. Such a resource escapes the kill (and the budget's exact tag filter): reported, never touched."""
    return value is not None and value != agent and value.strip().casefold() == agent.casefold()
