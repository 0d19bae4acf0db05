"""Guard SDK next to a client call, and leases under concurrency (issue 11, items 1 and 7).

    python -m bench.guard_calls_bench [--quick]

1. Per-call overhead of the in-memory guard next to a stubbed client call while the client's background thread
   is busy (HTTP pools and LiteLLM's logging worker have one): p50 of (guarded call - bare call), measured
   interleaved in the same run. The "uuid4 ids" row passes `charge_id=str(uuid.uuid4())`, the id the guard used
   before: `uuid4()` reads the OS random source with the GIL released, so the busy thread takes the GIL.
2. Leases at 1/8/32 concurrent runs: runs charge $0.01 calls (a short pause around each) until refused; overspend
   over the cap, calls accepted (100 fit in the cap) and kill events, against the direct (lease-free) guard.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from bench.common import percentile
from bench.guard_bench import UNLIMITED_STEPS, _dynamo
from killswitch.guard import (
    BudgetExceeded,
    Caps,
    DynamoLedger,
    Guard,
    InMemoryLedger,
    InMemoryPublisher,
    LeasePolicy,
    ModelPrice,
)
from killswitch.guard.ledger import Ledger

PRICE = ModelPrice.of(3, 15)  # a Sonnet-class price
CANNED = json.dumps({"output": {"message": {"content": [{"text": "ok " * 50}]}}, "usage": {"outputTokens": 120}})


@contextmanager
def _busy_background_thread() -> Iterator[None]:
    """A client's background worker: pure-Python work that takes the GIL whenever the caller releases it."""
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            sum(i * i for i in range(200))

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


def _client_call() -> int:
    """The stubbed client call: parse a canned response, as an SDK does."""
    return int(json.loads(CANNED)["usage"]["outputTokens"])


def client_overhead(quick: bool) -> dict[str, dict[str, float]]:
    n = 2000 if quick else 10000
    variants: dict[str, tuple[Guard, bool]] = {
        "no leases": (Guard("bench", Caps(per_day_usd=1e6), InMemoryLedger(), loop=UNLIMITED_STEPS), False),
        "leases": (
            Guard("bench", Caps(per_day_usd=1e6), InMemoryLedger(), leases=LeasePolicy(), loop=UNLIMITED_STEPS),
            False,
        ),
        "no leases, uuid4 ids (before)": (
            Guard("bench", Caps(per_day_usd=1e6), InMemoryLedger(), loop=UNLIMITED_STEPS),
            True,
        ),
    }
    out: dict[str, dict[str, float]] = {}
    with _busy_background_thread():
        for label, (guard, uuid_ids) in variants.items():
            bare: list[float] = []
            guarded: list[float] = []
            with guard.run() as run:
                for i in range(n + 200):
                    t0 = time.perf_counter()
                    _client_call()
                    t1 = time.perf_counter()
                    cid = str(uuid.uuid4()) if uuid_ids else None
                    with run.charge("m", 1000, 500, price=PRICE, charge_id=cid) as call:
                        call.settle(output_tokens=_client_call())
                    t2 = time.perf_counter()
                    if i >= 200:  # warm-up
                        bare.append((t1 - t0) * 1e6)
                        guarded.append((t2 - t1) * 1e6)
            overhead = [g - b for g, b in zip(guarded, bare, strict=True)]
            out[label] = {
                "bare_p50_us": percentile(bare, 50),
                "overhead_p50_us": percentile(overhead, 50),
                "overhead_p99_us": percentile(overhead, 99),
                "calls": n,
            }
    return out


# -- leases under concurrency ---------------------------------------------------------------------------------
CAP = Decimal("1.00")
CENT = ModelPrice.of(0, 10_000)


def _race(ledger: Ledger, runs: int, leases: LeasePolicy | None) -> dict[str, float]:
    pub = InMemoryPublisher()
    guard = Guard("race", Caps(per_day_usd=float(CAP)), ledger, leases=leases, publisher=pub, loop=UNLIMITED_STEPS)
    accepted = [0]
    contended = [0]
    lock = threading.Lock()
    start = threading.Barrier(runs)

    def worker(n: int) -> None:
        start.wait()
        with guard.run() as run:
            while True:
                try:
                    with run.charge("c", 0, 1, price=CENT) as call:
                        time.sleep(0.0005)
                        call.settle(output_tokens=1)
                except BudgetExceeded as exc:
                    if exc.contended:
                        with lock:
                            contended[0] += 1
                        time.sleep(0.001)
                        continue
                    return
                with lock:
                    accepted[0] += 1
                time.sleep(0.0005)

    log = logging.getLogger("killswitch.guard")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(runs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        log.setLevel(level)
    committed = ledger.usage("race", "agent", guard.period_key()).committed
    return {
        "overspend_usd": float(max(Decimal(0), committed - CAP)),
        "spent_usd": float(committed),
        "accepted": accepted[0],
        "kill_events": len(pub.events),
        "contended_refusals": contended[0],
    }


def lease_race(quick: bool) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for runs in (1, 8, 32):
        row = {
            "in-memory, direct": _race(InMemoryLedger(), runs, None),
            "in-memory, leases": _race(InMemoryLedger(), runs, LeasePolicy()),
        }
        if not quick and runs == 8:
            with _dynamo() as client:
                row["DynamoDB (moto), leases"] = _race(DynamoLedger("bench-ledger", client=client), runs, LeasePolicy())
        out[str(runs)] = row
    return out


def run(quick: bool) -> dict[str, Any]:
    return {"client_overhead": client_overhead(quick), "lease_race": lease_race(quick)}


def _us(v: float) -> str:
    return f"{v:.1f} µs"


def rows_and_figures(figures: dict[str, Any]) -> tuple[list[list[str]], dict[str, float], list[str]]:
    rows: list[list[str]] = []
    flat: dict[str, float] = {}
    base = figures["client_overhead"].get("no leases, uuid4 ids (before)")
    for label, f in figures["client_overhead"].items():
        ratio = ""
        if base and label != "no leases, uuid4 ids (before)" and f["overhead_p50_us"] > 0:
            ratio = f" ({base['overhead_p50_us'] / f['overhead_p50_us']:.1f}× less than uuid4 ids)"
        rows.append(
            [
                f"in-memory overhead next to a stubbed client call (busy client thread), {label}",
                f"p50 {_us(f['overhead_p50_us'])}, p99 {_us(f['overhead_p99_us'])}; bare call p50 "
                f"{_us(f['bare_p50_us'])}{ratio}",
            ]
        )
        flat[f"client_overhead.{label}.p50_us"] = f["overhead_p50_us"]
    for runs, by_kind in figures["lease_race"].items():
        for kind, f in by_kind.items():
            rows.append(
                [
                    f"${float(CAP):.2f} cap, {runs} concurrent runs, {kind}",
                    f"overspend ${f['overspend_usd']:.2f}, spent ${f['spent_usd']:.2f}, "
                    f"{f['accepted']:.0f} of 100 calls accepted, {f['kill_events']:.0f} kill event(s), "
                    f"{f['contended_refusals']:.0f} contended refusals",
                ]
            )
            for k, v in f.items():
                flat[f"lease_race.{runs}.{kind}.{k}"] = float(v)
    notes = [
        "Client overhead: each sample is one bare stubbed call (JSON parse of a canned reply) and one guarded call "
        "(reserve, the same stubbed call, settle) back to back, with a background thread busy in pure Python; "
        "overhead = guarded - bare, per pair.",
        "Lease race: runs charge $0.01 calls with 0.5 ms pauses until refused; a refusal with `contended=True` (other "
        "runs' leases hold the headroom, the agent is not stopped) is retried. Before issue 11, 32 runs with leases "
        "were stopped at about $0.31-0.52 of the $1.00 cap.",
    ]
    return rows, flat, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.guard_calls_bench")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rows, _, notes = rows_and_figures(run(args.quick))
    for r in rows:
        print(" | ".join(r))
    for n in notes:
        print("-", n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
