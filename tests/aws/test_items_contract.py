"""The item layer's contract, run on moto (DynamoDB) and on the in-memory twin: the same calls give the same answers.

Every test takes `table` (one `ItemTable` per backend) and asserts the behaviour the ledgers rely on; the last test
replays one mixed script on both and compares every answer and the final items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from killswitch.items import ItemTable, sort_key_range_end
from killswitch.memory_dynamo import MemoryDynamo
from tests.aws.spend_support import create_table


@pytest.fixture(params=["moto", "twin"])
def table(request: pytest.FixtureRequest) -> Iterator[ItemTable]:
    if request.param == "twin":
        yield ItemTable.in_memory("killswitch-ledger")
        return
    with mock_aws():
        yield ItemTable(create_table(), boto3.client("dynamodb", "us-east-1"))


def test_wire_format_round_trip(table: ItemTable) -> None:
    item = {
        "pk": "A",
        "sk": "1",
        "amount": Decimal("412.37"),
        "count": 3,
        "flag": True,
        "tags": ["x", "y"],
        "meta": {"k": "v"},
        "empty": "",
    }
    table.put(item)
    got = table.get("A", "1")
    assert got == {**item, "count": Decimal(3)}
    assert isinstance(got and got["amount"], Decimal)
    assert table.get("A", "missing") is None
    with pytest.raises(TypeError, match="Float types are not supported"):
        table.put({"pk": "A", "sk": "2", "amount": 0.1})


def test_put_new_is_refused_when_the_key_exists(table: ItemTable) -> None:
    assert table.put_new({"pk": "D", "sk": "DEDUPE", "kill_id": "k1"})
    assert not table.put_new({"pk": "D", "sk": "DEDUPE", "kill_id": "k2"})
    assert table.get("D", "DEDUPE") == {"pk": "D", "sk": "DEDUPE", "kill_id": "k1"}


def test_conditional_put_and_update_with_names_and_values(table: ItemTable) -> None:
    table.put({"pk": "G", "sk": "LEASE#1", "state": "reserved", "amount_nusd": 10})
    cond = "#st = :reserved AND amount_nusd = :amt"
    names = {"#st": "state"}
    stale = table.update(
        "G",
        "LEASE#1",
        "SET #st = :new",
        condition=cond,
        names=names,
        values={":new": "settled", ":reserved": "reserved", ":amt": 9},
    )
    assert not stale
    assert table.update(
        "G",
        "LEASE#1",
        "SET #st = :new",
        condition=cond,
        names=names,
        values={":new": "settled", ":reserved": "reserved", ":amt": 10},
    )
    assert table.get("G", "LEASE#1") == {"pk": "G", "sk": "LEASE#1", "state": "settled", "amount_nusd": 10}
    assert not table.put({"pk": "G", "sk": "LEASE#1"}, condition="attribute_not_exists(pk)")


def test_update_set_arithmetic_if_not_exists_add_remove(table: ItemTable) -> None:
    set_expr = "SET used = if_not_exists(used, :z) + :x, cap_scope = :scope"
    values = {":z": 0, ":x": 250, ":scope": "run"}
    cond = "attribute_not_exists(used) OR used <= :limit"
    assert table.update("G", "CAP#run#r1", set_expr, condition=cond, values={**values, ":limit": 750})
    assert table.update("G", "CAP#run#r1", set_expr, condition=cond, values={**values, ":limit": 750})
    assert not table.update("G", "CAP#run#r1", set_expr, condition=cond, values={**values, ":limit": 400})
    assert table.update("G", "CAP#run#r1", "SET used = used - :d ADD hits :one", values={":d": 100, ":one": 1})
    assert table.update("G", "CAP#run#r1", "ADD hits :one REMOVE cap_scope", values={":one": 1})
    assert table.get("G", "CAP#run#r1") == {"pk": "G", "sk": "CAP#run#r1", "used": 400, "hits": 2}


def test_update_of_a_missing_attribute_is_a_validation_error(table: ItemTable) -> None:
    with pytest.raises(Exception, match="ValidationException"):
        table.update("G", "CAP#x", "SET used = used + :x", values={":x": 1})


def test_query_prefix_between_order_and_pagination(table: ItemTable) -> None:
    days = [f"DAY#2026-11-{d:02d}#guard#c{i}" for d in (3, 1, 2) for i in range(4)]
    for sk in days:
        table.put({"pk": "GUARD#bot", "sk": sk, "amount_usd": Decimal("0.5")})
    table.put({"pk": "GUARD#bot", "sk": "CAP#agent#2026-11-03", "used": 1})
    table.put({"pk": "GUARD#other", "sk": "DAY#2026-11-01#guard#x", "amount_usd": 1})
    paged = ItemTable(table.table_name, table.client, page_size=5)
    for t in (table, paged):
        assert [i["sk"] for i in t.query("GUARD#bot", "DAY#")] == sorted(days)
        assert len(t.query("GUARD#bot")) == 13
        between = t.query_between("GUARD#bot", "DAY#2026-11-02#", sort_key_range_end("DAY#2026-11-02#"))
        assert [i["sk"] for i in between] == sorted(s for s in days if "-02#" in s)
        assert t.query("GUARD#nobody", "DAY#") == []


def test_query_filter_applies_after_the_page_limit(table: ItemTable) -> None:
    for i in range(7):
        table.put({"pk": "G", "sk": f"LEASE#{i}", "state": "reserved" if i % 2 else "settled", "deadline": i})
    paged = ItemTable(table.table_name, table.client, page_size=2)
    for t in (table, paged):
        got = t.query(
            "G",
            "LEASE#",
            filter="#st = :reserved AND deadline < :now",
            names={"#st": "state"},
            values={":reserved": "reserved", ":now": Decimal("4.5")},
        )
        assert [i["sk"] for i in got] == ["LEASE#1", "LEASE#3"]


def test_batch_put_and_get_many_beyond_one_request(table: ItemTable) -> None:
    items = [{"pk": "KILL#k1", "sk": f"RES#us-east-1#i-{n:04d}", "act": "stop"} for n in range(130)]
    table.put_many(items)
    found = table.get_many([(i["pk"], i["sk"]) for i in items] + [("KILL#k1", "RES#none")])
    assert len(found) == 130
    assert found[("KILL#k1", "RES#us-east-1#i-0042")]["act"] == "stop"


def test_transaction_commits_all_or_nothing(table: ItemTable) -> None:
    table.put({"pk": "G", "sk": "CAP#a", "used": 90})
    ops = [
        table.update_op(
            "G", "CAP#a", "SET used = used + :x", condition="used <= :limit", values={":x": 20, ":limit": 80}
        ),
        table.put_op({"pk": "G", "sk": "CHARGE#c1", "state": "reserved"}, condition="attribute_not_exists(pk)"),
    ]
    assert table.transact(ops) == ["ConditionalCheckFailed", "None"]
    assert table.get("G", "CHARGE#c1") is None
    assert table.get("G", "CAP#a") == {"pk": "G", "sk": "CAP#a", "used": 90}
    ops[0] = table.update_op(
        "G", "CAP#a", "SET used = used + :x", condition="used <= :limit", values={":x": 5, ":limit": 95}
    )
    assert table.transact(ops) is None
    assert table.get("G", "CAP#a") == {"pk": "G", "sk": "CAP#a", "used": 95}
    assert table.transact(ops[1:]) == ["ConditionalCheckFailed"]


def test_delete(table: ItemTable) -> None:
    table.put({"pk": "D", "sk": "DEDUPE"})
    table.delete("D", "DEDUPE")
    table.delete("D", "DEDUPE")  # deleting what is not there is no error
    assert table.get("D", "DEDUPE") is None


def test_the_twin_retries_unprocessed_batch_items() -> None:
    twin = MemoryDynamo()
    twin.unprocessed_writes = 30
    table = ItemTable("t", twin)
    table.put_many([{"pk": "P", "sk": f"{n:02d}"} for n in range(40)])
    assert len(table.query("P")) == 40
    assert twin.unprocessed_writes == 0


def _script(table: ItemTable) -> list[Any]:
    """A mix of every operation; returns every answer, then the final items."""
    answers: list[Any] = []
    calls: list[Callable[[], Any]] = [
        lambda: table.put_new({"pk": "A", "sk": "STATE", "state": "OK", "n": 1}),
        lambda: table.put_new({"pk": "A", "sk": "STATE", "state": "KILLED"}),
        lambda: table.update(
            "A", "STATE", "SET #s = :s ADD n :one", names={"#s": "state"}, values={":s": "THRIFT", ":one": 2}
        ),
        lambda: table.update("A", "STATE", "SET n = n - :one", condition="n > :max", values={":one": 1, ":max": 5}),
        lambda: table.update(
            "A",
            "STATE",
            "SET note = :t",
            condition="begins_with(#s, :p)",
            names={"#s": "state"},
            values={":t": "x", ":p": "THR"},
        ),
        lambda: table.update(
            "A",
            "STATE",
            "SET note2 = :t",
            condition="contains(note, :t) AND NOT (n IN (:a, :b))",
            values={":t": "x", ":a": 1, ":b": 2},
        ),
        lambda: table.put_many([{"pk": "B", "sk": f"RES#{n}", "v": n} for n in range(30)]),
        lambda: table.query("B", "RES#1"),
        lambda: table.query_between("B", "RES#15", "RES#22"),
        lambda: table.transact(
            [table.update_op("A", "STATE", "SET n = n + :x", values={":x": 10}), table.put_op({"pk": "C", "sk": "1"})]
        ),
        lambda: table.transact([table.update_op("A", "STATE", "SET n = :x", condition="n = :x", values={":x": 0})]),
        lambda: table.get_many([("A", "STATE"), ("C", "1"), ("C", "2")]),
        lambda: table.delete("B", "RES#3"),
    ]
    for call in calls:
        answers.append(call())
    answers.append([table.query(pk) for pk in ("A", "B", "C")])
    return answers


def test_the_twin_answers_like_dynamodb() -> None:
    twin = _script(ItemTable.in_memory("killswitch-ledger"))
    with mock_aws():
        moto = _script(ItemTable(create_table(), boto3.client("dynamodb", "us-east-1")))
    assert twin == moto
    assert twin[2:6] == [True, False, True, True]
