"""SQLite's bulk writes and paged reads for fleet-wide work: many rows per statement (executemany runs in
one call without a statement per row), so a 100k-add-on fleet is written or filed in seconds, not one
round trip per row. Each writes exactly the rows of its one-at-a-time counterpart in this package."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from server.domain.models import Addon, App, HistoryEntry, Maintenance, Status
from server.storage import steps
from server.storage.sqlite.base import Conn, _rows

if TYPE_CHECKING:
    from server.storage.sqlite.store import SqliteTx

ACTIVE = "('pending', 'preparing', 'ready', 'running')"
# `_MAINTAINED` with its index named: without statistics (no ANALYZE) SQLite's planner picks
# maintenances_status for the subquery and scans every completed maintenance per add-on, which made a
# 10k seed take minutes (the cost grows with the fleet). Same result, one index probe per add-on.
MAINTAINED = (
    "UPDATE addons SET maintained_at = COALESCE((SELECT MAX(m.completed_at) FROM maintenances AS m "
    "INDEXED BY maintenances_addon WHERE m.addon = addons.name AND m.status = 'completed'), created_at) "
    "WHERE name = ?"
)
CHUNK = 500  # SQLite's default limit on host parameters is 32766; 500 names stay far below it

# The list drives the join and each row is found by its key: `+status` keeps the planner off the status
# index, through which it would scan every pending maintenance and, for each, the whole list (500 reasons
# against 12,000 pending parsed the JSON six million times and held the writer for minutes).
NOTE_QUEUED_SQL = (
    "UPDATE maintenances SET state = json_set(state, '$.queued', w.why) "
    "FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS why "
    "FROM json_each(?)) AS w "
    "WHERE maintenances.id = w.id AND +maintenances.status = ? "
    "AND COALESCE(json_extract(maintenances.state, '$.queued'), '') <> w.why "
    "RETURNING id, json_extract(state, '$.queued')"  # (the FROM table cannot be returned)
)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def active_addons_sql(n: int) -> str:
    """Which of n add-ons have an active maintenance. The index named: from about 60 names SQLite's
    planner (no statistics) took maintenances_status and read every active maintenance of the fleet per
    chunk, so a fleet-wide filing slowed as it filed (100k: 1,155 s, 35% of it in this query)."""
    return (
        "SELECT DISTINCT addon FROM maintenances INDEXED BY maintenances_addon "
        f"WHERE addon IN ({_marks(n)}) AND status IN {ACTIVE}"
    )


class SqliteBulk:
    """Mixed into `SqliteTx` (which provides `_db`, `_all` and `_load`)."""

    _db: Conn

    async def insert_apps(self, apps: list[App]) -> None:
        from server.storage.sqlite.rows import _ts

        await self._db.executemany(
            "INSERT INTO apps (name, owner_email, maintenance_mode, created_at) VALUES (?, ?, ?, ?)",
            [(a.name, a.owner_email, int(a.maintenance_mode), _ts(a.created_at)) for a in apps],
        )

    async def insert_addons(self, addons: list[Addon]) -> None:
        """The rows of `insert_addon` for each (the add-on, its `maintained_at`, its servers' index)."""
        from server.storage.sqlite.store import SqliteTx

        await self._db.executemany(
            "INSERT INTO addons (name, app, plan, kind, description, attachments, created_at, servers, "
            "window_day, window_minute, prev_window_day, prev_window_minute) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [SqliteTx._addon_params(a) for a in addons],
        )
        await self._db.executemany(MAINTAINED, [(a.name,) for a in addons])
        await self._db.executemany(
            "INSERT INTO addon_servers (host, port, addon) VALUES (?, ?, ?)",
            [(s.host, s.port, a.name) for a in addons for s in a.servers],
        )

    async def insert_maintenances(self, ms: list[Maintenance], filing: str = "") -> None:
        """The rows of `insert_maintenance` for each, marked with the fleet-wide request that filed them."""
        from server.storage.sqlite.rows import _MAINT_COLS, _maint_params, _ts

        n = len(_MAINT_COLS.split(",")) + 1
        await self._db.executemany(
            f"INSERT INTO maintenances ({_MAINT_COLS}, filing) VALUES ({_marks(n)})",
            [(*_maint_params(m), filing) for m in ms],
        )
        await self._db.executemany(
            "INSERT INTO maintenance_history (maintenance_id, time, status, step, message) "
            "VALUES (?, ?, ?, ?, ?)",
            [(m.id, _ts(h.time), h.status.value, h.step, h.message) for m in ms for h in m.history],
        )
        await self._db.executemany(MAINTAINED, [(m.addon,) for m in ms if m.status is Status.COMPLETED])

    async def update_maintenances(self, ms: list[Maintenance]) -> None:
        """`update_maintenance` for each, in one executemany (a planner pass that queues a wave)."""
        from server.storage.sqlite.rows import _MAINT_COLS, _maint_params

        cols = [c.strip() for c in _MAINT_COLS.split(",")][1:]
        sets = ", ".join(f"{c} = ?" for c in cols)
        params = [_maint_params(m) for m in ms]
        await self._db.executemany(
            f"UPDATE maintenances SET {sets} WHERE id = ?", [(*p[1:], p[0]) for p in params]
        )
        await self._db.executemany(MAINTAINED, [(m.addon,) for m in ms if m.status is Status.COMPLETED])

    async def add_histories(self, entries: list[tuple[str, HistoryEntry]]) -> None:
        """`add_history` for each (maintenance id, entry), in order."""
        from server.storage.sqlite.rows import _ts

        await self._db.executemany(
            "INSERT INTO maintenance_history (maintenance_id, time, status, step, message) "
            "VALUES (?, ?, ?, ?, ?)",
            [(mid, _ts(h.time), h.status.value, h.step, h.message) for mid, h in entries],
        )

    async def note_queued(self, reasons: list[tuple[str, str]], at: datetime) -> list[str]:
        from server.storage.sqlite.rows import _ts

        if not reasons:
            return []
        rows = await self._db.execute_fetchall(
            NOTE_QUEUED_SQL,
            (json.dumps(reasons), Status.PENDING.value),
        )
        done = sorted((r[0], r[1]) for r in rows)
        await self._db.executemany(
            "INSERT INTO maintenance_history (maintenance_id, time, status, step, message) "
            "VALUES (?, ?, ?, '', ?)",
            [(mid, _ts(at), Status.PENDING.value, f"Queued: {why}") for mid, why in done],
        )
        return [mid for mid, _ in done]

    async def upsert_agents(self, agents: list[tuple[str, str, str, datetime]]) -> None:
        """`upsert_agent` for each (host id, advertise host, version, seen), in one statement per batch."""
        from server.storage.sqlite.rows import _ts

        await self._db.executemany(
            "INSERT INTO agents (host_id, advertise_host, agent_version, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (host_id) DO UPDATE SET advertise_host = excluded.advertise_host, "
            "agent_version = excluded.agent_version, last_seen = excluded.last_seen",
            [(h, a, v, _ts(seen)) for h, a, v, seen in agents],
        )

    async def count_addons(self, plan: str | None) -> int:
        """How many add-ons (of a plan, or all) there are."""
        rows = await _rows(
            self._db, "SELECT COUNT(*) AS n FROM addons WHERE ? = '' OR plan = ?", (plan or "", plan or "")
        )
        return int(rows[0]["n"])

    async def addons_page(self, plan: str | None, after: str, limit: int) -> list[Addon]:
        """The next `limit` add-ons by name after `after`, of one plan or all."""
        from server.storage.sqlite.rows import _addon

        rows = await _rows(
            self._db,
            "SELECT * FROM addons WHERE name > ? AND (? = '' OR plan = ?) ORDER BY name LIMIT ?",
            (after, plan or "", plan or "", limit),
        )
        return [_addon(r) for r in rows]

    async def addons_named(self, names: list[str]) -> list[Addon]:
        """Those of `names` that exist (any order)."""
        from server.storage.sqlite.rows import _addon

        out: list[Addon] = []
        for k in range(0, len(names), CHUNK):
            chunk = names[k : k + CHUNK]
            rows = await _rows(self._db, f"SELECT * FROM addons WHERE name IN ({_marks(len(chunk))})", chunk)
            out += await steps.convert(rows, _addon)  # 2,000 of them (a wave's notices) were 100 ms
        return out

    async def hosts_of(self, names: list[str]) -> dict[str, tuple[str, ...]]:
        found: dict[str, set[str]] = {}
        for k in range(0, len(names), CHUNK):
            chunk = names[k : k + CHUNK]
            for r in await _rows(
                self._db,
                "SELECT addon, host FROM addon_servers INDEXED BY addon_servers_addon "
                f"WHERE addon IN ({_marks(len(chunk))})",
                chunk,
            ):
                found.setdefault(r["addon"], set()).add(r["host"])
        return {name: tuple(sorted(hosts)) for name, hosts in found.items()}

    async def active_addons(self, names: list[str]) -> set[str]:
        """Those of `names` with a maintenance pending or in progress."""
        out: set[str] = set()
        for k in range(0, len(names), CHUNK):
            chunk = names[k : k + CHUNK]
            rows = await _rows(
                self._db,
                active_addons_sql(len(chunk)),
                chunk,
            )
            out |= {r["addon"] for r in rows}
        return out

    async def filed_maintenances(self, filing: str, app: str, after: str, limit: int) -> list[Maintenance]:
        """What one fleet-wide request filed (of `app`, or all when empty), by id after `after`."""
        rows = await _rows(
            self._db,
            f"SELECT {_cols()} FROM maintenances WHERE filing = ? AND filing != '' AND id > ? "
            "AND (? = '' OR app = ?) ORDER BY id LIMIT ?",
            (filing, after, app, app, limit),
        )
        return await self._tx()._load(rows)

    async def addons_on_hosts(self, hosts: list[str]) -> list[Addon]:
        """The add-ons with a server on one of `hosts` (through addon_servers), by name."""
        from server.storage.sqlite.rows import _addon

        out: dict[str, Addon] = {}
        for k in range(0, len(hosts), CHUNK):
            chunk = hosts[k : k + CHUNK]
            rows = await _rows(
                self._db,
                "SELECT * FROM addons WHERE name IN (SELECT addon FROM addon_servers "
                f"WHERE host IN ({_marks(len(chunk))}))",
                chunk,
            )
            out.update({r["name"]: _addon(r) for r in rows})
        return [out[n] for n in sorted(out)]

    def _tx(self) -> SqliteTx:
        return self  # type: ignore[return-value]


def _cols() -> str:
    from server.storage.sqlite.rows import _MAINT_COLS

    return _MAINT_COLS
