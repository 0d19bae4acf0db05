"""A run's calls by charge id, bounded: a long-lived run (a service, days of calls) must not keep every call.

Kept: every call still reserved (in flight), and the last `window` calls that finished (settled or released), so a
retry with a recent charge id gets the same `Call` back and charges nothing. A retry of an older charge id makes a
new `Call`: it still charges once wherever the ledger holds the charge (a hold of its own: DynamoDB keeps it for
`HOLD_RETENTION_SECONDS` and replays it, nothing is counted twice); a call on a lease never reached the ledger, so
its charge id is idempotent within the window only.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from killswitch.guard.call import Call

# Finished calls per run kept for idempotent retries by charge id (`Guard(retry_window=...)`). About 1 KB each.
RETRY_WINDOW = 4096


class RecentCalls:
    """Calls by charge id: all reserved ones and the last `window` finished ones. Not locked: the run's lock is
    held around every use. Each operation is O(1)."""

    __slots__ = ("_by_id", "_finished", "window")

    def __init__(self, window: int = RETRY_WINDOW) -> None:
        if window < 0:
            raise ValueError(f"retry_window must be >= 0 (got {window})")
        self.window = window
        self._by_id: dict[str, Call] = {}
        self._finished: deque[str] = deque()  # charge ids in the order their calls finished, oldest first

    def get(self, charge_id: str) -> Call | None:
        return self._by_id.get(charge_id)

    def add(self, call: Call) -> None:
        self._by_id[call.charge_id] = call

    def finished(self, call: Call) -> None:
        """`call` left the reserved state: it is kept until `window` later calls have finished too."""
        finished = self._finished
        finished.append(call.charge_id)
        if len(finished) > self.window:
            oldest = finished.popleft()
            kept = self._by_id.get(oldest)
            # the id may since belong to a newer call (a retry made after it left the window): keep that one while
            # it is reserved
            if kept is not None and kept.state != "reserved":
                del self._by_id[oldest]

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def finished_kept(self) -> int:
        """Finished charge ids remembered (at most `window`)."""
        return len(self._finished)
