"""Persistence of MIC's registrations and delivery state.

SQLite by default, PostgreSQL behind the same interface.

`Store.open(url)` creates the database if needed and applies migrations; every method then is
one committed transaction. See `mic.store.store` for behaviour, `mic.store.dialects` for what
differs between databases, `mic.store.migrate` for how the schema evolves.
"""

from mic.store.dialects import default_database_url
from mic.store.errors import (
    AlreadyExistsError,
    ConflictError,
    FencedOutError,
    NotFoundError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
)
from mic.store.records import (
    TOKEN_ROLES,
    ClusterRecord,
    DeliveryRow,
    DeliveryState,
    Fence,
    LeaseRecord,
    LedgerChange,
    LedgerEntry,
    NewDelivery,
    RecordedDeliveries,
    Replayed,
    StoredEvent,
    SubscriptionCounts,
    SubscriptionRecord,
    Superseding,
    TokenRecord,
    TokenRole,
)
from mic.store.store import TOKEN_TOUCH_INTERVAL, Store, hash_token

__all__ = [
    "TOKEN_ROLES",
    "TOKEN_TOUCH_INTERVAL",
    "AlreadyExistsError",
    "ClusterRecord",
    "ConflictError",
    "DeliveryRow",
    "DeliveryState",
    "Fence",
    "FencedOutError",
    "LeaseRecord",
    "LedgerChange",
    "LedgerEntry",
    "NewDelivery",
    "NotFoundError",
    "RecordedDeliveries",
    "Replayed",
    "SchemaError",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "StoredEvent",
    "SubscriptionCounts",
    "SubscriptionRecord",
    "Superseding",
    "TokenRecord",
    "TokenRole",
    "default_database_url",
    "hash_token",
]
