"""Small admin reads and waits on redis-servers, shared by the contenders (never the measured client)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis

from bench.procs import credentials_for, endpoint, split
from bench.writer import NO_RETRY, command


def admin(address: str, timeout: float = 2.0) -> aioredis.Redis:
    host, port = split(address)
    user, password = credentials_for(address)
    return aioredis.Redis(
        host=host,
        port=port,
        username=user,
        password=password,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=NO_RETRY,
    )


async def role(address: str) -> tuple[str, str]:
    """("master", "") or ("slave", "host:port it follows") or ("down", error)."""
    client = admin(address, 0.5)
    try:
        answer: list[Any] = await command(client, "ROLE")
    except Exception as exc:
        return "down", repr(exc)
    finally:
        await client.aclose()
    if answer[0] == "slave":
        return "slave", endpoint(answer[1], answer[2])
    return str(answer[0]), ""


async def replication(address: str) -> dict[str, Any]:
    client = admin(address)
    try:
        return dict(await client.info("replication"))
    finally:
        await client.aclose()


async def follows(replica: str, primary: str) -> bool:
    """True when `replica` is a connected replica of `primary` (link up)."""
    try:
        info = await replication(replica)
    except Exception:
        return False
    return (
        info.get("role") == "slave"
        and endpoint(str(info.get("master_host")), int(info.get("master_port", 0))) == primary
        and info.get("master_link_status") == "up"
    )


async def in_sync(primary: str, replica: str) -> bool:
    """The replica's link is up and it has applied everything the primary has."""
    if not await follows(replica, primary):
        return False
    p, r = await asyncio.gather(replication(primary), replication(replica))
    return p.get("role") == "master" and int(r.get("slave_repl_offset", -1)) >= int(p["master_repl_offset"])


async def wait_for(what: str, check: Any, timeout: float, interval: float = 0.05) -> None:
    """Polls the async predicate `check` until true; raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check():
                return
        except Exception:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g} s")
        await asyncio.sleep(interval)


async def flush_and_sync(primary: str, replica: str, timeout: float = 60.0) -> None:
    """Empties the data set so that a run's read-back sees only its own writes, then waits for the replica."""
    await wait_for(f"{replica} in sync with {primary}", lambda: in_sync(primary, replica), timeout)
    client = admin(primary, 10)
    try:
        await client.flushall()
    finally:
        await client.aclose()

    async def empty_and_synced() -> bool:
        c = admin(replica)
        try:
            size = int(await c.dbsize())
        finally:
            await c.aclose()
        return size == 0 and await in_sync(primary, replica)

    await wait_for(f"{replica} empty and in sync with {primary}", empty_and_synced, timeout)
