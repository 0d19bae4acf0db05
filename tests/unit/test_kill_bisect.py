"""The bisecting batch call (pure: a fake call that fails whenever the batch holds a bad id, like StopInstances)."""

from __future__ import annotations

import math

from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from killswitch.kill.act import BisectStats, bisect_call


def fake(bad: dict[str, str], calls: list[list[str]]):  # type: ignore[no-untyped-def]
    def call(ids: list[str]) -> None:
        calls.append(ids)
        for i in ids:
            if i in bad:
                raise ClientError({"Error": {"Code": bad[i], "Message": i}}, "StopInstances")

    return call


def test_no_failure_is_one_call() -> None:
    calls: list[list[str]] = []
    ids = [f"i-{n}" for n in range(1000)]
    assert set(bisect_call(ids, fake({}, calls)).values()) == {None}
    assert calls == [ids]


def test_one_bad_instance_in_eight_costs_seven_calls() -> None:
    calls: list[list[str]] = []
    ids = [f"i-{n}" for n in range(8)]
    out = bisect_call(ids, fake({"i-5": "OperationNotPermitted"}, calls), stats := BisectStats())
    assert out["i-5"] == (
        "OperationNotPermitted",
        "An error occurred (OperationNotPermitted) when calling the StopInstances operation: i-5",
    )
    assert [k for k, v in out.items() if v is None] == [i for i in ids if i != "i-5"]
    # [8] → [4] ok + [4] → [2] ok + [2] → [1] ok + [1] bad = 1 + 2 + 2 + 2
    assert len(calls) == 7 == stats.calls


def test_throttling_is_not_split() -> None:
    calls: list[list[str]] = []
    ids = [f"i-{n}" for n in range(16)]
    out = bisect_call(ids, fake(dict.fromkeys(ids, "RequestLimitExceeded"), calls))
    assert len(calls) == 1 and {v[0] for v in out.values() if v} == {"RequestLimitExceeded"}


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 64).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1), max_size=n))))
def test_every_id_gets_a_result_and_calls_are_bounded(case: tuple[int, set[int]]) -> None:
    n, bad_idx = case
    ids = [f"i-{k:03d}" for k in range(n)]
    bad = {ids[k]: "IncorrectInstanceState" for k in bad_idx}
    calls: list[list[str]] = []
    out = bisect_call(ids, fake(bad, calls))
    assert set(out) == set(ids)
    assert {i for i, v in out.items() if v is not None} == set(bad)
    assert all(v[0] == "IncorrectInstanceState" for v in out.values() if v)
    depth = math.ceil(math.log2(n)) if n > 1 else 0
    assert len(calls) <= 1 + 2 * len(bad) * max(depth, 1)
    succeeded = [i for c in calls if not any(b in bad for b in c) for i in c]
    assert sorted(succeeded) == sorted(set(ids) - set(bad))  # every good id in exactly one successful batch
