"""Thin servicers: authorise, convert, call the domain service, convert back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc

from kvmaint.errors import ErrorReason, FailedPrecondition, InvalidArgument, NotFound, Resource
from kvmaint.v1 import events_pb2, events_pb2_grpc, fleet_pb2, fleet_pb2_grpc, maintenance_pb2_grpc
from kvmaint.v1 import maintenance_pb2 as mpb
from server.agents.hub import AgentHub
from server.agents.placement import supervision_name
from server.auth import require_operator, scope_app
from server.domain.models import EventType, Role, ServerRef
from server.rpc import convert
from server.service import filing, paging
from server.service.core import Context, addon_resource
from server.service.fleet import FleetService
from server.service.freezes import FreezeService
from server.service.maintenance import MaintenanceService
from server.service.webhooks import WebhookService

Ctx: TypeAlias = grpc.aio.ServicerContext
MAX_TEXT = 200
STREAM_POLL_SECONDS = 1.0


def _text(value: str, field: str) -> str:
    if len(value) > MAX_TEXT:
        raise InvalidArgument.field(field, f"{field} is longer than {MAX_TEXT} characters.")
    return value


def _server(msg: object, has: bool, field: str) -> ServerRef | None:
    if not has:
        return None
    host = _text(getattr(msg, "host"), f"{field}.host")  # noqa: B009 - proto field
    return ServerRef(host, int(getattr(msg, "port")), Role.PRIMARY)  # noqa: B009


class FleetServicer(fleet_pb2_grpc.FleetServiceServicer):
    def __init__(self, fleet: FleetService, hub: AgentHub) -> None:
        self.fleet = fleet
        self.hub = hub
        self.webhooks = WebhookService(fleet.ctx)

    async def CreateWebhook(
        self, request: fleet_pb2.CreateWebhookRequest, context: Ctx
    ) -> fleet_pb2.CreateWebhookResponse:
        # url and secret have their own length rules (server/service/webhooks.py).
        hook, made = await self.webhooks.create(
            scope_app(_text(request.app, "app")), request.url, request.secret
        )
        return fleet_pb2.CreateWebhookResponse(webhook=convert.webhook(hook), secret=made)

    async def ListWebhooks(
        self, request: fleet_pb2.ListWebhooksRequest, context: Ctx
    ) -> fleet_pb2.ListWebhooksResponse:
        hooks = await self.webhooks.list(scope_app(_text(request.app, "app")))
        return fleet_pb2.ListWebhooksResponse(webhooks=[convert.webhook(h) for h in hooks])

    async def DeleteWebhook(
        self, request: fleet_pb2.DeleteWebhookRequest, context: Ctx
    ) -> fleet_pb2.DeleteWebhookResponse:
        await self.webhooks.delete(scope_app(_text(request.app, "app")), _text(request.id, "id"))
        return fleet_pb2.DeleteWebhookResponse()

    async def ListSchedulers(
        self, request: fleet_pb2.ListSchedulersRequest, context: Ctx
    ) -> fleet_pb2.ListSchedulersResponse:
        """Every replica's heartbeat row and the lease, from the database: the same on every replica."""
        require_operator("list the scheduler replicas")
        async with self.fleet.ctx.store.read() as tx:
            rows = await tx.list_schedulers()
            leader = await tx.get_leader()
        lead = leader.holder if leader is not None else ""
        term = leader.term if leader is not None else 0
        return fleet_pb2.ListSchedulersResponse(
            schedulers=[
                fleet_pb2.SchedulerInfo(
                    id=r.id,
                    address=r.address,
                    agent_address=r.agent_address,
                    leader=r.id == lead,
                    term=term if r.id == lead else 0,
                    start_time=convert.ts(r.started_at),
                    seen_time=convert.ts(r.seen_at),
                    version=r.version,
                )
                for r in rows
            ],
            term=term,
            now=convert.ts(self.fleet.ctx.clock.now()),
        )

    async def ListAgents(
        self, request: fleet_pb2.ListAgentsRequest, context: Ctx
    ) -> fleet_pb2.ListAgentsResponse:
        require_operator("list agents")
        return fleet_pb2.ListAgentsResponse(
            agents=[
                fleet_pb2.AgentInfo(
                    host_id=host,
                    advertise_host=advertised,
                    agent_version=version,
                    connected=connected,
                    servers=[
                        fleet_pb2.AgentServer(
                            port=s.port,
                            role=s.role,
                            reachable=s.reachable,
                            lag_bytes=self.hub.lag_bytes(s),
                            managed=s.managed,
                            build=s.build,
                            version=s.version,
                            supervision=supervision_name(s.supervision),
                            restarts=s.restarts,
                            supervision_detail=s.supervision_detail,
                        )
                        for s in servers
                    ],
                    builds=[
                        convert.server_build(b, i == 0) for i, b in enumerate(self.hub.builds_of(host) or ())
                    ],
                )
                for host, advertised, version, connected, servers in self.hub.describe()
            ]
        )

    async def CreateApp(
        self, request: fleet_pb2.CreateAppRequest, context: Ctx
    ) -> fleet_pb2.CreateAppResponse:
        require_operator("create apps")
        app = await self.fleet.create_app(
            _text(request.name, "name"), _text(request.owner_email, "owner_email")
        )
        return fleet_pb2.CreateAppResponse(app=convert.app(app))

    async def ListApps(self, request: fleet_pb2.ListAppsRequest, context: Ctx) -> fleet_pb2.ListAppsResponse:
        require_operator("list all apps")
        apps, token = await self.fleet.list_apps(request.page_size, _text(request.page_token, "page_token"))
        return fleet_pb2.ListAppsResponse(apps=[convert.app(a) for a in apps], next_page_token=token)

    async def GetApp(self, request: fleet_pb2.GetAppRequest, context: Ctx) -> fleet_pb2.GetAppResponse:
        app = await self.fleet.get_app(scope_app(_text(request.name, "name")))
        return fleet_pb2.GetAppResponse(app=convert.app(app))

    async def DeleteApp(
        self, request: fleet_pb2.DeleteAppRequest, context: Ctx
    ) -> fleet_pb2.DeleteAppResponse:
        require_operator("destroy apps")
        await self.fleet.delete_app(_text(request.name, "name"))
        return fleet_pb2.DeleteAppResponse()

    async def SetMaintenanceMode(
        self, request: fleet_pb2.SetMaintenanceModeRequest, context: Ctx
    ) -> fleet_pb2.SetMaintenanceModeResponse:
        app = await self.fleet.set_maintenance_mode(scope_app(_text(request.app, "app")), request.enabled)
        return fleet_pb2.SetMaintenanceModeResponse(app=convert.app(app))

    async def CreateAddon(
        self, request: fleet_pb2.CreateAddonRequest, context: Ctx
    ) -> fleet_pb2.CreateAddonResponse:
        require_operator("create add-ons")
        primary = _server(request.primary, request.HasField("primary"), "primary")
        standby = _server(request.standby, request.HasField("standby"), "standby")
        addon = await self.fleet.create_addon(
            _text(request.app, "app"),
            _text(request.plan, "plan"),
            _text(request.name, "name"),
            [_text(a, "attachments") for a in request.attachments],
            primary,
            standby,
        )
        return fleet_pb2.CreateAddonResponse(addon=convert.addon(addon, self.fleet.placement))

    async def ListAddons(
        self, request: fleet_pb2.ListAddonsRequest, context: Ctx
    ) -> fleet_pb2.ListAddonsResponse:
        addons, token = await self.fleet.list_addons(
            scope_app(_text(request.app, "app")), request.page_size, _text(request.page_token, "page_token")
        )
        return fleet_pb2.ListAddonsResponse(
            addons=[convert.addon(a, self.fleet.placement) for a in addons], next_page_token=token
        )

    async def GetConfigVars(
        self, request: fleet_pb2.GetConfigVarsRequest, context: Ctx
    ) -> fleet_pb2.GetConfigVarsResponse:
        config = await self.fleet.config_vars(scope_app(_text(request.app, "app")))
        return fleet_pb2.GetConfigVarsResponse(config_vars=config)

    async def WatchConfigVars(
        self, request: fleet_pb2.WatchConfigVarsRequest, context: Ctx
    ) -> AsyncIterator[fleet_pb2.WatchConfigVarsResponse]:
        app = scope_app(_text(request.app, "app"))
        ctx = self.fleet.ctx
        seen = ctx.bus.last_sequence
        config = await self.fleet.config_vars(app)
        yield fleet_pb2.WatchConfigVarsResponse(config_vars=config, sequence=0)
        while True:
            await ctx.bus.wait_beyond(seen, STREAM_POLL_SECONDS)
            latest = ctx.bus.last_sequence
            async with ctx.store.read() as tx:
                events = await tx.events_after(seen, app, "", 10_000)
            seen = max([latest, *(e.sequence for e in events)])
            changes = [e for e in events if e.type in (EventType.CONFIG_VAR_CHANGED, EventType.APP_DELETED)]
            if changes:
                if any(e.type is EventType.APP_DELETED for e in changes):
                    return
                config = await self.fleet.config_vars(app)
                yield fleet_pb2.WatchConfigVarsResponse(config_vars=config, sequence=changes[-1].sequence)

    async def RequireMaintenance(
        self, request: fleet_pb2.RequireMaintenanceRequest, context: Ctx
    ) -> fleet_pb2.RequireMaintenanceResponse:
        require_operator("require maintenance")
        target = request.WhichOneof("target")
        done = await self.fleet.require_maintenance(
            addons=[_text(n, "addons") for n in request.addons.names] if target == "addons" else None,
            plan=_text(request.plan, "plan") if target == "plan" else None,
            all_addons=target == "all" and request.all,
            reason=convert.reason_from(request.reason),
            method=convert.method_from(request.method),
            required_by=convert.from_ts(request.required_by, "required_by")
            if request.HasField("required_by")
            else None,
            build=_text(request.build, "build"),
            allow_downgrade=request.allow_downgrade,
            request_id=_text(request.request_id, "request_id"),
        )
        omitted = done.lists_omitted
        return fleet_pb2.RequireMaintenanceResponse(
            maintenances=[] if omitted else [convert.maintenance(m) for m in done.filed],
            already_pending=[] if omitted else done.already,
            filing=done.id,
            filed_count=done.filed_count,
            already_pending_count=done.already_count,
            skipped=_skipped(done),
            lists_omitted=omitted,
            maintenances_page_token=done.page_token(),
            batches=done.batches,
        )

    async def GetFiling(
        self, request: fleet_pb2.GetFilingRequest, context: Ctx
    ) -> fleet_pb2.GetFilingResponse:
        require_operator("follow a fleet-wide request")
        filing_id = _text(request.filing, "filing")
        if not filing_id:
            raise InvalidArgument.field(
                "filing", "filing is required (the request_id of a RequireMaintenance)."
            )
        f = self.fleet.filings.get(filing_id)
        if f is None:
            raise NotFound(
                f"This scheduler has no filing {filing_id[:100]} in memory: it ran on another replica, "
                "before a restart, or more than 100 filings ago; ListMaintenances(filing=...) lists what "
                "it filed.",
                resource=Resource("Filing", filing_id[:100]),
            )
        return fleet_pb2.GetFilingResponse(
            filing=f.id,
            targeted=f.total,
            filed_count=f.filed_count,
            already_pending_count=f.already_count,
            skipped=_skipped(f),
            batches=f.batches,
            done=f.done,
            error=f.error,
        )


def _skipped(f: filing.Filing) -> list[fleet_pb2.SkippedAddons]:
    return [
        fleet_pb2.SkippedAddons(reason=r, count=n, examples=f.skipped.get(r, []))
        for r, n in sorted(f.skipped_counts.items())
    ]


class MaintenanceServicer(maintenance_pb2_grpc.MaintenanceServiceServicer):
    def __init__(self, service: MaintenanceService, fleet: FleetService, freezes: FreezeService) -> None:
        self.service = service
        self.fleet = fleet
        self.freezes = freezes

    async def ListFreezes(self, request: mpb.ListFreezesRequest, context: Ctx) -> mpb.ListFreezesResponse:
        items = await self.freezes.list(scope_app(_text(request.app, "app")))
        return mpb.ListFreezesResponse(freezes=[convert.freeze(f) for f in items])

    async def CreateFreeze(self, request: mpb.CreateFreezeRequest, context: Ctx) -> mpb.CreateFreezeResponse:
        # An empty app means the fleet here, never "the token's own app".
        if not request.app:
            require_operator("freeze the whole fleet")
        app = scope_app(_text(request.app, "app"))
        for name in ("start_time", "end_time"):
            if not request.HasField(name):
                raise InvalidArgument.field(name, f"{name} is required (--from and --to).")
        f = await self.freezes.create(
            app,
            convert.from_ts(request.start_time, "start_time"),
            convert.from_ts(request.end_time, "end_time"),
            request.reason,
        )
        return mpb.CreateFreezeResponse(freeze=convert.freeze(f))

    async def DeleteFreeze(self, request: mpb.DeleteFreezeRequest, context: Ctx) -> mpb.DeleteFreezeResponse:
        if not request.app:
            require_operator("remove a fleet-wide freeze")
        app = scope_app(_text(request.app, "app"))
        await self.freezes.delete(app, _text(request.id, "id"))
        return mpb.DeleteFreezeResponse()

    def _args(self, request: object) -> tuple[str, str]:
        app = scope_app(_text(getattr(request, "app"), "app"))  # noqa: B009
        return app, _text(getattr(request, "addon"), "addon")  # noqa: B009

    async def GetAddonInfo(self, request: mpb.GetAddonInfoRequest, context: Ctx) -> mpb.GetAddonInfoResponse:
        info = await self.service.addon_info(*self._args(request))
        return mpb.GetAddonInfoResponse(
            addon=convert.addon(info.addon, self.fleet.placement),
            status=info.status,
            maintenance_required_by=convert.ts(info.required_by),
            maintenance=convert.required_by_text(info.required_by, info.overdue),
            overdue=info.overdue,
            status_reason=info.status_reason,
        )

    async def GetMaintenanceInfo(
        self, request: mpb.GetMaintenanceInfoRequest, context: Ctx
    ) -> mpb.GetMaintenanceInfoResponse:
        addon, m = await self.service.maintenance_info(*self._args(request))
        return mpb.GetMaintenanceInfoResponse(
            info=convert.maintenance_info(addon, m),
            maintenance=convert.maintenance(m) if m else None,
        )

    async def GetWindow(self, request: mpb.GetWindowRequest, context: Ctx) -> mpb.GetWindowResponse:
        _, state = await self.service.get_window(*self._args(request))
        return mpb.GetWindowResponse(state=convert.window_state(state))

    async def UpdateWindow(self, request: mpb.UpdateWindowRequest, context: Ctx) -> mpb.UpdateWindowResponse:
        _, state = await self.service.update_window(*self._args(request), request.day, request.time)
        return mpb.UpdateWindowResponse(state=convert.window_state(state))

    async def ScheduleMaintenance(
        self, request: mpb.ScheduleMaintenanceRequest, context: Ctx
    ) -> mpb.ScheduleMaintenanceResponse:
        which = request.WhichOneof("when")
        m, why = await self.service.schedule(
            *self._args(request),
            weeks=request.weeks if which == "weeks" else None,
            week=_text(request.week, "week") if which == "week" else None,
        )
        return mpb.ScheduleMaintenanceResponse(maintenance=convert.maintenance(m), explanation=why)

    async def RunMaintenance(
        self, request: mpb.RunMaintenanceRequest, context: Ctx
    ) -> mpb.RunMaintenanceResponse:
        m = await self.service.run(*self._args(request), _text(request.confirm, "confirm"))
        return mpb.RunMaintenanceResponse(maintenance=convert.maintenance(m))

    async def WaitMaintenance(
        self, request: mpb.WaitMaintenanceRequest, context: Ctx
    ) -> AsyncIterator[mpb.WaitMaintenanceResponse]:
        app, ref = self._args(request)
        ctx = self.service.ctx
        addon, m = await self.service.maintenance_info(app, ref)
        if m is None:
            raise FailedPrecondition(
                "No maintenance is required, so there is nothing to wait for.",
                reason=ErrorReason.MAINTENANCE_NOT_REQUIRED,
                resource=addon_resource(addon),
            )
        attempts = m.attempts
        if request.maintenance_id:
            # A resumed wait (server/replica/forward.py): the same maintenance, the first wait's bounds.
            resumed = await self.service.get(request.maintenance_id)
            if resumed is None or resumed.addon != addon.name:
                raise FailedPrecondition(
                    f"Maintenance {request.maintenance_id} is not one of {addon.name}'s.",
                    reason=ErrorReason.MAINTENANCE_NOT_REQUIRED,
                    resource=addon_resource(addon),
                )
            m, attempts = resumed, request.attempts_before
        while True:
            seen = ctx.bus.last_sequence
            current = await self.service.get(m.id)
            if current is None:
                return
            lag, note = ctx.progress.get(current.id, (-1, ""))
            started = current.started_at
            until = current.completed_at or ctx.clock.now()
            elapsed = (until - started).total_seconds() if started else 0.0
            yield mpb.WaitMaintenanceResponse(
                maintenance=convert.maintenance(current),
                standby_lag_bytes=lag,
                elapsed_seconds=max(0.0, elapsed),
                message=note or (current.history[-1].message if current.history else ""),
            )
            if current.status.ended or current.attempts > attempts:  # ended, or an attempt failed
                return
            await ctx.bus.wait_beyond(seen, STREAM_POLL_SECONDS)

    async def ListMaintenanceHistory(
        self, request: mpb.ListMaintenanceHistoryRequest, context: Ctx
    ) -> mpb.ListMaintenanceHistoryResponse:
        items = await self.service.history(*self._args(request), request.limit)
        return mpb.ListMaintenanceHistoryResponse(maintenances=[convert.maintenance(m) for m in items])

    async def ListMaintenances(
        self, request: mpb.ListMaintenancesRequest, context: Ctx
    ) -> mpb.ListMaintenancesResponse:
        token_in = _text(request.page_token, "page_token")
        filing_id = _text(request.filing, "filing")
        if filing_id or paging.kind_of(token_in) == filing.FILED:
            # What one RequireMaintenance filed: across apps, so an operator's (app narrows it).
            require_operator("list what a fleet-wide request filed")
            items, token = await self.fleet.filed(filing_id, request.app, request.page_size, token_in)
        else:
            items, token = await self.service.list(
                scope_app(_text(request.app, "app")), request.page_size, token_in
            )
        return mpb.ListMaintenancesResponse(
            maintenances=[convert.maintenance(m) for m in items], next_page_token=token
        )


class EventServicer(events_pb2_grpc.EventServiceServicer):
    BATCH = 500

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def StreamEvents(
        self, request: events_pb2.StreamEventsRequest, context: Ctx
    ) -> AsyncIterator[events_pb2.StreamEventsResponse]:
        app = scope_app(_text(request.app, "app"))
        addon = _text(request.addon, "addon")
        if request.since_sequence < 0:
            raise InvalidArgument.field("since_sequence", "since_sequence must not be negative.")
        position = request.since_sequence
        if app:
            async with self.ctx.store.read() as tx:
                # A deleted app's events stay readable; a name that never had any is a mistake.
                if await tx.get_app(app) is None and not await tx.events_after(0, app, "", 1):
                    raise NotFound(
                        f"Couldn't find that app: {app[:80]}.",
                        reason=ErrorReason.APP_NOT_FOUND,
                        resource=Resource("App", app[:200]),
                    )
        while True:
            checked = self.ctx.bus.last_sequence
            async with self.ctx.store.read() as tx:
                batch = await tx.events_after(position, app, addon, self.BATCH)
            for e in batch:
                yield events_pb2.StreamEventsResponse(event=convert.event(e))
            if batch:
                position = batch[-1].sequence
                continue
            if not request.follow:
                return
            position = max(position, checked)
            await self.ctx.bus.wait_beyond(checked, STREAM_POLL_SECONDS)
