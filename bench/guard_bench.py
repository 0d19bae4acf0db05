"""Guard SDK benchmark: per-call overhead, ledger writes per call, and overspend under concurrency.

    python -m bench.guard_bench [--quick]

`run(quick) -> dict` returns the figures; `to_section(figures)` renders them as a `bench.common.Section`.
Everything runs in-process (DynamoDB is moto, one request at a time, like a real table applies each request
atomically); absolute latencies on moto say nothing about real DynamoDB, the ratios and counts do.
"""

from __future__ import annotations

import argparse
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from typing import Any

import boto3
from moto import mock_aws

from bench.common import Section, percentile, prune_settled_charges
from killswitch.guard import BudgetExceeded, Caps, DynamoLedger, Guard, InMemoryLedger, LeasePolicy, ModelPrice
from killswitch.guard.ledger import Ledger
from killswitch.guard.loops import LoopLimits
from killswitch.testing import sim

PRICE = ModelPrice.of(1_000, 10_000)  # $0.001 / input token, $0.01 / output token: easy figures
TABLE = "bench-ledger"
AGENT = "bench-agent"
UNLIMITED_STEPS = LoopLimits(max_steps_per_run=10_000_000)


# -- plumbing -------------------------------------------------------------------------------------------------
@contextmanager
def _dynamo() -> Iterator[Any]:
    with mock_aws():
        client = sim.serialized(boto3.client("dynamodb", region_name="us-east-1"))
        sim.create_ledger_table(client, TABLE)
        yield client


class _Writes:
    """Counts DynamoDB write requests (and the items they touch) through botocore events."""

    OPS = ("TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")

    def __init__(self, client: Any) -> None:
        self.requests = 0
        self.items = 0
        for op in self.OPS:
            client.meta.events.register(
                f"before-parameter-build.dynamodb.{op}", self._count, unique_id=f"bench-writes-{op}"
            )

    def _count(self, params: dict[str, Any], **_: Any) -> None:
        self.requests += 1
        self.items += len(params.get("TransactItems", [])) or 1


def _guard(ledger: Ledger, leases: LeasePolicy | None, cap: float = 1_000_000.0) -> Guard:
    return Guard(
        AGENT,
        Caps(per_run_usd=cap, per_day_usd=cap),
        ledger,
        leases=leases,
        loop=UNLIMITED_STEPS,
        sweep_interval=0,
    )


def _one_call(run: Any) -> None:
    with run.charge("bench", 10, 10, price=PRICE) as call:  # reserve $0.11
        call.settle(output_tokens=5)  # actual $0.06


# -- 1. per-call overhead -------------------------------------------------------------------------------------
def overhead(quick: bool) -> dict[str, dict[str, float]]:
    n = 200 if quick else 1000
    out: dict[str, dict[str, float]] = {}

    def measure(label: str, guard: Guard, calls: int, between: Callable[[], None] | None = None) -> None:
        """`between` runs after each timed call, outside the timing (the moto rows prune settled charges)."""
        samples: list[float] = []
        with guard.run() as run:
            for _ in range(min(20, calls)):  # warm-up
                _one_call(run)
            for _ in range(calls):
                t0 = time.perf_counter()
                _one_call(run)
                samples.append((time.perf_counter() - t0) * 1e6)
                if between is not None:
                    between()
        out[label] = {"p50_us": percentile(samples, 50), "p99_us": percentile(samples, 99), "calls": calls}

    measure("InMemoryLedger", _guard(InMemoryLedger(), None), n)
    measure("InMemoryLedger + leases", _guard(InMemoryLedger(), LeasePolicy()), n)
    dn = max(50, n // 5)
    with _dynamo() as client:
        prune = prune_settled_charges(client, TABLE, AGENT)
        measure("DynamoLedger (moto)", _guard(DynamoLedger(TABLE, client=client), None), dn, prune)
    with _dynamo() as client:
        # With leases a call rarely writes (a lease per ~hundred calls): the table stays small, nothing to prune.
        measure("DynamoLedger (moto) + leases", _guard(DynamoLedger(TABLE, client=client), LeasePolicy()), dn)
    return out


# -- 2. ledger writes per call --------------------------------------------------------------------------------
def writes_per_call(quick: bool) -> dict[str, dict[str, float]]:
    runs, per_run = (4, 25) if quick else (8, 50)
    out: dict[str, dict[str, float]] = {}
    for label, leases in (("direct", None), ("leases", LeasePolicy())):
        with _dynamo() as client:
            counter = _Writes(client)
            guard = _guard(DynamoLedger(TABLE, client=client), leases, cap=1_000.0)

            def worker(_: int, guard: Guard = guard) -> None:
                with guard.run() as run:
                    for _ in range(per_run):
                        _one_call(run)

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(runs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            calls = runs * per_run
            out[label] = {
                "calls": calls,
                "write_requests_per_call": counter.requests / calls,
                "items_written_per_call": counter.items / calls,
            }
    return out


# -- 3. overspend: guard vs naive check-then-add ----------------------------------------------------------------
CAP = Decimal("1.00")
COST = Decimal("0.01")


class _NaiveBudget:
    """The usual pattern: read spent, compare with the cap, make the call, add the cost. Each step is atomic."""

    def __init__(self) -> None:
        self.spent = Decimal(0)
        self._lock = threading.Lock()

    def read(self) -> Decimal:
        with self._lock:
            return self.spent

    def add(self, amount: Decimal) -> None:
        with self._lock:
            self.spent += amount


def _latency(rnd: random.Random) -> None:
    time.sleep(rnd.uniform(0.001, 0.003))  # the LLM/tool call


def _overspend_naive(workers: int) -> Decimal:
    budget = _NaiveBudget()

    def worker(n: int) -> None:
        rnd = random.Random(n)
        while True:
            if budget.read() + COST > CAP:
                return
            _latency(rnd)
            budget.add(COST)

    _run_threads(workers, worker)
    return max(Decimal(0), budget.spent - CAP)


def _overspend_guard(workers: int, make_ledger: Callable[[], Ledger], leases: LeasePolicy | None) -> Decimal:
    ledger = make_ledger()
    guard = Guard("race", Caps(per_day_usd=float(CAP)), ledger, leases=leases, loop=UNLIMITED_STEPS)

    def worker(n: int) -> None:
        rnd = random.Random(n)
        with guard.run() as run:
            while True:
                try:
                    with run.charge("c", 0, 1, price=ModelPrice.of(0, 10_000)) as call:  # $0.01
                        _latency(rnd)
                        call.settle(output_tokens=1)
                except BudgetExceeded:
                    return

    log = logging.getLogger("killswitch.guard")
    level = log.level
    log.setLevel(logging.CRITICAL)  # the kill log line is expected here
    try:
        _run_threads(workers, worker)
    finally:
        log.setLevel(level)
    committed = ledger.usage("race", "agent", guard.period_key()).committed
    return max(Decimal(0), committed - CAP)


def _run_threads(workers: int, target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def overspend(quick: bool) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for workers in (1, 8, 32):
        row = {
            "naive_check_then_add_usd": float(_overspend_naive(workers)),
            "guard_inmemory_usd": float(_overspend_guard(workers, InMemoryLedger, None)),
        }
        if not quick or workers == 8:
            with _dynamo() as client:
                row["guard_dynamodb_usd"] = float(
                    _overspend_guard(workers, partial(DynamoLedger, TABLE, client=client), None)
                )
            with _dynamo() as client:
                row["guard_dynamodb_leases_usd"] = float(
                    _overspend_guard(workers, partial(DynamoLedger, TABLE, client=client), LeasePolicy())
                )
        out[str(workers)] = row
    return out


# -- entry points -----------------------------------------------------------------------------------------------
def run(quick: bool) -> dict[str, Any]:
    return {
        "overhead": overhead(quick),
        "writes_per_call": writes_per_call(quick),
        "overspend": overspend(quick),
        "cap_usd": float(CAP),
        "cost_per_call_usd": float(COST),
    }


def _duration(us: float) -> str:
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.1f} ms"


def to_section(figures: dict[str, Any]) -> Section:
    rows: list[list[str]] = []
    flat: dict[str, float] = {}
    for label, f in figures["overhead"].items():
        rows.append([f"per-call overhead, {label}", f"p50 {_duration(f['p50_us'])}, p99 {_duration(f['p99_us'])}"])
        flat[f"overhead.{label}.p50_us"] = f["p50_us"]
        flat[f"overhead.{label}.p99_us"] = f["p99_us"]
    for label, f in figures["writes_per_call"].items():
        rows.append(
            [
                f"DynamoDB writes per call, {label}",
                f"{f['write_requests_per_call']:.2f} requests, {f['items_written_per_call']:.2f} items",
            ]
        )
        flat[f"writes.{label}.requests_per_call"] = f["write_requests_per_call"]
    for workers, f in figures["overspend"].items():
        cells = ", ".join(f"{k.removesuffix('_usd')} ${v:.2f}" for k, v in f.items())
        rows.append([f"overspend over a ${figures['cap_usd']:.2f} cap, {workers} workers", cells])
        for k, v in f.items():
            flat[f"overspend.{workers}.{k}"] = v
    return Section(
        title="Guard SDK: overhead, ledger writes, overspend under concurrency",
        headers=["measure", "result"],
        rows=rows,
        notes=[
            "DynamoDB is moto in-process (one request at a time): latencies are not real DynamoDB figures; moto "
            "deep-copies the whole table for every item of a TransactWriteItems, so its per-call time grows with "
            "the number of stored charges: the per-call overhead row without leases deletes settled charges "
            "between timed calls (outside the timing); with leases a call rarely writes. The write counts are what "
            "carries over to real DynamoDB.",
            "Overspend: workers charge $0.01 calls (1-3 ms simulated latency) until refused; the naive baseline "
            "reads spent, compares, calls, then adds.",
            "Leases: a run reserves min(10% of the remaining headroom, the run cap's headroom) once, spends it "
            "locally and returns the rest when it ends.",
        ],
        figures=flat,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.guard_bench")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    print(to_section(run(args.quick)).markdown())
    print(f"(guard: {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
