"""Starts maintenances when they are due ("Heroku handles these maintenance tasks automatically").

Each tick reads the due maintenances, the running ones, and the freezes, asks the pure
`domain.planner.decide` what to do, and applies every decision in one transaction, so a scheduler killed
between deciding and starting either started (and resumes it) or did not (and decides again): never
twice. It also files routine maintenances under the 90-day rule.

A maintenance due on an add-on whose primary is down (domain/health.py, from the agents' reports) is not
started: it is rescheduled to its next window, with an event that says why (`deferred:
addon_unavailable`), without counting as a failed attempt: the failover needs a primary to hand over.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from server.domain import lifecycle
from server.domain.models import Addon, Maintenance, Method, Reason
from server.domain.planner import Decision, Due, Limits, Move, Start, Wait, decide
from server.domain.routine import maintained_before, routine_required_by
from server.driver.notices import MaintenanceNotices
from server.service import pacing
from server.service.campaigns import advance_all
from server.service.core import Context, Write
from server.service.fleet import NoPlacement, Placement, file_maintenance
from server.service.maintenance import Runner, health, reschedule, start_maintenance
from server.storage import Tx

log = logging.getLogger(__name__)

QUEUE_CHUNK = 500  # waiting maintenances whose reason is written in one transaction


class Planner:
    def __init__(
        self,
        ctx: Context,
        runner: Runner,
        interval: float = 5.0,
        limits: Limits | None = None,
        notices: MaintenanceNotices | None = None,
        placement: Placement | None = None,
    ) -> None:
        self.ctx = ctx
        self.notices = notices
        self.runner = runner
        self.interval = interval
        self.limits = limits or Limits()
        self.placement: Placement = placement or NoPlacement()

    async def tick(self) -> list[str]:
        """One planning pass; returns the ids of the maintenances it started."""
        await self.file_routine()
        await advance_all(self.ctx)
        now = self.ctx.clock.now()
        # Nothing due is the common case: a read beside the writer (the index on (status,
        # scheduled_for) makes it O(due)); the write lock is taken only when there is work. The same
        # read, a lead time further, gives the notices their `starting` candidates.
        lead = self.notices.lead if self.notices is not None else timedelta(0)
        # Only the decision's columns (`due_for_planning`): whole maintenances are read for the few a
        # decision writes. The loop is yielded between the steps of a tick: each is one synchronous
        # piece on SQLite, and the API's requests run between them.
        async with self.ctx.store.read() as tx:
            soon = await tx.due_for_planning(now + lead)
        await asyncio.sleep(0)
        if self.notices is not None:
            # Ahead of the start (about a minute, at this tick's granularity), outside the write below.
            await self.notices.ahead(now, soon)
        due_now = [d for d in soon if d.scheduled_for <= now]
        if not due_now:
            return []
        # Decided on that snapshot first: while a wave waits (the fleet or its hosts at their limits)
        # nothing changes from tick to tick, and the write lock, with its re-read, is taken only when
        # a decision would write.
        async with self.ctx.store.read() as tx:
            decisions = await self._decide(tx, now, due_now)
        if not _writes(decisions, due_now):
            return []
        await asyncio.sleep(0)
        started: list[str] = []
        async with self.ctx.write() as w:
            due = await w.tx.due_for_planning(now)  # again, under the lock: the decision's input
            if not due:
                return []
            decisions = await self._decide(w.tx, now, due)
            acting = _writes(decisions, due)
            waits = [d for d in acting if isinstance(d, Wait)]
            acting = [d for d in acting if not isinstance(d, Wait)]
            by_id = {m.id: m for m in await w.tx.maintenances_by_id([d.id for d in acting])}
            starting = sorted({by_id[d.id].addon for d in acting if isinstance(d, Start) and d.id in by_id})
            addons = {a.name: a for a in await w.tx.addons_named(starting)}
            for decision in acting:
                m = by_id.get(decision.id)
                if m is None:  # cannot be: read under the same lock
                    continue
                if isinstance(decision, Start):
                    addon = addons.get(m.addon)
                    if addon is not None and await self._defer_unavailable(w, m, addon):
                        continue
                    why = "Started automatically" + (
                        "" if decision.why == "it is due" else f" ({decision.why})"
                    )
                    await start_maintenance(self.ctx, w, m, now, why)
                    started.append(m.id)
                elif isinstance(decision, Move):
                    await self._move(w, m.id, decision)
        await self._record_queued(now, waits)
        for mid in started:
            self.runner.kick(mid)
        return started

    async def _record_queued(self, now: datetime, waits: list[Wait]) -> None:
        """Writes why each waiting maintenance waits, QUEUE_CHUNK a transaction with a rest between
        (`Tx.note_queued`, one statement each: a wave held back is 2,000 rows at 100k, and reading and
        writing each as a whole maintenance held the loop 400 ms in one transaction, or took 3 s in 40 on
        PostgreSQL under load). It is a note, not a decision, so it need not commit with the starts; the
        statement writes only those still pending for another reason."""

        async def note(chunk: list[Wait]) -> None:
            async with self.ctx.write() as w:
                await w.tx.note_queued([(d.id, d.why) for d in chunk], now)

        for k in range(0, len(waits), QUEUE_CHUNK):
            step = pacing.begin(self.ctx.clock)
            await pacing.run(self.ctx.clock, step, note(waits[k : k + QUEUE_CHUNK]))
            if k + QUEUE_CHUNK < len(waits):
                await pacing.rest(self.ctx.clock, step)

    async def _decide(self, tx: Tx, now: datetime, due: list[Due]) -> list[Decision]:
        """The pure planner's decisions on what `tx` sees."""
        running = await tx.in_progress_maintenances()
        hosts = await tx.hosts_of(sorted({m.addon for m in running}))
        freezes = await tx.list_freezes(None, now)
        return decide(now, due, [hosts.get(m.addon, ()) for m in running], freezes, self.limits)

    async def _defer_unavailable(self, w: Write, m: Maintenance, addon: Addon) -> bool:
        """Moves a due maintenance of an unavailable add-on to its next window; True when it did."""
        h = health(self.placement, addon)
        if not h.unavailable:
            return False
        now = self.ctx.clock.now()
        at, why = lifecycle.retry_slot(m, now)
        text = f"not started: {addon.name} is unavailable ({h.reason}); tried again at {why}"
        await reschedule(self.ctx, w, m, at, text, deferred="addon_unavailable", unavailable_reason=h.reason)
        log.warning("maintenance %s of %s %s", m.id, addon.name, text)
        return True

    async def _move(self, w: Write, mid: str, decision: Move) -> None:
        m = await w.tx.get_maintenance(mid)
        assert m is not None
        await reschedule(self.ctx, w, m, decision.to, decision.why)

    async def file_routine(self) -> int:
        """Files a routine maintenance for every add-on nearing 90 days without one."""
        now = self.ctx.clock.now()
        filed = 0
        async with self.ctx.store.read() as tx:  # usually none: no write lock for nothing
            if not await tx.routine_candidates(maintained_before(now)):
                return 0
        async with self.ctx.write() as w:
            # Only the add-ons nearing the mark with nothing active (an indexed read, not the fleet).
            for addon, last in await w.tx.routine_candidates(maintained_before(now)):
                required_by = routine_required_by(last, now)
                if required_by is None:
                    continue
                await file_maintenance(
                    self.ctx, w, addon, Reason.ROUTINE_MAINTENANCE, Method.FAILOVER, required_by
                )
                filed += 1
        return filed

    async def run(self) -> None:
        while True:
            try:
                with self.ctx.obs.metrics.planner_pass.time():
                    await self.tick()
            except Exception:
                log.exception("planner tick failed")
            await self.ctx.clock.sleep(self.interval)


def _writes(decisions: list[Decision], due: list[Due]) -> list[Decision]:
    """The decisions that change something: all but a Wait for the reason already recorded."""
    queued = {d.id: d.queued for d in due}
    return [d for d in decisions if not isinstance(d, Wait) or queued.get(d.id) != d.why]
