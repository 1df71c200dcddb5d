"""Operators' fleet management: apps, add-ons, config vars and maintenance campaigns."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from kvmaint.clock import iso
from kvmaint.errors import AlreadyExists, ErrorReason, FailedPrecondition, InvalidArgument, Resource
from kvmaint.redact import redact_url
from server.domain import builds, credentials, lifecycle, names, requests
from server.domain.builds import HostBuild, Running
from server.domain.credentials import AddonCredentials
from server.domain.freezes import Freeze
from server.domain.health import Observation
from server.domain.models import (
    Addon,
    App,
    Event,
    EventType,
    HistoryEntry,
    Maintenance,
    Method,
    Placed,
    Reason,
    Role,
    ServerRef,
    Status,
)
from server.domain.planning import DEFAULT_REQUIRED_BY, Slot, avoid_freezes, initial_slot
from server.domain.plans import parse_plan
from server.domain.windows import random_default_window
from server.service import filing, paging
from server.service.core import Context, Subject, Write, event_for, get_app


class Placement(Protocol):
    """Chooses and provisions servers for a new add-on (the agents' part)."""

    async def place(
        self, addon_name: str, with_standby: bool, creds: AddonCredentials | None = None
    ) -> Placed: ...

    async def adopt(self, servers: tuple[ServerRef, ...]) -> None:
        """Makes a registered standby replicate from its primary if it does not already."""
        ...

    def endpoint(self, server: ServerRef) -> str:
        """host:port where applications reach a server."""
        ...

    def host_builds(self) -> list[HostBuild]:
        """The builds every connected host reported."""
        ...

    def running(self, server: ServerRef) -> Running | None:
        """What a server runs, as its agent last reported."""
        ...

    def observe(self, server: ServerRef) -> Observation:
        """A server as its agent last reported it (up, role, link, lag)."""
        ...

    async def roles_changed(self, hosts: set[str]) -> None:
        """The record's roles on these hosts changed (committed): tell their agents' keepers."""
        ...

    async def refresh(self, hosts: set[str]) -> None:
        """Asks these hosts' agents for fresh reports and waits a little for them."""
        ...

    def running_servers(self) -> dict[str, Running]:
        """What every server runs, by host:port, as the agents last reported."""
        ...


class NoPlacement:
    async def place(
        self, addon_name: str, with_standby: bool, creds: AddonCredentials | None = None
    ) -> Placed:
        raise FailedPrecondition(
            "No agent is connected to place the servers on: start kvmaint-agent on the database hosts, "
            "or register existing servers with --primary HOST:PORT and --standby HOST:PORT.",
            reason=ErrorReason.NO_AGENT_AVAILABLE,
        )

    async def adopt(self, servers: tuple[ServerRef, ...]) -> None:
        return None

    def endpoint(self, server: ServerRef) -> str:
        return server.key

    def host_builds(self) -> list[HostBuild]:
        return []

    def running(self, server: ServerRef) -> Running | None:
        return None

    def observe(self, server: ServerRef) -> Observation:
        return Observation(connected=False)

    async def roles_changed(self, hosts: set[str]) -> None:
        return None

    async def refresh(self, hosts: set[str]) -> None:
        return None

    def running_servers(self) -> dict[str, Running]:
        return {}


class FleetService:
    def __init__(self, ctx: Context, placement: Placement | None = None) -> None:
        self.ctx = ctx
        self.placement: Placement = placement or NoPlacement()
        self.filings = filing.Filings()

    async def create_app(self, name: str, owner_email: str) -> App:
        names.check_app_name(name, "name")
        names.check_email(owner_email)
        app = App(name, owner_email, False, self.ctx.clock.now())
        async with self.ctx.write() as w:
            existing = await w.tx.get_app(name)
            if existing is not None and requests.replaying() and existing.owner_email == owner_email:
                return existing  # this request's own committed attempt made it (domain/requests.py)
            if existing is not None:
                raise AlreadyExists(
                    f"The app name {name} is already taken.",
                    reason=ErrorReason.APP_ALREADY_EXISTS,
                    resource=Resource("App", name),
                )
            await w.tx.insert_app(app)
            await w.emit(EventType.APP_CREATED, self.ctx, name, message=f"Created {name}")
        return app

    async def list_apps(self, size: int, token: str) -> tuple[list[App], str]:
        limit = paging.page_size(size)
        after = paging.decode("apps", token)
        async with self.ctx.store.read() as tx:
            apps = await tx.list_apps(after, limit + 1)
        more = len(apps) > limit
        apps = apps[:limit]
        return apps, paging.encode("apps", apps[-1].name) if more else ""

    async def get_app(self, name: str) -> App:
        async with self.ctx.store.read() as tx:
            return await get_app(tx, name)

    async def delete_app(self, name: str) -> None:
        hosts: set[str] = set()
        async with self.ctx.write() as w:
            if requests.replaying() and await w.tx.get_app(name) is None:
                return  # this request's own committed attempt destroyed it (domain/requests.py)
            await get_app(w.tx, name)
            for addon in await w.tx.list_addons(name, "", 100000):
                hosts |= {s.host for s in addon.servers}
                active = await w.tx.active_maintenance(addon.name)
                if active and active.status.in_progress:
                    raise FailedPrecondition(
                        f"Cannot destroy {name}: add-on {addon.name} is under maintenance right now.",
                        reason=ErrorReason.ADDON_UNDER_MAINTENANCE,
                        resource=Resource("Addon", addon.name, f"apps/{name}"),
                    )
                if active:
                    await self._cancel(w, active, f"app {name} was destroyed")
                await w.tx.delete_addon(addon.name)
            await w.tx.delete_app(name)
            await w.emit(EventType.APP_DELETED, self.ctx, name, message=f"Destroyed {name}")
        await self.placement.roles_changed(hosts)

    async def _cancel(self, w: Write, m: Maintenance, why: str) -> None:
        now = self.ctx.clock.now()
        await w.tx.update_maintenance(lifecycle.cancel(m, now))
        await w.tx.add_history(m.id, HistoryEntry(now, Status.CANCELED, "", f"Canceled: {why}"))
        await w.emit(EventType.MAINTENANCE_CANCELED, self.ctx, m.app, m.addon, m.id, f"Canceled: {why}")

    async def set_maintenance_mode(self, name: str, enabled: bool) -> App:
        async with self.ctx.write() as w:
            app = await get_app(w.tx, name)
            if app.maintenance_mode != enabled:
                app = replace(app, maintenance_mode=enabled)
                await w.tx.update_app(app)
                state = "on" if enabled else "off"
                await w.emit(
                    EventType.MAINTENANCE_MODE_CHANGED,
                    self.ctx,
                    name,
                    message=f"Maintenance mode {state} for {name}",
                    maintenance_mode=state,
                )
        return app

    async def create_addon(
        self,
        app_name: str,
        plan_text: str,
        name: str,
        attachments: list[str],
        primary: ServerRef | None,
        standby: ServerRef | None,
    ) -> Addon:
        replay = requests.replaying()
        if replay is not None and replay.replay_key:
            # This request's own committed attempt created it: that add-on, not a second one.
            async with self.ctx.store.read() as tx:
                made = await tx.get_addon(replay.replay_key)
            if made is not None and made.app == app_name:
                return made
        plan = parse_plan(plan_text)
        if name:
            names.check_addon_name(name)
        attachments = attachments or ["REDIS_URL"]
        if len(attachments) > 20:
            raise InvalidArgument.field("attachments", "At most 20 attachments per add-on.")
        for var in attachments:
            names.check_config_var(var)
        if len(set(attachments)) != len(attachments):
            raise InvalidArgument.field("attachments", "Attachment names must be distinct.")
        for ref, field in ((primary, "primary"), (standby, "standby")):
            if ref is not None:
                names.check_host(ref.host, f"{field}.host")
                names.check_port(ref.port, f"{field}.port")
        if standby is not None and primary is None:
            raise InvalidArgument.field("primary", "A --standby needs a --primary.")
        if standby is not None and not plan.has_standby:
            raise FailedPrecondition(
                f"A {plan.name} plan has no HA standby: drop --standby.",
                reason=ErrorReason.PLAN_HAS_NO_STANDBY,
                metadata={"plan": plan.name},
            )
        if primary is not None and standby is not None and primary.key == standby.key:
            raise InvalidArgument.field("standby", "The standby must be another server than the primary.")
        if primary is not None and plan.has_standby and standby is None:
            raise InvalidArgument.field(
                "standby", f"A {plan.name} plan has an HA standby: pass --standby HOST:PORT too."
            )

        async with self.ctx.store.read() as tx:
            await get_app(tx, app_name)
            config = await tx.get_config(app_name)
            for var in attachments:
                if var in config:
                    raise AlreadyExists(
                        f"{var} is already set on {app_name}; choose another name with --as.",
                        reason=ErrorReason.ATTACHMENT_ALREADY_EXISTS,
                        resource=Resource("App", app_name),
                    )
            if name and await tx.get_addon(name):
                raise AlreadyExists(
                    f"An add-on named {name} already exists.",
                    reason=ErrorReason.ADDON_ALREADY_EXISTS,
                    resource=Resource("Addon", name),
                )
            # Through the addon_servers index: the fleet is not read to register one add-on.
            taken = await tx.server_owners([(r.host, r.port) for r in (primary, standby) if r is not None])
        for ref in (primary, standby):
            if ref is not None and ref.key in taken:
                raise AlreadyExists(
                    f"Server {ref.key} already belongs to another add-on.",
                    reason=ErrorReason.SERVER_ALREADY_ASSIGNED,
                )
        while not name:
            candidate = names.generate_addon_name(self.ctx.rng)
            async with self.ctx.store.read() as tx:
                if await tx.get_addon(candidate) is None:
                    name = candidate

        if primary is not None:
            servers: tuple[ServerRef, ...] = tuple(
                ServerRef(s.host, s.port, role)
                for s, role in ((primary, Role.PRIMARY), (standby, Role.STANDBY))
                if s is not None
            )
            await self.placement.adopt(servers)
            creds = None
        else:
            creds = credentials.generate(name)
            placed = await self.placement.place(name, plan.has_standby, creds)
            servers, creds = placed.servers, replace(creds, tls=placed.tls)

        addon = Addon(
            name=name,
            app=app_name,
            plan=plan.name,
            kind="heroku-redis",
            description=plan.description,
            attachments=tuple(attachments),
            created_at=self.ctx.clock.now(),
            servers=servers,
            window=random_default_window(self.ctx.rng) if plan.has_window else None,
        )
        url = credentials.redis_url(self.placement.endpoint(servers[0]), creds)
        async with self.ctx.write() as w:
            await get_app(w.tx, app_name)  # it may have gone while servers were placed
            if await w.tx.get_addon(name):
                raise AlreadyExists(
                    f"An add-on named {name} already exists.",
                    reason=ErrorReason.ADDON_ALREADY_EXISTS,
                    resource=Resource("Addon", name),
                )
            await w.tx.insert_addon(addon)
            requests.note(name)  # a retry of this request answers with this add-on
            if creds is not None:
                await w.tx.set_credentials(name, creds)
            await w.emit(
                EventType.ADDON_CREATED,
                self.ctx,
                app_name,
                name,
                message=f"Created {name} ({plan.name}) as {', '.join(attachments)}",
                plan=plan.name,
            )
            for var in attachments:
                await w.tx.set_config(app_name, var, url)
                await w.emit(
                    EventType.CONFIG_VAR_CHANGED,
                    self.ctx,
                    app_name,
                    name,
                    message=f"Set {var}",
                    key=var,
                    value=redact_url(url),
                )
        await self.placement.roles_changed({s.host for s in servers})
        return addon

    async def list_addons(self, app: str, size: int, token: str) -> tuple[list[Addon], str]:
        limit = paging.page_size(size)
        after = paging.decode("addons", token)
        async with self.ctx.store.read() as tx:
            if app:
                await get_app(tx, app)
            addons = await tx.list_addons(app or None, after, limit + 1)
        more = len(addons) > limit
        addons = addons[:limit]
        return addons, paging.encode("addons", addons[-1].name) if more else ""

    async def config_vars(self, app: str) -> dict[str, str]:
        async with self.ctx.store.read() as tx:
            await get_app(tx, app)
            return await tx.get_config(app)

    async def require_maintenance(
        self,
        *,
        addons: list[str] | None,
        plan: str | None,
        all_addons: bool,
        reason: Reason,
        method: Method,
        required_by: datetime | None,
        build: str = "",
        allow_downgrade: bool = False,
        request_id: str = "",
    ) -> filing.Filing:
        """Files in batches of `filing.BATCH` add-ons, a transaction each (service/filing.py says why)."""
        now = self.ctx.clock.now()
        deadline = required_by or now + DEFAULT_REQUIRED_BY
        if deadline <= now:
            raise InvalidArgument.field(
                "required_by", f"required_by {iso(deadline)} is not in the future (now {iso(now)})."
            )
        if deadline.year > now.year + 5:
            raise InvalidArgument.field("required_by", f"required_by {iso(deadline)} is too far away.")
        filing.check_request_id(request_id)
        plan_name = parse_plan(plan).name if plan else None
        if addons is None and plan_name is None and not all_addons:
            raise InvalidArgument.field("target", "Name add-ons, a plan, or all add-ons.")
        version = builds.target_version(build, self.placement.host_builds()) if build else ""
        named = await filing.check_named(self.ctx, addons) if addons is not None else None
        total = len(named) if named is not None else -1
        if build:
            # Refused before anything is filed when one add-on would be downgraded, as it always was.
            def check(page: list[Addon]) -> None:
                running = {s.key: r for a in page for s in a.servers if (r := self.placement.running(s))}
                for addon in page:
                    keys = [s.key for s in addon.servers]
                    builds.check_downgrade(addon.name, keys, running, build, version, allow_downgrade)

            if named is not None:
                check(named)
            else:
                total = 0
                async for page in filing.pages(self.ctx, plan_name):
                    check(page)
                    total += len(page)
        if total < 0:
            async with self.ctx.store.transaction() as tx:
                total = await tx.count_addons(plan_name)
        target = Target(build, version, allow_downgrade)
        record = self.filings.start(request_id or self.ctx.new_id())
        record.total = total

        def new(addon: Addon, freezes: list[Freeze]) -> Maintenance:
            return new_maintenance(self.ctx, addon, reason, method, deadline, freezes, target)

        def announce(subject: Subject) -> list[tuple[Event, Subject | None]]:
            return maintenance_events(self.ctx, subject, target)

        try:
            return await filing.run(self.ctx, record, new, announce, names=addons, plan=plan_name)
        except Exception as e:
            record.error = str(e)[:500]
            raise

    async def filed(self, filing_id: str, app: str, size: int, token: str) -> tuple[list[Maintenance], str]:
        """A page of what one RequireMaintenance filed: by its filing id, or the token its reply gave."""
        limit = paging.page_size(size)
        if token:
            filing_id, _, after = paging.decode(filing.FILED, token).partition("|")
        else:
            after = ""
        async with self.ctx.store.transaction() as tx:
            if app:
                await get_app(tx, app)
            items = await tx.filed_maintenances(filing_id, app, after, limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return items, paging.encode(filing.FILED, f"{filing_id}|{items[-1].id}") if more else ""


@dataclass(frozen=True)
class Target:
    """The build a maintenance installs; empty: each server's current one."""

    build: str = ""
    version: str = ""
    allow_downgrade: bool = False


async def file_maintenance(
    ctx: Context,
    w: Write,
    addon: Addon,
    reason: Reason,
    method: Method,
    required_by: datetime,
    target: Target = Target(),
    slot: Slot | None = None,
    why: str = "",
) -> Maintenance:
    """A new pending maintenance, scheduled into the add-on's next window before the deadline (or into
    `slot`, which a campaign planned); `why` says who filed it."""
    quiet = slot is not None or reason is Reason.EMERGENCY
    freezes = [] if quiet else await w.tx.list_freezes(addon.app, ctx.clock.now())
    m = new_maintenance(ctx, addon, reason, method, required_by, freezes, target, slot, why)
    await w.tx.insert_maintenance(m)
    await announce_maintenance(ctx, w, m, target, why)
    return m


def new_maintenance(
    ctx: Context,
    addon: Addon,
    reason: Reason,
    method: Method,
    required_by: datetime,
    freezes: list[Freeze],
    target: Target = Target(),
    slot: Slot | None = None,
    why: str = "",
) -> Maintenance:
    """The maintenance `file_maintenance` files, not yet written; `freezes` those of its app and fleet."""
    now = ctx.clock.now()
    onto = _onto(target, why)
    if slot is not None:
        pass
    elif reason is Reason.EMERGENCY:
        slot = Slot(now, "an emergency starts now, whatever the window or freezes")
    else:
        slot = avoid_freezes(
            initial_slot(addon.window, now, required_by),
            addon.window,
            required_by,
            freezes,
            addon.app,
            strict=False,
        )
    return Maintenance(
        id=ctx.new_id(),
        addon=addon.name,
        app=addon.app,
        reason=reason,
        method=method,
        status=Status.PENDING,
        required_by=required_by,
        created_at=now,
        scheduled_for=slot.at,
        window=addon.window,
        target_build=target.build,
        target_version=target.version,
        allow_downgrade=target.allow_downgrade,
        history=(
            HistoryEntry(now, Status.PENDING, "", f"Required by {iso(required_by)} ({reason.value}{onto})"),
            HistoryEntry(now, Status.PENDING, "", f"Scheduled for {iso(slot.at)}: {slot.explanation}"),
        ),
    )


def _onto(target: Target, why: str) -> str:
    onto = f", onto build {target.build} {target.version}" if target.build else ""
    return onto + (f"; {why}" if why else "")


async def announce_maintenance(
    ctx: Context, w: Write, m: Maintenance, target: Target, why: str = "", subject: Subject | None = None
) -> None:
    """The events of a filed maintenance (required, then scheduled), in the transaction that filed it;
    `subject`: `m` with what the caller read of it already."""
    await w.emit_all(ctx, maintenance_events(ctx, subject or Subject(m), target, why))


def maintenance_events(
    ctx: Context, about: Subject, target: Target, why: str = ""
) -> list[tuple[Event, Subject | None]]:
    """What `announce_maintenance` writes about `about.maintenance` (as just inserted: the notification
    hook need not read it again), for a caller that writes many at once."""
    m = about.maintenance
    onto = _onto(target, why)
    assert m.scheduled_for is not None
    explanation = m.history[-1].message.removeprefix(f"Scheduled for {iso(m.scheduled_for)}: ")
    return [
        event_for(
            ctx,
            about,
            EventType.MAINTENANCE_REQUIRED,
            f"Maintenance required by {iso(m.required_by)} ({m.reason.value}{onto})",
            reason=m.reason.value,
            required_by=iso(m.required_by),
            target_build=target.build,
            target_version=target.version,
        ),
        event_for(
            ctx,
            about,
            EventType.MAINTENANCE_SCHEDULED,
            f"Maintenance scheduled for {iso(m.scheduled_for)}: {explanation}",
            scheduled_for=iso(m.scheduled_for),
            required_by=iso(m.required_by),
            window=m.window.describe() if m.window else "",
        ),
    ]
