"""Shared pieces of the benchmark suite: a section of figures and its Markdown rendering."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from killswitch.keys import CHARGE_PREFIX, guard_pk

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)  # machine-readable, for --json

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", "| " + " | ".join(self.headers) + " |"]
        lines.append("|" + "|".join("---" for _ in self.headers) + "|")
        lines.extend("| " + " | ".join(row) + " |" for row in self.rows)
        if self.notes:
            lines.append("")
            lines.extend(f"- {n}" for n in self.notes)
        return "\n".join(lines) + "\n"


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
        mem = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        mem = "?"
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {os.cpu_count()} cores ({cpu}), {mem}, Python {platform.python_version()}"


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def prune_settled_charges(client: Any, table: str, agent: str) -> Callable[[], None]:
    """Delete the settled charge items of `agent` in `table` (between timed calls, never inside one).

    moto's TransactWriteItems deep-copies the whole table once per item of the transaction (its rollback copy), so
    without this every reservation costs time proportional to the charges stored so far (~180 ms per call after a
    few hundred calls). Real DynamoDB does not slow down with the table; the guard keeps settled holds a week for
    idempotent retries, which a bench of consecutive distinct charges never needs.
    """

    def prune() -> None:
        items = client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :charge)",
            FilterExpression="#st <> :reserved",
            ExpressionAttributeNames={"#st": "state"},
            ExpressionAttributeValues={
                ":pk": {"S": guard_pk(agent)},
                ":charge": {"S": CHARGE_PREFIX},
                ":reserved": {"S": "reserved"},
            },
            ProjectionExpression="pk, sk",
        )["Items"]
        for key in items:
            client.delete_item(TableName=table, Key=key)

    return prune


@contextlib.contextmanager
def on_every_client(hook: Callable[[Any], None]) -> Iterator[None]:
    """`hook(client)` for every botocore client created inside the block (blocks nest: each adds its hook), so a
    benchmark can register its own event handlers (call counting, simulated latency) on every client the code under
    test makes."""
    from unittest import mock

    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        hook(client)
        return client

    with mock.patch.object(botocore.session.Session, "create_client", create_client):
        yield
