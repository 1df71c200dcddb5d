"""Leases and scheduler rows (replicas)."""

from __future__ import annotations

from datetime import timedelta

from kvmaint.clock import utc
from server.replica.models import SCHEDULER_LEASE, LeaderInfo, SchedulerInfo
from server.storage.postgres.base import TxBase


class ReplicasTx(TxBase):
    # leases and replicas: expiry is judged on the database's clock (clock_timestamp(), not the
    # transaction's start time now(): the write lock may have been waited for), so replicas' clocks
    # never matter.
    async def acquire_lease(
        self, name: str, holder: str, address: str, agent_address: str, duration: timedelta
    ) -> int | None:
        term = await self._db.fetchval(
            "INSERT INTO leases AS l (name, holder, term, address, agent_address, expires_at) "
            "VALUES ($1, $2, 1, $3, $4, clock_timestamp() + $5::interval) "
            "ON CONFLICT (name) DO UPDATE SET "
            "term = CASE WHEN l.holder = excluded.holder AND l.expires_at > clock_timestamp() "
            "THEN l.term ELSE l.term + 1 END, holder = excluded.holder, address = excluded.address, "
            "agent_address = excluded.agent_address, expires_at = excluded.expires_at "
            "WHERE l.holder = excluded.holder OR l.expires_at <= clock_timestamp() RETURNING term",
            name,
            holder,
            address,
            agent_address,
            duration,
        )
        return None if term is None else int(term)

    async def take_lease(
        self, name: str, holder: str, address: str, agent_address: str, duration: timedelta
    ) -> int:
        term = await self._db.fetchval(
            "INSERT INTO leases AS l (name, holder, term, address, agent_address, expires_at) "
            "VALUES ($1, $2, 1, $3, $4, clock_timestamp() + $5::interval) "
            "ON CONFLICT (name) DO UPDATE SET term = l.term + 1, holder = excluded.holder, "
            "address = excluded.address, agent_address = excluded.agent_address, "
            "expires_at = excluded.expires_at RETURNING term",
            name,
            holder,
            address,
            agent_address,
            duration,
        )
        return int(term)

    async def release_lease(self, name: str, holder: str, term: int) -> None:
        await self._exec(
            "UPDATE leases SET expires_at = clock_timestamp() WHERE name = $1 AND holder = $2 AND term = $3 "
            "AND expires_at > clock_timestamp()",
            name,
            holder,
            term,
        )

    async def get_leader(self, name: str = SCHEDULER_LEASE) -> LeaderInfo | None:
        row = await self._one("SELECT * FROM leases WHERE name = $1 AND expires_at > clock_timestamp()", name)
        if row is None:
            return None
        return LeaderInfo(
            row["holder"], int(row["term"]), row["address"], row["agent_address"], utc(row["expires_at"])
        )

    async def upsert_scheduler(self, id: str, address: str, agent_address: str, version: str) -> None:
        await self._exec(
            "INSERT INTO schedulers (id, address, agent_address, started_at, seen_at, version) "
            "VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp(), $4) ON CONFLICT (id) DO UPDATE SET "
            "address = excluded.address, agent_address = excluded.agent_address, "
            "seen_at = excluded.seen_at, version = excluded.version",
            id,
            address,
            agent_address,
            version,
        )

    async def delete_scheduler(self, id: str) -> None:
        await self._exec("DELETE FROM schedulers WHERE id = $1", id)

    async def list_schedulers(self) -> list[SchedulerInfo]:
        rows = await self._all("SELECT * FROM schedulers ORDER BY id")
        return [
            SchedulerInfo(
                r["id"],
                r["address"],
                r["agent_address"],
                utc(r["started_at"]),
                utc(r["seen_at"]),
                r["version"],
            )
            for r in rows
        ]
