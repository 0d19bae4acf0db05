"""Hub kill across organization accounts on moto: one agent spread over 50 accounts × 4 regions.

Each kill goes through `KillEngine.kill` built by `build_engine` with an `accounts:` config: the hub lists nothing
(the accounts are `account_ids`), assumes `<prefix>-spoke` in every account (moto: a backend per account) and
discovers, stops and verifies in every account × region. The parallel kill (the hub's pool, default 16) and the
sequential baseline (pool size 1) run in the same process on the same fleet: the agent's instances are started
again (untimed) after each kill, so every kill stops the same running instances.

moto answers in-process with CPU only, while a real AWS call from Lambda waits tens of milliseconds on the network:
parallelism pays on waiting, not on CPU (the GIL serializes moto itself). So each pair is measured on moto as is
and with a simulated round trip (`LATENCIES`: sleep before every AWS call, a wait that releases the GIL).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.common import Section, on_every_client
from bench.fanout import CallLog, counting, offline_aws, quiet_stdout
from killswitch import tags as T
from killswitch.config import KillSwitchConfig
from killswitch.kill.common import Clients
from killswitch.kill.ledger import InMemoryKillLedger
from killswitch.kill.publish import NullPublisher
from killswitch.kill.wiring import build_engine
from killswitch.testing import sim
from killswitch.testing.sim_accounts import account_clients

FULL = (50, ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"))
QUICK = (6, ("us-east-1", "us-west-2"))
POOL = 16
LATENCIES = (0.0, 0.025, 0.05)  # seconds per call: moto as is, then simulated AWS round trips (in-region: 10-50 ms)
AGENT = "bench-agent"
OTHER = "bench-other-agent"


@dataclass
class Measured:
    label: str
    pool: int
    latency_s: float
    wall_s: float
    cpu_s: float  # process CPU time during the kill (every thread: the engine, botocore and moto itself)
    moto_cpu_s: float  # of which inside moto's request handling

    @property
    def kill_cpu_ms_per_call(self) -> float:
        """The kill's own CPU per AWS call (engine, botocore, client creation): what a Lambda spends on AWS."""
        return (self.cpu_s - self.moto_cpu_s) / max(self.calls, 1) * 1000

    calls: int
    assume_role: int
    clients: int
    stopped: int
    errors: int

    @property
    def key(self) -> str:
        return f"pool{self.pool}.{self.aws}"

    @property
    def aws(self) -> str:
        """`moto`, or `latency` (25 ms: the historical key) / `latency50` (other latencies: their milliseconds)."""
        ms = round(self.latency_s * 1000)
        return "moto" if not ms else "latency" if ms == 25 else f"latency{ms}"


def account_ids(n: int) -> list[str]:
    return [f"{100000000000 + i:012d}" for i in range(1, n + 1)]


def config(accounts: list[str], regions: tuple[str, ...], pool: int) -> KillSwitchConfig:
    return KillSwitchConfig.model_validate(
        {
            "regions": list(regions),
            "notify": {"emails": ["bench@example.com"]},
            "agents": [
                {"name": a, "budget": {"amount_usd": 100, "period": "MONTHLY"}, "actions": ["stop_ec2"]}
                for a in (AGENT, OTHER)
            ],
            "accounts": {
                "account_ids": accounts,
                "organization_root_id": "r-bench",
                "external_id": "bench-hub",
                "max_parallel": pool,
            },
        }
    )


def build_fleet(accounts: list[str], regions: tuple[str, ...], agent: str) -> dict[tuple[str, str], str]:
    """The agent's instance in every account × region (returned by (account, region)), and one of another agent
    next to it that must stay running."""
    fleet: dict[tuple[str, str], str] = {}
    for account in accounts:
        c = account_clients(account)
        for region in regions:
            for name in (agent, OTHER):
                iid = sim.run_instance(c, region, sim.agent_tags(name))
                if name == agent:
                    fleet[account, region] = iid
    return fleet


def restart(fleet: dict[tuple[str, str], str]) -> None:
    """Untimed, between kills: the agent's instances running again, so that every kill stops the same fleet."""
    for account in sorted({a for a, _ in fleet}):
        c = account_clients(account)
        for (a, region), iid in fleet.items():
            if a == account:
                c("ec2", region).start_instances(InstanceIds=[iid])


class Latency:
    """`before-call`: sleep `seconds` (a network round trip; `time.sleep` releases the GIL like a socket wait).
    Counts the botocore clients made meanwhile (`clients_made`)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.clients_made = 0

    def before(self, **_: Any) -> None:
        if self.seconds:
            time.sleep(self.seconds)


@contextlib.contextmanager
def simulated_latency(latency: Latency) -> Iterator[None]:
    def hook(client: Any) -> None:
        latency.clients_made += 1
        client.meta.events.register("before-call", latency.before, unique_id="bench-latency")

    with on_every_client(hook):
        yield


class MotoCpu:
    """CPU time spent inside moto's request handling (every thread's own CPU clock), so that the kill's own CPU
    (engine + botocore: what runs in the Lambda on AWS) can be told apart from the in-process server's."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def timing(self) -> Iterator[None]:
        from unittest import mock

        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.__call__
        meter = self

        def timed(stub: BotocoreStubber, *args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            try:
                return original(stub, *args, **kwargs)
            finally:
                spent = time.thread_time() - t0
                with meter._lock:
                    meter.seconds += spent

        with mock.patch.object(BotocoreStubber, "__call__", timed):
            yield


def kill_once(
    cfg: KillSwitchConfig,
    agent: str,
    *,
    pool: int,
    log: CallLog,
    latency: Latency,
    seconds: float,
    moto: MotoCpu | None = None,
) -> Measured:
    moto = moto or MotoCpu()
    engine = build_engine(
        cfg, ledger=InMemoryKillLedger(), publisher=NullPublisher(), scp=None, spend=None, clients=Clients()
    )
    log.reset()
    latency.seconds = seconds
    latency.clients_made = 0
    log.active = True
    moto.seconds = 0.0
    t0, cpu0 = time.perf_counter(), time.process_time()
    report = engine.kill(agent, reason="bench")
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    moto_cpu = moto.seconds
    log.active = False
    latency.seconds = 0.0
    stopped = sum(1 for r in report.summary.results if r.outcome.value == "success")
    label = f"{'parallel' if pool > 1 else 'sequential'} (pool {pool})"
    return Measured(
        label,
        pool,
        seconds,
        wall,
        cpu,
        moto_cpu,
        log.total,
        log.calls["sts:AssumeRole"],
        latency.clients_made,
        stopped,
        len(report.summary.failures),
    )


def other_agent_untouched(accounts: list[str], regions: tuple[str, ...]) -> bool:
    for account in accounts:
        c = account_clients(account)
        for region in regions:
            pages = c("ec2", region).describe_instances(Filters=[{"Name": f"tag:{T.AGENT_NAME}", "Values": [OTHER]}])
            for reservation in pages["Reservations"]:
                if any(i["State"]["Name"] != "running" for i in reservation["Instances"]):
                    return False
    return True


def measure(n_accounts: int, regions: tuple[str, ...]) -> tuple[list[Measured], int, bool]:
    """Every row kills the same agent on the same fleet (restarted, untimed, after each kill): the sequential
    baseline (pool 1) then the parallel kill, for each simulated latency."""
    accounts = account_ids(n_accounts)
    runs = [(pool, seconds) for seconds in LATENCIES for pool in (1, POOL)]
    log, latency, moto = CallLog(), Latency(), MotoCpu()
    out: list[Measured] = []
    with offline_aws(), quiet_stdout(), counting(log), simulated_latency(latency), moto.timing():
        fleet = build_fleet(accounts, regions, AGENT)
        # Untimed: moto creates its per-account, per-region backends and botocore reads its models on first use
        # (once per process, as in a warm Lambda container); no timed kill should pay for that.
        kill_once(config(accounts, regions, POOL), AGENT, pool=POOL, log=log, latency=latency, seconds=0)
        for pool, seconds in runs:
            restart(fleet)
            cfg = config(accounts, regions, pool)
            out.append(kill_once(cfg, AGENT, pool=pool, log=log, latency=latency, seconds=seconds, moto=moto))
        untouched = other_agent_untouched(accounts, regions)
    return out, 2 * len(fleet), untouched


def run(quick: bool = False, size: tuple[int, tuple[str, ...]] | None = None) -> Section:
    n_accounts, regions = size or (QUICK if quick else FULL)
    load_before = os.getloadavg()[0]
    measured, fleet, untouched = measure(n_accounts, regions)
    load_after = os.getloadavg()[0]
    expected = n_accounts * len(regions)
    rows: list[list[str]] = []
    figures: dict[str, float] = {"accounts": n_accounts, "regions": len(regions), "other_agent_untouched": untouched}
    by_key = {m.key: m for m in measured}
    for m in measured:
        baseline = by_key[f"pool1.{m.aws}"]
        rows.append(
            [
                f"moto + {m.latency_s * 1000:.0f} ms per call" if m.latency_s else "moto in-process",
                m.label,
                f"{m.wall_s:.2f}",
                f"{baseline.wall_s / m.wall_s:.1f}×",
                f"{m.cpu_s:.2f}",
                f"{m.moto_cpu_s:.2f}",
                f"{m.kill_cpu_ms_per_call:.1f}",
                f"{m.calls:,}",
                f"{m.assume_role}",
                f"{m.clients}",
                f"{m.stopped}/{expected}",
                f"{m.errors}",
            ]
        )
        figures.update(
            {
                f"{m.key}.wall_s": round(m.wall_s, 3),
                f"{m.key}.cpu_s": round(m.cpu_s, 3),
                f"{m.key}.moto_cpu_s": round(m.moto_cpu_s, 3),
                f"{m.key}.kill_cpu_ms_per_call": round(m.kill_cpu_ms_per_call, 2),
                f"{m.key}.speedup": round(baseline.wall_s / m.wall_s, 2),
                f"{m.key}.calls": m.calls,
                f"{m.key}.assume_role": m.assume_role,
                f"{m.key}.clients": m.clients,
                f"{m.key}.stopped": m.stopped,
                f"{m.key}.errors": m.errors,
            }
        )
    latency_ms = [round(s * 1000) for s in LATENCIES if s]
    notes = [
        f"One agent: one EC2 instance in each of {n_accounts} accounts × {len(regions)} regions "
        f"({', '.join(regions)}), next to one instance of another agent that must stay running "
        f"({'it did' if untouched else 'IT DID NOT'}); {fleet:,} instances in all. Every row kills the same agent on "
        "the same fleet (its instances are started again, untimed, between kills) through `KillEngine.kill` "
        "(in-memory ledger) with `accounts.account_ids`: AssumeRole of `<prefix>-spoke` per account, then per "
        "account × region GetResources (the Tagging API walk of the other regional kinds), DescribeInstances "
        "(`tag-key` filter: the agent's and the other agent's instance, as on AWS, for the name variants), "
        "DescribeAutoScalingGroups, StopInstances and the verifying DescribeInstances. An untimed warm-up kill "
        "first: moto makes its per-account backends and botocore reads its models once per process.",
        "Speed-up: the sequential baseline (`accounts.max_parallel: 1`) of the same row's latency, same run, "
        "same fleet. AssumeRole: once per account per kill (refreshable credentials, refreshed only near expiry).",
        "CPU s: process CPU time during the kill, every thread; of which moto: inside moto's request handling "
        "(parsing, the backend, XML responses: the server's work, not the Lambda's on AWS). Kill CPU per call: "
        "the rest (engine, botocore requests and responses, client creation) over the AWS calls. Clients: botocore "
        "clients made during the kill: every spoke account shares one per service × region, each call signed as "
        "its own account (`killswitch.kill.spoke_clients`), plus the hub's own per service × region. Before that, "
        "a client per account × region × service and a session per account (~630 clients here: a third of "
        "the kill's CPU; the kill took 14.3 s sequential, 16.2 s parallel on moto as is).",
        "moto in-process is CPU under the GIL: threads cannot beat the sequential kill there (the row is kept to "
        f"show it). A real AWS call waits on the network: simulated by {' / '.join(map(str, latency_ms))} ms of "
        "sleep before each call (botocore `before-call`, releases the GIL like a socket wait), where the pool "
        "pays: speed-up ≈ (latency + CPU per call) / CPU per call, up to the pool size.",
        f"Machine load (1-minute load average, {os.cpu_count()} cores): "
        f"{load_before:.1f} at the start, {load_after:.1f} at the end. Wall times scale with it; CPU s much less.",
    ]
    return Section(
        "Hub kill across accounts (moto)",
        [
            "AWS",
            "kill",
            "wall s",
            "vs sequential",
            "CPU s",
            "of which moto",
            "kill CPU ms per call",
            "AWS calls",
            "AssumeRole",
            "clients",
            "stopped",
            "errors",
        ],
        rows,
        notes,
        figures,
    )
