"""The leader's work: what runs only while this replica leads, started on gaining the lease and
cancelled at once on losing it (non-leaders keep serving the API from the database)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from kvmaint.clock import Clock
from server.agents.hub import AgentHub
from server.driver.notices import MaintenanceNotices
from server.driver.runner import MaintenanceRunner
from server.storage import Store

log = logging.getLogger(__name__)

Loop = Callable[[], Coroutine[Any, Any, None]]


class LeaderWork:
    """The planner (and with it campaign driving and the 90-day pass), the maintenance runners, the
    maintenance notices, the notification sender and the leader's beats to agents."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        hub: AgentHub,
        runner: MaintenanceRunner,
        notices: MaintenanceNotices,
        loops: dict[str, Loop],
        resume_seconds: float,
    ) -> None:
        self.store = store
        self.clock = clock
        self.hub = hub
        self.runner = runner
        self.notices = notices
        self.loops = loops
        self.resume_seconds = resume_seconds
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, term: int) -> None:
        await self.stop(term)
        # The agents' advertised hosts as the previous leaders recorded them: commands name servers
        # by them, and agents reconnect here one by one (a live session's own hello wins).
        async with self.store.read() as tx:
            known = await tx.list_agents()
        for host, advertised in known.items():
            if host not in self.hub.sessions:
                self.hub.advertised[host] = advertised
        await self.notices.start()  # notices are about what happens from now on
        self.tasks = [asyncio.create_task(self._resume(), name="resume-maintenances")]
        self.tasks += [asyncio.create_task(loop(), name=name) for name, loop in self.loops.items()]
        self.tasks.append(asyncio.create_task(self.notices.run(), name="maintenance-notices"))

    async def _resume(self) -> None:
        """Every running maintenance at its durable step, at once and then each tick (one started by
        an API call on another replica, or left by a stream that broke, is picked up too)."""
        while True:
            try:
                resumed = await self.runner.resume()
                if resumed:
                    log.info("resumed %d maintenance(s) in progress", resumed)
            except Exception:
                log.exception("could not resume the maintenances in progress")
            await self.clock.sleep(self.resume_seconds)

    async def stop(self, term: int) -> None:
        """Cancels the term's work and ends the agents' streams (they reconnect to the new leader)."""
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task.cancel()
        # Everything cancelled before the first await: no maintenance takes another step meanwhile.
        tasks += self.runner.cancel() + self.notices.cancel()
        self.hub.drop_all()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.runner.close()
        await self.notices.close()
