"""Maintenance notices inside Redis (issue 7): what to tell applications, when, and on which server.

The agents PUBLISH them (kvmaint/notices.py has the JSON); this module decides:

- `scheduled`, `failed` and `completed` follow the stored event stream (`from_event`, pure), read after
  commit as every other subscriber does, and go to the add-on's primary as the store has it then (for
  `completed`, the new primary).
- `starting` goes out about `lead` seconds before a pending maintenance is due, from the planner's tick
  (`ahead`), on the injected clock, once per maintenance and scheduled time in this scheduler's life.
- `failing_over` and `failed_over` travel inside the failover command (`failover_notices`): only the
  agent doing the switch knows the moment before the pause and the moment after the promotion.

Every notice is best effort: a host the hub has never heard of gets none, one that is not connected gets
it only if its agent (re)connects within the command timeout (after a takeover agents reconnect to the
new leader a moment after it starts; no notice older than that is queued), and a notice that fails is
logged, never a reason to fail a maintenance.

Across leaders (replicas, and restarts): the position in the event stream up to which notices were sent
is kept in the database (`cursors`, name `maintenance-notices`), written after the sends of each batch
have ended, under the lease check of the runner's writes. A new leader resumes from it, so an event
written in a takeover's window (the old leader's last steps, a window update through another replica
while no replica led) still gets its notices. A batch resent after a leader died between sending and
recording is sent under the same command ids (`notice/MID/SEQ.I`), which agents keep results by: the
agent answers from its journal and publishes nothing twice. `starting` is keyed by the maintenance and
its scheduled time (`notice/MID/starting/TIME`) the same way, so a new leader's first planner tick does
not repeat the one the previous leader sent.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from kvmaint.clock import iso
from kvmaint.errors import KvmaintError
from kvmaint.notices import Notice, NoticeType
from kvmaint.v1 import agent_pb2
from server.agents.hub import AgentHub
from server.domain.models import Event, EventType, Maintenance, Status
from server.domain.planner import Due
from server.service.bus import EventBus, follow
from server.storage import Store

log = logging.getLogger(__name__)

STARTING_LEAD_SECONDS = 60.0
COMMAND_TIMEOUT = 10.0
# Events read per step: each step is one synchronous piece on SQLite (500 took 35-45 ms at 100k, the
# API's calls waiting behind it while a fleet-wide filing wrote thousands).
BATCH = 100
# The durable position's row in `cursors`.
CURSOR = "maintenance-notices"
# Events without notices move the stored position only once this far behind (a write per batch of
# config var changes would be wasted; re-reading them after a takeover sends nothing).
LAG_BEFORE_STORING = 1000


def from_event(event: Event) -> list[Notice]:
    """The notices a committed event stands for (none for most)."""
    a = event.attributes

    def notice(kind: NoticeType, **fields: str) -> Notice:
        return Notice(kind, event.maintenance_id, event.addon, {k: v for k, v in fields.items() if v})

    if event.type in (EventType.MAINTENANCE_SCHEDULED, EventType.MAINTENANCE_RESCHEDULED):
        return [
            notice(
                NoticeType.SCHEDULED,
                scheduled_for=a.get("scheduled_for", ""),
                previously_scheduled_for=a.get("previously_scheduled_for", ""),
                required_by=a.get("required_by", ""),
                window=a.get("window", ""),
            )
        ]
    if event.type is EventType.MAINTENANCE_COMPLETED:
        return [notice(NoticeType.COMPLETED, duration_seconds=a.get("duration_seconds", ""))]
    if event.type is EventType.MAINTENANCE_FAILED:
        failed = notice(
            NoticeType.FAILED,
            status=a.get("status", ""),
            step=a.get("step", ""),
            reason=a.get("reason", ""),
            attempts=a.get("attempts", ""),
        )
        if a.get("status") == Status.PENDING.value and a.get("scheduled_for"):
            return [failed, notice(NoticeType.SCHEDULED, scheduled_for=a["scheduled_for"])]
        return [failed]
    return []


def starting(m: Due, now: datetime) -> Notice:
    at = max(m.scheduled_for, now)
    return Notice(
        NoticeType.STARTING,
        m.id,
        m.addon,
        {"starts_at": iso(at), "in_seconds": str(max(0, round((at - now).total_seconds())))},
    )


def to_proto(notice: Notice) -> agent_pb2.MaintenanceNotice:
    return agent_pb2.MaintenanceNotice(
        type=notice.type.value, maintenance_id=notice.maintenance_id, addon=notice.addon, fields=notice.fields
    )


def failover_notices(
    m: Maintenance, old: str, new: str
) -> tuple[agent_pb2.MaintenanceNotice, agent_pb2.MaintenanceNotice]:
    """(failing_over, failed_over) for the failover command; `old` and `new` are client addresses."""
    fields = {"old_primary": old, "new_primary": new}
    return (
        to_proto(Notice(NoticeType.FAILING_OVER, m.id, m.addon, fields)),
        to_proto(Notice(NoticeType.FAILED_OVER, m.id, m.addon, fields)),
    )


class MaintenanceNotices:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        hub: AgentHub,
        lead_seconds: float = STARTING_LEAD_SECONDS,
        poll_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.bus = bus
        self.hub = hub
        self.lead = timedelta(seconds=lead_seconds)
        self.poll_seconds = poll_seconds
        self.position = 0
        self.stored = 0  # the position as last written to the database
        # maintenance id -> the scheduled_for its `starting` notice was sent for.
        self._started: dict[str, datetime | None] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """From where the previous leader had sent up to (the database's cursor); on a database that has
        none yet, from the current end of the stream: notices are about what happens from now on."""
        async with self.store.read() as tx:
            stored = await tx.get_cursor(CURSOR)
        if stored is None:
            stored = await self.store.last_sequence()
            await self._store_position(stored)
        self.position = self.stored = stored

    async def ahead(self, now: datetime, soon: list[Due] | None = None) -> int:
        """Sends `starting` for each pending maintenance due within the lead time; returns how many.
        `soon` is `due_for_planning(now + lead)` when the caller has read it already (the planner)."""
        sent = 0
        async with self.store.read() as tx:
            due = soon if soon is not None else await tx.due_for_planning(now + self.lead)
            fresh = [m for m in due if self._started.get(m.id) != m.scheduled_for]
            addons = {a.name: a for a in await tx.addons_named(sorted({m.addon for m in fresh}))}
        for m in fresh:
            addon = addons.get(m.addon)
            self._started[m.id] = m.scheduled_for
            if addon is not None and addon.primary is not None:
                key = iso(m.scheduled_for).replace(":", "")
                self.send(addon.primary.host, addon.primary.port, starting(m, now), f"starting/{key}")
                sent += 1
        return sent

    def send(self, host: str, port: int, notice: Notice, tag: str) -> asyncio.Task[None] | None:
        """Publishes in the background; the caller never waits for an agent. Returns the sending task
        (None: not sent)."""
        if not self.hub.acting():
            return None  # a replica that no longer leads sends nothing (its follower is being cancelled)
        if not self.hub.is_connected(host) and host not in self.hub.advertised:
            log.info("notice %s of %s not sent: agent %s is not known", notice.type, notice.addon, host)
            return None
        # Not under the maintenance's id: a notice is no step's work (nor in its trace), and agents keep
        # results by command id, so each notice has its own.
        command_id = f"notice/{notice.maintenance_id}/{tag}"
        task = asyncio.create_task(self._send(host, port, notice, command_id))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return task

    async def _send(self, host: str, port: int, notice: Notice, command_id: str) -> None:
        command = agent_pb2.PublishNoticeCommand(port=port, notice=to_proto(notice))
        try:
            r = await self.hub.call(host, command_id, "publish_notice", command, COMMAND_TIMEOUT)
        except KvmaintError as err:
            log.warning("notice %s of %s on %s:%d: %s", notice.type, notice.addon, host, port, err)
            return
        if not r.ok:
            log.warning("notice %s of %s on %s:%d: %s", notice.type, notice.addon, host, port, r.error)

    async def step(self) -> bool:
        """Reads one batch of events and sends their notices; False when there was none."""
        async with self.store.read() as tx:
            batch = await tx.events_after(self.position, "", "", BATCH)
            named = await tx.addons_named(sorted({e.addon for e in batch if from_event(e)}))
            addons = {a.name: a for a in named}
        if not batch:
            return False
        sending: list[asyncio.Task[None]] = []
        for event in batch:
            addon = addons.get(event.addon)
            primary = addon.primary if addon is not None else None
            for i, notice in enumerate(from_event(event)):
                if notice.type is NoticeType.COMPLETED or notice.type is NoticeType.FAILED:
                    self._started.pop(notice.maintenance_id, None)
                if primary is not None:
                    task = self.send(primary.host, primary.port, notice, f"{event.sequence}.{i}")
                    if task is not None:
                        sending.append(task)
        self.position = batch[-1].sequence
        if sending or addons or self.position - self.stored >= LAG_BEFORE_STORING:
            # Recorded once these notices were delivered or given up on (each send is bounded by the
            # command timeout): a leader that dies before this leaves them to the next, which resends
            # them under the same command ids.
            await asyncio.gather(*sending, return_exceptions=True)
            if self.hub.acting():
                await self._store_position(self.position)
        return True

    async def _store_position(self, position: int) -> None:
        """Writes the durable position, only while the lease is still this replica's at its term (as the
        runner's writes): a woken old leader moves nothing."""
        fence = getattr(self.hub, "leadership", None)
        async with self.store.transaction() as tx:
            if fence is not None:
                leader = await tx.get_leader()
                if leader is None or leader.holder != fence.replica_id or leader.term != fence.term:
                    return
            await tx.set_cursor(CURSOR, position)
        self.stored = max(self.stored, position)

    async def run(self) -> None:
        await follow(self.bus, self.step, lambda: self.position, self.poll_seconds, "maintenance notices")

    def cancel(self) -> list[asyncio.Task[None]]:
        """Cancels the notices being sent, now; returns them to await."""
        tasks = list(self._sending)
        for task in tasks:
            task.cancel()
        return tasks

    async def close(self) -> None:
        await asyncio.gather(*self.cancel(), return_exceptions=True)
