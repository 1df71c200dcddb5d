"""An in-process Sentinel endpoint over a fixed fleet view, and raw RESP helpers for its tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import hiredis

from server.auth import Principal, TokenTable
from server.sentinel.feed import SwitchNotice
from server.sentinel.server import SentinelServer
from server.sentinel.view import FleetView, Master, Node


@dataclass
class StaticFeed:
    """What SentinelServer needs from SentinelFeed: a view, listeners, and the failover hold."""

    view: FleetView
    listeners: list = field(default_factory=list)

    async def settled(self, name: str) -> None:
        return None

    async def fresh(self) -> None:
        return None

    def switch(self, notice: SwitchNotice) -> None:
        for listener in list(self.listeners):
            listener(notice)


def fleet(*masters: Master) -> FleetView:
    return FleetView({m.name: m for m in masters}, {})


def master(name: str, app: str, port: int, replica_port: int | None = None) -> Master:
    replicas = (Node("127.0.0.1", replica_port),) if replica_port else ()
    return Master(name, app, Node("127.0.0.1", port), replicas)


@asynccontextmanager
async def endpoint(view: FleetView, tokens: dict[str, Principal] | None = None) -> AsyncIterator[tuple[SentinelServer, StaticFeed]]:
    feed = StaticFeed(view)
    server = SentinelServer(feed, TokenTable(tokens or {}))  # type: ignore[arg-type]
    await server.start("127.0.0.1", 0)
    try:
        yield server, feed
    finally:
        await server.stop()


def pack(*args: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        data = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Raw:
    """A raw RESP connection: send commands, read exactly the replies (parsed by hiredis) or the bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = hiredis.Reader(notEnoughData=False)

    @classmethod
    async def open(cls, port: int) -> Raw:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def call(self, *args: str | bytes, replies: int = 1, timeout: float = 5.0) -> list:
        self.writer.write(pack(*args))
        await self.writer.drain()
        return await self.read(replies, timeout)

    async def read(self, replies: int = 1, timeout: float = 5.0) -> list:
        out: list = []
        while len(out) < replies:
            item = self.parser.gets()
            if item is not False:
                out.append(item)
                continue
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise ConnectionError(f"closed after {len(out)} replies, the last {out[-3:]}")
            self.parser.feed(data)
        return out

    async def raw(self, data: bytes, timeout: float = 5.0) -> bytes:
        """Sends bytes and returns what comes back until the server stops sending for 0.2 s or closes."""
        self.writer.write(data)
        await self.writer.drain()
        got = b""
        while True:
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), 0.2 if got else timeout)
            except TimeoutError:
                return got
            if not chunk:
                return got
            got += chunk

    async def closed(self, timeout: float = 5.0) -> bool:
        """True once the server closes the connection (whatever it sent before), False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
            return True
        except (ConnectionError, OSError):
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self.writer.close()
