"""A typed doorway to redis-py's untyped execute_command, and the errors that mean "I/O failed"."""

from __future__ import annotations

from typing import Any

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from agent.redisnode.acl import NO_AUTH, Access

IO_ERRORS = (redis.exceptions.RedisError, OSError, TimeoutError)


async def rcmd(client: redis.asyncio.Redis, *args: str | int) -> Any:
    """Sends one raw command (CLIENT PAUSE, REPLICAOF, CONFIG REWRITE, SHUTDOWN ...)."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


def connect(host: str, port: int, timeout: float, access: Access = NO_AUTH) -> redis.asyncio.Redis:
    """A client that fails fast and never retries on its own: the agent decides what is safe to repeat
    (redis-py would otherwise resend REPLICAOF after a lost reply, and back off seconds on a dead port).
    `access` is the agent's user and TLS (the same on every server of an add-on, so also for its peer)."""
    return redis.asyncio.Redis(
        host=host,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        **access.client_kwargs(),
    )


def never_delivered(exc: BaseException) -> bool:
    """The command cannot have run: the connection was refused (no server listening), so nothing was
    sent. Any other I/O error may hide a command the server executed."""
    return isinstance(exc, redis.exceptions.ConnectionError) and isinstance(
        exc.__context__ or exc.__cause__, ConnectionRefusedError
    )
