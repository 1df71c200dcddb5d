"""The hub's "agent connected/disconnected" log lines, bounded: in a reconnect storm of 10,000 agents,
two INFO lines per agent cost seconds of the event loop (formatting and writing ~20,000 records) while the
agents wait for their welcome. The first `per_window` of each kind in a second are logged as before; the
rest are counted and summed up in one line at the end of that second."""

from __future__ import annotations

import asyncio
import logging

from kvmaint.clock import Clock

WINDOW_SECONDS = 1.0


class ConnectionLog:
    def __init__(self, log: logging.Logger, clock: Clock, per_window: int = 20) -> None:
        self.log = log
        self.clock = clock
        self.per_window = per_window
        self._window = -1.0
        self._logged = {"connected": 0, "disconnected": 0}
        self._quiet = {"connected": 0, "disconnected": 0}
        self._summary: asyncio.Task[None] | None = None

    def connected(self, host_id: str, advertise_host: str, servers: int) -> None:
        if self._allow("connected"):
            self.log.info("agent %s connected (%s, %d servers)", host_id, advertise_host, servers)

    def disconnected(self, host_id: str) -> None:
        if self._allow("disconnected"):
            self.log.info("agent %s disconnected", host_id)

    def _allow(self, kind: str) -> bool:
        now = self.clock.monotonic()
        if now - self._window >= WINDOW_SECONDS:
            self.flush()
            self._window = now
            self._logged = {"connected": 0, "disconnected": 0}
        if self._logged[kind] < self.per_window:
            self._logged[kind] += 1
            return True
        self._quiet[kind] += 1
        if self._summary is None or self._summary.done():
            self._summary = asyncio.create_task(self._flush_later(), name="connection-log")
        return False

    async def _flush_later(self) -> None:
        await self.clock.sleep(WINDOW_SECONDS)
        self.flush()

    def flush(self) -> None:
        """Logs the counts of the lines left out, if any."""
        if any(self._quiet.values()):
            self.log.info(
                "and %d more agents connected, %d more disconnected (not logged one by one)",
                self._quiet["connected"],
                self._quiet["disconnected"],
            )
            self._quiet = {"connected": 0, "disconnected": 0}
