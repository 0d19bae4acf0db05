"""Budget stacks: one budget per agent, hashed names that survive replacement, stable spread over stacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.app_builder import add_stacks, new_app
from infra.budget_stacks import (
    MAX_RESOURCES_PER_STACK,
    RESOURCES_PER_AGENT,
    BudgetStack,
    BudgetStacksOverfull,
    assign_budgets,
    budget_stack_index,
    check_capacity,
)
from killswitch.config import KillSwitchConfig
from tests.infra.infra_support import WORKLOAD_ACCOUNT, make_config, resources, synth_app, write_scps

CONFIG = make_config()


@pytest.fixture(scope="module")
def app_stacks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Template]:
    """The full app (cdk-nag on): the workload template and its one budget stack's template."""
    base = tmp_path_factory.mktemp("budgets")
    _, [(workload, _)] = synth_app([CONFIG], write_scps(base / "scp"), base / "cdk.out")
    [budget_stack] = workload.budget_stacks
    assert budget_stack.stack_name == "ks-budgets-0"
    assert workload in budget_stack.dependencies
    return Template.from_stack(workload), Template.from_stack(budget_stack)


def _budgets(template: Template) -> dict[str, dict[str, Any]]:
    return {
        b["Properties"]["Budget"]["BudgetName"]: b["Properties"]
        for b in resources(template, "AWS::Budgets::Budget").values()
    }


def _names(config: KillSwitchConfig, construct_id: str = "ks-budgets-0") -> dict[str, str]:
    """Agent → deployed budget name, read from a synthesized budget stack holding every agent."""
    stack = BudgetStack(App(), construct_id, config=config, agents=config.agents)
    return {
        agent: budget["Budget"]["BudgetName"]
        for budget in _budgets(Template.from_stack(stack)).values()
        for agent in [budget["Budget"]["CostFilters"]["TagKeyValue"][0].split("$", 1)[1]]
    }


def test_the_workload_stack_holds_no_budget(app_stacks: tuple[Template, Template]) -> None:
    workload, _ = app_stacks
    assert not resources(workload, "AWS::Budgets::Budget")


def test_one_cost_budget_per_agent_with_the_exact_tag_filter_and_a_hashed_name(
    app_stacks: tuple[Template, Template],
) -> None:
    _, template = app_stacks
    budgets = _budgets(template)
    assert len(budgets) == len(CONFIG.agents) == 2
    for agent in CONFIG.agents:
        [name] = [n for n, b in budgets.items() if b["Budget"]["CostFilters"]["TagKeyValue"][0].endswith(agent.name)]
        base, digest = name.rsplit("-", 1)
        assert base == CONFIG.budget_name_for(agent) and len(digest) == 8 and int(digest, 16) >= 0
        assert CONFIG.agent_for_budget(name) is agent
        data = budgets[name]["Budget"]
        assert data["BudgetType"] == "COST"
        assert data["TimeUnit"] == agent.budget.period.value
        assert data["BudgetLimit"] == {"Amount": agent.budget.amount_usd, "Unit": "USD"}
        assert data["CostFilters"] == {"TagKeyValue": [f"user:agent-name${agent.name}"]}


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("summarizer", {("ACTUAL", 80), ("ACTUAL", 100)}),
        ("crawler", {("ACTUAL", 75), ("ACTUAL", 95), ("FORECASTED", 75), ("FORECASTED", 95)}),
    ],
)
def test_budget_notifications_alert_the_kill_topic_and_emails(
    app_stacks: tuple[Template, Template], agent: str, expected: set[Any]
) -> None:
    _, template = app_stacks
    [notes] = [
        b["NotificationsWithSubscribers"]
        for b in _budgets(template).values()
        if b["Budget"]["CostFilters"]["TagKeyValue"] == [f"user:agent-name${agent}"]
    ]
    assert {(n["Notification"]["NotificationType"], n["Notification"]["Threshold"]) for n in notes} == expected
    assert len(notes) == len(expected)
    # The workload stack's topic, by name in the workload account and home region (no cross-stack export).
    topic_arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":sns:us-east-1:{WORKLOAD_ACCOUNT}:ks-kill"]]}
    for n in notes:
        assert n["Notification"]["ComparisonOperator"] == "GREATER_THAN"
        assert n["Notification"]["ThresholdType"] == "PERCENTAGE"
        sns = [s["Address"] for s in n["Subscribers"] if s["SubscriptionType"] == "SNS"]
        emails = sorted(s["Address"] for s in n["Subscribers"] if s["SubscriptionType"] == "EMAIL")
        assert sns == [topic_arn]
        assert emails == sorted(CONFIG.notify.emails)


# -- replacement-safe names ---------------------------------------------------------------------------------


def _with_budget(config: KillSwitchConfig, agent: int, **budget: Any) -> KillSwitchConfig:
    data = config.model_dump(mode="json")
    data["agents"][agent]["budget"].update(budget)
    return KillSwitchConfig.model_validate(data)


REPLACED = {
    "threshold": lambda c: _with_budget(c, 0, kill_at_pct=110),
    "email": lambda c: KillSwitchConfig.model_validate(
        {**c.model_dump(mode="json"), "notify": {"emails": ["ops@example.com", "oncall@example.com"]}}
    ),
    "forecasted": lambda c: _with_budget(c, 0, forecasted=True),
}


@pytest.mark.parametrize("change", sorted(REPLACED))
def test_a_change_cloudformation_replaces_gives_the_budget_a_new_name_that_maps_to_the_same_agent(
    change: str,
) -> None:
    """NotificationsWithSubscribers is create-only: the replacement is created before the old budget is deleted,
    so it must not reuse the old name; alerts of either budget still reach the agent."""
    before = _names(CONFIG)
    changed = REPLACED[change](CONFIG)
    after = _names(changed)
    summarizer = "summarizer"
    assert after[summarizer] != before[summarizer]
    assert after[summarizer].rsplit("-", 1)[0] == before[summarizer].rsplit("-", 1)[0] == "ks-summarizer"
    for name in (before[summarizer], after[summarizer]):
        agent = changed.agent_for_budget(name)
        assert agent is not None and agent.name == summarizer
    if change != "email":  # the other agent's notifications did not change: neither did its name
        assert after["crawler"] == before["crawler"]


def test_a_change_cloudformation_updates_in_place_keeps_the_name_and_its_history() -> None:
    assert _names(_with_budget(CONFIG, 0, amount_usd=900)) == _names(CONFIG)


def test_a_move_to_another_stack_is_a_new_name_too() -> None:
    assert _names(CONFIG, "ks-budgets-0")["summarizer"] != _names(CONFIG, "ks-budgets-3")["summarizer"]


def test_long_budget_names_are_cut_to_fit_100_characters_and_still_map_back() -> None:
    data = CONFIG.model_dump(mode="json")
    data["agents"][1]["budget_name"] = "B" * 100
    config = KillSwitchConfig.model_validate(data)
    name = _names(config)["crawler"]
    assert len(name) == 100 and name.startswith("B" * 91 + "-")
    crawler = config.agent("crawler")
    assert config.agent_for_budget(name) is crawler
    assert config.agent_for_budget("B" * 100) is crawler  # the budget deployed before names were hashed


# -- spread over stacks -------------------------------------------------------------------------------------


def _agents(n: int) -> list[dict[str, Any]]:
    return [{"name": f"agent-{i:04d}", "budget": {"amount_usd": 10}} for i in range(n)]


def test_adding_an_agent_never_moves_another_one() -> None:
    """Agent 401 joins (and one in the middle leaves): every other agent keeps its stack."""
    before = make_config(agents=_agents(400), sandbox=None, budget_stacks=3)
    after = make_config(agents=[a for a in _agents(401) if a["name"] != "agent-0200"], sandbox=None, budget_stacks=3)

    def placement(config: KillSwitchConfig) -> dict[str, int]:
        return {a.name: i for i, agents in enumerate(assign_budgets(config.agents, 3)) for a in agents}

    old, new = placement(before), placement(after)
    assert {name: new[name] for name in old if name in new} == {name: old[name] for name in old if name in new}
    assert len(new) == 400 and "agent-0400" in new
    assert all(budget_stack_index(name, 3) == index for name, index in new.items())


def test_a_thousand_agents_spread_under_the_limit_and_an_overfull_stack_names_the_count_needed() -> None:
    config = make_config(agents=_agents(1000), sandbox=None, budget_stacks=10)
    sizes = [len(s) for s in assign_budgets(config.agents, 10)]
    assert sum(sizes) == 1000 and max(sizes) * RESOURCES_PER_AGENT <= MAX_RESOURCES_PER_STACK
    check_capacity(config.agents, 10)
    with pytest.raises(BudgetStacksOverfull) as info:
        check_capacity(config.agents, 4, config_file="big.yaml")
    message = str(info.value)
    assert message.startswith("big.yaml: budget_stacks: 4 budget stack(s) cannot hold 1000 agents")
    assert "set budget_stacks to 9 or more" in message


def test_budgets_are_synthesized_in_their_stacks_and_empty_stacks_stay(tmp_path: Path) -> None:
    config = make_config(agents=_agents(3), sandbox=None, budget_stacks=4)
    workload, _ = add_stacks(new_app(str(tmp_path), builtin_validation=False), config, scp_dir=tmp_path)
    expected = assign_budgets(config.agents, 4)
    assert [s.stack_name for s in workload.budget_stacks] == [f"ks-budgets-{i}" for i in range(4)]
    for stack, agents in zip(workload.budget_stacks, expected, strict=True):
        template = Template.from_stack(stack)
        tagged = sorted(
            b["Properties"]["Budget"]["CostFilters"]["TagKeyValue"][0]
            for b in resources(template, "AWS::Budgets::Budget").values()
        )
        assert tagged == sorted(f"user:agent-name${a.name}" for a in agents)
        if not agents:  # kept so that deploying deletes the budgets of its last agent
            assert list(resources(template, "AWS::CloudFormation::WaitConditionHandle")) == ["Empty"]


def test_per_agent_resources_live_in_the_budget_stacks_never_in_the_workload_stack(tmp_path: Path) -> None:
    """The workload stack's size does not grow with the agents (1,000 agents once put 3,041 resources there: a guard
    topic, its policy and its subscription each); every budget stack stays within its resource budget."""

    def sizes(n: int, stacks: int) -> tuple[int, list[int]]:
        config = make_config(agents=_agents(n), sandbox=None, budget_stacks=stacks)
        workload, _ = add_stacks(new_app(str(tmp_path / str(n)), builtin_validation=False), config, scp_dir=tmp_path)
        count = lambda stack: len(Template.from_stack(stack).to_json()["Resources"])  # noqa: E731
        return count(workload), [count(s) for s in workload.budget_stacks]

    few, [few_agents] = sizes(2, 1)
    many, per_stack = sizes(140, 2)
    assert many == few
    assert few_agents == 2 * RESOURCES_PER_AGENT
    assert sum(per_stack) == 140 * RESOURCES_PER_AGENT and max(per_stack) <= MAX_RESOURCES_PER_STACK
