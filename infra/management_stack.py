"""Management-account stack (with a `sandbox` and/or an `accounts` section): SCPs, budget actions applying the deny
SCP, the cross-account role the workload account's kill Lambda assumes, and the spoke StackSet (`accounts`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, Aws, CfnRule, CfnRuleAssertion, CfnTag, Fn, Stack
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_organizations as organizations
from constructs import Construct

from infra import nag
from infra.constructs.budgets import MAX_EMAIL_SUBSCRIBERS, cost_budget, notifications
from infra.constructs.kill_function import (
    ORG_ACCOUNT,
    kill_role_name,
    kill_statements,
    org_resource_patterns,
    org_statements,
)
from infra.constructs.meter import meter_role_name
from infra.constructs.org_alerts import OrgAlertsTopic
from infra.constructs.spoke_watch import SpokeWatchStackSet
from infra.constructs.spokes import SpokeStackSet
from infra.workload_stack import StackConfigError, org_role_name, sandbox_accounts
from killswitch import tags
from killswitch.budget_names import budget_spec
from killswitch.config import AgentConfig, KillSwitchConfig, SandboxConfig
from killswitch.org_budgets import org_alerts_enabled

# Organizations quota (May 2026): 10,240 characters per SCP, measured on the submitted (minified) text.
SCP_MAX_CHARS = 10_240
# The SCP file the stack itself attaches to every sandbox account.
PROTECT_SCP_STEM = "protect-kill-switch"
# Budgets actions take 1-11 subscribers.
MAX_ACTION_SUBSCRIBERS = 11


@dataclass(frozen=True)
class ScpDocument:
    path: Path
    name: str
    content: str  # minified JSON, exactly what is submitted


def minify(text: str) -> str:
    return json.dumps(json.loads(text), separators=(",", ":"))


def load_scp_documents(scp_dir: Path, prefix: str) -> list[ScpDocument]:
    """Every `*.json` in `scp_dir`, minified; a clear error naming the file for bad JSON or an oversize policy."""
    docs = []
    for path in sorted(scp_dir.glob("*.json")):
        try:
            content = minify(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise StackConfigError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
        if len(content) > SCP_MAX_CHARS:
            raise StackConfigError(
                f"{path}:1:1: SCP is {len(content)} characters minified, over the {SCP_MAX_CHARS} limit"
            )
        docs.append(ScpDocument(path=path, name=f"{prefix}-{path.stem}", content=content))
    return docs


def linked_budget_name(config: KillSwitchConfig, agent: AgentConfig, account: str) -> str:
    """`<agent budget name>-<account>-<hash>` within Budgets' 100 characters; the hash changes with whatever
    CloudFormation replaces the budget for (see `killswitch.budget_names`), so a replacement never collides."""
    emails = config.notify.emails
    return budget_spec(
        config, agent, sns_subscriber=None, emails=emails, placement="management", suffix=f"-{account}"
    ).name


def hub_account_id(config: KillSwitchConfig) -> str:
    """The account of the kill Lambda: `accounts.hub_account_id`, else `sandbox.workload_account_id`, else this
    (management) account."""
    explicit = config.accounts.hub_account_id if config.accounts else None
    workload = config.sandbox.workload_account_id if config.sandbox else None
    return explicit or workload or Aws.ACCOUNT_ID


class ManagementStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: KillSwitchConfig,
        scp_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if config.sandbox is None and config.accounts is None:
            raise StackConfigError("the management stack needs a sandbox or an accounts section in the config")
        self.config = config
        if config.sandbox is not None:
            self._add_sandbox(config.sandbox, scp_dir)
        # The `<prefix>-org-budgets-N` stacks alerting the org alerts topic (`infra.org_budget_stacks`), filled by
        # `add_stacks`.
        self.org_budget_stacks: list[Stack] = []
        self.spokes: SpokeStackSet | None = None
        if config.accounts is not None:
            self.spokes = SpokeStackSet(
                self,
                "Spokes",
                config=config,
                hub_account=hub_account_id(config),
                statements=kill_statements(org_role_arn=None, direct_org_targets=None),
            )
            self.spoke_watch = SpokeWatchStackSet(self, "SpokeWatch", config=config, hub_account=hub_account_id(config))
        self.org_alerts: OrgAlertsTopic | None = None
        if org_alerts_enabled(config):
            self._add_org_alerts()

    def _add_org_alerts(self) -> None:
        """The organization budgets' alerts topic (`infra.constructs.org_alerts`); the budgets themselves live in the
        `<prefix>-org-budgets-N` stacks (`infra.org_budget_stacks`)."""
        config = self.config
        self.org_alerts = OrgAlertsTopic(self, "OrgAlerts", config=config, hub_account=hub_account_id(config))
        # The hub trusts the topic by an ARN built with the home region (`killswitch.org_budgets`): refuse any other.
        CfnRule(
            self,
            "OrgAlertsInHomeRegion",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_equals(Aws.REGION, config.deploy_region),
                    assert_description=f"with accounts:, deploy the management stack in the home region "
                    f"{config.deploy_region}: the hub kill Lambda trusts the org alerts topic there only",
                )
            ],
        )

    def _add_sandbox(self, sandbox: SandboxConfig, scp_dir: Path) -> None:
        """SCPs, linked-account budgets with their Budgets actions, and the org-kill role."""
        config = self.config
        prefix = config.prefix
        deny_name = config.scp_policy_name()

        targets = sandbox_accounts(config)
        self.policies: dict[str, organizations.CfnPolicy] = {}
        for doc in load_scp_documents(scp_dir, prefix):
            # protect-kill-switch stays on every sandbox account (no tag escape, no kill-switch role names); the
            # others are attached by a kill (or by hand), never by this stack.
            always_on = doc.path.stem == PROTECT_SCP_STEM
            policy = organizations.CfnPolicy(
                self,
                f"Scp-{doc.path.stem}",
                name=doc.name,
                type="SERVICE_CONTROL_POLICY",
                content=json.loads(doc.content),
                target_ids=targets if always_on and targets else None,
                description=f"Agent Kill Switch: {doc.path.name} "
                + ("(attached to every sandbox account by this stack)" if always_on else "(attached by the kill)"),
                # A shared-account kill Lambda may attach/detach only the SCP with this tag (org_statements).
                tags=[CfnTag(key=tags.DENY_SCP, value=prefix)] if doc.name == deny_name else None,
            )
            # `Content` takes a JSON object or a JSON string; the string is exactly the minified text that was
            # measured against the size limit (the L1 props only accept an object, hence the override).
            policy.add_property_override("Content", doc.content)
            self.policies[doc.name] = policy
        if deny_name not in self.policies:
            raise StackConfigError(
                f"sandbox.scp: {sandbox.scp} was not found in {scp_dir} (deny policy {deny_name!r} is required)"
            )
        self.deny_policy = self.policies[deny_name]

        mgmt = sandbox.management_account_id
        if mgmt and mgmt in targets:  # the config model refuses this too; never rely on one check only
            raise StackConfigError(f"the management account {mgmt} cannot be a sandbox account")
        if targets:
            # Deploy-time guard: refuse to deploy into an account that is itself a sandbox target.
            CfnRule(
                self,
                "NeverTargetManagementAccount",
                assertions=[
                    CfnRuleAssertion(
                        assert_=Fn.condition_not(Fn.condition_contains(targets, Aws.ACCOUNT_ID)),
                        assert_description="SCPs never apply to the management account: it must not be a sandbox "
                        "account of any agent",
                    )
                ],
            )

        self.execution_role = self._execution_role(targets)
        self.action_budgets: dict[tuple[str, str], budgets.CfnBudget] = {}
        self.actions: dict[tuple[str, str], budgets.CfnBudgetsAction] = {}
        emails = list(config.notify.emails)
        for agent in config.agents:
            for account in agent.sandbox_accounts:
                name = linked_budget_name(config, agent, account)
                budget = cost_budget(
                    self,
                    f"Budget-{agent.name}-{account}",
                    name=name,
                    agent=agent,
                    cost_filters={"LinkedAccount": [account]},
                    notifications_with_subscribers=notifications(agent, None, emails) if emails else None,
                )
                self.action_budgets[(agent.name, account)] = budget
                if not emails:
                    Annotations.of(budget).add_warning_v2(
                        "killswitch:budget-action-without-subscribers",
                        f"no budget action for agent {agent.name!r} on account {account}: a Budgets action needs "
                        "1-11 subscribers and notify.emails is empty",
                    )
                    continue
                action = budgets.CfnBudgetsAction(
                    self,
                    f"Action-{agent.name}-{account}",
                    budget_name=name,
                    action_type="APPLY_SCP_POLICY",
                    action_threshold=budgets.CfnBudgetsAction.ActionThresholdProperty(
                        type="PERCENTAGE", value=agent.budget.kill_at_pct
                    ),
                    definition=budgets.CfnBudgetsAction.DefinitionProperty(
                        scp_action_definition=budgets.CfnBudgetsAction.ScpActionDefinitionProperty(
                            policy_id=self.deny_policy.attr_id, target_ids=[account]
                        )
                    ),
                    execution_role_arn=self.execution_role.role_arn,
                    approval_model="MANUAL" if agent.approval.value == "manual" else "AUTOMATIC",
                    notification_type="ACTUAL",
                    subscribers=[
                        budgets.CfnBudgetsAction.SubscriberProperty(address=e, type="EMAIL")
                        for e in emails[: min(MAX_EMAIL_SUBSCRIBERS, MAX_ACTION_SUBSCRIBERS)]
                    ],
                )
                action.add_resource_dependency(budget)  # budget_name is a plain string, not a Ref
                self.actions[(agent.name, account)] = action

        self.org_kill_role: iam.Role | None = None
        if sandbox.workload_account_id:
            self.org_kill_role = self._org_kill_role(sandbox.workload_account_id, targets)

    def _execution_role(self, targets: list[str]) -> iam.Role:
        role = iam.Role(
            self,
            "BudgetsActionRole",
            role_name=f"{self.config.prefix}-budgets-action",
            description="Assumed by AWS Budgets to attach/detach the deny SCP on sandbox accounts",
            assumed_by=iam.ServicePrincipal(
                "budgets.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
        )
        accounts = [nag.arn(ORG_ACCOUNT % t) for t in targets]
        policy = iam.Policy(
            self,
            "BudgetsActionPolicy",
            statements=[
                iam.PolicyStatement(
                    sid="AttachDenyScp",
                    actions=["organizations:AttachPolicy", "organizations:DetachPolicy"],
                    resources=[self.deny_policy.attr_arn, *accounts],
                )
            ],
        )
        policy.attach_to_role(role)
        nag.acknowledge(
            policy,
            "AwsSolutions-IAM5",
            "The organization id (o-...) is only known after deployment; targets are the configured sandbox "
            "account ids and the policy is the deny SCP of this stack",
            [nag.resource_finding(p) for p in org_resource_patterns(targets, any_scp=False, tagged_accounts=False)],
        )
        return role

    def _hub_role_arns(self, workload_account: str) -> str | list[str]:
        """The workload stack's roles that act on the organization: the kill Lambda's and, with `meter:`, the
        meter's (`infra.constructs.meter`)."""
        region = self.config.deploy_region
        base = f"arn:{Aws.PARTITION}:iam::{workload_account}:role/"
        arns = [base + kill_role_name(self.config.prefix, region)]
        if self.config.meter is not None:
            arns.append(base + meter_role_name(self.config.prefix, region))
        return arns[0] if len(arns) == 1 else arns

    def _org_kill_role(self, workload_account: str, targets: list[str]) -> iam.Role:
        prefix = self.config.prefix
        role = iam.Role(
            self,
            "OrgKillRole",
            role_name=org_role_name(self.config),
            description=f"Assumed by the {prefix} kill Lambda in {workload_account} to attach/detach the deny SCP",
            # Exactly the kill Lambda's role (and the meter's, which kills in-process): a `<prefix>-*` pattern would
            # trust any role an agent names that way.
            assumed_by=iam.AccountPrincipal(workload_account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": self._hub_role_arns(workload_account)}}
            ),
        )
        policy = iam.Policy(
            self,
            "OrgKillPolicy",
            statements=org_statements(targets, policy_arn=self.deny_policy.attr_arn),
        )
        policy.attach_to_role(role)
        nag.acknowledge(
            policy,
            "AwsSolutions-IAM5",
            "Organizations List*/Describe* reads have no resource-level permissions; attach/detach is limited to "
            "the deny SCP of this stack, the configured sandbox accounts and accounts carrying the agent-name tag "
            "(the organization id is unknown at synth)",
            [
                "Resource::*",
                *(nag.resource_finding(p) for p in org_resource_patterns(targets, any_scp=False, tagged_accounts=True)),
            ],
        )
        return role
