"""Helpers for the guard's moto tests: the stack's single table, and an invariant checker for caps."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from killswitch.keys import SK, guard_pk
from killswitch.testing.sim import create_ledger_table

TABLE = "killswitch-ledger"


def create_table(client: Any, name: str = TABLE) -> str:
    return create_ledger_table(client, name)


def guard_items(client: Any, agent: str, table: str = TABLE) -> list[dict[str, Any]]:
    resp = client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": guard_pk(agent)}},
        ConsistentRead=True,
    )
    return list(resp["Items"])


def cap_items(client: Any, agent: str, table: str = TABLE) -> dict[str, dict[str, Decimal]]:
    """Every CAP# item of an agent as {sk: {used, committed, reserved, cap}} in USD."""
    out: dict[str, dict[str, Decimal]] = {}
    for item in guard_items(client, agent, table):
        sk = item[SK]["S"]
        if not sk.startswith("CAP#"):
            continue
        row = {}
        for name in ("used", "committed", "reserved", "cap"):
            attr = item.get(f"{name}_nusd")
            if attr is not None:
                row[name] = Decimal(attr["N"]).scaleb(-9)
        out[sk] = row
    return out


class InvariantWatch:
    """Records every violation of committed + reserved <= cap seen by any thread."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.checks = 0
        self._lock = threading.Lock()

    def check(self, used: Decimal, cap: Decimal | None, where: str) -> None:
        with self._lock:
            self.checks += 1
            if cap is not None and used > cap:
                self.violations.append(f"{where}: used {used} > cap {cap}")


def run_threads(workers: int, target: Any) -> list[BaseException]:
    """Start `workers` threads running target(n); return the exceptions they raised."""
    errors: list[BaseException] = []
    lock = threading.Lock()

    def wrapped(n: int) -> None:
        try:
            target(n)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
