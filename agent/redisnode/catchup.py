"""Is a standby caught up with its primary? A pure verdict over two snapshots, plus the reads behind it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio

from agent.redisnode.acl import NO_AUTH, Access
from agent.redisnode.rcmd import IO_ERRORS, connect
from agent.redisnode.status import RedisServerStatus, fetch_status


@dataclass(frozen=True)
class CatchUpVerdict:
    ok: bool
    # Bytes the standby has yet to apply (primary's master_repl_offset minus the standby's processed
    # offset); -1 when it cannot be known.
    lag_bytes: int
    link_up: bool
    last_io_seconds_ago: int
    # Why not ok, or a summary when ok: one sentence.
    reason: str


def judge(
    standby: RedisServerStatus,
    primary: RedisServerStatus,
    max_lag_bytes: int,
    max_last_io_seconds: int,
    aof_settled: bool = True,
) -> CatchUpVerdict:
    """The verdict: ok iff the link is up, the lag is within bound, the last I/O recent enough, and the
    standby's AOF settled (see `aof_settled`)."""
    link_up = standby.is_replica and standby.link_up
    last_io = standby.last_io_seconds_ago if standby.is_replica else -1
    lag = -1
    if standby.reachable and primary.reachable:
        lag = max(0, primary.repl_offset - standby.processed_offset)

    def no(reason: str) -> CatchUpVerdict:
        return CatchUpVerdict(False, lag, link_up, last_io, reason)

    if not standby.reachable:
        return no(f"The standby on port {standby.port} is unreachable: {standby.error}.")
    if not primary.reachable:
        return no(f"The primary is unreachable: {primary.error}.")
    if not standby.is_replica:
        return no(f"The server on port {standby.port} is a {standby.role}, not a standby.")
    if not primary.is_primary:
        return no(f"The given primary is a {primary.role}, not a primary.")
    if not link_up:
        return no(f"The standby's replication link is down (for {max(last_io, 0)}s).")
    if standby.replid and primary.replid and standby.replid != primary.replid:
        return no("The standby follows a different replication history than the given primary.")
    if lag > max_lag_bytes:
        return no(f"The standby is {lag} bytes behind, more than the {max_lag_bytes} allowed.")
    if last_io > max_last_io_seconds:
        return no(
            f"The standby last heard from its primary {last_io}s ago, more than {max_last_io_seconds}s."
        )
    if not aof_settled:
        return no(
            "The standby is still rewriting its AOF after a full sync: until that ends its writes are not "
            "on disk, and a crash of it as the new primary would lose them."
        )
    return CatchUpVerdict(True, lag, link_up, last_io, f"The standby is caught up ({lag} bytes behind).")


def aof_settled(persistence: Mapping[str, Any]) -> bool:
    """False while a replica with appendonly waits for the AOF rewrite that follows a full sync (Redis
    keeps no AOF meanwhile: a restart would load the data from before the sync)."""
    if str(persistence.get("aof_enabled", "0")) != "1":
        return True
    busy = ("aof_rewrite_in_progress", "aof_rewrite_scheduled")
    return not any(str(persistence.get(key, "0")) == "1" for key in busy)


async def check_catch_up(
    standby_client: redis.asyncio.Redis,
    standby_port: int,
    primary_host: str,
    primary_port: int,
    max_lag_bytes: int,
    max_last_io_seconds: int,
    timeout: float = 5.0,
    access: Access = NO_AUTH,
) -> CatchUpVerdict:
    """Reads the standby, then the primary, and judges.

    In that order the lag can only be over-stated (the primary may move on between the two reads), never
    under-stated: the safe side for a verdict that gates a failover.
    """
    primary_client = connect(primary_host, primary_port, timeout, access)
    try:
        standby = await fetch_status(standby_client, standby_port, with_server=False)
        primary = await fetch_status(primary_client, primary_port, with_server=False)
        try:
            settled = aof_settled(await standby_client.info("persistence"))
        except IO_ERRORS:
            settled = False
    finally:
        await primary_client.aclose()
    return judge(standby, primary, max_lag_bytes, max_last_io_seconds, settled)
