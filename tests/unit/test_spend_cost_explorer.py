"""Pure Cost Explorer parsing: response page -> rows, window, pagination loop (with a fake client)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from killswitch.spend.cost_explorer import (
    CostRow,
    agents_request,
    by_day,
    collect,
    fetch_pages,
    parse_page,
    runs_request,
    tag_value,
    window,
)
from tests.aws.spend_support import ce_day, ce_group, ce_page

D1, D2 = date(2026, 11, 1), date(2026, 11, 2)


def test_tag_value() -> None:
    assert tag_value("agent-name$bot", "agent-name") == "bot"
    assert tag_value("agent-name$", "agent-name") is None
    assert tag_value("agent-name$a$b", "agent-name") == "a$b"
    assert tag_value("bot", "agent-name") == "bot"


def test_parse_page_keeps_configured_agents_and_counts_what_it_skips() -> None:
    page = ce_page(
        [
            ce_day(D1, [
                ce_group(["agent-name$bot", "Amazon EC2"], "1.2345678901234"),
                ce_group(["agent-name$", "Amazon EC2"], "9"),
                ce_group(["agent-name$stranger", "AWS Lambda"], "3"),
            ], estimated=True),
            ce_day(D2, []),
        ]
    )  # fmt: skip
    parsed = parse_page(page, "agent-name", keep={"bot"})
    assert parsed.rows == [CostRow(D1, "bot", "Amazon EC2", Decimal("1.2345678901"), estimated=True)]
    assert parsed.days == [D1, D2]
    assert parsed.skipped == {"untagged": 1, "unknown_agent": 1}


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"Keys": ["agent-name$bot"], "Metrics": {}}, "2 group keys"),
        ({"Keys": ["agent-name$bot", "S3"], "Metrics": {}}, "no UnblendedCost"),
        (
            {"Keys": ["agent-name$bot", "S3"], "Metrics": {"UnblendedCost": {"Amount": "1", "Unit": "EUR"}}},
            "EUR",
        ),
    ],
)
def test_parse_page_refuses_unexpected_shapes(group: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_page(ce_page([ce_day(D1, [group])]), "agent-name")


def test_collect_and_by_day_merge_pages() -> None:
    pages = [
        ce_page([ce_day(D1, [ce_group(["agent-run-id$r1", "EC2"], "1")])], next_token="t"),
        ce_page([ce_day(D1, [ce_group(["agent-run-id$r2", "EC2"], "2")]), ce_day(D2, [])]),
    ]
    rows = collect(iter(pages), "agent-run-id")
    assert rows.days == [D1, D2]
    assert {r.tag for r in rows.rows} == {"r1", "r2"}
    assert by_day(rows.rows) == {D1: {"EC2": Decimal(3)}}


def test_window_is_last_complete_days() -> None:
    assert window(date(2026, 11, 4)) == (D1, date(2026, 11, 4))
    assert window(date(2026, 3, 1), 1) == (date(2026, 2, 28), date(2026, 3, 1))
    for bad in (0, 91):
        with pytest.raises(ValueError):
            window(D1, bad)


def test_requests_group_and_filter_as_documented() -> None:
    req = agents_request(D1, D2, ["b", "a"])
    assert req["Granularity"] == "DAILY" and req["Metrics"] == ["UnblendedCost"]
    assert req["GroupBy"] == [{"Type": "TAG", "Key": "agent-name"}, {"Type": "DIMENSION", "Key": "SERVICE"}]
    assert req["Filter"]["Tags"] == {"Key": "agent-name", "Values": ["a", "b"], "MatchOptions": ["EQUALS"]}
    run = runs_request(D1, D2, "a")
    assert run["GroupBy"][0] == {"Type": "TAG", "Key": "agent-run-id"}
    assert run["Filter"]["Tags"]["Values"] == ["a"]


class FakeCE:
    def __init__(self, pages: list[dict[str, Any]]):
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def get_cost_and_usage(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return self.pages[len(self.calls) - 1]


def test_fetch_pages_follows_next_page_token() -> None:
    ce = FakeCE([ce_page([], "p2"), ce_page([], "p3"), ce_page([])])
    assert len(list(fetch_pages(ce, {"Granularity": "DAILY"}))) == 3
    assert [c.get("NextPageToken") for c in ce.calls] == [None, "p2", "p3"]


def test_fetch_pages_stops_a_token_loop() -> None:
    ce = FakeCE([ce_page([], "again")] * 5)
    with pytest.raises(RuntimeError, match="more than 4 pages"):
        list(fetch_pages(ce, {}, max_pages=4))
