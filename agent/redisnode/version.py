"""Which Redis and Valkey servers kvmaint can drive: failovers pause writes with `CLIENT PAUSE WRITE`
(Redis 6.2+; every Valkey release has it), which keeps reads going while the standby catches the last
writes. The agent checks the binary it starts servers with and every server it adopts, and refuses
with one sentence instead of failing in the middle of a failover."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from agent.redisnode.acl import NO_AUTH, Access
from kvmaint.errors import ErrorReason, FailedPrecondition

MINIMUM = {"Redis": (6, 2, 0), "Valkey": (7, 2, 0)}
REQUIREMENT = (
    "kvmaint needs Redis 6.2 or later, or Valkey 7.2 or later (for CLIENT PAUSE WRITE during failovers)"
)
_VERSION_OUTPUT = re.compile(r"^(Redis|Valkey|KeyDB)\s+server\s+v=(\d+)\.(\d+)\.(\d+)", re.IGNORECASE)
_NUMBER = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class ServerVersion:
    product: str
    number: tuple[int, int, int]

    def __str__(self) -> str:
        return f"{self.product} {'.'.join(map(str, self.number))}"

    @property
    def supported(self) -> bool:
        minimum = MINIMUM.get(self.product)
        return minimum is not None and self.number >= minimum


def parse_version_output(text: str) -> ServerVersion | None:
    """`redis-server --version`: "Redis server v=7.0.15 sha=..." or "Valkey server v=8.1.8 ..."."""
    m = _VERSION_OUTPUT.match(text.strip())
    if m is None:
        return None
    product = {"redis": "Redis", "valkey": "Valkey"}.get(m.group(1).lower(), m.group(1))
    return ServerVersion(product, (int(m.group(2)), int(m.group(3)), int(m.group(4))))


def parse_info(info: Mapping[str, Any]) -> ServerVersion | None:
    """INFO server: Valkey reports `valkey_version` (and a compatible `redis_version`)."""
    for key, product in (("valkey_version", "Valkey"), ("redis_version", "Redis")):
        m = _NUMBER.match(str(info.get(key, "")))
        if m:
            return ServerVersion(product, (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)))
    return None


def require_supported(version: ServerVersion | None, what: str) -> ServerVersion:
    """`version` if kvmaint can drive it, else FailedPrecondition naming `what` and the requirement."""
    if version is None:
        raise FailedPrecondition(
            f"Cannot tell which version {what} is; {REQUIREMENT}.",
            reason=ErrorReason.SERVER_VERSION_UNSUPPORTED,
        )
    if not version.supported:
        raise FailedPrecondition(
            f"{what} is {version}; {REQUIREMENT}. Upgrade it, or point the agent at a newer "
            "server (--redis-server PATH).",
            reason=ErrorReason.SERVER_VERSION_UNSUPPORTED,
            metadata={"version": str(version)},
        )
    return version


async def running_version(host: str, port: int, access: Access = NO_AUTH) -> ServerVersion | None:
    """What a running server says in INFO server, over RESP2 (which every version speaks, where the
    RESP3 HELLO that redis-py sends by default fails before 6.0); None when it does not answer. No
    retries: redis-py's default backs off about 5 s on a dead port, and after a host reboot every managed
    server is down until the keeper starts it."""
    client = redis.asyncio.Redis(
        host=host,
        port=port,
        protocol=2,
        socket_timeout=3,
        socket_connect_timeout=3,
        retry=Retry(NoBackoff(), 0),
        **access.client_kwargs(),
    )
    try:
        return parse_info(await client.info("server"))
    except (redis.RedisError, OSError):
        return None
    finally:
        await client.aclose()


async def binary_version(path: str) -> ServerVersion | None:
    """What `path --version` says, or None when it cannot be run or read."""
    try:
        proc = await asyncio.create_subprocess_exec(
            path, "--version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 10)  # real time: a subprocess's I/O
    except (OSError, TimeoutError):
        return None
    return parse_version_output(out.decode(errors="replace"))
