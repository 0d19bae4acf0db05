"""Former home of the guard (split into guard, run, call, leasing, records, caps and wiring): names kept for
imports written against it. New code imports from `killswitch.guard`."""

from killswitch.guard.call import Call
from killswitch.guard.caps import Caps, LeasePolicy, Mode, Period
from killswitch.guard.guard import Guard
from killswitch.guard.records import ChargeRecord, SpendSink, spend_ledger_sink
from killswitch.guard.run import Run

__all__ = [
    "Call",
    "Caps",
    "ChargeRecord",
    "Guard",
    "LeasePolicy",
    "Mode",
    "Period",
    "Run",
    "SpendSink",
    "spend_ledger_sink",
]
