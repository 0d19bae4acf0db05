"""The one item layer over the ledger table: every ledger (kill, spend, guard, meter, outcomes) reads and writes
through `ItemTable`, whose keys come from `killswitch.keys`.

`ItemTable` speaks to the low-level DynamoDB client in the wire format (`TypeSerializer`/`TypeDeserializer`): items
go in and come out as plain Python values (str, int, bool, Decimal, list, dict); floats are refused, numbers come
back as Decimal. The same class runs on boto3's client (`ItemTable.connect`) and on the in-memory twin
`killswitch.memory_dynamo.MemoryDynamo` (`ItemTable.in_memory`), so conditions, pagination, unprocessed batch items
and transaction cancellations are handled by one piece of code whichever is underneath.

Reads are strongly consistent (a kill reads back what it has just written). Conditional writes return False when
their condition fails instead of raising; `transact` returns the per-item cancellation codes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from killswitch import aws
from killswitch.keys import PK, SK

Item = dict[str, Any]

MAX_BATCH_WRITE = 25
MAX_BATCH_GET = 100
MAX_UNPROCESSED_ROUNDS = 8
# TransactionConflict (another transaction touching the same item) is not retried by botocore.
MAX_CONFLICT_RETRIES = 12
_HIGH = "\U0010ffff"  # sorts after every sort-key character: `<prefix><_HIGH>` closes a BETWEEN range

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_wire(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZER.serialize(v) for k, v in item.items()}


def from_wire(item: Mapping[str, Any]) -> Item:
    return {k: _DESERIALIZER.deserialize(v) for k, v in item.items()}


def _backoff(attempt: int) -> None:
    time.sleep(min(0.5, 0.005 * 2**attempt) * random.random())


class ItemTable:
    """The ledger table (`pk`/`sk` strings) through a DynamoDB client or its in-memory twin."""

    def __init__(self, table_name: str, client: Any, *, page_size: int | None = None):
        self.table_name = table_name
        self.client = client
        self.page_size = page_size  # DynamoDB `Limit` per query page; None = up to 1 MB per page

    @classmethod
    def connect(
        cls,
        table_name: str,
        *,
        session: boto3.Session | None = None,
        region: str | None = None,
        page_size: int | None = None,
    ) -> ItemTable:
        """The real table (boto3 client with standard retries; `AWS_ENDPOINT_URL` reaches a moto server)."""
        return cls(table_name, aws.client("dynamodb", region, session=session), page_size=page_size)

    @classmethod
    def in_memory(cls, table_name: str = "ledger", *, page_size: int | None = None) -> ItemTable:
        from killswitch.memory_dynamo import MemoryDynamo  # imported here: Lambda never builds the twin

        return cls(table_name, MemoryDynamo(), page_size=page_size)

    @staticmethod
    def _key(pk: str, sk: str) -> dict[str, Any]:
        return {PK: {"S": pk}, SK: {"S": sk}}

    def _expression(self, names: Mapping[str, str] | None, values: Mapping[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if names:
            out["ExpressionAttributeNames"] = dict(names)
        if values:
            out["ExpressionAttributeValues"] = to_wire(values)
        return out

    # -- single items ---------------------------------------------------------------------------------------
    def get(self, pk: str, sk: str) -> Item | None:
        resp = self.client.get_item(TableName=self.table_name, Key=self._key(pk, sk), ConsistentRead=True)
        item = resp.get("Item")
        return from_wire(item) if item else None

    def put(
        self,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> bool:
        """Write the whole item; False (nothing written) if `condition` does not hold."""
        request: dict[str, Any] = {"TableName": self.table_name, "Item": to_wire(item)}
        if condition:
            request.update(ConditionExpression=condition, **self._expression(names, values))
        return self._conditional(self.client.put_item, request)

    def put_new(self, item: Mapping[str, Any]) -> bool:
        """Write the item only if no item has its key (an idempotency or dedupe marker). False if one has."""
        return self.put(item, condition="attribute_not_exists(pk)")

    def update(
        self,
        pk: str,
        sk: str,
        expression: str,
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> bool:
        """`SET`/`ADD`/`REMOVE` on one item (created if absent); False (no change) if `condition` does not hold."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": self._key(pk, sk),
            "UpdateExpression": expression,
            **self._expression(names, values),
        }
        if condition:
            request["ConditionExpression"] = condition
        return self._conditional(self.client.update_item, request)

    def delete(self, pk: str, sk: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key=self._key(pk, sk))

    @staticmethod
    def _conditional(call: Any, request: dict[str, Any]) -> bool:
        try:
            call(**request)
        except ClientError as exc:
            if aws.error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # -- queries --------------------------------------------------------------------------------------------
    def query(
        self,
        pk: str,
        prefix: str = "",
        *,
        filter: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> list[Item]:
        """Items of partition `pk` whose sort key starts with `prefix`, in sort-key order, every page."""
        if not prefix:
            return self._query("#pk = :pk", {":pk": pk}, filter, names, values)
        return self._query(
            "#pk = :pk AND begins_with(#sk, :prefix)", {":pk": pk, ":prefix": prefix}, filter, names, values
        )

    def query_between(self, pk: str, low: str, high: str) -> list[Item]:
        """Items with low <= sk <= high (inclusive, like DynamoDB BETWEEN), in sort-key order."""
        return self._query("#pk = :pk AND #sk BETWEEN :lo AND :hi", {":pk": pk, ":lo": low, ":hi": high})

    def _query(
        self,
        key_condition: str,
        key_values: dict[str, Any],
        filter_expression: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> list[Item]:
        all_names = {"#pk": PK, **({"#sk": SK} if "#sk" in key_condition else {}), **(names or {})}
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": key_condition,
            "ConsistentRead": True,
            **self._expression(all_names, {**key_values, **(values or {})}),
        }
        if filter_expression:
            request["FilterExpression"] = filter_expression
        if self.page_size:
            request["Limit"] = self.page_size
        out: list[Item] = []
        while True:
            page = self.client.query(**request)
            out.extend(from_wire(i) for i in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                return out
            request["ExclusiveStartKey"] = last

    # -- batches --------------------------------------------------------------------------------------------
    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Item]:
        """The items that exist among `keys` (100 per BatchGetItem; unprocessed keys are asked again)."""
        found: dict[tuple[str, str], Item] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), MAX_BATCH_GET):
            chunk = [self._key(pk, sk) for pk, sk in unique[start : start + MAX_BATCH_GET]]
            request: dict[str, Any] = {self.table_name: {"Keys": chunk, "ConsistentRead": True}}
            for attempt in range(MAX_UNPROCESSED_ROUNDS + 1):
                resp = self.client.batch_get_item(RequestItems=request)
                for wire in resp.get("Responses", {}).get(self.table_name, []):
                    item = from_wire(wire)
                    found[(item[PK], item[SK])] = item
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
                _backoff(attempt)
            else:
                raise RuntimeError(f"BatchGetItem on {self.table_name} left keys unprocessed after retries")
        return found

    def put_many(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Write every item (25 per BatchWriteItem); unprocessed items are sent again with backoff, never dropped."""
        for start in range(0, len(items), MAX_BATCH_WRITE):
            requests = [{"PutRequest": {"Item": to_wire(i)}} for i in items[start : start + MAX_BATCH_WRITE]]
            pending: dict[str, Any] = {self.table_name: requests}
            for attempt in range(MAX_UNPROCESSED_ROUNDS + 1):
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                _backoff(attempt)
            else:
                left = sum(len(v) for v in pending.values())
                raise RuntimeError(f"BatchWriteItem on {self.table_name} left {left} items unprocessed after retries")

    # -- transactions ---------------------------------------------------------------------------------------
    def put_op(
        self,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A `Put` of one transaction (see `transact`)."""
        request: dict[str, Any] = {"TableName": self.table_name, "Item": to_wire(item)}
        if condition:
            request.update(ConditionExpression=condition, **self._expression(names, values))
        return {"Put": request}

    def update_op(
        self,
        pk: str,
        sk: str,
        expression: str,
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An `Update` of one transaction (see `transact`)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": self._key(pk, sk),
            "UpdateExpression": expression,
            **self._expression(names, values),
        }
        if condition:
            request["ConditionExpression"] = condition
        return {"Update": request}

    def transact(self, operations: Sequence[dict[str, Any]]) -> list[str] | None:
        """Run `TransactWriteItems`. None when it committed; when a condition failed, the cancellation code of each
        operation in order (`ConditionalCheckFailed` | `None` | ...; empty if the service gave no reasons).
        Cancellations by a concurrent transaction on the same item (TransactionConflict) are retried with jitter."""
        for attempt in range(MAX_CONFLICT_RETRIES + 1):
            try:
                self.client.transact_write_items(TransactItems=list(operations))
                return None
            except ClientError as exc:
                if aws.error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = cast(list[dict[str, Any]], exc.response.get("CancellationReasons") or [])
                codes = [str(r.get("Code")) for r in reasons]
                if "ConditionalCheckFailed" in codes or not reasons:
                    if not reasons and "ConditionalCheckFailed" not in str(exc):
                        raise
                    return codes
                retryable = set(codes) & {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
                if retryable and attempt < MAX_CONFLICT_RETRIES:
                    _backoff(attempt)
                    continue
                raise
        raise AssertionError("unreachable")

    # -- for tests, demos and benchmarks --------------------------------------------------------------------
    def all_items(self) -> list[Item]:
        """Every item of the table, when it is the in-memory twin (tests, demo, benchmarks)."""
        items = getattr(self.client, "items", None)
        if items is None:
            raise TypeError("all_items() reads the in-memory twin only; use query() on DynamoDB")
        return [from_wire(i) for i in items(self.table_name)]


def sort_key_range_end(prefix: str) -> str:
    """The upper bound of a BETWEEN that should include every sort key starting with `prefix`."""
    return f"{prefix}{_HIGH}"
