"""The ledger table as the CLI sees it: one clear message when it is missing, and the stack's schema for
`killswitch local` and the demo (`infra/constructs/ledger.py` is the deployed definition; docs/contracts.md)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from killswitch import aws, keys
from killswitch.settings import ENV_TABLE

# What `infra/constructs/ledger.py` deploys, minus what a local endpoint does not need (KMS, PITR, protection).
KEY_SCHEMA = [{"AttributeName": keys.PK, "KeyType": "HASH"}, {"AttributeName": keys.SK, "KeyType": "RANGE"}]
ATTRIBUTES = [{"AttributeName": keys.PK, "AttributeType": "S"}, {"AttributeName": keys.SK, "AttributeType": "S"}]

# Operations whose ResourceNotFoundException means "no such table" (other services reuse the code name).
DYNAMODB_OPERATIONS = frozenset(
    {"Query", "Scan", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "BatchGetItem"}
    | {"TransactWriteItems", "TransactGetItems", "DescribeTable"}
)


def create_ledger_table(dynamodb: Any, name: str) -> None:
    """pk/sk strings, on-demand, TTL on `expires_at`: the item layout of `killswitch.keys`."""
    dynamodb.create_table(
        TableName=name, KeySchema=KEY_SCHEMA, AttributeDefinitions=ATTRIBUTES, BillingMode="PAY_PER_REQUEST"
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": keys.TTL_ATTR}
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
