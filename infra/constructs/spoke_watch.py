"""The kill's watch in spoke accounts: a kill stays applied in every organization account, not only in the hub.

CloudTrail delivers a management event to the default bus of the account and region where the call was made, so
the hub's watch rules (`infra.constructs.watch`, `infra.watch_stacks`) never see what an agent starts in a spoke
account. The management stack deploys a second service-managed StackSet, `<prefix>-spoke-watch`, to every
configured region of the same OUs and accounts as the spoke role (auto-deployment on: an account that joins an OU
is watched without a redeploy). Each stack instance holds:

- a rule on the spoke's default bus with the watch pattern (built from the kind registry: `event_pattern()`),
  whose target is the hub account's home-region default bus;
- the role EventBridge uses for that cross-account target, `<prefix>-spoke-watch-<region>` (IAM is global: one
  name per region), trusted by `events.amazonaws.com` for this account only and allowed nothing but
  `events:PutEvents` on that one bus ARN;
- a dead-letter queue in the region (EventBridge's DLQ must be in the rule's region), SSE, TLS only, which only
  this rule may send to.

On the hub side, the default bus of the home region gets a resource policy (`SpokeWatchBusPolicy`, in the workload
stack) admitting `events:PutEvents` only from those forwarding roles (`aws:PrincipalArn`) and only in the
spoke accounts: the listed account ids as principals, and the accounts under the configured OUs through
`aws:PrincipalOrgPaths` (`<org>/*/<ou>/*`; `<org>` is `accounts.organization_id`, or `o-*` when it is not set,
in which case `aws:PrincipalOrgID` cannot pin the organization and the randomly generated OU id is what matches).
A forwarded event keeps `source` (`aws.*`, which no PutEvents caller can set), `detail-type`, `detail` and the
source `account`, so the hub's rule matches it and the kill Lambda acts in that account through the spoke role; it
ignores an event from any account that is not a spoke (`killswitch.kill.watch`).
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Aws, CfnResource, Stack
from constructs import Construct

from infra.constructs.spokes import service_managed_stack_set, stack_instance_groups
from killswitch.config import KillSwitchConfig
from killswitch.kill.watch import event_pattern

DLQ_RETENTION_SECONDS = 14 * 24 * 3600
BUS_POLICY_MAX_CHARS = 10_240  # EventBridge: "The permission policy on the event bus cannot exceed 10 KB in size."
_REGION = {"Ref": "AWS::Region"}
_ACCOUNT = {"Ref": "AWS::AccountId"}


def spoke_watch_role_prefix(config: KillSwitchConfig) -> str:
    """`<prefix>-spoke-watch-`: the forwarding role of each spoke region is this plus the region name."""
    return f"{config.prefix}-spoke-watch-"


def hub_bus_arn(config: KillSwitchConfig, hub_account: str) -> str:
    """The hub's home-region default bus (`hub_account` may be a token of the stack that renders it)."""
    return f"arn:{Aws.PARTITION}:events:{config.deploy_region}:{hub_account}:event-bus/default"


def spoke_watch_template(config: KillSwitchConfig, *, hub_account: str) -> dict[str, Any]:
    """The spoke-watch stack's template as a dict: the rule, its forwarding role and its dead-letter queue. The
    spoke's own region and account are its pseudo parameters (`Ref`), resolved where each instance deploys."""
    bus = hub_bus_arn(config, hub_account)
    queue_arn = {"Fn::GetAtt": ["DeadLetters", "Arn"]}
    rule_arn = {"Fn::GetAtt": ["ComputeStarted", "Arn"]}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Agent Kill Switch ({config.prefix}) spoke watch: compute-start CloudTrail events of this "
        "account and region, forwarded to the hub's watch",
        "Resources": {
            "DeadLetters": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": f"{config.prefix}-spoke-watch-dlq",
                    "SqsManagedSseEnabled": True,
                    "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
                },
            },
            "DeadLettersPolicy": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [{"Ref": "DeadLetters"}],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "FromTheWatchRuleOnly",
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Action": "sqs:SendMessage",
                                "Resource": queue_arn,
                                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                            },
                            {
                                "Sid": "TlsOnly",
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Action": "sqs:*",
                                "Resource": queue_arn,
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            },
                        ],
                    },
                },
            },
            "ForwardRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": {"Fn::Join": ["", [spoke_watch_role_prefix(config), _REGION]]},
                    "Description": "Agent Kill Switch: forward compute-start events to the hub's default bus",
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                                "Condition": {"StringEquals": {"aws:SourceAccount": _ACCOUNT}},
                            }
                        ],
                    },
                    "Policies": [
                        {
                            "PolicyName": f"{config.prefix}-spoke-watch-forward",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus}],
                            },
                        }
                    ],
                },
            },
            "ComputeStarted": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": f"{config.prefix}-spoke-watch",
                    "Description": "Agent Kill Switch: compute created or restarted (CloudTrail), forwarded to the "
                    "hub's watch so that a kill stays applied in this account",
                    "EventBusName": "default",
                    "State": "ENABLED",
                    "EventPattern": event_pattern(),
                    "Targets": [
                        {
                            "Id": "HubBus",
                            "Arn": bus,
                            "RoleArn": {"Fn::GetAtt": ["ForwardRole", "Arn"]},
                            "DeadLetterConfig": {"Arn": queue_arn},
                            "RetryPolicy": {"MaximumRetryAttempts": 2},
                        }
                    ],
                },
            },
        },
        "Outputs": {"DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetters"}}},
    }


class SpokeWatchStackSet(Construct):
    """`AWS::CloudFormation::StackSet` `<prefix>-spoke-watch` (SERVICE_MANAGED, auto-deployment) of the spoke-watch
    template, in every configured region of the spoke accounts. `hub_account`: a literal account id is left out of
    the OUs' instances (the hub already has its own watch rules and forwarding stacks)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: KillSwitchConfig, hub_account: str) -> None:
        super().__init__(scope, construct_id)
        accounts = config.accounts
        assert accounts is not None
        self.template = spoke_watch_template(config, hub_account=hub_account)
        exclude = hub_account if hub_account.isdigit() else None
        self.stack_set = service_managed_stack_set(
            self,
            name=f"{config.prefix}-spoke-watch",
            description=f"Agent Kill Switch ({config.prefix}): forward compute-start events of every spoke account "
            f"and region to the hub's watch in {config.deploy_region}",
            groups=stack_instance_groups(accounts, config.regions, exclude=exclude),
            template_body=Stack.of(self).to_json_string(self.template),
        )


def hub_bus_statements(config: KillSwitchConfig, bus_arn: str) -> dict[str, dict[str, Any]]:
    """Statement id → statement of the hub bus policy: PutEvents from the spokes' forwarding roles only."""
    accounts = config.accounts
    assert accounts is not None
    roles = {"ArnLike": {"aws:PrincipalArn": f"arn:{Aws.PARTITION}:iam::*:role/{spoke_watch_role_prefix(config)}*"}}
    base = {"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus_arn}
    out: dict[str, dict[str, Any]] = {}
    if accounts.account_ids:
        principals = [f"arn:{Aws.PARTITION}:iam::{a}:root" for a in accounts.account_ids]
        out[f"{config.prefix}-spoke-watch-accounts"] = {
            **base,
            "Principal": {"AWS": principals[0] if len(principals) == 1 else principals},
            "Condition": roles,
        }
    if accounts.organizational_units:
        org = accounts.organization_id or "o-*"
        condition: dict[str, Any] = {
            **roles,
            "ForAnyValue:StringLike": {
                "aws:PrincipalOrgPaths": [f"{org}/*/{ou}/*" for ou in accounts.organizational_units]
            },
        }
        if accounts.organization_id:
            condition["StringEquals"] = {"aws:PrincipalOrgID": accounts.organization_id}
        out[f"{config.prefix}-spoke-watch-ous"] = {**base, "Principal": "*", "Condition": condition}
    return out


class SpokeWatchBusPolicy(Construct):
    """The hub's home-region default bus admits the spokes' forwarded watch events (one statement per kind of
    target: listed accounts, OUs)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: KillSwitchConfig) -> None:
        super().__init__(scope, construct_id)
        self.bus_arn = hub_bus_arn(config, Aws.ACCOUNT_ID)
        statements = hub_bus_statements(config, self.bus_arn)
        # Measured with the unresolved tokens, which are longer than what they resolve to: never under the limit.
        size = len(json.dumps(list(statements.values()), separators=(",", ":")))
        if size > BUS_POLICY_MAX_CHARS and config.accounts is not None:
            from infra.workload_stack import StackConfigError  # the workload stack imports this module

            raise StackConfigError(
                f"accounts.account_ids: the hub bus policy admitting {len(config.accounts.account_ids)} listed "
                f"accounts would be about {size} characters, over EventBridge's {BUS_POLICY_MAX_CHARS}: put the "
                "accounts in an organizational unit and list the OU under accounts.organizational_units"
            )
        # A plain CfnResource: the L1 class warns about its deprecated `principal` property on every synth.
        self.policies = [
            CfnResource(
                self,
                sid,
                type="AWS::Events::EventBusPolicy",
                properties={"StatementId": sid, "EventBusName": "default", "Statement": statement},
            )
            for sid, statement in statements.items()
        ]
