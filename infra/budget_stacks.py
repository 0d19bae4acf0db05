"""Budget stacks: the agents' per-agent resources (the `AWS::Budgets::Budget` and the guard topic with its policy),
spread over `budget_stacks` stacks.

CloudFormation allows 500 resources per stack; an agent takes three (`RESOURCES_PER_AGENT`), so a thousand agents
need several stacks. An agent's stack is a hash of its name modulo `budget_stacks`: it depends on nothing else, so
adding, removing or reordering other agents never moves it (a move would delete the budget in one stack and create it in
another). Only changing `budget_stacks` moves budgets; each moved budget then gets a new name (the stack is part of
the name's hash, see `killswitch.budget_names`), so the create in the new stack never collides with the delete in
the old one. Every stack is synthesized even when empty, so that its budgets are deleted when its last agent goes
(a stack that disappears from the app is not deleted by `cdk deploy`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnResource, Stack
from constructs import Construct

from infra.constructs.budgets import AgentBudgets
from infra.constructs.guard_intake import AgentGuardTopics
from killswitch.config import AgentConfig, KillSwitchConfig

# CloudFormation's limit is 500 resources per stack; keep room for metadata and later additions.
MAX_RESOURCES_PER_STACK = 400
# Per agent: its budget, its guard topic and the topic's policy (the SQS subscription is a property of the topic).
RESOURCES_PER_AGENT = 3
MAX_AGENTS_PER_STACK = MAX_RESOURCES_PER_STACK // RESOURCES_PER_AGENT


class BudgetStacksOverfull(ValueError):
    """More budgets hash to one stack than it may hold: `budget_stacks` must grow."""


def budget_stack_index(agent_name: str, stack_count: int) -> int:
    """The stack of an agent's budget: a function of its name and the stack count only."""
    return int.from_bytes(hashlib.sha256(agent_name.encode()).digest()[:8], "big") % stack_count


def assign_budgets(agents: Sequence[AgentConfig], stack_count: int) -> list[list[AgentConfig]]:
    """Agents per stack index (every index present, possibly empty), in config order within a stack."""
    stacks: list[list[AgentConfig]] = [[] for _ in range(stack_count)]
    for agent in agents:
        stacks[budget_stack_index(agent.name, stack_count)].append(agent)
    return stacks


def check_capacity(
    agents: Sequence[AgentConfig], stack_count: int, *, limit: int = MAX_AGENTS_PER_STACK, config_file: str = ""
) -> None:
    """Refuse an assignment with a stack over `limit` agents, naming the smallest `budget_stacks` that fits."""
    sizes = [len(s) for s in assign_budgets(agents, stack_count)]
    if max(sizes, default=0) <= limit:
        return
    needed = stack_count + 1
    while max(len(s) for s in assign_budgets(agents, needed)) > limit:
        needed += 1
    fullest = sizes.index(max(sizes))
    where = f"{config_file}: " if config_file else ""
    raise BudgetStacksOverfull(
        f"{where}budget_stacks: {stack_count} budget stack(s) cannot hold {len(agents)} agents (stack {fullest} "
        f"would hold {sizes[fullest]}, over {limit}: {RESOURCES_PER_AGENT} resources each, at most "
        f"{MAX_RESOURCES_PER_STACK} a stack); set budget_stacks to {needed} or more. Changing it moves "
        "budgets between stacks: each moved budget is replaced under a new name and its history restarts."
    )


def budget_stack_name(config: KillSwitchConfig, index: int) -> str:
    return f"{config.prefix}-budgets-{index}"


class BudgetStack(Stack):
    """One share of the agents: their budgets, alerting the workload stack's kill topic, and their guard topics,
    feeding its guard intake queue (same account and region)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: KillSwitchConfig,
        agents: Sequence[AgentConfig],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The topic's ARN is built from its name instead of imported: no cross-stack export to pin the topic.
        # Region and name are those `kill_topic_subscriber` puts in the budget names' hash.
        topic_arn = f"arn:{self.partition}:sns:{config.deploy_region}:{self.account}:{config.prefix}-kill"
        self.budgets = AgentBudgets(
            self, "Budgets", config=config, agents=agents, kill_topic_arn=topic_arn, placement=construct_id
        ).budgets
        self.guard_topics = AgentGuardTopics(self, "GuardTopics", config=config, agents=agents).topics
        if not agents:
            # A template needs one resource; a wait condition handle is CloudFormation's own no-op.
            CfnResource(self, "Empty", type="AWS::CloudFormation::WaitConditionHandle")


def add_budget_stacks(
    scope: Construct, config: KillSwitchConfig, *, config_file: str = "killswitch.yaml", **kwargs: Any
) -> list[BudgetStack]:
    check_capacity(config.agents, config.budget_stacks, config_file=config_file)
    out = []
    for index, agents in enumerate(assign_budgets(config.agents, config.budget_stacks)):
        name = budget_stack_name(config, index)
        out.append(
            BudgetStack(
                scope,
                name,
                config=config,
                agents=agents,
                description=f"Agent Kill Switch ({config.prefix}): agent budgets and guard topics, "
                f"share {index + 1} of {config.budget_stacks}",
                **kwargs,
            )
        )
    return out
