"""Hub and spokes: the `<prefix>-spoke` role in every organization account, deployed as a service-managed StackSet.

The hub (the workload account's kill Lambda) assumes `<prefix>-spoke` in each account with an ExternalId; the role
trusts only the hub's own function roles (`aws:PrincipalArn`), so an agent in a spoke account, or any other role of
the hub account, cannot use it. Its permissions are the kill Lambda's compute statements (`spoke_statements`,
which takes the statements as input so that the kill engine's resource-kind registry can feed it later), with the
same tag conditions, their ARNs rewritten to the spoke's own partition and account.

The StackSet deploys with automatic deployment to the configured OUs, so an account that joins one is covered
without a redeploy. StackSets never deploy to the management account itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Aws, Stack
from aws_cdk import aws_cloudformation as cfn
from aws_cdk import aws_iam as iam
from constructs import Construct

from killswitch.config import AccountsConfig, KillSwitchConfig


def hub_principal_arns(config: KillSwitchConfig, hub_account: str) -> list[str]:
    """The hub roles the spoke trusts: the kill Lambda's role (`<prefix>-kill-<home region>`) and the ops roles
    (`accounts.ops_role_arns`) that run `killswitch restore|approve` across the accounts."""
    ops = list(config.accounts.ops_role_arns) if config.accounts else []
    return [f"arn:{Aws.PARTITION}:iam::{hub_account}:role/{config.prefix}-kill-{config.deploy_region}", *ops]


def _spoke_arns(value: Any) -> Any:
    """An ARN built for this stack (`nag.arn`: the stack's partition and account tokens) → the same ARN for the
    stack instance it is deployed as (`Fn::Join` over the spoke's own pseudo parameters; `Fn::Join` rather than
    `Fn::Sub`, so that no `${AWS::...}` text sits in this stack's template, where cfn-lint would take it for ours)."""
    if isinstance(value, list):
        return [_spoke_arns(v) for v in value]
    if not isinstance(value, str) or (Aws.PARTITION not in value and Aws.ACCOUNT_ID not in value):
        return value
    pseudo = {Aws.PARTITION: {"Ref": "AWS::Partition"}, Aws.ACCOUNT_ID: {"Ref": "AWS::AccountId"}}
    parts: list[Any] = [value]
    for token, ref in pseudo.items():
        split: list[Any] = []
        for part in parts:
            if not isinstance(part, str):
                split.append(part)
                continue
            pieces = part.split(token)
            for i, piece in enumerate(pieces):
                if i:
                    split.append(ref)
                if piece:
                    split.append(piece)
        parts = split
    return {"Fn::Join": ["", parts]}


def spoke_statements(source: Sequence[iam.PolicyStatement]) -> list[dict[str, Any]]:
    """The spoke role's statements: `source` (today the kill Lambda's compute statements) as JSON, every resource
    rewritten to the spoke account. Conditions (the `agent-name` tag checks) are kept as they are.

    IAM actions are left out: `deny_iam` attaches the workload stack's `<prefix>-deny-agent` policy, which does not
    exist in a spoke account yet (it joins the spoke template with the hub kill across accounts)."""
    out = []
    for statement in source:
        doc = dict(statement.to_statement_json())
        actions = [a for a in _as_list(doc.get("Action", [])) if not a.startswith("iam:")]
        if not actions:
            continue
        doc["Action"] = actions[0] if len(actions) == 1 else actions
        doc["Resource"] = _spoke_arns(doc.get("Resource", "*"))
        out.append(doc)
    return out


def _as_list(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else [value]


def spoke_template(config: KillSwitchConfig, *, hub_account: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
    """The spoke stack's template (one role), as a dict; the hub account may be a token of the management stack."""
    trust = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{Aws.PARTITION}:iam::{hub_account}:root"},
        "Action": "sts:AssumeRole",
        "Condition": {
            "StringEquals": {"sts:ExternalId": config.spoke_external_id()},
            "ArnEquals": {"aws:PrincipalArn": hub_principal_arns(config, hub_account)},
        },
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Agent Kill Switch ({config.prefix}) spoke: the role the hub's kill Lambda assumes here",
        "Resources": {
            "SpokeRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": config.spoke_role_name(),
                    "Description": "Assumed by the Agent Kill Switch hub to stop agent-tagged compute",
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]},
                    "Policies": [
                        {
                            "PolicyName": f"{config.prefix}-spoke-kill",
                            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                        }
                    ],
                },
            }
        },
        "Outputs": {"SpokeRoleArn": {"Value": {"Fn::GetAtt": ["SpokeRole", "Arn"]}}},
    }


def stack_instance_groups(
    accounts: AccountsConfig, regions: Sequence[str], *, exclude: str | None = None
) -> list[cfn.CfnStackSet.StackInstancesProperty]:
    """Stack instances of a service-managed StackSet: every account of the configured OUs (minus `exclude`, the
    hub's own account when it is known and may sit in one), and the listed account ids, in `regions`."""
    groups = []
    if accounts.organizational_units:
        groups.append(
            cfn.CfnStackSet.StackInstancesProperty(
                deployment_targets=cfn.CfnStackSet.DeploymentTargetsProperty(
                    organizational_unit_ids=list(accounts.organizational_units),
                    accounts=[exclude] if exclude else None,
                    account_filter_type="DIFFERENCE" if exclude else None,
                ),
                regions=list(regions),
            )
        )
    ids = [a for a in accounts.account_ids if a != exclude]
    if ids:
        # Single accounts: the root OU intersected with the listed ids (UNION cannot create stack instances).
        groups.append(
            cfn.CfnStackSet.StackInstancesProperty(
                deployment_targets=cfn.CfnStackSet.DeploymentTargetsProperty(
                    organizational_unit_ids=[accounts.organization_root_id or ""],
                    accounts=ids,
                    account_filter_type="INTERSECTION",
                ),
                regions=list(regions),
            )
        )
    return groups


def service_managed_stack_set(
    scope: Construct,
    *,
    name: str,
    description: str,
    groups: list[cfn.CfnStackSet.StackInstancesProperty],
    template_body: str,
) -> cfn.CfnStackSet:
    """A service-managed StackSet that deploys automatically to new accounts of its OUs (and removes its stacks from
    accounts that leave), all accounts and regions at once: a spoke that fails to deploy never holds back another."""
    return cfn.CfnStackSet(
        scope,
        "StackSet",
        stack_set_name=name,
        description=description,
        permission_model="SERVICE_MANAGED",
        auto_deployment=cfn.CfnStackSet.AutoDeploymentProperty(enabled=True, retain_stacks_on_account_removal=False),
        capabilities=["CAPABILITY_NAMED_IAM"],
        managed_execution={"Active": True},
        operation_preferences=cfn.CfnStackSet.OperationPreferencesProperty(
            failure_tolerance_percentage=100, max_concurrent_percentage=100, region_concurrency_type="PARALLEL"
        ),
        stack_instances_group=groups,
        template_body=template_body,
    )


class SpokeStackSet(Construct):
    """`AWS::CloudFormation::StackSet` (SERVICE_MANAGED, auto-deployment) of the spoke template."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: KillSwitchConfig,
        hub_account: str,
        statements: Sequence[iam.PolicyStatement],
    ) -> None:
        super().__init__(scope, construct_id)
        accounts = config.accounts
        assert accounts is not None
        self.template = spoke_template(config, hub_account=hub_account, statements=spoke_statements(statements))
        body = Stack.of(self).to_json_string(self.template)
        # The spoke is one IAM role (a global resource): one stack instance per account, in the home region.
        groups = stack_instance_groups(accounts, [config.deploy_region])
        self.stack_set = service_managed_stack_set(
            self,
            name=f"{config.prefix}-spoke",
            description=f"Agent Kill Switch ({config.prefix}): the {config.spoke_role_name()} role in every account",
            groups=groups,
            template_body=body,
        )
