"""The switchover's write pause, in short slices the agent renews while it makes progress.

`CLIENT PAUSE <ms> WRITE` ends by itself after <ms>. One long pause (the whole switchover budget) left
writes blocked for seconds when the agent died right after pausing. Here each pause lasts `SLICE_MS`
and a renewer task sends it again every `RENEW_SECONDS` (Redis keeps the later of two pause ends), up
to the switchover's total budget. So a live agent keeps writes paused for as long as the switchover
needs, and a frozen or dead one releases them within one slice: **a dead agent blocks writes for at
most `SLICE_MS` (250 ms)**.

A slice that lapses while the agent is slow (rather than dead) is safe: the old primary is still the
primary and acknowledges writes normally; the demotion reads the offset in the same MULTI as
REPLICAOF, and the target must apply those bytes too before it is promoted (else the demotion is
reverted). After the demotion the old primary answers READONLY whether paused or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio

from agent.redisnode.rcmd import IO_ERRORS, rcmd
from agent.redisnode.status import describe_error
from kvmaint.clock import Clock

log = logging.getLogger(__name__)

SLICE_MS = 250
RENEW_SECONDS = 0.05


class WritePause:
    """One switchover's pause on one server: `start`, then `stop` before CLIENT UNPAUSE."""

    def __init__(self, client: redis.asyncio.Redis, port: int, clock: Clock, budget_ms: int) -> None:
        self.client = client
        # Renewals go over a connection of their own: the switchover's other commands (and the CLIENT
        # KILL that lets go of the old primary's clients) never wait behind, or break, a renewal.
        self._renewer = redis.asyncio.Redis(
            connection_pool=redis.asyncio.ConnectionPool(**client.connection_pool.connection_kwargs)
        )
        self.port = port
        self.clock = clock
        self.budget_ms = budget_ms
        self.renewals = 0
        # Longest time between two pauses sent (a gap above SLICE_MS means writes resumed meanwhile).
        self.max_gap_ms = 0
        self._ends = 0.0
        self._last = 0.0
        self._stopping = False
        self._sleeping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Sends the first slice (raises on I/O failure: nothing is paused then) and starts renewing."""
        now = self.clock.monotonic()
        self._ends = now + self.budget_ms / 1000
        await rcmd(self.client, "CLIENT", "PAUSE", min(SLICE_MS, self.budget_ms), "WRITE")
        self._last = now
        self._task = asyncio.create_task(self._renew(), name=f"pause-renewer-{self.port}")

    async def _renew(self) -> None:
        while not self._stopping:
            self._sleeping = True
            try:
                await self.clock.sleep(RENEW_SECONDS)
            finally:
                self._sleeping = False
            remaining_ms = round((self._ends - self.clock.monotonic()) * 1000)
            if self._stopping or remaining_ms <= 0:
                return
            try:
                await rcmd(self._renewer, "CLIENT", "PAUSE", min(SLICE_MS, remaining_ms), "WRITE")
            except IO_ERRORS as exc:
                log.warning("renewing the write pause on port %d failed: %s", self.port, describe_error(exc))
                continue
            now = self.clock.monotonic()
            self.max_gap_ms = max(self.max_gap_ms, round((now - self._last) * 1000))
            self._last = now
            self.renewals += 1

    async def stop(self) -> None:
        """Stops renewing; returns once no renewal can reach the server any more (so that an UNPAUSE
        sent next is never overtaken by a late renewal). The current slice runs out by itself."""
        self._stopping = True
        task = self._task
        if task is not None and not task.done():
            if self._sleeping:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._renewer.aclose()
