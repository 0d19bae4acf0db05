"""boto3 client factory: one place for retry mode, user agent and session handling.

`AWS_ENDPOINT_URL` is honoured by boto3 itself, so the same code talks to a moto server or real AWS.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    user_agent_extra="agent-kill-switch/0.1",
    connect_timeout=5,
    read_timeout=20,
)


def client(service: str, region: str | None = None, session: boto3.Session | None = None) -> Any:
    """A boto3 client with botocore `standard` retries (throttling is retried with backoff)."""
    sess = session or boto3.Session()
    return sess.client(service, region_name=region, config=RETRY_CONFIG)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or the exception class name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__
