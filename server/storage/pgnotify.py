"""Wakes this process' event bus when any process commits events on the same PostgreSQL database.

Each transaction that appends events sends one `pg_notify(EVENTS_CHANNEL, <its last sequence>)` before
it commits (`PostgresStore.transaction`), and PostgreSQL delivers it to every listener only once the
transaction has committed and its rows are visible. A replica so learns of another's events at once,
and its subscribers (StreamEvents, WatchConfigVars, WaitMaintenance, the Sentinel feed, the web page's
live view) re-read the store from their own positions as they do for local events.

A notification only says "read again": nothing is lost when one is missed. After a lost listener
connection the listener reconnects, LISTENs again and publishes the counter's current value, so every
follower re-reads from its own last sequence (events are gapless, docs/architecture.md); between
notifications it reads that counter every `check_seconds`, which both proves the connection alive and
covers a notification dropped on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from kvmaint.clock import Clock

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "kvmaint_events"

# The listener's connection: a vanished database host (no FIN, no RST) is noticed in about 25 s.
LISTENER_SETTINGS = {
    "application_name": "kvmaint-scheduler events",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}


class EventListener:
    """`run()` keeps one LISTEN connection for the process' life and calls `publish(sequence)` for every
    notification, and with the counter's value after each (re)connect and each check."""

    def __init__(
        self,
        dsn: str,
        publish: Callable[[int], None],
        clock: Clock,
        check_seconds: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.publish = publish
        self.clock = clock
        self.check_seconds = check_seconds
        self.max_backoff = max_backoff
        self.connected = asyncio.Event()  # set while LISTENing (tests wait on it)
        self.reconnects = 0
        self._conn: asyncpg.Connection | None = None

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        try:
            sequence = int(payload)
        except ValueError:
            log.warning("ignoring a notification on %s with payload %r", channel, payload[:40])
            return
        self.publish(sequence)

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._listen()
                backoff = 0.1  # it had been listening: reconnect at once
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
                log.warning("events listener: %s; reconnecting in %.1f s", err or type(err).__name__, backoff)
                await self.clock.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            self.reconnects += 1

    async def _listen(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self.dsn, server_settings=LISTENER_SETTINGS)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        self._conn = conn
        try:
            await conn.add_listener(EVENTS_CHANNEL, self._notified)
            # What committed while nobody listened: followers re-read from their own positions.
            self.publish(int(await conn.fetchval("SELECT last FROM event_sequence")))
            self.connected.set()
            log.info("events listener: listening on %s", EVENTS_CHANNEL)
            while not lost.is_set():
                waiter = asyncio.ensure_future(lost.wait())
                try:
                    await self.clock.wait_for(asyncio.shield(waiter), self.check_seconds)
                except TimeoutError:
                    pass
                finally:
                    waiter.cancel()
                if not lost.is_set():
                    # Real time bound: a connection that does not answer a one-row read is as good as lost.
                    value = await asyncio.wait_for(conn.fetchval("SELECT last FROM event_sequence"), 10)
                    self.publish(int(value))
            raise ConnectionResetError("the listener's connection to PostgreSQL closed")
        finally:
            self.connected.clear()
            self._conn = None
            with contextlib.suppress(Exception):
                conn.terminate()

    def drop_connection(self) -> None:
        """Closes the LISTEN connection as a network failure would (for tests of the reconnect)."""
        if self._conn is not None:
            self._conn.terminate()
