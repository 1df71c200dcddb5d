"""Command results kept durably by command id, so a command runs once and its answer survives a restart.

SQLite with synchronous=FULL: a result is on disk (fsync'd) before it is sent. The stored value is the
serialized CommandResult, resent verbatim when the scheduler asks again or a stream broke before it
got there.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    command_id TEXT PRIMARY KEY,
    result BLOB NOT NULL,
    stored_at TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS started (
    command_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leader_term (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    term INTEGER NOT NULL
);
"""


class ResultStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._mutex = threading.Lock()

    def close(self) -> None:
        with self._mutex:
            self._db.close()

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._mutex:
            return list(self._db.execute(sql, params).fetchall())

    def _many(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        with self._mutex:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # The async wrappers keep fsync off the event loop.

    async def put(self, command_id: str, result: bytes, stored_at: str) -> bytes:
        """Stores the first result for an id and returns the one kept (an earlier one wins)."""

        def work() -> bytes:
            self._run(
                "INSERT OR IGNORE INTO results (command_id, result, stored_at) VALUES (?, ?, ?)",
                (command_id, result, stored_at),
            )
            rows = self._run("SELECT result FROM results WHERE command_id = ?", (command_id,))
            return bytes(rows[0][0])

        return await asyncio.to_thread(work)

    async def get(self, command_id: str) -> bytes | None:
        rows = await asyncio.to_thread(
            self._run, "SELECT result FROM results WHERE command_id = ?", (command_id,)
        )
        return bytes(rows[0][0]) if rows else None

    async def undelivered(self) -> list[tuple[str, bytes]]:
        rows = await asyncio.to_thread(
            self._run,
            "SELECT command_id, result FROM results WHERE delivered = 0 ORDER BY stored_at, command_id",
        )
        return [(str(r[0]), bytes(r[1])) for r in rows]

    async def set_delivered(self, command_ids: list[str], delivered: bool) -> None:
        if command_ids:
            await asyncio.to_thread(
                self._many,
                "UPDATE results SET delivered = ? WHERE command_id = ?",
                [(int(delivered), cid) for cid in command_ids],
            )

    def highest_term(self) -> int:
        """The highest scheduler leader term seen (agent/fence.py); 0: none yet."""
        rows = self._run("SELECT term FROM leader_term WHERE one = 1")
        return int(rows[0][0]) if rows else 0

    async def save_term(self, term: int) -> None:
        await asyncio.to_thread(
            self._run,
            "INSERT INTO leader_term (one, term) VALUES (1, ?) "
            "ON CONFLICT (one) DO UPDATE SET term = MAX(term, excluded.term)",
            (term,),
        )

    async def mark_started(self, command_id: str, started_at: str) -> bool:
        """Records that a command began; False when it had begun before (an earlier agent life)."""

        def work() -> bool:
            before = self._run("SELECT 1 FROM started WHERE command_id = ?", (command_id,))
            if not before:
                self._run(
                    "INSERT INTO started (command_id, started_at) VALUES (?, ?)", (command_id, started_at)
                )
            return not before

        return await asyncio.to_thread(work)

    async def prune(self, before: str) -> int:
        """Drops delivered results stored before `before` (ISO UTC); returns how many. A scheduler does
        not resend a command that old, so its result is no longer needed to answer a repeat."""

        def work() -> int:
            with self._mutex:
                cursor = self._db.execute(
                    "DELETE FROM results WHERE delivered = 1 AND stored_at < ?", (before,)
                )
                self._db.execute(
                    "DELETE FROM started WHERE started_at < ? AND command_id NOT IN "
                    "(SELECT command_id FROM results)",
                    (before,),
                )
                return int(cursor.rowcount)

        return await asyncio.to_thread(work)
