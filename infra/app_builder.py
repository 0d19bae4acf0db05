"""Build the CDK app from a validated config: stacks, cdk-nag, the same feature flags as `cdk.json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import App, Aws, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.budget_stacks import add_budget_stacks
from infra.constructs.org_alerts import allow_org_alerts
from infra.management_stack import ManagementStack
from infra.org_budget_stacks import add_org_budget_stacks
from infra.watch_stacks import add_watch_stacks
from infra.workload_stack import StackConfigError, WorkloadStack
from killswitch.config import KillSwitchConfig
from killswitch.intakes import org_alerts_topic_name
from killswitch.org_budgets import management_account

REPO_ROOT = Path(__file__).resolve().parents[1]
CDK_JSON = REPO_ROOT / "cdk.json"


def feature_flags() -> dict[str, Any]:
    """The context of `cdk.json` minus our own `config` key: tests build apps with the same flags as `cdk`."""
    context = dict(json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {}))
    context.pop("config", None)
    return context


def workload_stack_name(config: KillSwitchConfig) -> str:
    return f"{config.prefix}-workload"


def management_stack_name(config: KillSwitchConfig) -> str:
    return f"{config.prefix}-management"


def new_app(
    outdir: str | None = None, context: dict[str, Any] | None = None, *, builtin_validation: bool = True
) -> App:
    """`builtin_validation=False` skips CDK's built-in CloudFormation validation plugin (~10 s per synth); the
    template tests use it because `make synth` runs cfn-lint on the same templates. cdk-nag is separate."""
    return App(
        outdir=outdir,
        context={**feature_flags(), **(context or {})},
        builtin_cloud_formation_validation=builtin_validation,
    )


def add_stacks(
    app: App,
    config: KillSwitchConfig,
    *,
    config_file: str = "killswitch.yaml",
    scp_dir: Path | None = None,
) -> tuple[WorkloadStack, ManagementStack | None]:
    """Workload stack and its budget stacks always; management stack with a sandbox or an accounts section.

    Stacks are environment-agnostic unless the config names the account (`sandbox.workload_account_id`,
    `sandbox.management_account_id`): then `cdk deploy` refuses credentials for any other account. Without a
    separate workload account, the workload stack is pinned to the management account (shared-account mode)."""
    sandbox = config.sandbox
    workload_env = (
        Environment(account=sandbox.workload_account_id, region=config.deploy_region)
        if sandbox and sandbox.workload_account_id
        else None
    )
    if sandbox and not sandbox.workload_account_id:
        # Shared-account mode: the kill Lambda calls Organizations itself and its IAM names the management account
        # as `${AWS::AccountId}`, so the stack must be deployed there and nowhere else.
        if not sandbox.management_account_id:
            raise StackConfigError(
                f"{config_file}: sandbox: set sandbox.management_account_id (the workload stack then deploys into "
                "the management account and attaches the deny SCP itself) or sandbox.workload_account_id (the kill "
                "Lambda runs there and assumes the org-kill role); with neither, the stack could be deployed into an "
                "account whose Organizations permissions name the wrong management account"
            )
        workload_env = Environment(account=sandbox.management_account_id, region=config.deploy_region)
    workload = WorkloadStack(
        app,
        workload_stack_name(config),
        config=config,
        config_file=config_file,
        env=workload_env,
        description=f"Agent Kill Switch ({config.prefix}): kill topic, kill Lambda, ledger, dashboard",
    )
    for budget_stack in add_budget_stacks(app, config, config_file=config_file, env=workload_env):
        budget_stack.add_stack_dependency(workload, "budgets alert the workload stack's kill topic")
        workload.budget_stacks.append(budget_stack)
    # The watch in every other configured region forwards to the workload stack's rule (`infra.watch_stacks`).
    for watch_stack in add_watch_stacks(app, config, account=workload_env.account if workload_env else None):
        watch_stack.add_stack_dependency(workload, "forwarded events are matched by the workload stack's watch")
        workload.watch_stacks.append(watch_stack)
    management = None
    if sandbox is not None or config.accounts is not None:
        mgmt_account = management_account(config)
        mgmt_env = Environment(account=mgmt_account, region=config.deploy_region) if mgmt_account else None
        management = ManagementStack(
            app,
            management_stack_name(config),
            config=config,
            scp_dir=scp_dir if scp_dir is not None else Path(sandbox.scp if sandbox else ".").parent,
            env=mgmt_env,
            description=f"Agent Kill Switch ({config.prefix}): SCPs and budget actions for sandbox accounts, "
            "spoke roles in organization accounts",
        )
        if management.org_alerts is not None:
            add_org_alerts(app, config, workload, management, config_file=config_file, env=mgmt_env)
    return workload, management


def add_org_alerts(
    app: App,
    config: KillSwitchConfig,
    workload: WorkloadStack,
    management: ManagementStack,
    *,
    config_file: str,
    env: Environment | None,
) -> None:
    """The organization budget stacks (management account) and the hub's side of the org alerts subscription."""
    assert management.org_alerts is not None
    mgmt_account = management_account(config) or Aws.ACCOUNT_ID  # unnamed: the hub is the management account
    topic_arn = f"arn:{Aws.PARTITION}:sns:{config.deploy_region}:{mgmt_account}:{org_alerts_topic_name(config.prefix)}"
    allow_org_alerts(workload.kill.function, topic_arn=topic_arn, management_account=mgmt_account)
    management.add_stack_dependency(workload, "the org alerts subscription invokes the hub kill Lambda")
    for stack in add_org_budget_stacks(app, config, config_file=config_file, env=env):
        stack.add_stack_dependency(management, "organization budgets alert the management stack's org alerts topic")
        management.org_budget_stacks.append(stack)


def enable_nag(app: App) -> None:
    """cdk-nag 3.x AwsSolutions as a policy-validation plugin: an unacknowledged finding fails synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def build_app(
    config: KillSwitchConfig,
    *,
    config_file: str = "killswitch.yaml",
    scp_dir: Path | None = None,
    outdir: str | None = None,
    nag: bool = True,
) -> App:
    app = new_app(outdir)
    add_stacks(app, config, config_file=config_file, scp_dir=scp_dir)
    if nag:
        enable_nag(app)
    return app
