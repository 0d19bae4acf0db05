"""Guard metrics: a callable sink, with a CloudWatch Embedded Metric Format writer and an in-memory recorder.

The dashboard finds metrics by `Namespace="AgentKillSwitch" MetricName=... agent="<name>"`. Metrics the guard emits:
`GuardDenials` (a charge refused: BudgetExceeded), `GuardKills` (a kill event published), `GuardLoopTrips`,
`GuardSpendUsd` (each settled charge). EMF lines become metrics where the agent's logs reach CloudWatch Logs with
EMF extraction (Lambda; ECS/EC2 with the CloudWatch agent). Sink failures are logged, never raised.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from killswitch.metrics import METRICS_NAMESPACE

MetricsSink = Callable[[str, float, str, Mapping[str, str]], None]  # name, value, unit, dimensions

NAMESPACE = METRICS_NAMESPACE


class EmfMetrics:
    """Writes one EMF JSON document per metric to `stream` (stdout by default)."""

    def __init__(
        self,
        namespace: str = NAMESPACE,
        service: str = "killswitch-guard",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.namespace = namespace
        self.service = service
        self.stream = stream
        self.clock = clock
        self._lock = threading.Lock()

    def __call__(self, name: str, value: float, unit: str, dimensions: Mapping[str, str]) -> None:
        dims = {"service": self.service, **dimensions}
        doc: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(self.clock() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [sorted(dims)],
                        "Metrics": [{"Name": name, "Unit": unit}],
                    }
                ],
            },
            **dims,
            name: value,
        }
        line = json.dumps(doc, separators=(",", ":"))
        stream = self.stream or sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()


class InMemoryMetrics:
    """Records (name, value, unit, dimensions) tuples (tests)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, float, str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def __call__(self, name: str, value: float, unit: str, dimensions: Mapping[str, str]) -> None:
        with self._lock:
            self.records.append((name, value, unit, dict(dimensions)))

    def total(self, name: str) -> float:
        with self._lock:
            return sum(r[1] for r in self.records if r[0] == name)
