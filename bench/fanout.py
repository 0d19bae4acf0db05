"""Kill fan-out on moto: AWS API calls, wall time, time inside AWS calls and peak memory of one kill of N instances.

The kill goes through the Lambda's own path: `killswitch.handlers.kill.handler` on an SNS-shaped event, with the
DynamoDB ledger, the SNS result topic and boto3 clients, all on moto in-process. Every botocore client created
while the kill runs gets a `before-call` / `after-call` handler that counts the call by operation and times it.
The same fleet, built fresh, is then killed the naive way (one `StopInstances` per instance) for the baseline.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import threading
import time
import tracemalloc
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench import fanout_kinds
from bench.common import Section, on_every_client
from killswitch import tags as T
from killswitch.config import KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.testing import sim

REGION = "us-east-1"
AGENT = "fanout-agent"
OTHER = "other-agent"
TABLE = "bench-kill-ledger"
CHUNK = 500  # instances per RunInstances call while building the fleet
SERVICES, TASKS = 3, 5  # ECS services (one with autoscaling) and standalone tasks of the agent
FULL_SIZES = (10, 100, 1_000, 5_000)
QUICK_SIZES = (10, 100)
NOISE_MAX = 250  # other-agent and untagged instances each: N/10, at least 5, at most this
NAIVE_MAX = 1_000  # above this, the naive baseline is computed (N + its discovery calls), not executed

# API limits behind the "minimum" column (see the notes).
TAGGING_PAGE = 100  # GetResources ResourcesPerPage maximum
DESCRIBE_BATCH = 1_000  # DescribeInstances: up to 1,000 results per page
DYNAMO_WRITE_S = 0.005  # estimate of one in-region DynamoDB write from Lambda, for the note only
STOP_BATCH = 1_000  # StopInstances: the engine's batch; no documented per-call maximum is relied on


# -- call counting ---------------------------------------------------------------------------------------------
@dataclass
class CallLog:
    """AWS API calls by `service:Operation`, and the time spent between `before-call` and `after-call`.

    While `recording`, every response is kept in call order; while `replaying`, `before-call` hands the kept
    responses back in the same order (botocore then skips the request), so that a kill can be re-run without the
    backend: the memory pass measures the engine, not moto's response serialisation.
    """

    calls: Counter[str] = field(default_factory=Counter)
    op_seconds: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    active: bool = False
    recording: bool = False
    replaying: bool = False
    responses: dict[str, deque[tuple[Any, Any]]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def before(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        if not self.active:
            return None
        op = f"{model.service_model.service_name}:{model.name}"
        if self.replaying:
            with self._lock:
                self.calls[op] += 1
                queue = self.responses.get(op)
                return queue.popleft() if queue else None
        context["bench_t0"] = time.perf_counter()
        return None

    def after(self, model: Any, context: dict[str, Any], http_response: Any, parsed: Any, **_: Any) -> None:
        t0 = context.pop("bench_t0", None)
        if t0 is None:
            return
        elapsed = time.perf_counter() - t0
        op = f"{model.service_model.service_name}:{model.name}"
        with self._lock:
            self.calls[op] += 1
            self.op_seconds[op] += elapsed
            self.seconds += elapsed
            if self.recording:
                self.responses[op].append((http_response, parsed))

    def add(self, op: str) -> None:
        if self.active and not self.replaying:
            with self._lock:
                self.calls[op] += 1

    def reset(self) -> None:
        self.calls.clear()
        self.op_seconds.clear()
        self.seconds = 0.0
        self.responses.clear()

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def count_ledger(store: Any, log: CallLog) -> None:
    """The calls the in-memory ledger makes on the DynamoDB twin, counted as the DynamoDB calls they stand for."""
    calls = (
        ("put_item", "PutItem"),
        ("get_item", "GetItem"),
        ("query", "Query"),
        ("delete_item", "DeleteItem"),
        ("batch_write_item", "BatchWriteItem"),
    )
    for method, op in calls:
        original = getattr(store, method)

        def wrapped(*args: Any, _original: Any = original, _op: str = op, **kwargs: Any) -> Any:
            log.add(f"ledger:{_op}")
            return _original(*args, **kwargs)

        setattr(store, method, wrapped)


@contextlib.contextmanager
def counting(log: CallLog) -> Iterator[CallLog]:
    """Every botocore client created inside the block reports its calls to `log` (while `log.active`)."""

    def hook(client: Any) -> None:
        client.meta.events.register("before-call", log.before, unique_id="bench-calls-before")
        client.meta.events.register("after-call", log.after, unique_id="bench-calls-after")

    with on_every_client(hook):
        yield log


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The handler's JSON logs and EMF metrics go to stdout (as in Lambda): send them to /dev/null, at fd level."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def offline_aws() -> Iterator[None]:
    """Fake credentials, no endpoint override, moto in-process with ECS tasks held RUNNING; environment restored."""
    with sim.offline_env(REGION, POWERTOOLS_METRICS_NAMESPACE="KillSwitchBench"), sim.moto_aws():
        yield


# -- fleet and the Lambda's environment ------------------------------------------------------------------------
def config(n: int) -> KillSwitchConfig:
    return KillSwitchConfig.model_validate(
        {
            "regions": [REGION],
            "notify": {"emails": ["bench@example.com"]},
            "max_resources_per_kill": n + SERVICES + TASKS + 10,
            "agents": [
                {
                    "name": AGENT,
                    "budget": {"amount_usd": 100, "period": "MONTHLY"},
                    "kill_scope": "agent",
                    # The compute kinds this fleet has (deny_iam would add a per-principal IAM read the naive
                    # baseline does not make).
                    "actions": ["stop_ec2", "scale_ecs", "stop_ecs_tasks", "scale_asg"],
                },
                {"name": OTHER, "budget": {"amount_usd": 100, "period": "MONTHLY"}},
            ],
        }
    )


def run_instances(c: Clients, count: int, tags: dict[str, str]) -> list[str]:
    ids: list[str] = []
    ec2 = c("ec2", REGION)
    while len(ids) < count:
        k = min(CHUNK, count - len(ids))
        resp = ec2.run_instances(
            ImageId=sim.AMI,
            MinCount=k,
            MaxCount=k,
            InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance", "Tags": sim.tag_list(tags)}],
        )
        ids.extend(i["InstanceId"] for i in resp["Instances"])
    return ids


def build_fleet(c: Clients, n: int) -> list[str]:
    """N instances of the agent, its ECS services and standalone tasks, other-agent and untagged noise."""
    ids = run_instances(c, n, sim.agent_tags(AGENT, Name="worker"))
    noise = max(5, min(n // 10, NOISE_MAX))
    run_instances(c, noise, sim.agent_tags(OTHER, Name="other"))
    run_instances(c, noise, {"Name": "untagged"})
    for k in range(SERVICES):
        scaling = (1, 4) if k == 0 else None
        sim.ecs_service(c, REGION, "agents", f"svc-{k}", sim.agent_tags(AGENT), desired=2, scaling=scaling)
    for _ in range(TASKS):
        sim.ecs_task(c, REGION, "agents", sim.agent_tags(AGENT))
    sim.ecs_service(c, REGION, "agents", "other-svc", sim.agent_tags(OTHER), desired=1)
    return ids


def lambda_env(c: Clients, cfg: KillSwitchConfig) -> str:
    """The kill Lambda's table, events topic and environment; returns the kill topic ARN."""
    sim.create_ledger_table(c("dynamodb", REGION), TABLE)
    sns = c("sns", REGION)
    kill_topic = str(sns.create_topic(Name="killswitch-kill")["TopicArn"])
    events_topic = str(sns.create_topic(Name="killswitch-events")["TopicArn"])
    os.environ.update(
        {
            "KILLSWITCH_TABLE": TABLE,
            "KILLSWITCH_EVENTS_TOPIC_ARN": events_topic,
            "KILLSWITCH_KILL_TOPIC_ARN": kill_topic,
            "KILLSWITCH_CONFIG_JSON": cfg.to_json(),
        }
    )
    return kill_topic


def sns_event(message: dict[str, Any], topic_arn: str, message_id: str) -> dict[str, Any]:
    """One SNS-shaped record without a `TopicArn`: a direct invoke by ops (a CLI kill never comes by the alerts
    topic, which only AWS Budgets and Cost Anomaly Detection may publish to; issue 15). `topic_arn` names the
    subscription only."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:bench",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "Subject": f"killswitch kill: {message.get('agent')}",
                    "Message": json.dumps(message),
                    "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    "MessageAttributes": {},
                },
            }
        ]
    }


@dataclass
class LambdaContext:
    function_name: str = "killswitch-kill"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:killswitch-kill"
    aws_request_id: str = "bench"


def instance_states(c: Clients, ids: list[str]) -> Counter[str]:
    states: Counter[str] = Counter()
    wanted = set(ids)
    for page in c("ec2", REGION).get_paginator("describe_instances").paginate():
        for res in page["Reservations"]:
            for i in res["Instances"]:
                if i["InstanceId"] in wanted:
                    states[i["State"]["Name"]] += 1
    return states


# -- one measurement --------------------------------------------------------------------------------------------
@dataclass
class Measured:
    n: int
    path: str = "lambda"  # "lambda" (handler, DynamoDB ledger) | "memory" (KillEngine, in-memory ledger)
    lambda_error: str = ""  # why the Lambda path failed, when it did
    lambda_error_calls: int = 0
    setup_s: float = 0.0
    wall_s: float = 0.0
    in_calls_s: float = 0.0
    peak_mib: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    stopped: int = 0
    status: str = ""
    op_seconds: Counter[str] = field(default_factory=Counter)
    record_bytes: int = 0  # largest ledger item (in-memory path)
    replay_wall_s: float = 0.0
    replay_calls: int = 0
    naive_calls: Counter[str] = field(default_factory=Counter)
    naive_wall_s: float = 0.0
    naive_executed: bool = False

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def count(self, prefix: str) -> int:
        return sum(v for k, v in self.calls.items() if k.startswith(prefix))

    @property
    def ledger(self) -> int:
        return self.count("dynamodb:") + self.count("ledger:")

    @property
    def control(self) -> int:
        """Calls that discover or stop compute (everything but the ledger and the result event)."""
        return self.total - self.ledger - self.count("sns:")

    @property
    def aws_total(self) -> int:
        """Real AWS API calls (the in-memory ledger's operations are not)."""
        return self.total - self.count("ledger:")

    @property
    def naive_total(self) -> int:
        if self.naive_executed:
            return sum(self.naive_calls.values())
        resources = self.n + SERVICES + TASKS
        return resources + math.ceil(resources / TAGGING_PAGE)


def _event(agent: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"source": "killswitch.cli", "action": "kill", "agent": agent, "reason": reason, **extra}


class KillRunner:
    """Runs kills through the Lambda handler (DynamoDB ledger), or (`memory=True`) through `KillEngine` with an
    in-memory ledger. It starts warm: its engine and clients exist (a dry run for another agent created them), as
    in a warm Lambda container, so the figures are the kill's own and not botocore loading service models."""

    def __init__(self, cfg: KillSwitchConfig, kill_topic: str, log: CallLog, *, memory: bool) -> None:
        from killswitch.handlers import kill as kill_handler
        from killswitch.kill.engine import KillEngine
        from killswitch.kill.ledger import InMemoryKillLedger
        from killswitch.kill.publish import SnsPublisher
        from killswitch.kill.wiring import build_engine

        self.kill_topic, self.handler, self.seq = kill_topic, kill_handler, 0
        self.ledger: InMemoryKillLedger | None = None
        kill_handler.reset()
        self.engine: KillEngine | None = None
        if memory:
            self.ledger = InMemoryKillLedger()
            count_ledger(self.ledger.memory, log)
            topic = os.environ["KILLSWITCH_EVENTS_TOPIC_ARN"]
            self.engine = build_engine(cfg, ledger=self.ledger, publisher=SnsPublisher(topic), scp=None)
        self.kill(_event(OTHER, "warm-up", dry_run=True))

    def kill(self, message: dict[str, Any]) -> str:
        self.seq += 1
        event = sns_event(message, self.kill_topic, f"bench-{self.seq}-{time.time_ns()}")
        with quiet_stdout():
            if self.engine is not None:
                (report,) = self.engine.handle_event(event)
                return report.status
            (result,) = self.handler.handler(event, LambdaContext())["results"]
            return str(result["status"])

    def record_bytes(self) -> int:
        """Size of the largest ledger item (the kill record holds the whole plan); DynamoDB's limit is 400 KB."""
        if self.ledger is None:
            return 0
        return max(len(json.dumps(i, default=str).encode()) for i in self.ledger.store.all_items())


def _timed_kill(runner: KillRunner, n: int, log: CallLog, *, trace_memory: bool = False) -> tuple[str, float, float]:
    """(status, wall seconds, peak MiB) of one kill of the agent; its calls land in `log`."""
    if trace_memory:
        tracemalloc.start()
    log.active = True
    t0 = time.perf_counter()
    try:
        status = runner.kill(_event(AGENT, f"bench fan-out N={n}"))
    finally:
        wall = time.perf_counter() - t0
        log.active = False
        peak = 0.0
        if trace_memory:
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    return status, wall, peak


def measure_engine(n: int, *, lambda_path: bool = True) -> Measured:
    """Set up the fleet (timed apart), kill it once (timed, responses recorded), then replay the same responses
    to the same path under tracemalloc for the peak memory. The Lambda path is tried first (if `lambda_path`); if
    it fails, the engine runs again with the in-memory ledger and the failure is reported."""
    from botocore.exceptions import ClientError

    m = Measured(n)
    log = CallLog()
    with offline_aws(), counting(log):
        t0 = time.perf_counter()
        c = Clients()
        ids = build_fleet(c, n)
        cfg = config(n)
        kill_topic = lambda_env(c, cfg)
        m.setup_s = time.perf_counter() - t0
        log.recording = True
        memory = not lambda_path
        if lambda_path:
            try:
                m.status, m.wall_s, _ = _timed_kill(KillRunner(cfg, kill_topic, log, memory=False), n, log)
            except ClientError as exc:  # e.g. the kill record over DynamoDB's 400 KB item limit
                err = exc.response.get("Error", {})
                m.lambda_error = f"{exc.operation_name} {err.get('Code')}: {err.get('Message')}"
                m.lambda_error_calls = log.total
                log.reset()
                memory = True
        m.path = "memory" if memory else "lambda"
        runner = KillRunner(cfg, kill_topic, log, memory=memory) if memory else None
        if runner is not None:
            m.status, m.wall_s, _ = _timed_kill(runner, n, log)
            m.record_bytes = runner.record_bytes()
        m.calls, m.in_calls_s, m.op_seconds = Counter(log.calls), log.seconds, Counter(log.op_seconds)
        states = instance_states(c, ids)
        m.stopped = states.get("stopped", 0) + states.get("stopping", 0)

        # Memory pass: the same kill on the recorded responses (no backend work inside the trace).
        log.recording, log.replaying = False, True
        log.calls.clear()
        replay = KillRunner(cfg, kill_topic, log, memory=memory)
        _, m.replay_wall_s, m.peak_mib = _timed_kill(replay, n, log, trace_memory=True)
        m.replay_calls = log.total
        replay.handler.reset()
    return m


def naive_kill(c: Clients) -> None:
    """A straightforward script: list the agent's resources through the tagging API, one stop call per resource."""
    tagging = c("resourcegroupstaggingapi", REGION)
    arns: list[str] = []
    for page in tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": T.AGENT_NAME, "Values": [AGENT]}],
        ResourceTypeFilters=["ec2:instance", "ecs:service", "ecs:task"],
    ):
        arns.extend(r["ResourceARN"] for r in page["ResourceTagMappingList"])
    ec2, ecs = c("ec2", REGION), c("ecs", REGION)
    for arn in arns:
        kind, _, rest = arn.split(":", 5)[-1].partition("/")
        if kind == "instance":
            ec2.stop_instances(InstanceIds=[rest])
        elif kind == "service":
            cluster, name = rest.split("/", 1)
            ecs.update_service(cluster=cluster, service=name, desiredCount=0)
        elif kind == "task":
            ecs.stop_task(cluster=rest.split("/", 1)[0], task=arn, reason="naive kill")


def measure_naive(m: Measured) -> None:
    """The naive script on a fresh, identical fleet; every instance must end up stopped."""
    log = CallLog()
    with offline_aws(), counting(log):
        c = Clients()
        ids = build_fleet(c, m.n)
        log.active = True
        t0 = time.perf_counter()
        naive_kill(c)
        m.naive_wall_s = time.perf_counter() - t0
        log.active = False
        states = instance_states(c, ids)
    if states.get("stopped", 0) + states.get("stopping", 0) != m.n:
        raise RuntimeError(f"naive kill left instances running: {dict(states)}")
    m.naive_calls, m.naive_executed = Counter(log.calls), True


def minimum_calls(n: int) -> dict[str, int]:
    """The fewest compute calls that find, stop and verify this fleet in one region (reasoning in the notes)."""
    ecs = SERVICES + TASKS
    return {
        "GetResources": math.ceil(ecs / TAGGING_PAGE),
        "DescribeAutoScalingGroups": 1,
        "DescribeInstances": math.ceil(n / DESCRIBE_BATCH),
        "DescribeServices+DescribeTasks+DescribeScalableTargets": 3,
        "StopInstances": math.ceil(n / STOP_BATCH),
        "UpdateService+StopTask+RegisterScalableTarget": ecs + 1,
        "verify: DescribeInstances+DescribeServices": math.ceil(n / DESCRIBE_BATCH) + 1,
    }


def tagging_listed_minimum(n: int) -> int:
    """The minimum of the previous rounds, when instances were listed through the Tagging API (100 per page) and
    then described by id, without verify: ⌈(N+8)/100⌉ + 1 + ⌈N/1000⌉ + 3 + ⌈N/1000⌉ + 9 (74 at N = 5,000)."""
    ecs = SERVICES + TASKS
    return math.ceil((n + ecs) / TAGGING_PAGE) + 1 + 2 * math.ceil(n / DESCRIBE_BATCH) + 3 + ecs + 1


# -- the section ------------------------------------------------------------------------------------------------
def _ops(calls: Counter[str]) -> str:
    return ", ".join(f"{op.split(':', 1)[1]} {k}" for op, k in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0])))


def _excess(m: Measured) -> str:
    """Compute operations where the engine made more calls than the minimum."""
    minimum = minimum_calls(m.n)
    per_op = {
        "GetResources": minimum["GetResources"],
        "DescribeInstances": minimum["DescribeInstances"] + math.ceil(m.n / DESCRIBE_BATCH),  # discover + verify
        "StopInstances": minimum["StopInstances"],
    }
    out = []
    for op, least in per_op.items():
        ours = sum(k for name, k in m.calls.items() if name.endswith(f":{op}"))
        if ours > least:
            out.append(f"{op} {ours} vs {least}")
    rest = m.control - sum(k for name, k in m.calls.items() if name.rsplit(":", 1)[-1] in per_op)
    other_min = sum(minimum.values()) - sum(per_op.values())
    if rest > other_min:
        out.append(f"other compute calls {rest} vs {other_min}")
    return ", ".join(out)


def measure(sizes: tuple[int, ...]) -> list[Measured]:
    out = []
    for n in sizes:
        m = measure_engine(n)
        if n <= NAIVE_MAX:
            measure_naive(m)
        out.append(m)
    return out


def run(quick: bool = False, sizes: tuple[int, ...] | None = None, per_kind: int | None = None) -> Section:
    """`sizes`: the EC2 fleet sizes; `per_kind`: resources of every kind in the mixed-fleet row (default: 20, 3
    with `quick`; 0 leaves the row out, as does giving `sizes` alone)."""
    measured = measure(sizes or (QUICK_SIZES if quick else FULL_SIZES))
    if per_kind is None:
        per_kind = 0 if sizes else (fanout_kinds.QUICK_PER_KIND if quick else fanout_kinds.PER_KIND)
    rows: list[list[str]] = []
    figures: dict[str, float] = {}
    notes: list[str] = []
    for m in measured:
        minimum = sum(minimum_calls(m.n).values())
        naive = m.naive_total
        overhead = m.wall_s - m.in_calls_s
        path = "Lambda handler, DynamoDB ledger" if m.path == "lambda" else "KillEngine, in-memory ledger †"
        rows.append(
            [
                f"{m.n:,}",
                path,
                f"{m.control:,}",
                f"{minimum:,}",
                f"{naive:,}" + ("" if m.naive_executed else " (computed)"),
                f"{naive / m.control:.1f}×",
                f"{m.ledger:,} + {m.count('sns:')}",
                f"{m.wall_s:.2f}",
                f"{m.in_calls_s:.2f}",
                f"{overhead:.2f}",
                f"{m.peak_mib:.1f}",
            ]
        )
        key = f"n{m.n}"
        figures.update(
            {
                f"{key}.compute_calls": m.control,
                f"{key}.ledger_calls": m.ledger,
                f"{key}.event_calls": m.count("sns:"),
                f"{key}.minimum_calls": minimum,
                f"{key}.naive_calls": naive,
                f"{key}.naive_over_ours": naive / m.control,
                f"{key}.wall_s": m.wall_s,
                f"{key}.in_calls_s": m.in_calls_s,
                f"{key}.engine_overhead_s": overhead,
                f"{key}.replay_wall_s": m.replay_wall_s,
                f"{key}.peak_mib": m.peak_mib,
                f"{key}.setup_s": m.setup_s,
                f"{key}.stopped": m.stopped,
                f"{key}.lambda_path_ok": float(m.path == "lambda"),
            }
        )
        if m.naive_executed:
            figures[f"{key}.naive_wall_s"] = m.naive_wall_s
        for op, k in m.calls.items():
            figures[f"{key}.calls.{op}"] = k
        line = f"N={m.n:,} ({m.stopped:,}/{m.n:,} instances stopped, status {m.status}): {_ops(m.calls)}"
        slowest = max(m.op_seconds.items(), key=lambda kv: kv[1], default=None)
        if slowest:
            line += f"; slowest in moto: {slowest[0]} {slowest[1]:.2f} s of {m.in_calls_s:.2f} s"
        line += f"; fleet set-up {m.setup_s:.1f} s (not counted)"
        if m.naive_executed:
            line += f"; naive script {m.naive_wall_s:.2f} s ({_ops(m.naive_calls)})"
        excess = _excess(m)
        line += f"; above the minimum: {excess}" if excess else "; nothing above the minimum"
        notes.append(line + ".")
        if m.lambda_error:
            notes.append(
                f"† N={m.n:,}: the Lambda path FAILED after {m.lambda_error_calls} calls, before acting (nothing "
                f"stopped): {m.lambda_error}. The row is the same engine with the in-memory ledger, on the same fleet."
            )
        elif m.path == "memory":
            notes.append(
                f"† N={m.n:,}: run with the in-memory ledger (its item operations are counted as the DynamoDB calls "
                f"they stand for); the largest ledger item, the kill record with the whole plan, is "
                f"{m.record_bytes / 1024:,.0f} KiB: DynamoDB's item limit is 400 KB, so the Lambda path "
                + ("would fail here too." if m.record_bytes > 400_000 else "would accept it.")
            )
    if per_kind:
        mixed = fanout_kinds.measure_mixed(per_kind)
        total = sum(v for (_, op), v in mixed.calls.items() if not op.startswith(("sns:", "dynamodb:")))
        built = sum(mixed.built.values())
        rows.append(
            [
                f"mixed: {len(mixed.built)} kinds × {per_kind}",
                "KillEngine, in-memory ledger",
                f"{total:,}",
                "-",
                "-",
                "-",
                "-",
                f"{mixed.wall_s:.2f}",
                "-",
                "-",
                "-",
            ]
        )
        figures["mixed.compute_calls"] = total
        figures["mixed.resources"] = built
        figures["mixed.wall_s"] = mixed.wall_s
        for rtype in mixed.built:
            figures[f"mixed.calls.{rtype}"] = mixed.kind_total(rtype)
        notes += fanout_kinds.kind_notes(mixed)
        notes.append(
            "Mixed row: no minimum or naive figure; kinds read per resource (IAM: a tag read and an attached-policies "
            "read per principal; Lambda: one concurrency read per function) are above one call per resource because "
            "their services have no batch read with tags; Auto Scaling groups take two writes each (update, suspend)."
        )
    notes += [
        "Calls are counted by a `before-call`/`after-call` handler on every botocore client created during the "
        "kill (the handler's engine, ledger and publisher build their own sessions; the factory is patched); time in "
        "AWS calls is the sum of before-call→after-call spans (moto's work plus botocore's response parsing), and "
        "engine overhead = wall − that sum (planning, ledger item building, logging, request serialisation).",
        "Each kill runs in a warm container: a dry run for another agent first creates the engine and its clients "
        "(cold start is in the Lambda cold start section). Fleet: N agent instances, 3 ECS services (one with an "
        f"autoscaling target), 5 standalone tasks, N/10 (5 to {NOISE_MAX}) other-agent instances and as many "
        "untagged ones as noise, one region.",
        "Peak memory: tracemalloc peak of a second run of the same kill on the recorded responses (botocore returns "
        "them from `before-call`, no backend): the engine's Python allocations, not moto's; the raw HTTP bodies "
        "a real call receives are not included. tracemalloc is off while timing (it slows Python ~4×).",
        "Minimum (compute calls, one region, find + stop + verify): DescribeInstances filtered on the tag, up to "
        "1,000 per page with state, tags and ASG membership in the page → ⌈N/1000⌉; GetResources for the 8 ECS "
        "resources (100 per page) → 1; 1 DescribeAutoScalingGroups (the tagging API does not list groups); 1 "
        "DescribeServices (≤10/call), 1 DescribeTasks (≤100/call), 1 DescribeScalableTargets (≤50/call); "
        "StopInstances ⌈N/1000⌉ (the API documents no per-call maximum; 1,000 is the engine's batch); ECS has no "
        "batch stop: 1 UpdateService per service, 1 StopTask per task, 1 RegisterScalableTarget per scaled service; "
        "verify after acting: DescribeInstances by id ⌈N/1000⌉ and 1 DescribeServices.",
        "Previous rounds listed instances through the Tagging API (100 per page) and described them by id, and their "
        "minimum was ⌈(N+8)/100⌉ + ⌈N/1000⌉ + ... without verify "
        f"({tagging_listed_minimum(max(m.n for m in measured)):,} at N={max(m.n for m in measured):,}); the engine "
        "now reads instances with a tag-filtered DescribeInstances (one walk, `tag-key=agent-name`, which also finds "
        "the case/whitespace variants of the agent's name that the Tagging API walk used to look for separately), "
        "so the figures are compared with the lower minimum above. Reading `tag-key` pages includes other agents' "
        "instances (N/10 here), the price of finding the name variants.",
        "moto pages DescribeInstances by reservation, not by instance (this fleet launches 500 instances per "
        "RunInstances call), so the tag-filtered walk is one page in moto; on real AWS it takes ⌈(N + other "
        "agents' instances)/1000⌉ pages (6 at N=5,000 with 250 other-agent instances): add that minus one to "
        "our compute calls for a real-AWS figure.",
        "moto pages GetResources at 100 *tags* per page (it applies the TagsPerPage default even when "
        "ResourcesPerPage is given), i.e. ~49 resources with 2 tags: twice the pages of real AWS for kinds listed "
        "through the Tagging API (only the ECS resources here).",
        "Naive: list the agent's resources through the tagging API, then one StopInstances / UpdateService / "
        f"StopTask per resource, executed on a fresh identical fleet for N ≤ {NAIVE_MAX:,}; above that, computed "
        "as N + 8 + ⌈(N+8)/100⌉. naive / ours compares compute calls only.",
        "Ledger + event: DynamoDB calls of the kill ledger (dedupe claim, kill record and state items, the prior "
        "state of every acted resource before acting and the results of each API batch after it, both as "
        "BatchWriteItem of up to 25 items) + the SNS result event. Not in the minimum or the naive script.",
    ]
    big = max(measured, key=lambda m: m.n)
    single_item_writes = 2 * (big.n + SERVICES + TASKS)
    notes.append(
        f"ESTIMATE for real AWS at N={big.n:,}: {big.ledger:,} ledger calls at ~{DYNAMO_WRITE_S * 1000:.0f} ms each "
        f"(in-region DynamoDB) is ~{big.ledger * DYNAMO_WRITE_S:.1f} s of the kill Lambda's 5-minute timeout, next "
        f"to ~{big.control * 0.05:.1f} s for its {big.control} compute calls at ~50 ms. Writing one item per call "
        f"would take ~{single_item_writes:,} calls (~{single_item_writes * DYNAMO_WRITE_S:.0f} s)."
    )
    return Section(
        title="Kill fan-out (moto)",
        headers=[
            "N instances",
            "path",
            "compute API calls (ours)",
            "minimum",
            "naive",
            "naive / ours",
            "ledger + event calls",
            "wall s",
            "in AWS calls s",
            "engine overhead s",
            "peak MiB",
        ],
        rows=rows,
        notes=notes,
        figures=figures,
    )


if __name__ == "__main__":  # pragma: no cover - ad hoc use
    print(run(quick="--quick" in sys.argv).markdown())
