"""Helpers for the spend tests: the stack's table shape on moto, store factories, Cost Explorer result injection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

import boto3

from killswitch.keys import PK, SK, TTL_ATTR

TABLE = "killswitch-ledger"


def create_table(name: str = TABLE, region: str = "us-east-1") -> str:
    """Same key schema as the stack's table: pk/sk strings, on-demand, TTL on `expires_at`."""
    ddb = boto3.client("dynamodb", region_name=region)
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": PK, "AttributeType": "S"},
            {"AttributeName": SK, "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": SK, "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTR})
    return name


def inject_ce_results(results: Iterable[Mapping[str, Any]], account_id: str | None = None) -> None:
    """Queue GetCostAndUsage responses through moto's API (in-process, inside `mock_aws`): each distinct request
    takes the next queued response, in the order requests are made."""
    import requests

    body: dict[str, Any] = {"results": list(results)}
    if account_id:
        body["account_id"] = account_id
    resp = requests.post("http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results", json=body)
    assert resp.status_code == 201, resp.text


def ce_group(keys: list[str], amount: str) -> dict[str, Any]:
    return {"Keys": keys, "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}


def ce_day(day: date, groups: list[dict[str, Any]], estimated: bool = False) -> dict[str, Any]:
    return {
        "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
        "Total": {},
        "Groups": groups,
        "Estimated": estimated,
    }


def ce_page(days: list[dict[str, Any]], next_token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {
        "GroupDefinitions": [],
        "ResultsByTime": days,
        "DimensionValueAttributes": [],
    }
    if next_token:
        page["NextPageToken"] = next_token
    return page
