"""`Clients` caches a client per (service, region): pool workers that ask for the same one at once (the hub's STS
client, from every account's AssumeRole) get one client, made once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from killswitch import aws
from killswitch.kill.common import Clients


def test_threads_asking_for_the_same_client_at_once_get_one_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[str, str | None]] = []

    def slow_client(service: str, region: str | None = None, session: Any = None, config: Any = None) -> object:
        made.append((service, region))
        time.sleep(0.01)  # client creation takes milliseconds: long enough for the others to ask meanwhile
        return object()

    monkeypatch.setattr(aws, "client", slow_client)
    clients = Clients(session=object())
    start = threading.Barrier(8)

    def ask(_: int) -> object:
        start.wait()
        return clients("sts", "us-east-1")

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(ask, range(8)))

    assert made == [("sts", "us-east-1")]
    assert len({id(c) for c in got}) == 1
    assert clients("ec2", "us-east-1") is not got[0] and made[-1] == ("ec2", "us-east-1")
