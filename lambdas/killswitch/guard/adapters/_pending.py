"""Charges in flight between a framework's "before the model call" and "after" callbacks, keyed by the framework's
own handle for the call (LangChain's run id, the agent object, ...). Thread-safe."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import TYPE_CHECKING

from killswitch.guard.usage import Usage
from killswitch.guard.usage import settle_from_usage as settle

if TYPE_CHECKING:
    from killswitch.guard.call import Call


class PendingCalls:
    def __init__(self) -> None:
        self._calls: dict[Hashable, Call] = {}
        self._lock = threading.Lock()

    def put(self, key: Hashable, call: Call) -> None:
        with self._lock:
            previous = self._calls.pop(key, None)
            self._calls[key] = call
        if previous is not None:  # the framework never reported the previous call's end: it did not complete
            previous.release()

    def pop(self, key: Hashable) -> Call | None:
        with self._lock:
            return self._calls.pop(key, None)

    def settle(self, key: Hashable, usage: Usage | None) -> None:
        call = self.pop(key)
        if call is not None:
            settle(call, usage)

    def release(self, key: Hashable) -> None:
        call = self.pop(key)
        if call is not None:
            call.release()

    def release_all(self) -> int:
        """Release every charge still in flight (the framework raised before reporting the end). Returns how many."""
        with self._lock:
            calls, self._calls = list(self._calls.values()), {}
        for call in calls:
            call.release()
        return len(calls)

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)
