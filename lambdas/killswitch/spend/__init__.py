"""Per-agent spend: the ledger (three sources kept apart), Cost Explorer ingestion, unit economics and the report."""

from killswitch.spend.ledger import (
    SOURCES,
    DynamoSpendStore,
    InMemorySpendStore,
    SpendEntry,
    SpendLedger,
    SpendStore,
    to_money,
)

__all__ = [
    "SOURCES",
    "DynamoSpendStore",
    "InMemorySpendStore",
    "SpendEntry",
    "SpendLedger",
    "SpendStore",
    "to_money",
]
