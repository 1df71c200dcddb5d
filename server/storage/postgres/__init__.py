"""PostgreSQL storage through asyncpg's pool: versioned migrations, one transaction per change.

The same contract as `server/storage/sqlite/` (tests/storage/test_contract.py runs both): every
`transaction()` first takes one transaction-scoped advisory lock, so read-write transactions are
serialised as SQLite's `BEGIN IMMEDIATE` serialises them (the services' read-check-write steps rely on
it), across processes too. Event sequence numbers come from a one-row counter updated under that
transaction, so they are gapless (a rolled-back transaction gives its number back) and commit in order.

One module per concern: schema.py (migrations), rows.py (row mapping), base.py, fleet.py,
maintenances.py, notify.py, campaigns.py, events.py, replicas.py (the parts of a transaction), store.py
(PostgresStore, PostgresTx).
"""

from __future__ import annotations

from server.storage.postgres.rows import is_postgres_url
from server.storage.postgres.schema import MIGRATE_LOCK, MIGRATIONS
from server.storage.postgres.store import (
    READERS,
    SESSION_SETTINGS,
    WRITE_LOCK,
    PostgresStore,
    PostgresTx,
    redacted,
)

__all__ = [
    "MIGRATE_LOCK",
    "MIGRATIONS",
    "READERS",
    "SESSION_SETTINGS",
    "WRITE_LOCK",
    "PostgresStore",
    "PostgresTx",
    "is_postgres_url",
    "redacted",
]
