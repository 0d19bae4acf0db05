"""Cheap unique ids for charges and leases.

`uuid4()` reads the OS random source on every call, and CPython releases the GIL around that read: next to a client
that runs a background thread (HTTP connection pools, LiteLLM's logging worker) each id can cost a thread switch,
which measured as most of the guard's per-call overhead. An id here is a per-process random prefix (96 bits, drawn
once, and again in a forked child) plus a counter: unique across processes and hosts for all practical purposes,
with no system call per id. Run ids stay uuid4 (one per run, and the `agent-run-id` tag contract says UUID).
"""

from __future__ import annotations

import itertools
import os
import secrets

_prefix = secrets.token_hex(12)
_counter = itertools.count()


def _reseed() -> None:
    global _prefix, _counter
    _prefix = secrets.token_hex(12)
    _counter = itertools.count()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A 36-character id, unique per process (prefix) and per call (counter). `next()` on a count is atomic."""
    return f"{_prefix}-{next(_counter):011x}"
