"""Starts maintenances when their scheduled time comes ("Heroku handles these tasks automatically")."""

from __future__ import annotations

import logging
from dataclasses import replace

from kvmaint.clock import iso
from server.domain.models import EventType, HistoryEntry, Status
from server.domain.windows import WINDOW
from server.service.core import Context
from server.service.maintenance import Runner, start_maintenance

log = logging.getLogger(__name__)


class Planner:
    def __init__(self, ctx: Context, runner: Runner, interval: float = 5.0) -> None:
        self.ctx = ctx
        self.runner = runner
        self.interval = interval

    async def tick(self) -> list[str]:
        """Starts every due maintenance; one whose window passed unused moves to the next window."""
        now = self.ctx.clock.now()
        started: list[str] = []
        async with self.ctx.write() as w:
            for m in await w.tx.due_maintenances(now):
                addon = await w.tx.get_addon(m.addon)
                if addon is None or m.scheduled_for is None:
                    continue
                window = addon.window
                missed = window is not None and now >= m.scheduled_for + WINDOW
                if missed and window is not None:
                    nxt = window.next_start(now)
                    if nxt + WINDOW <= m.required_by:
                        moved = replace(m, previously_scheduled_for=m.scheduled_for, scheduled_for=nxt)
                        await w.tx.update_maintenance(moved)
                        text = f"Window missed; moved to the next window, {iso(nxt)}"
                        await w.tx.add_history(m.id, HistoryEntry(now, Status.PENDING, "", text))
                        await w.emit(
                            EventType.MAINTENANCE_RESCHEDULED,
                            self.ctx,
                            m.app,
                            m.addon,
                            m.id,
                            text,
                            scheduled_for=iso(nxt),
                            previously_scheduled_for=iso(m.scheduled_for),
                        )
                        continue
                await start_maintenance(self.ctx, w, m, now, "Started automatically")
                started.append(m.id)
        for mid in started:
            self.runner.kick(mid)
        return started

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("planner tick failed")
            await self.ctx.clock.sleep(self.interval)
