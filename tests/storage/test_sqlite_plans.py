"""SQLite has no statistics here (no ANALYZE): the queries whose plan decides whether a fleet-wide pass
grows with the fleet name their index, and this checks the planner follows it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from server.storage.sqlite.bulk import CHUNK, NOTE_QUEUED_SQL, active_addons_sql
from server.storage.sqlite.store import SqliteStore


@pytest.mark.parametrize("names", [1, 60, CHUNK])
async def test_active_addons_probes_the_addon_index_whatever_the_chunk(tmp_path: Path, names: int) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        plan = db.execute(
            "EXPLAIN QUERY PLAN " + active_addons_sql(names), [f"redis-{i}" for i in range(names)]
        ).fetchall()
    details = " | ".join(row[3] for row in plan)
    assert "USING INDEX maintenances_addon (addon=?)" in details and "maintenances_status" not in details


async def test_note_queued_walks_its_list_and_finds_each_maintenance_by_key(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    await store.close()
    reasons = json.dumps([[f"m-{i}", "held back"] for i in range(CHUNK)])
    with sqlite3.connect(tmp_path / "state.db") as db:
        plan = db.execute("EXPLAIN QUERY PLAN " + NOTE_QUEUED_SQL, (reasons, "pending")).fetchall()
    details = [row[3] for row in plan]
    # json_each is the outer loop, maintenances the inner one probed by its primary key (its index is
    # sqlite_autoindex_maintenances_1); never a scan of the pending ones with the list inside.
    assert details[0].startswith("SCAN json_each") and "maintenances_status" not in " | ".join(details)
    assert any("SEARCH maintenances USING INDEX sqlite_autoindex_maintenances_1 (id=?)" in d for d in details)


async def test_an_sqlite_older_than_the_floor_is_refused_at_open_naming_both_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(RuntimeError, match=r"needs SQLite 3\.35\.0 or later .* has 3\.34\.1"):
        await SqliteStore(tmp_path / "state.db").open()
    assert not (tmp_path / "state.db").exists()  # refused before anything was written
