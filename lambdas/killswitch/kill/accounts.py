"""Hub and spokes: a kill that reaches every organization account of `accounts:` through its `<prefix>-spoke` role.

`SpokeSessions` is made once per invocation (one kill, restore, approve or status). It knows

- which accounts to reach: `accounts.account_ids` plus the active accounts under every `accounts.organizational_units`
  (Organizations `ListAccountsForParent`, paginated, nested OUs through `ListOrganizationalUnitsForParent`, read once
  and cached). Only the management account (or a delegated administrator) may list: any other hub gets one error
  result per OU saying so, and the listed account ids are still reached;
- a client factory per account: `<prefix>-spoke` is assumed once per account with the ExternalId, into botocore
  `RefreshableCredentials` that assume it again shortly before expiry (a long kill never fails on an expired token).
  The factories of all accounts share one client per service × region, each call signed with its own account's
  credentials (`killswitch.kill.spoke_clients`: client creation was a third of a hub kill's CPU).
  A failed AssumeRole (AccessDenied: the role is missing, denies, or the account is not in the organization) is
  remembered, so the account is tried once per invocation and reported once with the AWS error code;
- a bounded thread pool (`accounts.max_parallel`, default 16) the engine runs per-account work on: one account's
  failure never blocks the others.

The kill Lambda's own account stays the single-account path (resources with `account == ""`, the kill role's own
credentials); it is never reached through a spoke role even when an OU lists it. In spoke accounts the kill stops
compute (the regional kinds: EC2, ECS, Auto Scaling, Lambda, ...): the spoke role holds the kill Lambda's compute
statements, and the IAM deny policy (a managed policy of the hub stack) exists in the hub account only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from botocore.credentials import RefreshableCredentials

from killswitch import aws
from killswitch.config import KillSwitchConfig
from killswitch.kill.common import AwsError, ClientFactory
from killswitch.kill.discover import Discovery, discover
from killswitch.kill.kinds import Kind
from killswitch.kill.model import GLOBAL_REGION, Resource
from killswitch.kill.spoke_clients import SpokeClients, assumed_role_credentials
from killswitch.results import Outcome, ResourceResult

logger = Logger(child=True)

ACCOUNT_SCOPE = "account"  # resource_type of a per-account (or per-OU) error result
ORGANIZATIONS_REGION = "us-east-1"  # Organizations is global; its endpoint lives in us-east-1
SESSION_SECONDS = 3600
DEFAULT_MAX_PARALLEL = 16
NOT_MANAGEMENT = (
    "the hub cannot list the accounts of {ou} ({code}): only the organization's management account or a delegated "
    "administrator may call ListAccountsForParent; deploy the hub there or list the accounts under "
    "accounts.account_ids"
)
NO_SUCH_OU = "the hub cannot list the accounts of {ou} ({code}): no such OU in this organization"
OU_NOT_FOUND = frozenset({"ParentNotFoundException", "OrganizationalUnitNotFoundException"})
X = TypeVar("X")
Y = TypeVar("Y")


@dataclass(frozen=True)
class AccountFailure:
    """An account (or OU) the hub could not reach, with the AWS error code."""

    account: str  # account id, or the OU id whose accounts could not be listed
    action: str  # assume_role | list_accounts
    code: str
    message: str

    def result(self) -> ResourceResult:
        return ResourceResult(
            f"{ACCOUNT_SCOPE}/{self.account}",
            ACCOUNT_SCOPE,
            GLOBAL_REGION,
            self.action,
            Outcome.ERROR,
            self.code,
            self.message,
            account=self.account,
        )


class SpokeUnavailableError(Exception):
    def __init__(self, failure: AccountFailure):
        super().__init__(failure.message)
        self.failure = failure


class SpokeSessions:
    def __init__(
        self,
        config: KillSwitchConfig,
        hub_clients: ClientFactory,
        *,
        region: str | None = None,
        max_parallel: int | None = None,
        session_name: str = "killswitch-hub",
    ):
        if config.accounts is None:
            raise ValueError("SpokeSessions needs an accounts: section in the config")
        self.config = config
        self.accounts_config = config.accounts
        self.hub_clients = hub_clients
        self.region = region or config.deploy_region
        self.max_parallel = max_parallel or self.accounts_config.max_parallel
        self.session_name = session_name
        self._lock = threading.Lock()
        self._account_locks: dict[str, threading.Lock] = {}
        self._spokes = SpokeClients(self.region, max_parallel=self.max_parallel)
        self._clients: dict[str, ClientFactory] = {}
        self._failed: dict[str, AccountFailure] = {}
        self._listed: tuple[list[str], list[AccountFailure]] | None = None
        self.assume_calls = 0

    # -- which accounts ---------------------------------------------------------------------------------------
    def own_account(self) -> str | None:
        """The hub's own account when the config names it (acted on with the kill role's own credentials)."""
        sandbox = self.config.sandbox
        return (
            self.accounts_config.hub_account_id
            or (sandbox.workload_account_id if sandbox else None)
            or (sandbox.management_account_id if sandbox else None)
        )

    def accounts(self) -> tuple[list[str], list[AccountFailure]]:
        """(spoke account ids in a stable order, OUs that could not be listed). Read once per invocation."""
        with self._lock:
            if self._listed is None:
                self._listed = self._list_accounts()
            return list(self._listed[0]), list(self._listed[1])

    def _list_accounts(self) -> tuple[list[str], list[AccountFailure]]:
        found: list[str] = list(self.accounts_config.account_ids)
        failures: list[AccountFailure] = []
        if self.accounts_config.organizational_units:
            org = self.hub_clients("organizations", ORGANIZATIONS_REGION)
            for ou in self.accounts_config.organizational_units:
                try:
                    found += _accounts_under(org, ou)
                except AwsError as exc:
                    code = aws.error_code(exc)
                    text = NO_SUCH_OU if code in OU_NOT_FOUND else NOT_MANAGEMENT
                    failures.append(AccountFailure(ou, "list_accounts", code, text.format(ou=ou, code=code)))
        own = self.own_account()
        return [a for a in dict.fromkeys(found) if a != own], failures

    # -- credentials per account ------------------------------------------------------------------------------
    def role_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role/{self.config.spoke_role_name()}"

    def clients(self, account: str) -> ClientFactory:
        """The client factory of `account` (AssumeRole the first time); raises `SpokeUnavailableError`."""
        with self._lock:
            lock = self._account_locks.setdefault(account, threading.Lock())
        with lock:  # two regions of one account wait for one AssumeRole instead of making two
            if account in self._failed:
                raise SpokeUnavailableError(self._failed[account])
            if account not in self._clients:
                try:
                    self._spokes.add(account, self._assume(account))
                    self._clients[account] = self._spokes.for_account(account)
                except AwsError as exc:
                    code = aws.error_code(exc)
                    failure = AccountFailure(
                        account,
                        "assume_role",
                        code,
                        f"cannot assume {self.role_arn(account)} ({code}): the spoke role is missing, denies the hub, "
                        f"or the account is not in the organization: {exc}",
                    )
                    logger.warning("spoke unavailable", extra={"account": account, "code": code})
                    self._failed[account] = failure
                    raise SpokeUnavailableError(failure) from exc
            return self._clients[account]

    def credentials(self, account: str) -> RefreshableCredentials | None:
        """`account`'s assumed-role credentials, once `clients(account)` has assumed the spoke role."""
        return self._spokes.credentials.of(account)

    def _assume(self, account: str) -> RefreshableCredentials:
        sts = self.hub_clients("sts", self.region)
        role_arn = self.role_arn(account)

        def assume() -> dict[str, Any]:
            with self._lock:
                self.assume_calls += 1
            return dict(
                sts.assume_role(
                    RoleArn=role_arn,
                    RoleSessionName=self.session_name,
                    ExternalId=self.config.spoke_external_id(),
                    DurationSeconds=SESSION_SECONDS,
                )["Credentials"]
            )

        return assumed_role_credentials(assume)

    # -- running work per account -----------------------------------------------------------------------------
    def map(self, work: Callable[[X], Y], items: Iterable[X]) -> list[Y]:
        """`work` over `items` on the bounded pool, results in the order of `items`."""
        todo = list(items)
        if len(todo) <= 1 or self.max_parallel <= 1:
            return [work(i) for i in todo]
        with ThreadPoolExecutor(max_workers=min(self.max_parallel, len(todo))) as pool:
            return list(pool.map(work, todo))


def _accounts_under(org: Any, parent: str) -> list[str]:
    """Active accounts under an OU and its child OUs (ListAccountsForParent lists direct children only)."""
    out = [
        a["Id"]
        for page in org.get_paginator("list_accounts_for_parent").paginate(ParentId=parent)
        for a in page.get("Accounts", [])
        if a.get("Status", "ACTIVE") == "ACTIVE"
    ]
    for page in org.get_paginator("list_organizational_units_for_parent").paginate(ParentId=parent):
        for child in page.get("OrganizationalUnits", []):
            out += _accounts_under(org, child["Id"])
    return out


def in_account(resources: Iterable[Resource], account: str) -> list[Resource]:
    return [replace(r, account=account) for r in resources]


def stamp(results: Iterable[ResourceResult], account: str) -> list[ResourceResult]:
    """Results of work done in `account` carry it (kinds build results from the resource, most already do)."""
    return [r if r.account == account else replace(r, account=account) for r in results]


def discover_everywhere(
    agent: str,
    regions: Sequence[str],
    local: ClientFactory,
    spokes: SpokeSessions,
    *,
    run_id: str | None,
    kinds: Sequence[Kind] | None,
) -> tuple[Discovery, list[ResourceResult]]:
    """Discovery in the hub's own account and every spoke account × region, in parallel. Returns what was found
    (resources of spoke accounts carry their account; the hub's own unreadable regions are `failures` as in the
    single-account path) and error results for every OU, account or spoke region that could not be read."""
    accounts, unlisted = spokes.accounts()
    if kinds is None:
        from killswitch.kill.kinds import REGISTRY

        kinds = REGISTRY
    # Spokes get the regional (compute) kinds: the spoke role holds the kill Lambda's compute statements, and the
    # IAM deny policy exists in the hub account only.
    regional = [k for k in kinds if not k.is_global]
    tasks: list[tuple[str, str, Sequence[Kind] | None]] = [("", "", kinds)]
    tasks += [(a, r, regional) for a in accounts for r in regions]

    def run(
        task: tuple[str, str, Sequence[Kind] | None],
    ) -> tuple[Discovery, list[ResourceResult], AccountFailure | None]:
        account, region, chosen = task
        if not account:
            return discover(agent, regions, local, run_id=run_id, kinds=chosen), [], None
        try:
            clients = spokes.clients(account)
        except SpokeUnavailableError as exc:
            return Discovery(), [], exc.failure
        found = discover(agent, [region], clients, run_id=run_id, kinds=chosen)
        unread = [
            ResourceResult(
                f"region/{f.region}", "region", f.region, "discover", Outcome.ERROR, f.code, f.message, account
            )
            for f in found.failures
        ]
        return Discovery(in_account(found.resources, account)), unread, None

    out = Discovery()
    errors: list[ResourceResult] = []
    failed: dict[str, AccountFailure] = {}
    for found, unread, failure in spokes.map(run, tasks):
        out.resources += found.resources
        out.failures += found.failures  # the hub's own account: reported as in the single-account path
        errors += unread
        if failure is not None:
            failed.setdefault(failure.account, failure)
    return out, [f.result() for f in [*unlisted, *failed.values()]] + errors


def by_account(items: Iterable[X], account_of: Callable[[X], str]) -> dict[str, list[X]]:
    out: dict[str, list[X]] = {}
    for item in items:
        out.setdefault(account_of(item), []).append(item)
    return out
