"""In-memory twin of the DynamoDB low-level client, for the calls `killswitch.items.ItemTable` makes.

Tables have the ledger's key schema (`pk` S, `sk` S) and are created on first use. Items are kept in the wire format
(`{"S": ...}`, `{"N": ...}`), so what the item layer serializes and deserializes is exactly what it would get from
DynamoDB; conditions, updates and key conditions go through `killswitch.dynamo_expr`. Failures raise botocore's
`ClientError` with DynamoDB's codes (`ConditionalCheckFailedException`, `TransactionCanceledException` with
`CancellationReasons`, `ValidationException`), so the item layer's error handling is the same code on both.
Queries page like DynamoDB (`Limit` counts items read before the filter, `LastEvaluatedKey`/`ExclusiveStartKey`).
`tests/aws/test_items_contract.py` runs the same calls on moto and on this twin and compares the answers.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from killswitch import dynamo_expr as expr

PK, SK = "pk", "sk"
MAX_BATCH_WRITE = 25
MAX_BATCH_GET = 100
MAX_TRANSACT = 100

Wire = dict[str, Any]


def _error(operation: str, code: str, message: str, **extra: Any) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, **extra}, operation)


class MemoryDynamo:
    """Thread-safe: one lock makes every call (a transaction included) atomic."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, dict[str, Wire]]] = {}  # table -> pk -> sk -> item
        self._lock = threading.RLock()
        self.unprocessed_writes = 0  # the next batch writes hand back this many items unprocessed (tests)

    # -- helpers --------------------------------------------------------------------------------------------
    def _partition(self, table: str, pk: str) -> dict[str, Wire]:
        return self._tables.setdefault(table, {}).setdefault(pk, {})

    @staticmethod
    def _key(operation: str, key: Mapping[str, Wire]) -> tuple[str, str]:
        try:
            return key[PK]["S"], key[SK]["S"]
        except (KeyError, TypeError):
            raise _error(
                operation, "ValidationException", "The provided key element does not match the schema"
            ) from None

    def _current(self, table: str, key: tuple[str, str]) -> Wire | None:
        return self._tables.get(table, {}).get(key[0], {}).get(key[1])

    def _check(self, operation: str, item: Mapping[str, Wire] | None, request: Mapping[str, Any]) -> bool:
        condition = request.get("ConditionExpression")
        if not condition:
            return True
        ctx = expr.Context(request.get("ExpressionAttributeNames"), request.get("ExpressionAttributeValues"))
        try:
            return expr.evaluate(expr.parse_condition(condition), item or {}, ctx)
        except expr.ExpressionError as exc:
            raise _error(operation, "ValidationException", str(exc)) from None

    def _store(self, table: str, key: tuple[str, str], item: Wire | None) -> None:
        partition = self._partition(table, key[0])
        if item is None:
            partition.pop(key[1], None)
        else:
            partition[key[1]] = item

    def _updated(self, operation: str, current: Wire | None, request: Mapping[str, Any]) -> Wire:
        key = request["Key"]
        ctx = expr.Context(request.get("ExpressionAttributeNames"), request.get("ExpressionAttributeValues"))
        try:
            actions = expr.parse_update(request["UpdateExpression"])
            return expr.apply_update(actions, current or dict(key), ctx, (PK, SK))
        except expr.ExpressionError as exc:
            raise _error(operation, "ValidationException", str(exc)) from None

    # -- single-item calls ----------------------------------------------------------------------------------
    def get_item(self, *, TableName: str, Key: Mapping[str, Wire], **_: Any) -> dict[str, Any]:
        with self._lock:
            item = self._current(TableName, self._key("GetItem", Key))
            return {"Item": dict(item)} if item is not None else {}

    def put_item(self, *, TableName: str, Item: Mapping[str, Wire], **request: Any) -> dict[str, Any]:
        key = self._key("PutItem", Item)
        with self._lock:
            if not self._check("PutItem", self._current(TableName, key), request):
                raise _error("PutItem", "ConditionalCheckFailedException", "The conditional request failed")
            self._store(TableName, key, dict(Item))
        return {}

    def update_item(self, *, TableName: str, Key: Mapping[str, Wire], **request: Any) -> dict[str, Any]:
        key = self._key("UpdateItem", Key)
        with self._lock:
            current = self._current(TableName, key)
            if not self._check("UpdateItem", current, request):
                raise _error("UpdateItem", "ConditionalCheckFailedException", "The conditional request failed")
            new = self._updated("UpdateItem", current, {**request, "Key": Key})
            self._store(TableName, key, new)
        return {"Attributes": dict(new)} if request.get("ReturnValues") == "ALL_NEW" else {}

    def delete_item(self, *, TableName: str, Key: Mapping[str, Wire], **request: Any) -> dict[str, Any]:
        key = self._key("DeleteItem", Key)
        with self._lock:
            if not self._check("DeleteItem", self._current(TableName, key), request):
                raise _error("DeleteItem", "ConditionalCheckFailedException", "The conditional request failed")
            self._store(TableName, key, None)
        return {}

    # -- query ----------------------------------------------------------------------------------------------
    def query(self, *, TableName: str, KeyConditionExpression: str, **request: Any) -> dict[str, Any]:
        ctx = expr.Context(request.get("ExpressionAttributeNames"), request.get("ExpressionAttributeValues"))
        try:
            key_condition = expr.parse_condition(KeyConditionExpression)
            pk = _partition_value(key_condition, ctx)
            filter_node = expr.parse_condition(request["FilterExpression"]) if request.get("FilterExpression") else None
        except expr.ExpressionError as exc:
            raise _error("Query", "ValidationException", str(exc)) from None
        start = request.get("ExclusiveStartKey")
        after = self._key("Query", start)[1] if start else None
        limit = request.get("Limit")
        forward = request.get("ScanIndexForward", True)
        with self._lock:
            rows = sorted(self._tables.get(TableName, {}).get(pk, {}).items(), reverse=not forward)
        items: list[Wire] = []
        read = 0
        last: Wire | None = None
        for sk, item in rows:
            if after is not None and (sk <= after if forward else sk >= after):
                continue
            if not expr.evaluate(key_condition, item, ctx):
                continue
            if limit is not None and read >= limit:
                break
            read += 1
            last = {PK: item[PK], SK: item[SK]}
            if filter_node is None or expr.evaluate(filter_node, item, ctx):
                items.append(dict(item))
        else:
            last = None  # read to the end of the partition: no further page
        out: dict[str, Any] = {"Items": items, "Count": len(items), "ScannedCount": read}
        if last is not None:
            out["LastEvaluatedKey"] = last
        return out

    # -- batches and transactions ---------------------------------------------------------------------------
    def batch_get_item(self, *, RequestItems: Mapping[str, Any]) -> dict[str, Any]:
        if sum(len(r["Keys"]) for r in RequestItems.values()) > MAX_BATCH_GET:
            raise _error("BatchGetItem", "ValidationException", "Too many items requested for the BatchGetItem call")
        responses: dict[str, list[Wire]] = {}
        with self._lock:
            for table, request in RequestItems.items():
                found = [self._current(table, self._key("BatchGetItem", k)) for k in request["Keys"]]
                responses[table] = [dict(i) for i in found if i is not None]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def batch_write_item(self, *, RequestItems: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
        if sum(len(r) for r in RequestItems.values()) > MAX_BATCH_WRITE:
            raise _error(
                "BatchWriteItem", "ValidationException", "Too many items requested for the BatchWriteItem call"
            )
        unprocessed: dict[str, list[Mapping[str, Any]]] = {}
        with self._lock:
            for table, requests in RequestItems.items():
                for request in requests:
                    if self.unprocessed_writes > 0:
                        self.unprocessed_writes -= 1
                        unprocessed.setdefault(table, []).append(request)
                    elif "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        self._store(table, self._key("BatchWriteItem", item), dict(item))
                    else:
                        self._store(table, self._key("BatchWriteItem", request["DeleteRequest"]["Key"]), None)
        return {"UnprocessedItems": unprocessed}

    def transact_write_items(self, *, TransactItems: Sequence[Mapping[str, Any]], **_: Any) -> dict[str, Any]:
        if len(TransactItems) > MAX_TRANSACT:
            raise _error("TransactWriteItems", "ValidationException", "Too many items in the transaction")
        with self._lock:
            writes: list[tuple[str, tuple[str, str], Wire | None]] = []
            reasons: list[dict[str, str]] = []
            for entry in TransactItems:
                ((action, request),) = entry.items()
                table = request["TableName"]
                key = self._key("TransactWriteItems", request["Item"] if action == "Put" else request["Key"])
                if any(w[0] == table and w[1] == key for w in writes):
                    raise _error(
                        "TransactWriteItems",
                        "ValidationException",
                        "Transaction request cannot include multiple operations on one item",
                    )
                current = self._current(table, key)
                if not self._check("TransactWriteItems", current, request):
                    reasons.append({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"})
                    writes.append((table, key, current))
                    continue
                reasons.append({"Code": "None"})
                if action == "Put":
                    writes.append((table, key, dict(request["Item"])))
                elif action == "Update":
                    writes.append((table, key, self._updated("TransactWriteItems", current, request)))
                elif action == "Delete":
                    writes.append((table, key, None))
                else:  # ConditionCheck
                    writes.append((table, key, current))
            if any(r["Code"] != "None" for r in reasons):
                codes = ", ".join(r["Code"] for r in reasons)
                raise _error(
                    "TransactWriteItems",
                    "TransactionCanceledException",
                    f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
                    CancellationReasons=reasons,
                )
            for table, key, item in writes:
                self._store(table, key, item)
        return {}

    # -- for tests, demos and benchmarks --------------------------------------------------------------------
    def items(self, table: str) -> list[Wire]:
        """Every item of `table` (wire format), in key order."""
        with self._lock:
            partitions = sorted(self._tables.get(table, {}).items())
            return [dict(item) for _, rows in partitions for _, item in sorted(rows.items())]


def _partition_value(node: expr.Node, ctx: expr.Context) -> str:
    """The `pk = :v` term of a key condition (alone or AND-ed with one sort key term)."""
    terms = [node[1], node[2]] if node[0] == "and" else [node]
    for term in terms:
        if term[0] == "cmp" and term[1] == "=" and term[2][0] == "path" and ctx.name(term[2]) == PK:
            value = ctx.operand(term[3], {})
            if value is not None and "S" in value:
                return str(value["S"])
    raise expr.ExpressionError("Query condition missed key schema element: pk")
