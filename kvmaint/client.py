"""A redis.asyncio client bound to an attachment (app + config var) that follows the primary.

The seed has the app restart to point at the new primary; this client needs no restart. It watches the
config var through the scheduler's WatchConfigVars stream and swaps its connection pool when the URL
changes. Writes caught by a failover are retried on the new primary:

- during the switchover the old primary pauses writes, so a write waits instead of failing;
- once the old primary is demoted, a write gets READONLY (never applied), and the client switches at
  once to the server the demoted primary now replicates from (its ROLE answer), which is the new
  primary, without waiting for the config var; the config var stays the authority and wins when it
  arrives.

Only errors that prove the write was not applied (READONLY), or connection errors, are retried; a
connection error may hide an applied write, so retried commands should be idempotent (SET, not INCR).

    async with await attach("127.0.0.1:50051", "example-app") as r:
        await r.set("k", "v")

`scheduler` may name the replicas of one control plane, `"a:50051,b:50051,c:50051"`: the watch moves
to the next address whenever the stream to one is lost or cannot be opened.

The URL carries the add-on's user and password (the same on every server of the add-on, so a switch
keeps them); a rediss:// URL connects with TLS, verified with the CA given as redis-py takes it:
`attach(..., ssl_ca_certs="ca.pem")`. Logged URLs show the password as ***.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kvmaint.channel import rich_error, split_addresses
from kvmaint.errors import DOMAIN, ErrorReason, KvmaintError
from kvmaint.redact import redact_url
from kvmaint.v1 import fleet_pb2, fleet_pb2_grpc

log = logging.getLogger(__name__)

RETRYABLE = (ReadOnlyError, RedisConnectionError, RedisTimeoutError)
# Refusals that no retry can change: attach() raises them at once instead of waiting out its timeout.
PERMANENT = frozenset(
    {
        ErrorReason.APP_NOT_FOUND,
        ErrorReason.TOKEN_REQUIRED,
        ErrorReason.TOKEN_INVALID,
        ErrorReason.OTHER_APP,
        ErrorReason.INVALID_ARGUMENT,
    }
)


def with_address(url: str, host: str, port: int) -> str:
    """`url` pointed at host:port, keeping its scheme (rediss:// stays TLS), user and password: both
    servers of an add-on carry the same users."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit((parts.scheme or "redis", netloc, parts.path, parts.query, parts.fragment))


class FollowingRedis(aioredis.Redis):
    """A redis.asyncio.Redis whose commands go to the attachment's current primary."""

    _follower: _Follower

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        follower = self._follower
        loop = asyncio.get_running_loop()
        deadline = loop.time() + follower.failover_wait
        while True:
            pool = follower.pool
            try:
                return await self._on(pool, *args, **options)
            except RETRYABLE as err:
                if loop.time() >= deadline or follower.closed:
                    raise
                if isinstance(err, ReadOnlyError):
                    await follower.follow_replica_hint(pool)
                if follower.pool is pool:
                    await follower.wait_for_change(pool, min(0.05, max(0.0, deadline - loop.time())))

    async def _on(self, pool: aioredis.ConnectionPool, *args: Any, **options: Any) -> Any:
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_command(*args)
            return await self.parse_response(conn, args[0], **options)
        except RETRYABLE:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await self._follower.close()


class _Follower:
    def __init__(
        self,
        scheduler: str,
        app: str,
        var: str,
        token: str | None,
        channel_credentials: grpc.ChannelCredentials | None,
        failover_wait: float,
        redis_options: dict[str, Any],
    ) -> None:
        self.scheduler, self.app, self.var, self.token = scheduler, app, var, token
        self.credentials = channel_credentials
        self.failover_wait = failover_wait
        self.redis_options = redis_options
        self.url = ""
        self._pool: aioredis.ConnectionPool | None = None
        self.changed = asyncio.Event()
        self.first = asyncio.Event()
        self.refused = asyncio.Event()
        self.closed = False
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._retired: list[aioredis.ConnectionPool] = []

    @property
    def pool(self) -> aioredis.ConnectionPool:
        if self._pool is None:
            raise KvmaintError(f"no URL for {self.app}/{self.var} yet")
        return self._pool

    def _switch(self, url: str, why: str) -> None:
        if url == self.url:
            return
        log.info("%s/%s now %s (%s)", self.app, self.var, redact_url(url), why)
        old = self._pool
        self.url = url
        self._pool = aioredis.ConnectionPool.from_url(url, **self.redis_options)
        if old is not None:
            self._retired.append(old)
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    async def wait_for_change(self, pool: aioredis.ConnectionPool, timeout: float) -> None:
        if self.pool is not pool:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout)

    async def follow_replica_hint(self, pool: aioredis.ConnectionPool) -> None:
        """A READONLY server was demoted: ask it whom it replicates from now. Best effort: the demoted
        server closes its clients' connections, so reaching it may fail too; the watch stream then says
        where the primary went."""
        try:
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        except RETRYABLE:
            return
        try:
            await conn.send_command("ROLE")
            role = await conn.read_response()
        except RETRYABLE:
            return
        finally:
            await pool.release(conn)
        if isinstance(role, list) and len(role) >= 3 and role[0] in (b"slave", "slave") and self.pool is pool:
            host = role[1].decode() if isinstance(role[1], bytes) else str(role[1])
            self._switch(with_address(self.url, host, int(role[2])), "the demoted primary's ROLE")

    async def start(self, timeout: float) -> None:
        self._task = asyncio.create_task(self._watch(), name=f"watch-{self.app}-{self.var}")
        first = asyncio.ensure_future(self.first.wait())
        refused = asyncio.ensure_future(self.refused.wait())
        try:
            await asyncio.wait({first, refused}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            first.cancel()
            refused.cancel()
        if self.refused.is_set() and isinstance(self.error, KvmaintError):
            await self.close()
            raise self.error
        if not self.first.is_set():
            await self.close()
            raise KvmaintError(
                f"No {self.var} on app {self.app} from the scheduler at {self.scheduler} within {timeout:g} s"
                + (f": {self.error}" if self.error else ".")
            ) from None

    async def _watch(self) -> None:
        backoff = 0.1
        metadata = (("authorization", f"Bearer {self.token}"),) if self.token else ()
        # Several addresses are the scheduler's replicas: a lost or refused stream moves to the next.
        addresses = split_addresses(self.scheduler)
        turn = 0
        while not self.closed:
            address = addresses[turn % len(addresses)]
            channel = (
                grpc.aio.secure_channel(address, self.credentials)
                if self.credentials
                else grpc.aio.insecure_channel(address)
            )
            try:
                stub = fleet_pb2_grpc.FleetServiceStub(channel)
                call = stub.WatchConfigVars(fleet_pb2.WatchConfigVarsRequest(app=self.app), metadata=metadata)
                async for msg in call:
                    backoff = 0.1
                    url = msg.config_vars.get(self.var)
                    if url:
                        self._switch(url, "config var")
                        self.first.set()
                    else:
                        self.error = KvmaintError(f"app {self.app} has no config var {self.var}")
            except grpc.aio.AioRpcError as err:
                rich = rich_error(err.code(), err.details() or "", err.trailing_metadata())
                self.error = rich if rich.domain == DOMAIN else err
                if rich.reason in PERMANENT and not self.first.is_set():
                    self.refused.set()  # retrying cannot help: attach() raises this error at once
                    return
                turn += 1
            finally:
                await channel.close()
            if self.closed:
                return
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, 5.0)

    async def close(self) -> None:
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pool in [*self._retired, *([self._pool] if self._pool else [])]:
            await pool.disconnect()


async def attach(
    scheduler: str,
    app: str,
    var: str = "REDIS_URL",
    *,
    token: str | None = None,
    channel_credentials: grpc.ChannelCredentials | None = None,
    failover_wait: float = 30.0,
    connect_timeout: float = 10.0,
    **redis_options: Any,
) -> FollowingRedis:
    """A client for the attachment `var` of `app`; waits until the scheduler has told it the URL."""
    follower = _Follower(scheduler, app, var, token, channel_credentials, failover_wait, redis_options)
    await follower.start(connect_timeout)
    client = FollowingRedis(connection_pool=follower.pool)
    client._follower = follower
    return client
