"""Wires the agent together: data dir, result store, inventory, command runner and the scheduler stream."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import shutil
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from agent import __version__
from agent.builds import probe_all
from agent.commands import CommandRunner
from agent.config import AgentConfig
from agent.convert import build_to_proto, roles_from_proto, status_to_proto, supervision_to_proto
from agent.fence import TermFence
from agent.inventory import Inventory
from agent.keep import Assignment
from agent.keeper import Keeper
from agent.metrics import AgentMetrics
from agent.redisnode.version import binary_version, require_supported, running_version
from agent.results import ResultStore
from agent.stream import StreamClient, scheduler_targets
from agent.tls import channel_credentials, plaintext_warning
from kvmaint.clock import Clock, SystemClock, iso
from kvmaint.errors import KvmaintError
from kvmaint.obs import tracing
from kvmaint.obs.metrics_http import MetricsServer
from kvmaint.v1 import agent_pb2

log = logging.getLogger(__name__)

DRAIN_SECONDS = 30.0
RESULT_RETENTION = timedelta(days=30)


class Agent:
    def __init__(
        self, config: AgentConfig, clock: Clock | None = None, rand: Callable[[], float] = random.random
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        # How long a graceful stop waits for running commands (a failover is bounded by its timeout).
        self.drain_seconds = DRAIN_SECONDS
        for target in scheduler_targets(config.scheduler):
            warning = plaintext_warning(target, config.tls, config.insecure)  # raises when refused
            if warning:
                log.warning("%s", warning)
        credentials = channel_credentials(config.tls) if config.tls is not None else None
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = ResultStore(config.data_dir / "results.sqlite3")
        self.fence = TermFence(self.store)
        self.builds = probe_all(config.builds, config.redis_server, config.host_id)
        for build in self.builds:
            log.info("build %s: %s", build.describe(), build.path)
        self.inventory = Inventory(
            config.data_dir,
            self.builds,
            self.clock,
            bind_addresses(config),
            tls=config.redis_tls,
            adopted_access=config.adopted_access(),
        )
        if config.redis_tls is not None:
            log.info("managed servers listen with TLS only (certificate %s)", config.redis_tls.cert)
        self.metrics = AgentMetrics(config.host_id)
        self.tracing = tracing.provider("kvmaint-agent", attributes={"host.name": config.host_id})
        self.metrics_server: MetricsServer | None = None
        self.keeper = Keeper(self.inventory, self.clock)
        self.runner = CommandRunner(
            self.inventory,
            self.store,
            self.clock,
            metrics=self.metrics,
            tracer=self.tracing.get_tracer("kvmaint.agent"),
            fence=self.fence,
        )
        # Keepalive pings notice a scheduler host that vanished without closing the connection; the
        # scheduler permits one every 10 s.
        options: list[tuple[str, object]] = [
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
        ]
        if config.tls_server_name:
            options.append(("grpc.ssl_target_name_override", config.tls_server_name))
        self.stream = StreamClient(
            config.scheduler,
            self.runner,
            self.store,
            self.clock,
            hello=self.hello,
            heartbeat=self.heartbeat,
            heartbeat_seconds=config.heartbeat_seconds,
            credentials=credentials,
            channel_options=options,
            token=config.token,
            rand=rand,
            on_roles=self._on_roles,
            fence=self.fence,
        )
        self.runner.sink = self.stream
        self.keeper.on_change = self.stream.beat_now
        for port in self.inventory.discover():
            log.info("found managed server on port %d under %s", port, self.inventory.servers_dir)
        for port in config.adopt:
            self.inventory.adopt(port)
            log.info("adopted the server on port %d (monitor, replicate and fail over only)", port)

    async def hello(self) -> agent_pb2.AgentHello:
        return agent_pb2.AgentHello(
            host_id=self.config.host_id,
            agent_version=__version__,
            advertise_host=self.config.advertise_host,
            servers=await self._servers(),
            builds=[build_to_proto(b, b == self.builds.default) for b in self.builds],
        )

    async def heartbeat(self) -> agent_pb2.AgentHeartbeat:
        return agent_pb2.AgentHeartbeat(servers=await self._servers())

    async def _servers(self) -> list[agent_pb2.RedisServerStatus]:
        """Every server's status with what the keeper does with it."""
        out = []
        for status in await self.inventory.statuses():
            msg = status_to_proto(status)
            report = self.keeper.report(status.port)
            if report is not None:
                supervision_to_proto(msg, report)
            out.append(msg)
        return out

    def _on_roles(self, roles: agent_pb2.ServerRoles) -> None:
        assignments: dict[int, Assignment] = roles_from_proto(roles)
        first = not self.keeper.has_roles
        self.keeper.set_roles(assignments)
        if first:
            log.info("the scheduler's record gives roles to %d managed server(s) here", len(assignments))

    async def run(self, stop: asyncio.Event) -> None:
        """Runs until `stop` is set; the redis-servers keep running after the agent exits."""
        log.info(
            "kvmaint-agent %s for host %s: scheduler %s, data dir %s, %d server(s)",
            __version__,
            self.config.host_id,
            self.config.scheduler,
            self.config.data_dir,
            len(list(self.inventory)),
        )
        try:
            await self.check_versions()
        except KvmaintError:
            await self.close()
            raise
        for status in await self.inventory.statuses():
            if status.reachable:
                log.info("port %d: %s, offset %d", status.port, status.role, status.repl_offset)
            else:
                log.warning("port %d: unreachable (%s)", status.port, status.error)
        pruned = await self.store.prune(iso(self.clock.now() - RESULT_RETENTION))
        if pruned:
            log.info("pruned %d delivered result(s) older than %s", pruned, RESULT_RETENTION)
        if self.config.metrics_listen:
            self.metrics_server = MetricsServer(self.metrics.registry, self._refresh_metrics)
            await self.metrics_server.start(self.config.metrics_listen)
        stream_stop = asyncio.Event()
        stream = asyncio.create_task(self.stream.run(stream_stop), name="scheduler-stream")
        keeper = asyncio.create_task(self.keeper.run(stream_stop), name="keeper")
        try:
            await _first(stop.wait(), stream)
            # Keep the stream up while running commands finish, so their results still go out.
            if not await self.runner.drain(self.drain_seconds):
                log.warning("commands still running after %.0fs; cancelling them", self.drain_seconds)
        finally:
            stream_stop.set()
            keeper.cancel()  # mid-pass too: a start it began goes on as a detached server
            await asyncio.gather(keeper, return_exceptions=True)
            try:
                await asyncio.wait_for(asyncio.shield(stream), 5.0)  # real time: process shutdown
            except Exception:
                stream.cancel()
                await asyncio.gather(stream, return_exceptions=True)
            await self.close()

    async def check_versions(self) -> None:
        """Refuses to run with a server it could not fail over (agent/redisnode/version.py): the binary
        it starts servers with, when there is one, and every server it finds running."""
        binary = self.config.redis_server
        if shutil.which(binary) is None:
            log.warning("no redis-server at %s: this agent can adopt servers but not start any", binary)
        else:
            supported = require_supported(await binary_version(binary), f"The redis-server binary {binary}")
            log.info("starts servers with %s (%s)", binary, supported)
        for node in self.inventory:
            running = await running_version(node.host, node.port, node.access)
            if running is not None:  # a server down now is checked by its first failover's pause
                what = f"The server on port {node.port}" + ("" if node.managed else " (adopted)")
                require_supported(running, what)

    async def _refresh_metrics(self) -> None:
        self.metrics.observe(await self.inventory.statuses())

    async def close(self) -> None:
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        self.tracing.shutdown()  # flushes spans still queued for export
        await self.runner.close()
        await self.inventory.close()
        self.store.close()
        log.info("agent stopped")


async def _first(waiter: Coroutine[Any, Any, Any], task: asyncio.Task[None]) -> None:
    """Returns when either the coroutine or the task ends."""
    other = asyncio.ensure_future(waiter)
    try:
        await asyncio.wait([other, task], return_when=asyncio.FIRST_COMPLETED)
    finally:
        other.cancel()
        await asyncio.gather(other, return_exceptions=True)


def bind_addresses(config: AgentConfig) -> tuple[str, ...]:
    """Managed servers listen on loopback and on the advertised address when it is an IP literal (Redis
    binds addresses, not names), so standbys on other hosts can reach them."""
    try:
        ipaddress.ip_address(config.advertise_host)
    except ValueError:
        return ("127.0.0.1",)
    return tuple(dict.fromkeys(("127.0.0.1", config.advertise_host)))
