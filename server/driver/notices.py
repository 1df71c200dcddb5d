"""Maintenance notices inside Redis (issue 7): what to tell applications, when, and on which server.

The agents PUBLISH them (kvmaint/notices.py has the JSON); this module decides:

- `scheduled`, `failed` and `completed` follow the stored event stream (`from_event`, pure), read after
  commit as every other subscriber does, and go to the add-on's primary as the store has it then (for
  `completed`, the new primary).
- `starting` goes out about `lead` seconds before a pending maintenance is due, from the planner's tick
  (`ahead`), on the injected clock, once per maintenance and scheduled time in this scheduler's life.
- `failing_over` and `failed_over` travel inside the failover command (`failover_notices`): only the
  agent doing the switch knows the moment before the pause and the moment after the promotion.

Every notice is best effort: a host that is not connected gets none (no stale notice is queued), and a
notice that fails is logged, never a reason to fail a maintenance.
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
from server.service.bus import EventBus, follow
from server.storage import Store

log = logging.getLogger(__name__)

STARTING_LEAD_SECONDS = 60.0
COMMAND_TIMEOUT = 10.0
BATCH = 500


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


def starting(m: Maintenance, now: datetime) -> Notice:
    at = max(m.scheduled_for or now, now)
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
        # maintenance id -> the scheduled_for its `starting` notice was sent for.
        self._started: dict[str, datetime | None] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """From the current end of the stream: notices are about what happens from now on."""
        self.position = await self.store.last_sequence()

    async def ahead(self, now: datetime, soon: list[Maintenance] | None = None) -> int:
        """Sends `starting` for each pending maintenance due within the lead time; returns how many.
        `soon` is `due_maintenances(now + lead)` when the caller has read it already (the planner)."""
        sent = 0
        async with self.store.read() as tx:
            due = soon if soon is not None else await tx.due_maintenances(now + self.lead)
            fresh = [m for m in due if self._started.get(m.id) != m.scheduled_for]
            targets = [(m, await tx.get_addon(m.addon)) for m in fresh]
        for m, addon in targets:
            self._started[m.id] = m.scheduled_for
            if addon is not None and addon.primary is not None:
                key = iso(m.scheduled_for).replace(":", "")
                self.send(addon.primary.host, addon.primary.port, starting(m, now), f"starting/{key}")
                sent += 1
        return sent

    def send(self, host: str, port: int, notice: Notice, tag: str) -> None:
        """Publishes in the background; the caller never waits for an agent."""
        if not self.hub.acting():
            return  # a replica that no longer leads sends nothing (its follower is being cancelled)
        if not self.hub.is_connected(host):
            log.info("notice %s of %s not sent: agent %s is not connected", notice.type, notice.addon, host)
            return
        # Not under the maintenance's id: a notice is no step's work (nor in its trace), and agents keep
        # results by command id, so each notice has its own.
        command_id = f"notice/{notice.maintenance_id}/{tag}"
        task = asyncio.create_task(self._send(host, port, notice, command_id))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

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
            addons = {e.addon: await tx.get_addon(e.addon) for e in batch if from_event(e)}
        if not batch:
            return False
        self.position = batch[-1].sequence
        for event in batch:
            addon = addons.get(event.addon)
            primary = addon.primary if addon is not None else None
            for i, notice in enumerate(from_event(event)):
                if notice.type is NoticeType.COMPLETED or notice.type is NoticeType.FAILED:
                    self._started.pop(notice.maintenance_id, None)
                if primary is not None:
                    self.send(primary.host, primary.port, notice, f"{event.sequence}.{i}")
        return True

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
