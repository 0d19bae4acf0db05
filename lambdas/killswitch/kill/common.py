"""Building blocks shared by every resource kind: the client factory, batching, bisecting, act results.

They live apart from `discover`/`act` so that the kind modules (`killswitch.kill.kinds`) can use them without
importing the engine's own modules (which are built from the registry).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from killswitch import aws
from killswitch.kill.model import Decision, result_for
from killswitch.results import Outcome, ResourceResult

ClientFactory = Callable[[str, str], Any]
AwsError = (ClientError, BotoCoreError)
X = TypeVar("X")

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "Unavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        # Assumed-role credentials that expired between refreshes: the retry runs with fresh ones.
        "ExpiredToken",
        "ExpiredTokenException",
    }
)


def is_transient(code: str | None) -> bool:
    return bool(code) and code in TRANSIENT_CODES


class Clients:
    """boto3 clients per (service, region), cached; `overrides` lets tests and the demo wrap one client."""

    def __init__(self, session: Any = None, overrides: dict[tuple[str, str], Any] | None = None):
        # One session for all clients: a session caches the service models (loading them costs ~50 ms each).
        self._session = session or boto3.Session()
        self._cache: dict[tuple[str, str], Any] = dict(overrides or {})
        self._lock = threading.Lock()

    def __call__(self, service: str, region: str) -> Any:
        key = (service, region)
        with self._lock:  # pool workers ask for the same client at once (the hub's STS client): make it once
            if key not in self._cache:
                self._cache[key] = aws.client(service, region, session=self._session)
            return self._cache[key]


def chunks(items: Sequence[X], size: int) -> Iterator[list[X]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


@dataclass
class ActResult:
    decision: Decision
    result: ResourceResult
    attached_by_us: bool | None = None
    suspended_by_us: list[str] = field(default_factory=list)


@dataclass
class BisectStats:
    calls: int = 0


def bisect_call(
    ids: Sequence[str], call: Callable[[list[str]], Any], stats: BisectStats | None = None
) -> dict[str, tuple[str, str] | None]:
    """Call `call(batch)`; on failure split the batch in halves down to single ids.

    Returns id → None (succeeded) or (error code, message). Transient codes are not split.
    """
    stats = stats or BisectStats()
    out: dict[str, tuple[str, str] | None] = {}

    def go(batch: list[str]) -> None:
        stats.calls += 1
        try:
            call(batch)
        except AwsError as exc:
            code = aws.error_code(exc)
            if len(batch) == 1 or is_transient(code):
                for i in batch:
                    out[i] = (code, str(exc))
                return
            mid = len(batch) // 2
            go(batch[:mid])
            go(batch[mid:])
            return
        for i in batch:
            out[i] = None

    if ids:
        go(list(ids))
    return out


def with_action(r: ResourceResult, action: str) -> ResourceResult:
    return replace(r, action=action)


def error_result(decision: Decision, exc: BaseException, action: str | None = None) -> ResourceResult:
    r = result_for(decision, Outcome.ERROR, str(exc), aws.error_code(exc))
    return r if action is None else with_action(r, action)


def success(decision: Decision, message: str, action: str | None = None) -> ResourceResult:
    r = result_for(decision, Outcome.SUCCESS, message)
    return r if action is None else with_action(r, action)
