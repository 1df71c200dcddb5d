"""SQLite storage: WAL, versioned migrations, one transaction per change. The standard library's
sqlite3, its statements run in the event loop and only COMMIT (an fsync) in a thread (base.Inline).

One module per concern: schema.py (migrations), rows.py (row mapping), base.py, fleet.py,
maintenances.py, notify.py, campaigns.py, events.py, replicas.py (the parts of a transaction), store.py
(SqliteStore, SqliteTx).
"""

from __future__ import annotations

from server.storage.sqlite.schema import MIGRATIONS
from server.storage.sqlite.store import READERS, SqliteStore, SqliteTx

__all__ = [
    "MIGRATIONS",
    "READERS",
    "SqliteStore",
    "SqliteTx",
]
