"""The leadership loop: renews the lease about every second and tells the app when it gains or loses it.

Decisions are server/replica/lease.py's; this module does the I/O (one short transaction per renewal,
which also heartbeats this replica's `schedulers` row) and the waits, all through the injected Clock.
`is_leader` is read synchronously before every command to an agent: it compares the monotonic clock
with the acting deadline itself, so a process that wakes from a pause past its deadline refuses to act
even before this loop has run again. On SQLite (one process per file, STATE.lock) the process leads at
once and for good, still under a term persisted in the leases table, so agents' fencing is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from kvmaint.clock import Clock
from server.replica import lease as L
from server.replica.models import SCHEDULER_LEASE, LeaderInfo
from server.storage import Store

log = logging.getLogger(__name__)

# The SQLite process' lease: it never needs renewing (no other process may open the file).
FOREVER = timedelta(days=365 * 100)

Hook = Callable[[int], Awaitable[None]]


def default_replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Replica:
    """This process as other replicas, clients and agents should know it."""

    id: str
    address: str  # client API HOST:PORT
    agent_address: str  # agents' HOST:PORT
    version: str


class Leadership:
    """Whether this replica leads, under which term, and who leads otherwise."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        replica: Replica,
        timing: L.LeaseTiming | None = None,
        *,
        single: bool = False,
        name: str = SCHEDULER_LEASE,
    ) -> None:
        self.store = store
        self.clock = clock
        self.replica = replica
        self.timing = timing or L.LeaseTiming()
        self.single = single
        self.name = name
        self._state = L.LeaseState()
        # The leader the database named at the last renewal (ourselves when leading).
        self.known: LeaderInfo | None = None
        self._known_at = -1.0
        self._on_gain: list[Hook] = []
        self._on_lose: list[Hook] = []
        self._changes = 0
        self._changed = asyncio.Event()
        self._stepping: asyncio.Task[None] | None = None

    # --- what others read -------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self._state.may_act(self.clock.monotonic())

    @property
    def term(self) -> int:
        return self._state.term

    @property
    def replica_id(self) -> str:
        return self.replica.id

    async def leader(self) -> LeaderInfo | None:
        """The current leader (None: none now), from the last renewal when it is fresh, else the
        database."""
        if self.clock.monotonic() - self._known_at <= self.timing.renew_every:
            return self.known
        async with self.store.lease_transaction() as tx:
            info = await tx.get_leader(self.name)
        self.known, self._known_at = info, self.clock.monotonic()
        return info

    def on_gain(self, hook: Hook) -> None:
        """`hook(term)` runs when this replica starts leading under `term`."""
        self._on_gain.append(hook)

    def on_lose(self, hook: Hook) -> None:
        """`hook(term)` runs when it stops (it must cancel the term's work at once)."""
        self._on_lose.append(hook)

    async def changed(self) -> None:
        """Returns at the next gain or loss."""
        seen = self._changes
        while self._changes == seen:
            self._changed.clear()
            await self._changed.wait()

    # --- the loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        if self.single:
            await self._run_single()
            return
        while True:
            sent = self.clock.monotonic()
            timeout = self.timing.renew_timeout
            if self._state.acting_until is not None:
                timeout = min(timeout, max(0.0, self._state.acting_until - sent))
            try:
                got = await self.clock.wait_for(self._renew(), timeout)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if self._state.leading:
                    log.warning(
                        "could not renew the leader lease (term %d): %s", self.term, err or type(err).__name__
                    )
                else:
                    log.debug("lease attempt failed: %r", err)
                await self._apply(*L.after_failure(self._state, self.clock.monotonic()))
            else:
                await self._apply(
                    *L.after_renewal(self._state, sent, got, self.clock.monotonic(), self.timing)
                )
            await self.clock.sleep(L.next_wake(self._state, sent, self.clock.monotonic(), self.timing))
            await self._apply(*L.expire(self._state, self.clock.monotonic()))

    async def _renew(self) -> int | None:
        r = self.replica
        duration = timedelta(seconds=self.timing.lease)
        async with self.store.lease_transaction() as tx:
            got = await tx.acquire_lease(self.name, r.id, r.address, r.agent_address, duration)
            info = await tx.get_leader(self.name)
            await tx.upsert_scheduler(r.id, r.address, r.agent_address, r.version)
        self.known, self._known_at = info, self.clock.monotonic()
        return got

    async def run_until_leading(self) -> None:
        """SQLite: takes the lease at the next term and leads from now on (no other process may
        open the file). On replicas this is just the loop's business: returns at once."""
        if not self.single or self._state.leading:
            return
        r = self.replica
        async with self.store.lease_transaction() as tx:
            term = await tx.take_lease(self.name, r.id, r.address, r.agent_address, FOREVER)
            self.known = await tx.get_leader(self.name)
            await tx.upsert_scheduler(r.id, r.address, r.agent_address, r.version)
        self._known_at = float("inf")
        await self._apply(L.LeaseState(term=term, acting_until=float("inf")), L.Change.GAINED)

    async def _run_single(self) -> None:
        await self.run_until_leading()
        r = self.replica
        while True:
            await self.clock.sleep(max(1.0, self.timing.renew_every))
            try:
                async with self.store.lease_transaction() as tx:
                    await tx.upsert_scheduler(r.id, r.address, r.agent_address, r.version)
            except Exception as err:
                log.warning("could not record this scheduler's heartbeat: %s", err)

    async def _apply(self, new: L.LeaseState, change: L.Change) -> None:
        old = self._state
        self._state = new
        if change is L.Change.NONE or change is L.Change.KEPT:
            return
        if old.leading and (change is L.Change.LOST or new.term != old.term):
            log.warning("no longer the leader (term %d)", old.term)
            await self._run_hooks(self._on_lose, old.term)
        if change is L.Change.GAINED:
            log.info("leading as %s under term %d", self.replica.id, new.term)
            await self._run_hooks(self._on_gain, new.term)
        self._changes += 1
        self._changed.set()

    async def _run_hooks(self, hooks: list[Hook], term: int) -> None:
        for hook in hooks:
            try:
                await hook(term)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("leadership hook failed")

    def step_down(self, why: str) -> None:
        """Stops acting now (an agent saw a newer term): the next renewal finds out who leads."""
        if not self._state.leading or self.single:
            return
        log.warning("stepping down from term %d: %s", self.term, why)
        if self._stepping is None or self._stepping.done():
            self._stepping = asyncio.create_task(self._apply(L.LeaseState(term=self.term), L.Change.LOST))

    async def stop(self) -> None:
        """On shutdown: stops acting and hands the lease back, so another replica takes over at once
        instead of after expiry; forgets this replica's row."""
        term, leading = self.term, self._state.leading
        await self._apply(L.LeaseState(term=term), L.Change.LOST if leading else L.Change.NONE)
        with contextlib.suppress(Exception):
            async with self.store.lease_transaction() as tx:
                if leading:
                    await tx.release_lease(self.name, self.replica.id, term)
                await tx.delete_scheduler(self.replica.id)
