"""Serves the status page (aiohttp, read-only) behind the scheduler's bearer tokens.

With tokens configured, a browser logs in once with a form: the token is kept in an HttpOnly,
SameSite=Strict cookie and checked on every request like a gRPC call's bearer token (scripts may send
`Authorization: Bearer` instead). An app token sees only its own app; the agents page is for operators.

What agents report (which are connected, each server's role, build and state) lives in the leader's hub
only (agents hold their streams with the leader). On a replica that does not lead, the agents page and
an add-on's servers are relayed to the leader as the gRPC API relays them (server/replica/forward.py):
`ListAgents` (operators), or `GetAddonInfo` for an app token (its add-on's servers' builds and the
add-on's status, as an app token may read them), with the page's own token, so the leader checks it
again. Without a leader to ask, the page says so instead of showing an empty panel.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from kvmaint.errors import KvmaintError
from kvmaint.obs.metrics_http import Listener
from kvmaint.v1 import agent_pb2
from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import maintenance_pb2 as mpb
from server.agents.hub import AgentHub
from server.auth import Principal, TokenTable
from server.domain.models import Addon, Maintenance, Role
from server.replica.forward import Forwarder
from server.service.core import Context
from server.web import calendar, pages

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
COOKIE = "kvmaint_token"
MAX_ROWS = 200
PAGE = 500
# How often the running page is refreshed when no event arrives (elapsed time, standby lag).
LIVE_SECONDS = 1.0
# How long a page waits for the leader's answer on a replica that does not lead.
RELAY_SECONDS = 10.0
_FLEET = "/kvmaint.v1.FleetService/"
_MAINT = "/kvmaint.v1.MaintenanceService/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRINCIPAL = "kvmaint.principal"  # a plain key: web.RequestKey needs aiohttp 3.12, the floor is 3.9


def _who(p: Principal, tokens: TokenTable) -> str:
    if not tokens.enabled:
        return ""
    return "operator" if p.is_operator else f"app {p.app}"


class StatusSite(Listener):
    what = "status page"

    def __init__(
        self, ctx: Context, hub: AgentHub, tokens: TokenTable, forwarder: Forwarder | None = None
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.hub = hub
        self.tokens = tokens
        self.forwarder = forwarder  # None: alone (SQLite), always the leader

    # --- what the leader's agents report -------------------------------------------------------
    def _relaying(self) -> Forwarder | None:
        """The forwarder when this replica does not lead (the agents' reports are the leader's)."""
        f = self.forwarder
        return f if f is not None and not f.leadership.is_leader else None

    @staticmethod
    def _token_metadata(request: web.Request) -> tuple[tuple[str, str], ...]:
        header = request.headers.get("Authorization")
        if header is None and COOKIE in request.cookies:
            header = f"Bearer {request.cookies[COOKIE]}"
        return (("authorization", header),) if header else ()

    async def _ask_leader(self, request: web.Request, method: str, message: Any) -> bytes:
        f = self._relaying()
        assert f is not None
        return await f.call(method, message.SerializeToString(), self._token_metadata(request), RELAY_SECONDS)

    def _unanswered(self, title: str, err: Exception, who: str) -> web.Response:
        text = err.details() if isinstance(err, grpc.aio.AioRpcError) else str(err)
        return self._html(
            pages.message(title, f"This replica does not lead and the leader did not answer: {text}", who),
            503,
        )

    # --- auth ---------------------------------------------------------------------------------
    def _principal(self, request: web.Request) -> Principal | None:
        header = request.headers.get("Authorization")
        if header is None and COOKIE in request.cookies:
            header = f"Bearer {request.cookies[COOKIE]}"
        try:
            principal = self.tokens.authenticate(header)
        except KvmaintError:
            return None
        return None if principal.is_agent else principal  # an agent's token is for its stream only

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in ("/login", "/logout") or request.path.startswith("/static/"):
            return await handler(request)
        principal = self._principal(request)
        if principal is None:
            if request.path.endswith("/events"):
                raise web.HTTPUnauthorized(text="log in first")
            raise web.HTTPSeeOther(f"/login?next={pages.q(request.path_qs)}")
        request[PRINCIPAL] = principal
        return await handler(request)

    async def _login_form(self, request: web.Request) -> web.Response:
        return self._html(pages.login(next_path=_safe_next(request.query.get("next", "/"))))

    async def _login(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = str(form.get("token", "")).strip()
        next_path = _safe_next(str(form.get("next", "/")))
        try:
            if self.tokens.authenticate(f"Bearer {token}").is_agent:
                return self._html(pages.login("An agent token cannot open the status page.", next_path), 401)
        except KvmaintError as err:
            return self._html(pages.login(str(err), next_path), status=401)
        response = web.HTTPSeeOther(next_path)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path="/",
            max_age=12 * 3600,
        )
        raise response

    async def _logout(self, request: web.Request) -> web.Response:
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        raise response

    # --- pages --------------------------------------------------------------------------------
    @staticmethod
    def _html(text: str, status: int = 200) -> web.Response:
        return web.Response(
            text=text,
            status=status,
            content_type="text/html",
            headers={
                # Scripts and styles from /static/ only: nothing inline runs, whatever a value holds.
                "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff",
            },
        )

    def _scope(self, request: web.Request) -> tuple[Principal, str | None]:
        """The principal and the app it may see (None: every app; an operator may filter with ?app=)."""
        p: Principal = request[PRINCIPAL]
        if not p.is_operator:
            return p, p.app
        return p, request.query.get("app") or None

    async def _calendar(self, request: web.Request) -> web.Response:
        p, app = self._scope(request)
        now = self.ctx.clock.now()
        async with self.ctx.store.read() as tx:
            addons = await tx.list_addons(app, "", MAX_ROWS + 1)
            active = [m for a in addons[:MAX_ROWS] if (m := await tx.active_maintenance(a.name)) is not None]
            freezes = [f for f in await tx.list_freezes(app, now) if not app or f.applies_to(app)]
            memberships = await tx.campaign_memberships([a.name for a in addons[:MAX_ROWS]])
        waves = {member.addon: (c, member) for c, member in memberships}
        cal = calendar.build(now, addons[:MAX_ROWS], active, freezes, campaigns=waves)
        more = len(addons) - MAX_ROWS if len(addons) > MAX_ROWS else 0
        return self._html(pages.calendar(cal, _who(p, self.tokens), more))

    async def running_rows(self, app: str | None) -> list[dict[str, str]]:
        now = self.ctx.clock.now()
        async with self.ctx.store.read() as tx:
            running = await tx.in_progress_maintenances()
        rows = []
        for m in sorted(running, key=lambda m: (m.started_at or m.created_at, m.id)):
            if app and m.app != app:
                continue
            lag, note = self.ctx.progress.get(m.id, (-1, ""))
            elapsed = int((now - m.started_at).total_seconds()) if m.started_at else 0
            rows.append(
                {
                    "id": m.id,
                    "addon": m.addon,
                    "app": m.app,
                    "status": m.status.value,
                    "step": m.current_step or "—",
                    "lag": f"{lag} bytes" if lag >= 0 else "—",
                    "elapsed": f"{elapsed // 60}:{elapsed % 60:02d}",
                    "note": note,
                }
            )
        return rows

    async def _running(self, request: web.Request) -> web.Response:
        p, app = self._scope(request)
        return self._html(pages.running(await self.running_rows(app), _who(p, self.tokens)))

    async def _running_events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: a snapshot of the running maintenances at once, after every committed
        event (a step started or finished), and every second for elapsed time and lag."""
        _, app = self._scope(request)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        seen = self.ctx.bus.last_sequence
        try:
            while True:
                rows = await self.running_rows(app)
                at = self.ctx.clock.now().astimezone(UTC).strftime("%H:%M:%S UTC")
                payload = json.dumps({"running": rows, "at": at, "sequence": seen})
                await response.write(f"data: {payload}\n\n".encode())
                await self.ctx.bus.wait_beyond(seen, LIVE_SECONDS)
                seen = self.ctx.bus.last_sequence
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    async def _addon(self, request: web.Request) -> web.Response:
        p: Principal = request[PRINCIPAL]
        name = request.match_info["name"]
        who = _who(p, self.tokens)
        async with self.ctx.store.read() as tx:
            addon = await tx.get_addon(name)
            if addon is None or (not p.is_operator and addon.app != p.app):
                # The same answer whether it exists or not: an app token learns nothing of others.
                return self._html(
                    pages.message("Not found", f"No add-on {name} that this token may see.", who), 404
                )
            history = await tx.latest_maintenances(name, 20)
            active = await tx.active_maintenance(name)
        try:
            servers = await self._servers(request, p, addon)
        except (KvmaintError, grpc.aio.AioRpcError) as err:
            return self._unanswered(addon.name, err, who)
        ended = [m for m in history if m.status.ended]
        return self._html(pages.addon_page(addon, servers, ended, _active(active), who))

    async def _agents(self, request: web.Request) -> web.Response:
        p: Principal = request[PRINCIPAL]
        who = _who(p, self.tokens)
        if not p.is_operator:
            return self._html(pages.message("Agents", "Only an operator token may see the agents.", who), 403)
        if self._relaying() is not None:
            try:
                got = await self._ask_leader(request, _FLEET + "ListAgents", fpb.ListAgentsRequest())
            except (KvmaintError, grpc.aio.AioRpcError) as err:
                return self._unanswered("Agents", err, who)
            return self._html(pages.agents(_relayed_agent_rows(fpb.ListAgentsResponse.FromString(got)), who))
        rows = [
            (
                host,
                address,
                version,
                connected,
                [(s.port, _ROLES.get(s.role, s.role), _build_of(s), s.reachable) for s in servers],
            )
            for host, address, version, connected, servers in self.hub.describe()
        ]
        return self._html(pages.agents(rows, who))

    async def _servers(
        self, request: web.Request, p: Principal, addon: Addon
    ) -> list[tuple[str, str, str, str]]:
        """(endpoint, role, build, state) of each of the add-on's servers, as the leader's agents report."""
        if self._relaying() is None:
            statuses = {(s.host, s.port): self.hub.server_status(s.host, s.port) for s in addon.servers}
            rows = []
            for s in addon.servers:
                status = statuses[(s.host, s.port)]
                build = _build_of(status) if status is not None else ""
                state = "unknown (agent not connected)"
                if status is not None:
                    state = "up" if status.reachable else f"down: {status.error}"
                rows.append(
                    (f"{self.hub.endpoint_host(s.host)}:{s.port} ({s.host})", _role(s.role), build, state)
                )
            return rows
        if p.is_operator:
            got = fpb.ListAgentsResponse.FromString(
                await self._ask_leader(request, _FLEET + "ListAgents", fpb.ListAgentsRequest())
            )
            agents = {a.host_id: a for a in got.agents}
            rows = []
            for s in addon.servers:
                agent = agents.get(s.host)
                server = next((x for x in agent.servers if x.port == s.port), None) if agent else None
                build = _relayed_build(server.build, server.version) if server is not None else ""
                state = "unknown (agent not connected)"
                if agent is not None and agent.connected and server is not None:
                    state = "up" if server.reachable else "down"
                host = agent.advertise_host if agent is not None else self.hub.endpoint_host(s.host)
                rows.append((f"{host}:{s.port} ({s.host})", _role(s.role), build, state))
            return rows
        # An app token may not list agents: its add-on's servers as GetAddonInfo gives them.
        info = mpb.GetAddonInfoResponse.FromString(
            await self._ask_leader(
                request, _MAINT + "GetAddonInfo", mpb.GetAddonInfoRequest(app=addon.app, addon=addon.name)
            )
        )
        endpoints = {(x.address.host, x.address.port): x for x in info.addon.servers}
        rows = []
        for s in addon.servers:
            x = endpoints.get((s.host, s.port))
            endpoint = (
                x.endpoint if x is not None and x.endpoint else f"{self.hub.endpoint_host(s.host)}:{s.port}"
            )
            build = _relayed_build(x.build, x.version) if x is not None else ""
            rows.append((f"{endpoint} ({s.host})", _role(s.role), build, f"add-on {info.status}"))
        return rows

    # --- lifecycle ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/", self._calendar)
        app.router.add_get("/login", self._login_form)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)
        app.router.add_get("/running", self._running)
        app.router.add_get("/running/events", self._running_events)
        app.router.add_get("/addons/{name}", self._addon)
        app.router.add_get("/agents", self._agents)
        app.router.add_static("/static/", STATIC)
        return app


_ROLES = {"master": "primary", "slave": "replica"}  # INFO's words, as the rest of kvmaint says them


def _build_of(s: agent_pb2.RedisServerStatus) -> str:
    """The agent's build name and the version INFO reports, e.g. "valkey-8.1.8 (8.1.8)"."""
    version = s.version or s.redis_version
    return f"{s.build} ({version})" if s.build else version


def _role(role: Role) -> str:
    return {Role.PRIMARY: "primary", Role.STANDBY: "standby", Role.HIDDEN_STANDBY: "hidden standby"}[role]


def _relayed_build(build: str, version: str) -> str:
    return f"{build} ({version})" if build else version


def _relayed_agent_rows(
    resp: fpb.ListAgentsResponse,
) -> list[tuple[str, str, str, bool, list[tuple[int, str, str, bool]]]]:
    """The agents page's rows from the leader's ListAgents, as `hub.describe()` gives them there."""
    return [
        (
            a.host_id,
            a.advertise_host,
            a.agent_version,
            a.connected,
            [
                (s.port, _ROLES.get(s.role, s.role), _relayed_build(s.build, s.version), s.reachable)
                for s in a.servers
            ],
        )
        for a in resp.agents
    ]


def _active(m: Maintenance | None) -> Maintenance | None:
    return m if m is not None and m.status.active else None


def _safe_next(path: str) -> str:
    """Only a local path: the login form must not redirect anywhere else."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"
