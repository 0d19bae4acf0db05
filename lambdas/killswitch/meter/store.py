"""The meter's own small items in the ledger table (next to spend facts, same store interface):

| item | pk | sk | attributes |
|---|---|---|---|
| last compute tick | `METER#STATE` | `TICK` | `at` (ISO-8601) |
| cached hourly price | `METER#PRICE` | `<region>#<item>` | `usd` (N, absent = no answer), `fetched_at`, TTL |
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from killswitch.keys import METER_PRICE_PK, METER_STATE_PK, METER_TICK_SK, PK, SK, TTL_ATTR
from killswitch.spend.ledger import SpendStore


class LedgerMeterState:
    """When the last compute tick ran (accrual starts there; a tick at or before it is a redelivery)."""

    def __init__(self, store: SpendStore):
        self.store = store

    def last_tick(self) -> datetime | None:
        for item in self.store.query(METER_STATE_PK, METER_TICK_SK):
            if item.get(SK) == METER_TICK_SK:
                return datetime.fromisoformat(str(item["at"]))
        return None

    def set_last_tick(self, at: datetime) -> None:
        self.store.put({PK: METER_STATE_PK, SK: METER_TICK_SK, "at": at.isoformat()})


class LedgerPriceCache:
    """`PriceCache` in the ledger: one item per (region, item), expired by DynamoDB TTL a day after it is written."""

    def __init__(self, store: SpendStore):
        self.store = store

    def get(self, key: str) -> tuple[Decimal | None, datetime] | None:
        for item in self.store.query(METER_PRICE_PK, key):
            if item.get(SK) == key:
                usd = item.get("usd")
                return (None if usd is None else Decimal(str(usd)), datetime.fromisoformat(str(item["fetched_at"])))
        return None

    def put(self, key: str, value: Decimal | None, fetched_at: datetime) -> None:
        item = {
            PK: METER_PRICE_PK,
            SK: key,
            "fetched_at": fetched_at.isoformat(),
            TTL_ATTR: int((fetched_at + timedelta(days=2)).timestamp()),
        }
        if value is not None:
            item["usd"] = value
        self.store.put(item)
