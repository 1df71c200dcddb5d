"""Assembles the scheduler: store, services, servicers, health and reflection on one gRPC server.

With TLS the server listens twice: `listen` for token-carrying clients (no client certificate asked),
`agent_listen` for agents, where a certificate signed by the CA is required. Without TLS (loopback
development) one plain-text port can serve both.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kvmaint.clock import Clock, SystemClock
from kvmaint.errors import InvalidArgument, Unavailable
from kvmaint.obs.metrics_http import MetricsServer, split_listen
from kvmaint.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    campaigns_pb2,
    campaigns_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    fleet_pb2,
    fleet_pb2_grpc,
    maintenance_pb2,
    maintenance_pb2_grpc,
)
from server.agents.hub import SCHEDULER_VERSION, AgentHub, AgentSession
from server.agents.placement import AgentPlacement
from server.agents.roles_batch import RolesBatch
from server.auth import TokenTable
from server.domain.planner import Limits
from server.driver.notices import MaintenanceNotices
from server.driver.planner import Planner
from server.driver.roles import hosts_roles
from server.driver.runner import DriverConfig, MaintenanceRunner
from server.notify.outbox import Outbox
from server.notify.sender import NotifyConfig, Sender
from server.replica import forward
from server.replica.forward import Forwarder, ForwardInterceptor, NoLeaderYet, SoleScheduler
from server.replica.leader import Leadership, Replica, default_replica_id
from server.replica.lease import LeaseTiming
from server.replica.work import LeaderWork
from server.rpc.campaign_servicer import CampaignServicer
from server.rpc.interceptors import ServiceInterceptor
from server.rpc.metering import MeteringInterceptor
from server.rpc.requests import RequestInterceptor
from server.rpc.servicers import EventServicer, FleetServicer, MaintenanceServicer
from server.sentinel.feed import SentinelFeed
from server.sentinel.server import SentinelServer
from server.service.bus import EventBus
from server.service.campaigns import CampaignService
from server.service.core import Context
from server.service.fleet import FleetService
from server.service.freezes import FreezeService
from server.service.maintenance import MaintenanceService
from server.statelock import StateLock
from server.storage import Store
from server.storage.pgnotify import EventListener
from server.storage.postgres import PostgresStore, is_postgres_url
from server.storage.select import AnyStore, store_for
from server.web.site import StatusSite

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    fleet_pb2.DESCRIPTOR.services_by_name["FleetService"].full_name,
    maintenance_pb2.DESCRIPTOR.services_by_name["MaintenanceService"].full_name,
    events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
    campaigns_pb2.DESCRIPTOR.services_by_name["CampaignService"].full_name,
    agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
)

# Many agents hold one stream each: do not let gRPC's defaults refuse them.
SERVER_OPTIONS = [
    ("grpc.max_concurrent_streams", 100_000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # A reconnect storm of thousands of agents queues many new calls at once; the defaults refuse them.
    ("grpc.server.max_pending_requests", 100_000),
    ("grpc.server.max_pending_requests_hard_limit", 100_000),
    # grpc.aio takes one new stream per event-loop pass; in a storm hellos wait in gRPC longer than its
    # 30 s default before cancelling them.
    ("grpc.server_max_unrequested_time_in_server", 300),
    # gRPC sets SO_REUSEPORT by default: a second scheduler on a busy port would start and share the
    # requests. Off, its bind fails at once.
    ("grpc.so_reuseport", 0),
]


@dataclass
class SchedulerConfig:
    listen: str = "127.0.0.1:50051"
    # A SQLite file, or a postgresql:// URL (server/storage/select.py).
    db: Path | str = Path(".kvmaint/state.db")
    tokens: TokenTable = field(default_factory=lambda: TokenTable({}))
    server_credentials: grpc.ServerCredentials | None = None
    agent_listen: str = ""
    agent_credentials: grpc.ServerCredentials | None = None
    driver: DriverConfig = field(default_factory=DriverConfig)
    tick_seconds: float = 5.0
    limits: Limits = field(default_factory=Limits)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    # HOST:PORT for the Sentinel-compatible discovery endpoint; empty: off.
    sentinel_listen: str = ""
    # HOST:PORT for Prometheus' /metrics; empty: not served.
    metrics_listen: str = ""
    # HOST:PORT for the read-only web status page; empty: not served.
    http_listen: str = ""
    # How a non-leader replica dials the leader's client address to relay calls (TLS: the CA).
    forward_credentials: grpc.ChannelCredentials | None = None
    # Tests only: who the forwarder believes leads (instead of the lease's Leadership).
    forward_leadership: forward.Leadership | None = None
    # Replicas (PostgreSQL only; server/replica/): the leader lease, this replica's id (default
    # host:pid) and the HOST:PORT other replicas, clients and agents should use for it (default: the
    # listen address, with this host's name for a wildcard host).
    lease_seconds: float = 5.0
    replica_id: str = ""
    advertise: str = ""


@dataclass
class Scheduler:
    server: grpc.aio.Server
    port: int
    agent_port: int
    store: AnyStore
    ctx: Context
    health: health.aio.HealthServicer
    fleet: FleetService
    maintenance: MaintenanceService
    hub: AgentHub
    runner: MaintenanceRunner
    planner: Planner
    registry: AgentRegistry
    leadership: Leadership
    lock: StateLock | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    forwarder: Forwarder | None = None
    sentinel: SentinelServer | None = None

    @property
    def sentinel_port(self) -> int:
        return self.sentinel.port if self.sentinel is not None else 0

    metrics_server: MetricsServer | None = None
    web: StatusSite | None = None
    events_listener: EventListener | None = None

    async def stop(self, grace: float = 5.0) -> None:
        for name in (*SERVICE_NAMES, ""):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.leadership.stop()  # hands the lease back: another replica takes over at once
        for task in self.tasks:
            task.cancel()
        if self.sentinel is not None:
            await self.sentinel.stop()
        await self.runner.close()
        if self.planner.notices is not None:
            await self.planner.notices.close()
        await self.server.stop(grace)
        if self.forwarder is not None:
            await self.forwarder.close()
        await self.registry.flush()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        if self.web is not None:
            await self.web.stop()
        self.ctx.obs.provider.shutdown()  # flushes the spans still queued for export
        await self.store.close()
        if self.lock:
            self.lock.release()


async def build_scheduler(config: SchedulerConfig, clock: Clock | None = None) -> Scheduler:
    # SQLite is one process (STATE.lock); on PostgreSQL replicas share the database and a lease elects
    # the one that acts (server/replica/).
    sqlite_file = not is_postgres_url(str(config.db)) and str(config.db) != ":memory:"
    lock = StateLock.acquire(Path(config.db)) if sqlite_file else None
    try:
        return await _build(config, clock, lock)
    except BaseException:
        if lock:
            lock.release()
        raise


async def _build(config: SchedulerConfig, clock: Clock | None, lock: StateLock | None) -> Scheduler:
    store = store_for(config.db)
    if isinstance(store, PostgresStore):
        store.stall_seconds = config.lease_seconds  # a frozen replica's transaction ends with its lease
    await store.open()
    try:
        return await _serve(config, clock, lock, store)
    except BaseException:
        await store.close()  # its thread would keep a failed start from exiting
        raise


async def _serve(
    config: SchedulerConfig, clock: Clock | None, lock: StateLock | None, store: AnyStore
) -> Scheduler:
    ctx = Context(
        store=store,
        clock=clock or SystemClock(),
        bus=EventBus(await store.last_sequence()),
        rng=random.Random(),
        notify=Outbox(email=config.notify.smtp.enabled, operator_email=config.notify.operator_email),
    )
    async with store.transaction() as tx:
        known_agents = await tx.list_agents()
    seen = AgentRegistry(store, ctx.clock, known_agents)

    hub = AgentHub(
        ctx.clock,
        require_certificates=config.agent_credentials is not None,
        require_agent_token=config.tokens.enabled,
        on_hello=seen.note,
        metrics=ctx.obs.metrics,
    )
    hub.advertised.update(known_agents)
    placement = AgentPlacement(hub, config.driver.command_timeout)
    # Hellos arriving together share one read of their roles (agents/roles_batch.py: a reconnect storm).
    hub.roles_source = RolesBatch(lambda hosts: hosts_roles(store, hosts, lambda key: _endpoint(hub, key)))
    runner = MaintenanceRunner(ctx, hub, config.driver)
    fleet = FleetService(ctx, placement)
    maint = MaintenanceService(ctx, runner, placement)
    notices = MaintenanceNotices(store, ctx.bus, hub)
    planner = Planner(ctx, runner, config.tick_seconds, config.limits, notices, placement)
    replicas = isinstance(store, PostgresStore)
    if config.lease_seconds <= 0:
        raise InvalidArgument.field("lease_seconds", "--lease-seconds must be more than 0.")
    timing = LeaseTiming.for_lease(config.lease_seconds)

    # Until the lease's Leadership exists (below, once the port is known) a replica relays nothing and
    # answers NO_LEADER to what it would relay; a scheduler alone on SQLite never relays.
    before: forward.Leadership = NoLeaderYet() if replicas else SoleScheduler()
    # A relayed call waits up to a takeover's length (the lease, then one renewal) for a leader.
    forwarder = Forwarder(
        before, ctx.clock, config.forward_credentials, settle_seconds=config.lease_seconds + 1.0
    )
    server = grpc.aio.server(
        interceptors=[
            MeteringInterceptor(ctx.obs.metrics),
            ServiceInterceptor(config.tokens),
            ForwardInterceptor(forwarder),  # after the token check
            RequestInterceptor(store, ctx.clock),  # innermost: a relayed write is recorded by the leader
        ],
        options=SERVER_OPTIONS,
    )
    fleet_servicer = FleetServicer(fleet, hub)
    fleet_pb2_grpc.add_FleetServiceServicer_to_server(fleet_servicer, server)
    maintenance_pb2_grpc.add_MaintenanceServiceServicer_to_server(
        MaintenanceServicer(maint, fleet, FreezeService(ctx)), server
    )
    events_pb2_grpc.add_EventServiceServicer_to_server(EventServicer(ctx), server)
    campaigns_pb2_grpc.add_CampaignServiceServicer_to_server(
        CampaignServicer(CampaignService(ctx, fleet.placement)), server
    )
    agent_pb2_grpc.add_AgentServiceServicer_to_server(hub, server)

    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = _bind(server, config.listen, config.server_credentials)
    agent_port = port
    if config.agent_listen:
        agent_port = _bind(server, config.agent_listen, config.agent_credentials)
    await server.start()
    replica = Replica(
        config.replica_id or default_replica_id(),
        *advertised(config, port, agent_port),
        SCHEDULER_VERSION,
    )
    leadership = Leadership(store, ctx.clock, replica, timing, single=not replicas)
    hub.leadership = leadership
    if replicas:
        hub.beat_seconds = timing.lease
    work = LeaderWork(
        store,
        ctx.clock,
        hub,
        runner,
        notices,
        {"planner": planner.run, "notify": Sender(ctx, config.notify).run},
        config.tick_seconds,
    )
    leadership.on_gain(work.start)
    leadership.on_lose(work.stop)
    for name in (*SERVICE_NAMES, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    scheduler = Scheduler(
        server,
        port,
        agent_port,
        store,
        ctx,
        health_servicer,
        fleet,
        maint,
        hub,
        runner,
        planner,
        seen,
        leadership,
        lock,
    )
    scheduler.forwarder = forwarder
    forwarder.replica = replica.id
    if config.forward_leadership is not None:
        forwarder.leadership = config.forward_leadership
    elif replicas:
        forwarder.leadership = leadership
    if config.metrics_listen:
        scheduler.metrics_server = MetricsServer(ctx.obs.metrics.registry, lambda: _refresh_metrics(ctx))
        await scheduler.metrics_server.start(config.metrics_listen)
    if config.http_listen:
        scheduler.web = StatusSite(ctx, hub, config.tokens, forwarder)
        await scheduler.web.start(config.http_listen)
    if replicas:
        assert isinstance(store, PostgresStore)
        # Other replicas' commits wake this one's bus (LISTEN/NOTIFY, server/storage/pgnotify.py).
        listener = EventListener(store.dsn, ctx.bus.publish, ctx.clock)
        scheduler.events_listener = listener
        scheduler.tasks.append(asyncio.create_task(listener.run(), name="events-listener"))
    if not replicas:
        await leadership.run_until_leading()  # at once on SQLite: in progress maintenances resume now
    scheduler.tasks.append(asyncio.create_task(leadership.run(), name="leadership"))
    if replicas:
        scheduler.tasks.append(asyncio.create_task(hub.beat(), name="leader-beats"))
    scheduler.tasks.append(asyncio.create_task(seen.run(), name="agent-registry"))
    if config.sentinel_listen:
        feed = SentinelFeed(store, ctx.bus, ctx.clock)
        await feed.start()
        scheduler.sentinel = SentinelServer(feed, config.tokens)
        await scheduler.sentinel.start(*split_listen(config.sentinel_listen))
        scheduler.tasks.append(asyncio.create_task(feed.run(), name="sentinel-feed"))
    return scheduler


def advertised(config: SchedulerConfig, port: int, agent_port: int) -> tuple[str, str]:
    """This replica's client API and agent addresses as others should dial them."""
    if config.advertise:
        host, sep, given = config.advertise.rpartition(":")
        if not sep or not host or not given.isdigit():
            raise InvalidArgument.field("advertise", f"--advertise {config.advertise!r} is not HOST:PORT.")
        return config.advertise, f"{host}:{agent_port if config.agent_listen else given}"
    host = config.listen.rpartition(":")[0] or "127.0.0.1"
    if host in ("0.0.0.0", "[::]", "::"):
        host = socket.gethostname()
    return f"{host}:{port}", f"{host}:{agent_port}"


def _endpoint(hub: AgentHub, key: str) -> tuple[str, int]:
    host, _, port = key.rpartition(":")
    return hub.endpoint_host(host), int(port)


async def _refresh_metrics(ctx: Context) -> None:
    """The figures that are facts of the database, read at scrape time."""
    async with ctx.store.read() as tx:
        ctx.obs.metrics.set_maintenances(await tx.maintenance_counts())
        ctx.obs.metrics.set_backlog(await tx.outbox_backlog())


class AgentRegistry:
    """Remembers agents' advertised hosts in the database. A host seen for the first time, or under a new
    address, is written at once (config vars and commands name servers by it, and a restart must not
    forget it); repeated hellos, as in a reconnect storm of thousands, are written at most once a second
    in one transaction, so they never queue thousands of fsynced writes ahead of the API."""

    def __init__(
        self, store: Store, clock: Clock, known: dict[str, str] | None = None, interval: float = 1.0
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self.known = dict(known or {})
        self._dirty: dict[str, AgentSession] = {}
        self._urgent = asyncio.Event()

    def note(self, session: AgentSession) -> None:
        self._dirty[session.host_id] = session
        if self.known.get(session.host_id) != session.advertise_host:
            self._urgent.set()

    async def flush(self) -> int:
        self._urgent.clear()
        batch, self._dirty = self._dirty, {}
        if batch:
            now = self.clock.now()
            try:
                async with self.store.transaction() as tx:  # one statement: a storm's 10,000 rows
                    await tx.upsert_agents(
                        [(s.host_id, s.advertise_host, s.agent_version, now) for s in batch.values()]
                    )
            except BaseException:
                for host, session in batch.items():  # newer hellos win; the rest is retried
                    self._dirty.setdefault(host, session)
                raise
            self.known.update({h: s.advertise_host for h, s in batch.items()})
        return len(batch)

    async def run(self) -> None:
        while True:
            try:
                await self.flush()
            except Exception:
                log.exception("could not record agents")
            urgent = asyncio.ensure_future(self._urgent.wait())
            tick = asyncio.ensure_future(self.clock.sleep(self.interval))
            try:
                await asyncio.wait([urgent, tick], return_when=asyncio.FIRST_COMPLETED)
            finally:
                urgent.cancel()
                tick.cancel()


def _bind(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    try:
        port: int = (
            server.add_secure_port(address, credentials)
            if credentials is not None
            else server.add_insecure_port(address)
        )
    except RuntimeError:  # grpc's only sign of a failed bind; the reason is in its own log line
        port = 0
    if port == 0:
        raise Unavailable(
            f"cannot listen on {address}: the address is in use (another kvmaint-scheduler?) "
            "or not on this host."
        )
    return port
