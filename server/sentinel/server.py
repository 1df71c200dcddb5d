"""The Sentinel listener: one asyncio task per connection, requests parsed by hiredis' `Reader`.

A connection that sends something that is not a request (bad RESP, a non-string argument), or a request
larger than `max_request_bytes`, gets one `-ERR Protocol error` and is closed; nothing else is affected.
Inline commands (`PING\\r\\n`, as telnet or `nc` send them) are accepted as Redis accepts them. An idle
connection costs a task, a reader and a few kilobytes of buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import time
from dataclasses import dataclass

import hiredis

from server.auth import TokenTable
from server.sentinel.commands import SWITCH_CHANNEL, Env, Session, execute, messages_for, new_session
from server.sentinel.feed import SentinelFeed, SwitchNotice
from server.sentinel.resp import Error, Reply, encode

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1 << 20
MAX_CLIENTS = 10_000
MAX_INLINE_BYTES = 64 << 10
READ_CHUNK = 64 << 10
# A subscriber that does not read its messages is dropped rather than buffered without bound.
MAX_OUTPUT_BYTES = 8 << 20
DISCOVERY = frozenset({b"get-master-addr-by-name", b"master", b"masters", b"replicas", b"slaves"})


class BadRequest(Exception):
    pass


@dataclass
class _Conn:
    session: Session
    writer: asyncio.StreamWriter

    def send(self, replies: list[Reply]) -> None:
        if replies and not self.writer.is_closing():
            self.writer.write(b"".join(encode(r, self.session.proto) for r in replies))


def _requests(reader: hiredis.Reader) -> list[list[bytes]]:
    """Every complete request buffered in `reader`; raises BadRequest on anything but arrays of strings."""
    out: list[list[bytes]] = []
    while True:
        try:
            item = reader.gets()
        except hiredis.ProtocolError as err:
            raise BadRequest(f"Protocol error: {err}") from None
        if item is False:
            return out
        if not isinstance(item, list) or not all(isinstance(a, bytes) for a in item):
            raise BadRequest("Protocol error: expected an array of bulk strings")
        if item:
            out.append(item)


class SentinelServer:
    def __init__(
        self,
        feed: SentinelFeed,
        tokens: TokenTable,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.feed = feed
        self.tokens = tokens
        self.max_request_bytes = max_request_bytes
        self.myid = hashlib.sha1(os.urandom(20)).hexdigest()
        self.started = time.monotonic()  # real time: INFO's uptime, display only
        self._ids = itertools.count(1)
        self._conns: dict[int, _Conn] = {}
        self._server: asyncio.base_events.Server | None = None
        self.stats = {"total_connections_received": 0, "total_commands_processed": 0, "rejected_requests": 0}
        feed.listeners.append(self.publish)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, limit=READ_CHUNK, backlog=1024)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns.values()):
            conn.writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)  # real time: socket shutdown

    def _env(self) -> Env:
        return Env(self.feed.view, self.tokens, self.myid, self._info)

    def _info(self) -> dict[str, dict[str, str]]:
        uptime = int(time.monotonic() - self.started)
        return {
            "Server": {
                "redis_version": "7.0.15",
                "redis_mode": "sentinel",
                "kvmaint_endpoint": "sentinel",
                "process_id": str(os.getpid()),
                "run_id": self.myid,
                "tcp_port": str(self.port),
                "uptime_in_seconds": str(uptime),
                "uptime_in_days": str(uptime // 86400),
            },
            "Clients": {"connected_clients": str(len(self._conns)), "maxclients": str(MAX_CLIENTS)},
            "Stats": {k: str(v) for k, v in self.stats.items()},
        }

    def publish(self, notice: SwitchNotice) -> None:
        """Delivers `+switch-master` to every subscribed connection allowed to see the add-on."""
        for conn in list(self._conns.values()):
            if not conn.session.subscriptions:
                continue
            conn.send(messages_for(conn.session, SWITCH_CHANNEL, notice.payload, notice.app))
            transport = conn.writer.transport
            if transport.get_write_buffer_size() > MAX_OUTPUT_BYTES:
                log.warning("sentinel: dropping subscriber %s that does not read", conn.session.addr)
                transport.abort()

    async def _answer(self, conn: _Conn, argv: list[bytes]) -> None:
        # A discovery question about an add-on in mid-failover waits for the repoint (bounded).
        if len(argv) >= 2 and argv[0].lower() == b"sentinel" and argv[1].lower() in DISCOVERY:
            await self.feed.fresh()
            names = [a.decode("utf-8", "surrogateescape") for a in argv[2:3]] or list(self.feed.view.masters)
            for name in names:
                await self.feed.settled(name)
        self.stats["total_commands_processed"] += 1
        conn.send(execute(conn.session, argv, self._env()))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        addr = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if len(self._conns) >= MAX_CLIENTS:  # as Redis does at maxclients
            writer.write(b"-ERR max number of clients reached\r\n")
            writer.close()
            self.stats["rejected_connections"] = self.stats.get("rejected_connections", 0) + 1
            return
        session = new_session(next(self._ids), addr, self.tokens)
        conn = _Conn(session, writer)
        self._conns[session.id] = conn
        self.stats["total_connections_received"] += 1
        parser = hiredis.Reader()
        # A connection that starts with something other than '*' speaks inline commands (telnet, nc) until
        # it sends a RESP array; from then on it is RESP only, as every client library speaks.
        inline: bytes | None = None
        try:
            while not session.closing:
                data = await reader.read(READ_CHUNK)
                if not data:
                    break
                requests: list[list[bytes]] = []
                if inline is None and session.received_bytes == 0 and data[:1] != b"*":
                    inline = b""
                session.received_bytes += len(data)
                if inline is not None:
                    pending, requests, data = _inline(inline + data)
                    inline = pending if not data else None
                if data:
                    parser.feed(data)
                    requests += _requests(parser)
                    if parser.len() > self.max_request_bytes:
                        raise BadRequest(
                            f"Protocol error: a request is larger than {self.max_request_bytes} bytes"
                        )
                for argv in requests:
                    await self._answer(conn, argv)
                    if session.closing:
                        break
                await writer.drain()
        except BadRequest as err:
            self.stats["rejected_requests"] += 1
            log.info("sentinel: closing %s: %s", addr, err)
            conn.send([Error(f"ERR {err}")])
        except (ConnectionError, OSError):
            pass
        finally:
            self._conns.pop(session.id, None)
            with contextlib.suppress(Exception):
                if not writer.is_closing():
                    await asyncio.wait_for(writer.drain(), 1.0)  # real time: socket I/O timeout
            writer.close()


def _inline(buffer: bytes) -> tuple[bytes, list[list[bytes]], bytes]:
    """Splits inline commands off the front of `buffer`: (unfinished inline line, requests, the rest,
    which starts a RESP request)."""
    requests: list[list[bytes]] = []
    while buffer and buffer[:1] != b"*":
        end = buffer.find(b"\n")
        if end < 0:
            if len(buffer) > MAX_INLINE_BYTES:
                raise BadRequest("Protocol error: too big inline request")
            return buffer, requests, b""
        line, buffer = buffer[:end].rstrip(b"\r"), buffer[end + 1 :]
        if b"\x00" in line or b'"' in line or b"'" in line:
            argv = _quoted(line)
        else:
            argv = line.split()
        if argv:
            requests.append(argv)
    return b"", requests, buffer


def _quoted(line: bytes) -> list[bytes]:
    """Inline arguments with quotes, as redis-cli's sdssplitargs reads them (simplified: no escapes)."""
    import shlex

    try:
        return [
            a.encode("utf-8", "surrogateescape") for a in shlex.split(line.decode("utf-8", "surrogateescape"))
        ]
    except ValueError:
        raise BadRequest("Protocol error: unbalanced quotes in request") from None
