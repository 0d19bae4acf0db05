"""Agent guard SDK: hard spend caps, thrift mode, loop breaking and attribution inside the agent's process.

```python
from killswitch.guard import Guard, Caps, InMemoryLedger
guard = Guard(agent="log-summarizer", caps=Caps(per_run_usd=5.0, per_day_usd=50.0), ledger=InMemoryLedger())
with guard.run(workflow="triage") as run:
    with run.charge(model="anthropic.claude-haiku-4-5", input_tokens=1200, max_output_tokens=800) as call:
        ...  # the LLM call
        call.settle(output_tokens=640)
```
"""

from killswitch.guard.call import Call
from killswitch.guard.caps import Caps, LeasePolicy, Mode
from killswitch.guard.dynamo import DynamoLedger
from killswitch.guard.errors import BudgetExceeded, DuplicateCharge, GuardError, LoopDetected, RunFrozen, UnknownModel
from killswitch.guard.escalation import ApprovalRequest, ApprovalRequired, EscalatePolicy
from killswitch.guard.guard import Guard
from killswitch.guard.instrument import instrument
from killswitch.guard.ledger import CapLimit, CapUsage, Hold, InMemoryLedger, Ledger, sweep
from killswitch.guard.loops import (
    HEADER_AGENT,
    HEADER_CHAIN,
    HEADER_DEPTH,
    HEADER_RUN_ID,
    Lineage,
    LoopLimits,
    signature,
)
from killswitch.guard.metrics import EmfMetrics, InMemoryMetrics, MetricsSink
from killswitch.guard.prices import ModelPrice, PriceTable, default_prices
from killswitch.guard.publisher import InMemoryPublisher, NullPublisher, Publisher, SnsPublisher
from killswitch.guard.records import ChargeRecord, SpendSink, spend_ledger_sink
from killswitch.guard.run import Run
from killswitch.guard.stepdown import ThrottlePolicy

__all__ = [
    "HEADER_AGENT",
    "HEADER_CHAIN",
    "HEADER_DEPTH",
    "HEADER_RUN_ID",
    "ApprovalRequest",
    "ApprovalRequired",
    "BudgetExceeded",
    "Call",
    "CapLimit",
    "CapUsage",
    "Caps",
    "ChargeRecord",
    "DuplicateCharge",
    "DynamoLedger",
    "EmfMetrics",
    "EscalatePolicy",
    "Guard",
    "GuardError",
    "Hold",
    "InMemoryLedger",
    "InMemoryMetrics",
    "InMemoryPublisher",
    "LeasePolicy",
    "Ledger",
    "Lineage",
    "LoopDetected",
    "LoopLimits",
    "MetricsSink",
    "Mode",
    "ModelPrice",
    "NullPublisher",
    "PriceTable",
    "Publisher",
    "Run",
    "RunFrozen",
    "SnsPublisher",
    "SpendSink",
    "ThrottlePolicy",
    "UnknownModel",
    "default_prices",
    "instrument",
    "signature",
    "spend_ledger_sink",
    "sweep",
]
