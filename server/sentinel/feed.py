"""Follows the stored event stream: keeps the Sentinel view of the fleet current and turns each committed
repoint into one `+switch-master` notice.

It reads events from the store by sequence (woken by the local event bus, and polling so that another
scheduler writing to the same database is seen too), so every scheduler serving the endpoint publishes
the same notices, each once, in commit order. While an add-on's failover step runs, discovery answers for
it wait (at most `hold_seconds`) for the promotion to be recorded (the failover step's completion), so a
client the demoted primary just let go asks once and learns the new primary instead of reconnecting to
the old one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from kvmaint.clock import Clock
from server.domain.models import Event, EventType
from server.domain.steps import FAILOVER, REPOINT
from server.sentinel.view import FleetView, Master, Node, build_view
from server.service.bus import EventBus, follow
from server.storage import Store

log = logging.getLogger(__name__)

BATCH = 500
ADDON_PAGE = 1000
# Events that end a failover step without a repoint: stop holding answers back.
ENDS_HOLD = frozenset(
    {EventType.MAINTENANCE_FAILED, EventType.MAINTENANCE_COMPLETED, EventType.MAINTENANCE_CANCELED}
)


@dataclass(frozen=True)
class SwitchNotice:
    name: str
    app: str
    old_ip: str
    old_port: int
    new_ip: str
    new_port: int

    @property
    def payload(self) -> str:
        return f"{self.name} {self.old_ip} {self.old_port} {self.new_ip} {self.new_port}"


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def switch_notice(event: Event, step: str = REPOINT) -> SwitchNotice | None:
    """The `+switch-master` a stored event stands for: the repoint step's completion, which carries the
    old and new primaries' client addresses. With `step=FAILOVER`: the promotion itself, after which
    discovery already answers the new primary (the repoint only rewrites config vars and roles)."""
    a = event.attributes
    finished = a.get("done") == "true" or (step == FAILOVER and a.get("promoted") == "true")
    if event.type is not EventType.MAINTENANCE_STEP or a.get("step") != step or not finished:
        return None
    try:
        old_ip, old_port = _split(a["old_address"])
        new_ip, new_port = _split(a["new_address"])
    except (KeyError, ValueError):
        return None
    return SwitchNotice(event.addon, event.app, old_ip, old_port, new_ip, new_port)


def starts_hold(event: Event) -> bool:
    a = event.attributes
    return (
        event.type is EventType.MAINTENANCE_STEP
        and a.get("step") == FAILOVER
        and a.get("done") != "true"
        and a.get("promoted") != "true"
    )


class SentinelFeed:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        clock: Clock,
        poll_seconds: float = 0.2,
        refresh_seconds: float = 5.0,
        hold_seconds: float = 2.0,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.refresh_seconds = refresh_seconds
        self.hold_seconds = hold_seconds
        self.position = 0
        self.view = FleetView({}, {})
        self.epochs: dict[str, int] = {}
        self.listeners: list[Callable[[SwitchNotice], None]] = []
        self._holds: dict[str, asyncio.Event] = {}
        # Promoted but not yet repointed: name -> the switch, overlaid on the stored roles.
        self._promoted: dict[str, SwitchNotice] = {}
        self._refreshed_at = 0.0
        self._lock = asyncio.Lock()  # one reader of the stream at a time: each notice goes out once

    async def start(self) -> None:
        """Starts at the current end of the stream: notices are for switches from now on."""
        self.position = await self.store.last_sequence()
        await self.refresh()

    async def refresh(self) -> None:
        async with self.store.read() as tx:
            addons, after = [], ""
            while True:
                page = await tx.list_addons(None, after, ADDON_PAGE)
                addons.extend(page)
                if len(page) < ADDON_PAGE:
                    break
                after = page[-1].name
            advertised = await tx.list_agents()
        view = build_view(addons, advertised, self.epochs)
        masters = dict(view.masters)
        for name, p in list(self._promoted.items()):
            m = masters.get(name)
            if m is None or (m.primary.ip, m.primary.port) == (p.new_ip, p.new_port):
                del self._promoted[name]  # the stored roles caught up (or the add-on is gone)
                continue
            old = Node(p.old_ip, p.old_port)
            masters[name] = Master(name, m.app, Node(p.new_ip, p.new_port), (old,))
        self.view = FleetView(masters, view.epochs)
        self._refreshed_at = self.clock.monotonic()

    async def settled(self, name: str) -> None:
        """Returns once `name` has no failover in flight (or after `hold_seconds`)."""
        hold = self._holds.get(name)
        if hold is None:
            return
        try:
            # Real time on purpose: bounds how long a real Sentinel client's socket waits for an answer.
            await asyncio.wait_for(hold.wait(), self.hold_seconds)
        except TimeoutError:
            log.warning(
                "sentinel: %s still switching after %.1f s; answering what is stored", name, self.hold_seconds
            )

    def _release(self, name: str) -> None:
        hold = self._holds.pop(name, None)
        if hold is not None:
            hold.set()

    async def fresh(self) -> None:
        """Catches up with what this scheduler committed, so an add-on created a moment ago is known.
        Takes the lock even when there seems to be nothing to read: a batch being applied right now
        has moved the position but maybe not yet the view."""
        async with self._lock:
            while self.bus.last_sequence > self.position:
                if not await self._step():
                    return

    async def step(self) -> bool:
        """Reads and applies one batch of events; False when there was none."""
        async with self._lock:
            return await self._step()

    async def _step(self) -> bool:
        async with self.store.read() as tx:
            batch = await tx.events_after(self.position, "", "", BATCH)
        if not batch:
            if self.clock.monotonic() - self._refreshed_at >= self.refresh_seconds:
                await self.refresh()  # agents' advertised addresses change without an event
            return False
        self.position = batch[-1].sequence
        notices: list[SwitchNotice] = []
        for event in batch:
            if starts_hold(event) and event.addon not in self._holds:
                self._holds[event.addon] = asyncio.Event()
            promoted = switch_notice(event, FAILOVER)
            if promoted is not None:
                self._promoted[promoted.name] = promoted
            notice = switch_notice(event)
            if notice is not None:
                notices.append(notice)
                self.epochs[notice.name] = self.epochs.get(notice.name, 0) + 1
        # The view first, so that a client woken by the notice asks and gets the new primary.
        await self.refresh()
        for event in batch:
            if event.addon in self._promoted or switch_notice(event) is not None or event.type in ENDS_HOLD:
                self._release(event.addon)
        for notice in notices:
            log.info("sentinel: +switch-master %s", notice.payload)
            for listener in list(self.listeners):
                listener(notice)
        return True

    async def run(self) -> None:
        await follow(
            self.bus, self.step, lambda: self.position, self.poll_seconds, "sentinel",
            after_error=lambda: self.clock.sleep(1.0),
        )  # fmt: skip
