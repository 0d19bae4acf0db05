"""Agent guard SDK: hard spend caps, thrift mode, loop breaking and attribution inside the agent's process.

```python
from killswitch.guard import Guard, Caps, InMemoryLedger
guard = Guard(agent="log-summarizer", caps=Caps(per_run_usd=5.0, per_day_usd=50.0), ledger=InMemoryLedger())
with guard.run(workflow="triage") as run:
    with run.charge(model="anthropic.claude-haiku-4-5", input_tokens=1200, max_output_tokens=800) as call:
        ...  # the LLM call
        call.settle(output_tokens=640)
```

The names load on first use (module `__getattr__`): importing one submodule (the meter Lambda's
`killswitch.guard.prices`, the spend recorder's `killswitch.guard.dynamo`) no longer imports the whole SDK
(`guard`, `run`, the event model and pydantic) on the Lambda cold start.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

# `instrument` is both a submodule and the function exported here: importing the submodule (as `run` does) binds
# the module to the package attribute, which a lazy lookup would then never replace. It is stdlib-only: load it now.
from killswitch.guard.instrument import instrument

if TYPE_CHECKING:  # the same names for type checkers and IDEs; at run time `__getattr__` loads them
    from killswitch.guard.call import Call
    from killswitch.guard.caps import Caps, LeasePolicy, Mode
    from killswitch.guard.dynamo import DynamoLedger
    from killswitch.guard.errors import (
        BudgetExceeded,
        DuplicateCharge,
        GuardError,
        LoopDetected,
        RunFrozen,
        UnknownModel,
    )
    from killswitch.guard.escalation import ApprovalRequest, ApprovalRequired, EscalatePolicy
    from killswitch.guard.guard import Guard
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

# submodule -> the public names it defines (loaded by `__getattr__`)
_EXPORTS: dict[str, tuple[str, ...]] = {
    "call": ("Call",),
    "caps": ("Caps", "LeasePolicy", "Mode"),
    "dynamo": ("DynamoLedger",),
    "errors": ("BudgetExceeded", "DuplicateCharge", "GuardError", "LoopDetected", "RunFrozen", "UnknownModel"),
    "escalation": ("ApprovalRequest", "ApprovalRequired", "EscalatePolicy"),
    "guard": ("Guard",),
    "ledger": ("CapLimit", "CapUsage", "Hold", "InMemoryLedger", "Ledger", "sweep"),
    "loops": ("HEADER_AGENT", "HEADER_CHAIN", "HEADER_DEPTH", "HEADER_RUN_ID", "Lineage", "LoopLimits", "signature"),
    "metrics": ("EmfMetrics", "InMemoryMetrics", "MetricsSink"),
    "prices": ("ModelPrice", "PriceTable", "default_prices"),
    "publisher": ("InMemoryPublisher", "NullPublisher", "Publisher", "SnsPublisher"),
    "records": ("ChargeRecord", "SpendSink", "spend_ledger_sink"),
    "run": ("Run",),
    "stepdown": ("ThrottlePolicy",),
}
_SOURCES = {name: f"{__name__}.{module}" for module, names in _EXPORTS.items() for name in names}

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


if not TYPE_CHECKING:  # hidden from type checkers, which would otherwise accept any name from this package

    def __getattr__(name: str) -> Any:
        """Load a public name from its submodule on first access (then cached in the package namespace)."""
        source = _SOURCES.get(name)
        if source is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(source), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
