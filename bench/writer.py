"""The writer every contender is measured with, and how it knows which server acknowledged each write.

One sequential writer, `SET k:i i` as fast as it can: write i+1 is only sent once write i was
acknowledged, so the gap between two acknowledgements is exactly how long the application was stuck.
A write that fails with an error that proves nothing was applied, or with a connection error, is retried
(the same key and value: SET is idempotent) 1 ms later; only the acknowledgement counts.

Which server acknowledged a write is read from the connection that delivered the reply: the clients
under test are built with `RecordingConnection` / `RecordingSentinelConnection`, which note their
host:port each time they read a reply. The writer is the only user of its client and is sequential, so
the last reply read before `SET` returned is that `SET`'s reply. This is exact for all three clients,
including kvmaint's, whose `_follower.url` can change while a write is in flight.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import SentinelManagedConnection
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bench.procs import credentials_for, endpoint, split

# Errors after which a write is retried. ReadOnlyError proves the write was not applied; a connection
# error or timeout may hide an applied write, which is harmless for SET.
RETRYABLE = (ReadOnlyError, RedisConnectionError, RedisTimeoutError, OSError)
RETRY_SLEEP = 0.001
# No client-library retries with backoff: the writer's own 1 ms retry is the same for every contender.
NO_RETRY = Retry(NoBackoff(), 0)


class ReplyLedger:
    """Where the last reply came from; shared by the recording connection classes."""

    last: ClassVar[str] = ""


class RecordingConnection(Connection):
    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        reply = await super().read_response(*args, **kwargs)
        ReplyLedger.last = endpoint(str(self.host), self.port)
        return reply


class RecordingSentinelConnection(SentinelManagedConnection):
    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        reply = await super().read_response(*args, **kwargs)
        ReplyLedger.last = endpoint(str(self.host), self.port)
        return reply


SetFn = Callable[[str, str], Awaitable[object]]


async def command(client: aioredis.Redis, *args: Any) -> Any:
    """`execute_command`, which redis-py leaves untyped."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


@dataclass
class WriteLog:
    """Write i was acknowledged at times[i] (monotonic) by names[servers[i]]; writes 0..n-1 all were."""

    times: array[float] = field(default_factory=lambda: array("d"))
    servers: array[int] = field(default_factory=lambda: array("B"))
    names: list[str] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)
    failure: str = ""

    def __len__(self) -> int:
        return len(self.times)

    def server_index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            self.names.append(name)
            return len(self.names) - 1

    def first_on(self, server: str, after: float = float("-inf")) -> int | None:
        """Index of the first write acknowledged by `server` at or after `after`."""
        if server not in self.names:
            return None
        target = self.names.index(server)
        for i, (s, t) in enumerate(zip(self.servers, self.times, strict=True)):
            if s == target and t >= after:
                return i
        return None

    def longest_gap(self, start: float = float("-inf"), end: float = float("inf")) -> tuple[float, float]:
        """(longest time between consecutive acknowledgements within [start, end], when that gap began)."""
        best, at = 0.0, start
        times = self.times
        for i in range(1, len(times)):
            if times[i - 1] < start or times[i] > end:
                continue
            gap = times[i] - times[i - 1]
            if gap > best:
                best, at = gap, times[i - 1]
        return best, at

    def rate(self, start: float, end: float) -> float:
        n = sum(1 for t in self.times if start <= t <= end)
        return n / (end - start) if end > start else 0.0


class Writer:
    """Runs `SET k:i i` sequentially until stopped; see the module docstring."""

    def __init__(self, do_set: SetFn, give_up_after: float = 30.0) -> None:
        self.do_set = do_set
        self.give_up_after = give_up_after
        self.log = WriteLog()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        ReplyLedger.last = ""
        self._task = asyncio.create_task(self._run(), name="writer")

    async def stop(self) -> WriteLog:
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, self.give_up_after + 5)
            except TimeoutError:
                self.log.failure = self.log.failure or "the writer did not stop"
        return self.log

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        log = self.log
        index: dict[str, int] = {}
        i = 0
        while not self._stopping:
            key, value = f"k:{i}", str(i)
            failing_since: float | None = None
            while True:
                try:
                    await self.do_set(key, value)
                    break
                except RETRYABLE as exc:
                    now = time.monotonic()
                    log.retries[type(exc).__name__] += 1
                    failing_since = failing_since or now
                    if now - failing_since > self.give_up_after or self._stopping:
                        log.failure = f"write {i} failed for {now - failing_since:.1f} s: {exc!r}"
                        return
                    await asyncio.sleep(RETRY_SLEEP)
                except Exception as exc:
                    log.failure = f"write {i} failed: {exc!r}"
                    return
            now = time.monotonic()
            server = ReplyLedger.last
            if server not in index:
                index[server] = log.server_index(server)
            log.times.append(now)
            log.servers.append(index[server])
            i += 1


async def missing_writes(address: str, count: int, chunk: int = 10_000) -> list[int]:
    """Reads back k:0..k:count-1 from `address` (HOST:PORT, or a URL with credentials) with MGET; the
    indices whose value is not i."""
    if "://" in address:
        client = aioredis.Redis.from_url(address, decode_responses=True, socket_timeout=30)
    else:
        host, port = split(address)
        user, password = credentials_for(address)
        client = aioredis.Redis(
            host=host, port=port, username=user, password=password, decode_responses=True, socket_timeout=30
        )
    missing: list[int] = []
    try:
        for start in range(0, count, chunk):
            stop = min(count, start + chunk)
            values = await client.mget([f"k:{i}" for i in range(start, stop)])
            missing.extend(i for i, v in zip(range(start, stop), values, strict=True) if v != str(i))
    finally:
        await client.aclose()
    return missing


class ReResolvingClient:
    """Plain redis.asyncio clients for two servers, writing to whichever answers ROLE `master`.

    The fair, simple client for Redis's own FAILOVER: on READONLY or a connection error it asks both
    servers ROLE, moves to the master, and lets the writer retry the same SET there.
    """

    def __init__(self, servers: list[str], current: str) -> None:
        self.servers = servers
        self.current = current
        self.clients = {
            s: aioredis.Redis.from_pool(
                aioredis.ConnectionPool(
                    host=split(s)[0],
                    port=split(s)[1],
                    connection_class=RecordingConnection,
                    socket_timeout=10,
                    socket_connect_timeout=1,
                    retry=NO_RETRY,
                )
            )
            for s in servers
        }
        self.probes = {
            s: aioredis.Redis(
                host=split(s)[0],
                port=split(s)[1],
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
                retry=NO_RETRY,
            )
            for s in servers
        }
        self.resolutions = 0

    async def set(self, key: str, value: str) -> object:
        try:
            return await self.clients[self.current].set(key, value)
        except RETRYABLE:
            await self.resolve()
            raise

    async def resolve(self) -> None:
        self.resolutions += 1
        roles = await asyncio.gather(*(self._role(s) for s in self.servers))
        masters = [s for s, r in zip(self.servers, roles, strict=True) if r == "master"]
        others = [s for s in masters if s != self.current]
        if others:
            self.current = others[0]

    async def _role(self, server: str) -> str:
        try:
            answer = await command(self.probes[server], "ROLE")
        except Exception:
            return "down"
        first = answer[0]
        return first.decode() if isinstance(first, bytes) else str(first)

    async def aclose(self) -> None:
        for client in [*self.clients.values(), *self.probes.values()]:
            await client.aclose()
