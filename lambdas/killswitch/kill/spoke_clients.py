"""Clients for spoke accounts: one botocore client per service × region serves every spoke account, each call
signed with the credentials of the account it is made for.

Why: a hub kill of one agent over 50 accounts × 4 regions made a client per account × region × service (~630)
and a botocore session per account. Creating them was a third of the kill's own CPU (a client ~4.6 ms, a session
~12 ms), each client opened its own HTTPS connection for its one or two calls, and every client stayed in memory for
the invocation. Now there is one session for all spokes, a client per service × region (12 in that kill), and its
connection pool is reused by every account calling the same regional endpoint.

How an account's credentials reach the signature: botocore signs every request with
`credentials.get_frozen_credentials()`, called in the thread that makes the call. The session's credentials are an
`AccountCredentials`: it holds each account's own `RefreshableCredentials` (the AssumeRole of `<prefix>-spoke`, made
again shortly before expiry) and returns those of the account the current call is made for, read from a context
variable. Only `AccountClient` sets that variable, around each operation it forwards (and around each page a
paginator fetches, each waiter poll), and resets it right after: the account is bound to the call, never left set
for whatever the thread does next. A call made on the shared client without an `AccountClient` signs nothing: it
raises `NoAccountError`, so a forgotten wrapper fails loudly instead of signing with some other account.

Context variables are per thread (a new thread starts without a value), so threads calling the same client for
different accounts each sign with their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials, RefreshableCredentials

from killswitch import aws

_ACCOUNT: ContextVar[str | None] = ContextVar("killswitch_spoke_account", default=None)


class NoAccountError(RuntimeError):
    """A shared spoke client was called outside `AccountClient`, or for an account without credentials."""


class AccountCredentials:
    """What botocore signs spoke requests with: the credentials of the account the current call is made for."""

    method = "sts-assume-role"

    def __init__(self) -> None:
        self._by_account: dict[str, RefreshableCredentials] = {}
        self._lock = threading.Lock()

    def add(self, account: str, credentials: RefreshableCredentials) -> None:
        with self._lock:
            self._by_account[account] = credentials

    def of(self, account: str) -> RefreshableCredentials | None:
        with self._lock:
            return self._by_account.get(account)

    def _current(self) -> RefreshableCredentials:
        account = _ACCOUNT.get()
        if account is None:
            raise NoAccountError("a spoke client was called outside AccountClient: no account to sign for")
        found = self.of(account)
        if found is None:
            raise NoAccountError(f"no spoke credentials for account {account}")
        return found

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        return self._current().get_frozen_credentials()

    # botocore reads these directly in a few places (e.g. the account-id endpoint builtin, deferred to call time).
    @property
    def access_key(self) -> str:
        return str(self._current().access_key)

    @property
    def secret_key(self) -> str:
        return str(self._current().secret_key)

    @property
    def token(self) -> str | None:
        return self._current().token

    @property
    def account_id(self) -> str | None:
        return _ACCOUNT.get()

    def get_deferred_property(self, name: str) -> Callable[[], Any]:
        return lambda: getattr(self, name, None)


def assumed_role_credentials(assume: Callable[[], dict[str, Any]]) -> RefreshableCredentials:
    """Credentials from `assume()` (the `Credentials` of an STS AssumeRole response), which botocore calls again
    shortly before they expire (a long kill never fails on an expired token)."""

    def fetch() -> dict[str, str]:
        creds = assume()
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    return RefreshableCredentials.create_from_metadata(metadata=fetch(), refresh_using=fetch, method="sts-assume-role")


def _in_account(account: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    token = _ACCOUNT.set(account)
    try:
        return call(*args, **kwargs)
    finally:
        _ACCOUNT.reset(token)


class _Pages:
    """A paginator's page iterator whose every page is fetched in `account` (the account is set per fetch, never
    across the `yield`, where the caller's own code runs)."""

    def __init__(self, account: str, pages: Any) -> None:
        self._account = account
        self._pages = pages

    def __iter__(self) -> Iterator[Any]:
        it = _in_account(self._account, iter, self._pages)
        while True:
            token = _ACCOUNT.set(self._account)
            try:
                page = next(it)
            except StopIteration:
                return
            finally:
                _ACCOUNT.reset(token)
            yield page


class _Paginator:
    def __init__(self, account: str, paginator: Any) -> None:
        self._account = account
        self._paginator = paginator

    def paginate(self, **kwargs: Any) -> _Pages:
        return _Pages(self._account, self._paginator.paginate(**kwargs))


class _Waiter:
    def __init__(self, account: str, waiter: Any) -> None:
        self._account = account
        self._waiter = waiter

    def wait(self, **kwargs: Any) -> None:
        _in_account(self._account, self._waiter.wait, **kwargs)


class AccountClient:
    """A shared spoke client acting in one account: operations, paginators and waiters are forwarded with the
    account bound to each call; `meta`, `exceptions` and `can_paginate` are the client's own."""

    def __init__(self, account: str, client: Any) -> None:
        self.account = account
        self._client = client
        self._operations = client.meta.method_to_api_mapping

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if name in self._operations:
            return lambda *args, **kwargs: _in_account(self.account, found, *args, **kwargs)
        if name == "get_paginator":
            return lambda operation: _Paginator(self.account, found(operation))
        if name == "get_waiter":
            return lambda waiter: _Waiter(self.account, found(waiter))
        return found


class SpokeClients:
    """One session and one client per service × region for every spoke account of an invocation."""

    def __init__(self, region: str, *, max_parallel: int) -> None:
        self.credentials = AccountCredentials()
        core = botocore.session.Session()
        core._credentials = self.credentials  # botocore has no public setter for a session's credentials
        self._session = boto3.Session(botocore_session=core, region_name=region)
        # Every pool worker may call the same regional endpoint at once: as many keep-alive connections as workers.
        self._config = Config(max_pool_connections=max(max_parallel, 10))
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def add(self, account: str, credentials: RefreshableCredentials) -> None:
        self.credentials.add(account, credentials)

    def shared(self, service: str, region: str) -> Any:
        """The client every spoke account uses for `service` in `region` (made on first use)."""
        key = (service, region)
        with self._lock:  # pool workers ask for the same few clients at once: make each one once
            if key not in self._clients:
                self._clients[key] = aws.client(service, region, session=self._session, config=self._config)
            return self._clients[key]

    def for_account(self, account: str) -> Callable[[str, str], AccountClient]:
        """The client factory of `account` (its credentials must have been added)."""
        made: dict[tuple[str, str], AccountClient] = {}

        def clients(service: str, region: str) -> AccountClient:
            key = (service, region)
            if key not in made:
                made[key] = AccountClient(account, self.shared(service, region))
            return made[key]

        return clients
