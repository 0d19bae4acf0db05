"""The ledger table as the CLI sees it: one clear message when it is missing (the schema `killswitch local` and
the demo create is `killswitch.testing.sim.create_ledger_table`)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from killswitch import aws
from killswitch.settings import ENV_TABLE

# Operations whose ResourceNotFoundException means "no such table" (other services reuse the code name).
DYNAMODB_OPERATIONS = frozenset(
    {"Query", "Scan", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "BatchGetItem"}
    | {"TransactWriteItems", "TransactGetItems", "DescribeTable"}
)


def missing_table_message(name: str, region: str | None) -> str:
    return (
        f"ledger table {name!r} not found in region {region or '(none configured)'}: check --table / "
        f"${ENV_TABLE}, the region (the config's home_region) and AWS_ENDPOINT_URL"
    )


def is_missing_table(exc: BaseException) -> bool:
    return (
        isinstance(exc, ClientError)
        and aws.error_code(exc) == "ResourceNotFoundException"
        and exc.operation_name in DYNAMODB_OPERATIONS
    )


def table_exists(dynamodb: Any, name: str) -> bool:
    """True when the table exists; other AWS errors (no credentials, access denied) propagate as AWS errors."""
    try:
        dynamodb.describe_table(TableName=name)
    except ClientError as exc:
        if is_missing_table(exc):
            return False
        raise
    return True
