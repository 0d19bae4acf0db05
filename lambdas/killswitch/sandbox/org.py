"""Organizations path of a kill: attach the deny SCP to an agent's sandbox accounts, and detach it on restore.

Safety rules enforced here, whatever Organizations (or moto) would accept: never the management account, never
more than 10 SCPs on a target, never detach `FullAWSAccess`, and `attach_deny_scp` reports whether THIS call
attached the policy so that restore detaches only what the kill attached. Every call ends in a `ResourceResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from aws_lambda_powertools import Logger
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from killswitch.aws import client, error_code
from killswitch.config import AgentConfig
from killswitch.results import Outcome, ResourceResult

logger = Logger(child=True)

SCP_TYPE = "SERVICE_CONTROL_POLICY"
MAX_SCPS_PER_TARGET = 10
FULL_AWS_ACCESS_ID = "p-FullAWSAccess"
FULL_AWS_ACCESS_NAME = "FullAWSAccess"
AGENT_TAG = "agent-name"
RESOURCE_TYPE = "organizations:account"
REGION = "global"
RETRYABLE = frozenset({"ConcurrentModificationException", "TooManyRequestsException", "ThrottlingException"})
RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # seconds between attempts (Organizations: ~2 calls/s)

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class ScpTarget:
    account_id: str
    reason: str  # "sandbox_accounts in config" | "account tag agent-name=<agent>"


def assumed_role_session(role_arn: str, session: boto3.Session | None = None) -> boto3.Session:
    """A session whose credentials assume `role_arn` again before they expire (botocore refreshes them ahead of
    expiry), so a warm Lambda container never calls Organizations with an expired token (they last an hour)."""
    sess = session or boto3.Session()
    sts = client("sts", session=sess)

    def fetch() -> dict[str, str]:
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="killswitch-scp")["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    botocore_session = botocore.session.get_session()
    botocore_session._credentials = RefreshableCredentials.create_from_metadata(  # botocore has no public setter
        metadata=fetch(), refresh_using=fetch, method="sts-assume-role"
    )
    return boto3.Session(botocore_session=botocore_session, region_name=sess.region_name)


def org_client(role_arn: str | None = None, session: boto3.Session | None = None) -> Any:
    """An Organizations client; with `role_arn`, through that role (the management account's SCP role)."""
    sess = assumed_role_session(role_arn, session) if role_arn else (session or boto3.Session())
    # Organizations is a global service whose endpoint lives in us-east-1.
    return client("organizations", region="us-east-1", session=sess)


def find_policy_id(org: Any, policy_name: str) -> str | None:
    """Id of the SCP named `policy_name`, or None."""
    for page in org.get_paginator("list_policies").paginate(Filter=SCP_TYPE):
        for policy in page.get("Policies", []):
            if policy.get("Name") == policy_name:
                return str(policy["Id"])
    return None


def org_management_account_id(org: Any) -> str | None:
    """The organization's management (master) account id, or None when it cannot be read."""
    try:
        org_info = org.describe_organization()["Organization"]
    except (ClientError, BotoCoreError) as exc:
        # Say why (AccessDenied, AWSOrganizationsNotInUse, ...) and what it means for the kill.
        logger.warning(
            f"describe_organization failed ({error_code(exc)}: {exc}); the management account is excluded only "
            "as configured (sandbox.management_account_id)",
            extra={"code": error_code(exc)},
        )
        return None
    return org_info.get("MasterAccountId")


def _tagged_accounts(org: Any, agent_name: str) -> list[str]:
    found = []
    for page in org.get_paginator("list_accounts").paginate():
        for account in page.get("Accounts", []):
            if account.get("Status", "ACTIVE") != "ACTIVE":
                continue
            tags_pages = org.get_paginator("list_tags_for_resource").paginate(ResourceId=account["Id"])
            tags = {t["Key"]: t["Value"] for p in tags_pages for t in p.get("Tags", [])}
            if tags.get(AGENT_TAG) == agent_name:
                found.append(str(account["Id"]))
    return found


def find_sandbox_targets(org: Any, agent: AgentConfig, management_account_id: str | None) -> list[ScpTarget]:
    """Config `sandbox_accounts` ∪ org accounts tagged `agent-name=<agent>`, minus the management account.

    The management account is excluded both as configured and as `describe_organization` reports it (SCPs never
    apply to it, and the deny must never lock out the organization's owner). Sorted by account id, deduplicated
    (the config reason wins).
    """
    excluded = {a for a in (management_account_id, org_management_account_id(org)) if a}
    targets: dict[str, ScpTarget] = {}
    for account_id in agent.sandbox_accounts:
        targets.setdefault(account_id, ScpTarget(account_id, "sandbox_accounts in config"))
    for account_id in _tagged_accounts(org, agent.name):
        targets.setdefault(account_id, ScpTarget(account_id, f"account tag {AGENT_TAG}={agent.name}"))
    for account_id in sorted(excluded & targets.keys()):
        logger.warning("management account is never a sandbox target", extra={"account_id": account_id})
    return [targets[a] for a in sorted(targets) if a not in excluded]


def _result(
    account_id: str, action: str, outcome: Outcome, code: str | None = None, message: str = ""
) -> ResourceResult:
    return ResourceResult(account_id, RESOURCE_TYPE, REGION, action, outcome, code, message)


def _call_with_retry(fn: Callable[[], Any], sleep: Sleep, delays: tuple[float, ...]) -> Any:
    """Call `fn`, retrying Organizations' transient conflicts with the given delays; re-raise the last error."""
    for attempt in range(len(delays) + 1):
        try:
            return fn()
        except ClientError as exc:
            if error_code(exc) not in RETRYABLE or attempt == len(delays):
                raise
            logger.info("retrying Organizations call", extra={"code": error_code(exc), "attempt": attempt + 1})
            sleep(delays[attempt])
    raise AssertionError("unreachable")  # pragma: no cover


def _attached_policies(org: Any, account_id: str) -> list[dict[str, Any]]:
    pages = org.get_paginator("list_policies_for_target").paginate(TargetId=account_id, Filter=SCP_TYPE)
    return [p for page in pages for p in page.get("Policies", [])]


def attach_deny_scp(
    org: Any,
    policy_id: str,
    target: ScpTarget,
    *,
    management_account_id: str | None = None,
    sleep: Sleep = time.sleep,
    delays: tuple[float, ...] = RETRY_DELAYS,
) -> tuple[ResourceResult, bool]:
    """Attach the deny SCP to one account. Returns (result, attached_by_this_call)."""
    account_id = target.account_id
    action = "attach_scp"
    mgmt = {a for a in (management_account_id, org_management_account_id(org)) if a}
    if account_id in mgmt:
        msg = "refusing to attach an SCP to the management account (SCPs never apply to it)"
        return _result(account_id, action, Outcome.ERROR, "ManagementAccount", msg), False
    try:
        attached = _call_with_retry(lambda: _attached_policies(org, account_id), sleep, delays)
        if any(p.get("Id") == policy_id for p in attached):
            return _result(account_id, action, Outcome.NO_ACTION, message=f"{policy_id} already attached"), False
        if len(attached) >= MAX_SCPS_PER_TARGET:
            msg = f"account already has {len(attached)} SCPs attached (limit {MAX_SCPS_PER_TARGET})"
            return _result(account_id, action, Outcome.ERROR, "ScpLimitReached", msg), False
        _call_with_retry(lambda: org.attach_policy(PolicyId=policy_id, TargetId=account_id), sleep, delays)
    except ClientError as exc:
        code = error_code(exc)
        if code == "DuplicatePolicyAttachmentException":
            return _result(account_id, action, Outcome.NO_ACTION, message=f"{policy_id} already attached"), False
        logger.warning("attach_policy failed", extra={"account_id": account_id, "code": code})
        return _result(account_id, action, Outcome.ERROR, code, str(exc)), False
    except BotoCoreError as exc:
        return _result(account_id, action, Outcome.ERROR, error_code(exc), str(exc)), False
    logger.info("deny SCP attached", extra={"account_id": account_id, "policy_id": policy_id, "why": target.reason})
    return _result(account_id, action, Outcome.SUCCESS, message=f"{policy_id} attached ({target.reason})"), True


def detach_deny_scp(
    org: Any,
    policy_id: str,
    account_id: str,
    *,
    sleep: Sleep = time.sleep,
    delays: tuple[float, ...] = RETRY_DELAYS,
) -> ResourceResult:
    """Detach the deny SCP from one account; never `FullAWSAccess`. Needs only ListPoliciesForTarget + DetachPolicy."""
    action = "detach_scp"
    if policy_id == FULL_AWS_ACCESS_ID:
        msg = "refusing to detach FullAWSAccess (every target must keep it)"
        return _result(account_id, action, Outcome.ERROR, "RefuseFullAWSAccess", msg)
    try:
        attached = _call_with_retry(lambda: _attached_policies(org, account_id), sleep, delays)
        policy = next((p for p in attached if p.get("Id") == policy_id), None)
        if policy is None:
            return _result(account_id, action, Outcome.NO_ACTION, message=f"{policy_id} was not attached")
        if policy.get("Name") == FULL_AWS_ACCESS_NAME or policy.get("AwsManaged"):
            msg = f"refusing to detach AWS-managed policy {policy.get('Name')} ({policy_id})"
            return _result(account_id, action, Outcome.ERROR, "RefuseFullAWSAccess", msg)
        _call_with_retry(lambda: org.detach_policy(PolicyId=policy_id, TargetId=account_id), sleep, delays)
    except ClientError as exc:
        code = error_code(exc)
        if code == "PolicyNotAttachedException":
            return _result(account_id, action, Outcome.NO_ACTION, message=f"{policy_id} was not attached")
        logger.warning("detach_policy failed", extra={"account_id": account_id, "code": code})
        return _result(account_id, action, Outcome.ERROR, code, str(exc))
    except BotoCoreError as exc:
        return _result(account_id, action, Outcome.ERROR, error_code(exc), str(exc))
    logger.info("deny SCP detached", extra={"account_id": account_id, "policy_id": policy_id})
    return _result(account_id, action, Outcome.SUCCESS, message=f"{policy_id} detached")
