"""A typed doorway to redis-py's untyped execute_command, and the errors that mean "I/O failed"."""

from __future__ import annotations

from typing import Any

import redis.asyncio
import redis.exceptions

IO_ERRORS = (redis.exceptions.RedisError, OSError, TimeoutError)


async def rcmd(client: redis.asyncio.Redis, *args: str | int) -> Any:
    """Sends one raw command (CLIENT PAUSE, REPLICAOF, CONFIG REWRITE, SHUTDOWN ...)."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]
