"""What every service needs: the store, the clock, the event bus, and a write helper that publishes
events only after their transaction commits."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol

from kvmaint.clock import Clock
from kvmaint.errors import ErrorReason, InvalidArgument, NotFound, Resource
from server.domain.models import Addon, App, Event, EventType, Maintenance
from server.notify.models import Webhook
from server.observe import Observability
from server.service.bus import EventBus
from server.storage import Store, Tx


@dataclass
class Write:
    """A transaction plus the events it will publish once committed."""

    tx: Tx
    sequences: list[int] = field(default_factory=list)

    async def emit(
        self,
        type: EventType,
        ctx: Context,
        app: str,
        addon: str = "",
        maintenance_id: str = "",
        message: str = "",
        **attributes: str,
    ) -> int:
        event = Event(0, type, ctx.clock.now(), app, addon, maintenance_id, message, dict(attributes))
        return await self._append(ctx, event, None)

    async def _append(self, ctx: Context, event: Event, subject: Subject | None) -> int:
        seq = await self.tx.append_event(event)
        self.sequences.append(seq)
        if ctx.notify is not None:
            await ctx.notify(self.tx, replace(event, sequence=seq), subject)
        return seq

    async def emit_all(self, ctx: Context, events: list[tuple[Event, Subject | None]]) -> list[int]:
        """Events written together, in order, in a statement or two on PostgreSQL (a fleet-wide filing
        writes two a maintenance, a reminder chunk 25), each with its `Subject`: what the transaction
        has read already, so the notification hook does not read it again."""
        seqs = await self.tx.append_events([e for e, _ in events])
        self.sequences += seqs
        if ctx.notify is not None:
            await ctx.notify.all(
                self.tx, [(replace(e, sequence=q), s) for (e, s), q in zip(events, seqs, strict=True)]
            )
        return seqs


def event_for(
    ctx: Context, subject: Subject, type: EventType, message: str = "", **attributes: str
) -> tuple[Event, Subject]:
    """An event about `subject.maintenance` to write with `Write.emit_all`."""
    m = subject.maintenance
    return Event(0, type, ctx.clock.now(), m.app, m.addon, m.id, message, dict(attributes)), subject


class Notifier(Protocol):
    """Called for every event inside the transaction that writes it, so what it enqueues (the
    notification outbox) commits or rolls back with the event itself."""

    async def __call__(self, tx: Tx, event: Event, subject: Subject | None = None) -> None: ...
    async def all(self, tx: Tx, events: list[tuple[Event, Subject | None]]) -> None: ...


@dataclass(frozen=True)
class Subject:
    """What an event is about, as the emitting transaction has it (read in that transaction, and not
    written since), so the notification hook need not read it again. A field left unset is read."""

    maintenance: Maintenance
    app: App | None = None
    addon: Addon | None = None
    webhooks: list[Webhook] | None = None


@dataclass
class Context:
    store: Store
    clock: Clock
    bus: EventBus
    rng: random.Random = field(default_factory=random.Random)
    notify: Notifier | None = None
    # Live figures of running maintenances (standby lag in bytes, a note), not persisted.
    progress: dict[str, tuple[int, str]] = field(default_factory=dict)
    # Metrics and traces of this scheduler (server/observe.py).
    obs: Observability = field(default_factory=Observability)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Write]:
        async with self.store.transaction() as tx:
            w = Write(tx)
            yield w
        if w.sequences:
            self.bus.publish(max(w.sequences))

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def addon_resource(addon: Addon) -> Resource:
    """An add-on as the resource an error is about (ResourceInfo, PreconditionFailure subject)."""
    return Resource("Addon", addon.name, f"apps/{addon.app}")


async def get_app(tx: Tx, name: str) -> App:
    if not name:
        raise InvalidArgument.field("app", "An app name is required (-a APP).")
    app = await tx.get_app(name)
    if app is None:
        raise NotFound(
            f"Couldn't find that app: {name[:80]}.",
            reason=ErrorReason.APP_NOT_FOUND,
            resource=Resource("App", name[:200]),
        )
    return app


async def resolve_addon(tx: Tx, app: str, ref: str) -> Addon:
    """An add-on by name, or by attachment name (REDIS_URL) within `app`, as Heroku resolves it."""
    if not ref:
        raise InvalidArgument.field("addon", "An add-on name or attachment name is required.")
    if len(ref) > 200:
        raise InvalidArgument.field("addon", "The add-on name is longer than 200 characters.")
    addon = await tx.get_addon(ref)
    if addon is not None:
        if app and addon.app != app:
            await get_app(tx, app)
            raise NotFound(
                f"Couldn't find add-on {ref} on app {app}.",
                reason=ErrorReason.ADDON_NOT_FOUND,
                resource=Resource("Addon", ref, f"apps/{app}"),
            )
        return addon
    if not app:
        raise NotFound(
            f"Couldn't find add-on {ref}; to use an attachment name such as REDIS_URL, "
            "name the app (-a APP).",
            reason=ErrorReason.ADDON_NOT_FOUND,
            resource=Resource("Addon", ref),
        )
    await get_app(tx, app)
    for candidate in await tx.list_addons(app, "", 1000):
        if ref in candidate.attachments:
            return candidate
    raise NotFound(
        f"Couldn't find add-on or attachment {ref} on app {app}.",
        reason=ErrorReason.ADDON_NOT_FOUND,
        resource=Resource("Addon", ref, f"apps/{app}"),
    )
