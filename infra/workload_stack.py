"""Workload stack: everything one workload account needs (one per account, deployed in `config.deploy_region`).

The agents' budgets live in their own stacks (`infra.budget_stacks`), which alert this stack's kill topic."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import nag
from infra.constructs import lambda_common
from infra.constructs.agent_boundary import AgentBoundaryPolicy
from infra.constructs.alarms import KillAlarms
from infra.constructs.dashboard import AgentsDashboard
from infra.constructs.deny_policy import AgentDenyPolicy
from infra.constructs.encryption import KillSwitchKey
from infra.constructs.guard_intake import GuardIntake
from infra.constructs.guard_policy import GuardPublisherPolicy, guard_policy_name
from infra.constructs.kill_function import KillFunction, dlq_url
from infra.constructs.ledger import KILL_LEDGER_ACTIONS, LedgerTable, grant_ledger_items
from infra.constructs.meter import Meter
from infra.constructs.spend_recorder import SpendRecorder
from infra.constructs.spoke_watch import SpokeWatchBusPolicy
from infra.constructs.topics import EventsTopic, KillTopic
from infra.constructs.watch import KillWatch
from killswitch import settings
from killswitch.config import KillSwitchConfig
from killswitch.metrics import METRICS_NAMESPACE


class StackConfigError(ValueError):
    """The config cannot be turned into stacks (a combination the config model alone does not reject)."""


def org_role_name(config: KillSwitchConfig) -> str:
    return f"{config.prefix}-org-kill"


def org_role_arn(config: KillSwitchConfig) -> str | None:
    """ARN of the management account's org-kill role, when the kill Lambda runs in another account."""
    sandbox = config.sandbox
    if sandbox is None or sandbox.workload_account_id is None:
        return None
    if sandbox.management_account_id is None:
        raise StackConfigError(
            "sandbox.workload_account_id is set but sandbox.management_account_id is not: the kill Lambda "
            f"assumes the {org_role_name(config)} role in the management account and needs its account id"
        )
    return f"arn:aws:iam::{sandbox.management_account_id}:role/{org_role_name(config)}"


def sandbox_accounts(config: KillSwitchConfig) -> list[str]:
    return sorted({acct for a in config.agents for acct in a.sandbox_accounts})


class WorkloadStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: KillSwitchConfig,
        config_file: str = "killswitch.yaml",
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        # The budget stacks alerting this stack's kill topic (`infra.budget_stacks`), filled by `add_stacks`.
        self.budget_stacks: list[Stack] = []
        # The watch's forwarding stacks in the other configured regions (`infra.watch_stacks`), filled by `add_stacks`.
        self.watch_stacks: list[Stack] = []
        prefix = config.prefix

        self.key = KillSwitchKey(self, "Encryption", prefix=prefix).key
        self.kill_topic = KillTopic(self, "KillTopic", prefix=prefix, key=self.key).topic
        self.events_topic = EventsTopic(
            self, "EventsTopic", prefix=prefix, key=self.key, emails=list(config.notify.emails)
        ).topic
        self.table = LedgerTable(self, "Ledger", prefix=prefix, key=self.key).table

        # What both Lambdas read (`killswitch.settings`); only the kill Lambda gets the topics.
        base_env = {
            settings.ENV_TABLE: self.table.table_name,
            settings.ENV_CONFIG_FILE: lambda_common.CONFIG_FILE_IN_LAMBDA,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        topics_env = {
            settings.ENV_EVENTS_TOPIC: self.events_topic.topic_arn,
            settings.ENV_KILL_TOPIC: self.kill_topic.topic_arn,
        }
        role_arn = org_role_arn(config)
        # Unreadable alerts are forwarded to the kill Lambda's DLQ, whose depth alarm notifies ops.
        kill_env = {
            **base_env,
            **topics_env,
            "POWERTOOLS_SERVICE_NAME": f"{prefix}-kill",
            settings.ENV_DLQ_URL: dlq_url(prefix),
        }
        scp_name = config.scp_policy_name()
        if scp_name:
            kill_env[settings.ENV_SCP_POLICY_NAME] = scp_name
        if role_arn:
            kill_env[settings.ENV_ORG_ROLE] = role_arn
        spend_env = {**base_env, "POWERTOOLS_SERVICE_NAME": f"{prefix}-spend-recorder"}
        lambda_common.check_environment_size(kill_env, function="kill", config_file=config_file)
        lambda_common.check_environment_size(spend_env, function="spend recorder", config_file=config_file)

        # Without a separate workload account the stack shares the management account and the kill Lambda
        # attaches the deny SCP itself; otherwise it assumes the org-kill role.
        direct_targets = sandbox_accounts(config) if config.sandbox and role_arn is None else None
        self.kill = KillFunction(
            self,
            "Kill",
            prefix=prefix,
            key=self.key,
            kill_topic=self.kill_topic,
            events_topic=self.events_topic,
            environment=kill_env,
            org_role_arn=role_arn,
            direct_org_targets=direct_targets,
        )
        grant_ledger_items(self.table, self.kill.role, KILL_LEDGER_ACTIONS)
        self.guard_intake = GuardIntake(
            self,
            "GuardIntake",
            config=config,
            key=self.key,
            function=self.kill.function,
            dead_letter_queue=self.kill.dlq,
        )
        if config.accounts is not None:
            self._allow_spokes(config)
            # The watch in spoke accounts forwards to this account's default bus (`infra.constructs.spoke_watch`).
            self.spoke_watch_bus = SpokeWatchBusPolicy(self, "SpokeWatchBus", config=config)
        self.kill.finalize_dependencies()
        self.watch = KillWatch(
            self, "Watch", prefix=prefix, function=self.kill.function, dead_letter_queue=self.kill.dlq
        )
        self.spend = SpendRecorder(self, "SpendRecorder", prefix=prefix, table=self.table, environment=spend_env)
        # The config rides in a layer, not in the environment (4 KB, about 14 agents).
        self.config_layer = lambda_common.config_layer(self, "ConfigLayer", config)
        for function in (self.kill.function, self.spend.function):
            function.add_layers(self.config_layer)
        self.alarms = KillAlarms(
            self, "Alarms", prefix=prefix, function=self.kill.function, dlq=self.kill.dlq, topic=self.events_topic
        )
        if config.meter is not None:
            meter_env = {k: v for k, v in kill_env.items() if k != settings.ENV_DLQ_URL}
            meter_env["POWERTOOLS_SERVICE_NAME"] = f"{prefix}-meter"
            lambda_common.check_environment_size(meter_env, function="meter", config_file=config_file)
            self.meter = Meter(
                self,
                "Meter",
                prefix=prefix,
                meter=config.meter,
                key=self.key,
                table=self.table,
                events_topic=self.events_topic,
                environment=meter_env,
                org_role_arn=role_arn,
                direct_org_targets=direct_targets,
            )
            self.meter.finalize_dependencies()
            self.meter.function.add_layers(self.config_layer)
        self.dashboard = AgentsDashboard(self, "Dashboard", config=config).dashboard
        self.deny_policy = AgentDenyPolicy(self, "AgentDenyPolicy", prefix=prefix).policy
        self.guard_policy = GuardPublisherPolicy(
            self,
            "GuardPublisher",
            prefix=prefix,
            table=self.table,
            key=self.key,
        ).policy

        self.agent_boundary = AgentBoundaryPolicy(
            self,
            "AgentBoundary",
            config=config,
            table=self.table,
            key=self.key,
            guard_policy_names=[guard_policy_name(prefix)],
        ).policy

        CfnOutput(
            self,
            "KillTopicArn",
            value=self.kill_topic.topic_arn,
            description="SNS alerts topic: AWS Budgets and Cost Anomaly Detection only",
        )
        CfnOutput(self, "EventsTopicArn", value=self.events_topic.topic_arn, description="SNS topic: results out")
        CfnOutput(self, "LedgerTableName", value=self.table.table_name, description="DynamoDB ledger table")
        CfnOutput(
            self,
            "GuardPublisherPolicyArn",
            value=self.guard_policy.managed_policy_arn,
            description="Attach to agent roles that run the guard SDK",
        )
        CfnOutput(
            self,
            "AgentBoundaryPolicyArn",
            value=self.agent_boundary.managed_policy_arn,
            description="Attach to every agent role (tag agent-name=<agent> on the role too)",
        )

    def _allow_spokes(self, config: KillSwitchConfig) -> None:
        """The kill Lambda may assume the `<prefix>-spoke` role that the management stack's StackSet puts in every
        organization account (accounts of an OU are unknown at synth, hence `*`; the spoke checks the ExternalId)."""
        pattern = f"arn:{{partition}}:iam::*:role/{config.spoke_role_name()}"
        self.kill.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AssumeSpokeRoles",
                actions=["sts:AssumeRole"],
                resources=[nag.arn(pattern)],
                conditions={"StringEquals": {"sts:ExternalId": config.spoke_external_id()}},
            )
        )
        nag.acknowledge(
            self.kill.role,
            "AwsSolutions-IAM5",
            "The spoke role has one name in every organization account, and the accounts of an OU are only known "
            "at run time; each spoke trusts only this role and checks the ExternalId",
            [nag.resource_finding(pattern)],
        )
        assert config.accounts is not None
        if config.accounts.organizational_units:
            # The hub kill lists the OUs' accounts per invocation (new accounts covered without a redeploy).
            self.kill.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="ListSpokeAccounts",
                    actions=["organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent"],
                    resources=["*"],
                )
            )
            nag.acknowledge(
                self.kill.role,
                "AwsSolutions-IAM5",
                "Listing the accounts and child OUs of the configured OUs is read-only; the IAM catalogue has no "
                "required resource type for these list calls",
                ["Resource::*"],
            )
