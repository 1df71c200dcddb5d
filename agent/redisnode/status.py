"""What one redis-server says about itself, as an immutable snapshot parsed from INFO.

Parsing is pure (a dict in, a dataclass out) so the rules are tested without a server; `fetch_status`
is the only part that talks to Redis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio
import redis.exceptions

PRIMARY = "master"
REPLICA = "slave"


@dataclass(frozen=True)
class ReplicaInfo:
    """One replica as its primary lists it (INFO replication, slaveN)."""

    ip: str
    port: int
    state: str
    offset: int
    lag_seconds: int


@dataclass(frozen=True)
class RedisServerStatus:
    port: int
    reachable: bool
    role: str = ""
    run_id: str = ""
    redis_version: str = ""
    # master_repl_offset: what the server has in its own replication stream.
    repl_offset: int = 0
    # The offset a replica has applied (slave_repl_offset); equals repl_offset on a primary.
    processed_offset: int = 0
    replid: str = ""
    primary_host: str = ""
    primary_port: int = 0
    link_up: bool = False
    # Seconds since the last I/O with the primary; when the link is down, how long it has been down.
    last_io_seconds_ago: int = -1
    # A replica loading the primary's RDB (master_sync_in_progress): replicating, its link not up yet.
    syncing: bool = False
    replicas: tuple[ReplicaInfo, ...] = ()
    managed: bool = False
    error: str = ""
    # INFO server's valkey_version (a Valkey server also reports a redis_version it is compatible
    # with), else its redis_version; and the agent's name of the build it was started from.
    version: str = ""
    build: str = ""
    # The agent reaches it over TLS (a managed server then listens with TLS only).
    tls: bool = False

    @property
    def is_primary(self) -> bool:
        return self.reachable and self.role == PRIMARY

    @property
    def is_replica(self) -> bool:
        return self.reachable and self.role == REPLICA

    def follows(self, host: str, port: int) -> bool:
        """True when this server was told to replicate from exactly host:port."""
        return self.is_replica and self.primary_port == port and self.primary_host == host

    def with_managed(self, managed: bool) -> RedisServerStatus:
        return replace(self, managed=managed)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _replicas(replication: Mapping[str, Any]) -> tuple[ReplicaInfo, ...]:
    found: list[ReplicaInfo] = []
    for index in range(_int(replication.get("connected_slaves"))):
        entry = replication.get(f"slave{index}")
        if not isinstance(entry, Mapping):
            continue
        found.append(
            ReplicaInfo(
                ip=str(entry.get("ip", "")),
                port=_int(entry.get("port")),
                state=str(entry.get("state", "")),
                offset=_int(entry.get("offset")),
                lag_seconds=_int(entry.get("lag")),
            )
        )
    return tuple(found)


def parse_status(
    port: int, replication: Mapping[str, Any], server: Mapping[str, Any] | None = None, managed: bool = False
) -> RedisServerStatus:
    """Builds a snapshot from parsed INFO sections (as redis-py returns them)."""
    server = server or {}
    role = str(replication.get("role", ""))
    repl_offset = _int(replication.get("master_repl_offset"))
    replica: dict[str, Any] = {}
    if role == REPLICA:
        link_up = replication.get("master_link_status") == "up"
        since = "master_last_io_seconds_ago" if link_up else "master_link_down_since_seconds"
        replica = {
            "processed_offset": _int(replication.get("slave_repl_offset"), repl_offset),
            "primary_host": str(replication.get("master_host", "")),
            "primary_port": _int(replication.get("master_port")),
            "link_up": link_up,
            "last_io_seconds_ago": _int(replication.get(since), -1),
            "syncing": _int(replication.get("master_sync_in_progress")) == 1,
        }
    return RedisServerStatus(
        port=port,
        reachable=True,
        role=role,
        run_id=str(server.get("run_id", "")),
        redis_version=str(server.get("redis_version", "")),
        version=str(server.get("valkey_version") or server.get("redis_version") or ""),
        repl_offset=repl_offset,
        processed_offset=replica.pop("processed_offset", repl_offset),
        replid=str(replication.get("master_replid", "")),
        replicas=_replicas(replication),
        managed=managed,
        **replica,
    )


def unreachable(port: int, error: str, managed: bool = False) -> RedisServerStatus:
    return RedisServerStatus(port=port, reachable=False, managed=managed, error=error)


def describe_error(exc: BaseException) -> str:
    """A short sentence for an I/O failure (redis-py messages can be empty or very long)."""
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


async def fetch_status(
    client: redis.asyncio.Redis, port: int, managed: bool = False, with_server: bool = True
) -> RedisServerStatus:
    """Reads INFO replication (and server) and never raises: an unreachable server is a status too."""
    try:
        if with_server:
            info = await client.info("replication", "server")
            return parse_status(port, info, info, managed)
        return parse_status(port, await client.info("replication"), None, managed)
    except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
        return unreachable(port, describe_error(exc), managed)
