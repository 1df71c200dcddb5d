"""Leases and scheduler rows (replicas)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.replica.models import SCHEDULER_LEASE, LeaderInfo, SchedulerInfo
from server.storage.sqlite.base import TxBase
from server.storage.sqlite.rows import _req, _ts


class ReplicasTx(TxBase):
    # leases and replicas: "the database's clock" is this host's (one process per file, StateLock).
    async def acquire_lease(
        self, name: str, holder: str, address: str, agent_address: str, duration: timedelta
    ) -> int | None:
        now = datetime.now(UTC)
        row = await self._one("SELECT holder, term, expires_at FROM leases WHERE name = ?", name)
        if row is None:
            term = 1
        else:
            live = _req(row["expires_at"]) > now
            if live and row["holder"] != holder:
                return None
            term = int(row["term"]) if live else int(row["term"]) + 1
        await self._put_lease(name, holder, term, address, agent_address, now + duration)
        return term

    async def take_lease(
        self, name: str, holder: str, address: str, agent_address: str, duration: timedelta
    ) -> int:
        row = await self._one("SELECT term FROM leases WHERE name = ?", name)
        term = 1 if row is None else int(row["term"]) + 1
        await self._put_lease(name, holder, term, address, agent_address, datetime.now(UTC) + duration)
        return term

    async def _put_lease(
        self, name: str, holder: str, term: int, address: str, agent_address: str, expires: datetime
    ) -> None:
        await self._db.execute(
            "INSERT INTO leases (name, holder, term, address, agent_address, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "term = excluded.term, address = excluded.address, agent_address = excluded.agent_address, "
            "expires_at = excluded.expires_at",
            (name, holder, term, address, agent_address, _ts(expires)),
        )

    async def release_lease(self, name: str, holder: str, term: int) -> None:
        now = datetime.now(UTC)
        row = await self._one(
            "SELECT expires_at FROM leases WHERE name = ? AND holder = ? AND term = ?", name, holder, term
        )
        if row is not None and _req(row["expires_at"]) > now:
            await self._db.execute("UPDATE leases SET expires_at = ? WHERE name = ?", (_ts(now), name))

    async def get_leader(self, name: str = SCHEDULER_LEASE) -> LeaderInfo | None:
        row = await self._one("SELECT * FROM leases WHERE name = ?", name)
        if row is None or _req(row["expires_at"]) <= datetime.now(UTC):
            return None
        return LeaderInfo(
            row["holder"], int(row["term"]), row["address"], row["agent_address"], _req(row["expires_at"])
        )

    async def upsert_scheduler(self, id: str, address: str, agent_address: str, version: str) -> None:
        now = _ts(datetime.now(UTC))
        await self._db.execute(
            "INSERT INTO schedulers (id, address, agent_address, started_at, seen_at, version) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET address = excluded.address, "
            "agent_address = excluded.agent_address, seen_at = excluded.seen_at, version = excluded.version",
            (id, address, agent_address, now, now, version),
        )

    async def delete_scheduler(self, id: str) -> None:
        await self._db.execute("DELETE FROM schedulers WHERE id = ?", (id,))

    async def list_schedulers(self) -> list[SchedulerInfo]:
        rows = await self._all("SELECT * FROM schedulers ORDER BY id")
        return [
            SchedulerInfo(
                r["id"],
                r["address"],
                r["agent_address"],
                _req(r["started_at"]),
                _req(r["seen_at"]),
                r["version"],
            )
            for r in rows
        ]
