"""RedisNode: the agent's one handle on one local redis-server, with a submodule per concern.

status (what INFO says), catchup (is a standby caught up), failover (coordinated switchover), process
(start, restart, stop of servers the agent owns). Every action returns an Outcome sentence; none raises
for an expected failure.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from agent.builds import Build
from agent.outcome import Outcome, Progress, no_progress
from agent.redisnode.acl import NO_AUTH, Access
from agent.redisnode.catchup import CatchUpVerdict, check_catch_up
from agent.redisnode.failover import run_failover
from agent.redisnode.notice import publish
from agent.redisnode.process import ServerLayout, ServerProcess
from agent.redisnode.rcmd import IO_ERRORS, connect, rcmd
from agent.redisnode.role import DesiredRole, replicating, role_mismatch
from agent.redisnode.status import RedisServerStatus, describe_error, fetch_status, parse_status
from kvmaint.clock import Clock
from kvmaint.errors import KvmaintError
from kvmaint.notices import Notice, render

log = logging.getLogger(__name__)

RELINK_WAIT_SECONDS = 5.0

__all__ = ["DesiredRole", "RedisNode", "RedisServerStatus"]


class RedisNode:
    """One local redis-server on 127.0.0.1:port, either managed (started by the agent) or adopted."""

    def __init__(
        self,
        port: int,
        clock: Clock,
        process: ServerProcess | None = None,
        host: str = "127.0.0.1",
        io_timeout: float = 2.0,
        access: Access = NO_AUTH,
    ) -> None:
        self.port = port
        self.access = access
        self.host = host
        self.clock = clock
        self.process = process
        self.io_timeout = io_timeout
        # One command at a time per server.
        self.lock = asyncio.Lock()
        self.client = connect(host, port, io_timeout, access)

    @property
    def managed(self) -> bool:
        return self.process is not None

    @property
    def layout(self) -> ServerLayout | None:
        return self.process.layout if self.process is not None else None

    async def close(self) -> None:
        """Closes the client; a managed server keeps running (it outlives the agent by design)."""
        await self.client.aclose()
        if self.process is not None:
            self.process.detach()

    async def drop_idle_connections(self) -> None:
        """A restart of the server closes every connection, and the pool only notices when one fails the
        next command ("Connection closed by server"). Each command therefore starts on fresh connections
        (a loopback connect costs about 0.1 ms); connections in use are left alone."""
        await self.client.connection_pool.disconnect(inuse_connections=False)

    async def status(self) -> RedisServerStatus:
        status = await fetch_status(self.client, self.port, managed=self.managed)
        status = replace(status, tls=self.access.tls is not None)
        return replace(status, build=self.process.build.name) if self.process is not None else status

    # --- replication -----------------------------------------------------------------------------

    async def catch_up_check(
        self, primary_host: str, primary_port: int, max_lag_bytes: int, max_last_io_seconds: int
    ) -> CatchUpVerdict:
        return await check_catch_up(
            self.client,
            self.port,
            primary_host,
            primary_port,
            max_lag_bytes,
            max_last_io_seconds,
            self.io_timeout,
            self.access,
        )

    async def failover(
        self,
        target_host: str,
        target_port: int,
        timeout_ms: int,
        progress: Progress = no_progress,
        notices: tuple[Notice | None, Notice | None] = (None, None),
    ) -> Outcome:
        return await run_failover(
            self.client,
            self.port,
            target_host,
            target_port,
            timeout_ms,
            self.clock,
            progress,
            managed=self.managed,
            io_timeout=self.io_timeout,
            notices=notices,
            access=self.access,
        )

    async def publish_notice(self, notice: Notice) -> Outcome:
        """PUBLISHes one maintenance notice on this server (channel kvmaint.notices.CHANNEL)."""
        heard, error = await publish(self.client, render(notice, self.clock.now()), f"port {self.port}")
        if error:
            return Outcome.failed(error[0].upper() + error[1:] + ".")
        return Outcome.done(
            f"Published the {notice.type.value} notice on port {self.port} ({heard} subscriber(s)).",
            fields={"subscribers": str(heard)},
        )

    async def force_promote(self, last_lag_bytes: int, max_lag_bytes: int) -> Outcome:
        """Emergency promotion, refused when the lag is out of bound or the primary is still writable."""
        status = await self.status()
        if not status.reachable:
            return Outcome.failed(f"Port {self.port} is unreachable: {status.error}.", server=status)
        if status.is_primary:
            return Outcome.done(f"Port {self.port} is already a primary.", server=status)
        if last_lag_bytes > max_lag_bytes:
            return Outcome.failed(
                f"Refused: port {self.port} was last {last_lag_bytes} bytes behind, more than the "
                f"{max_lag_bytes} allowed.",
                server=status,
                lag_bytes=last_lag_bytes,
            )
        if status.link_up and await self._writable_primary(status.primary_host, status.primary_port):
            return Outcome.failed(
                f"Refused: the primary {status.primary_host}:{status.primary_port} of port {self.port} "
                "is up and writable; promoting would make two primaries (use a failover).",
                server=status,
            )
        try:
            await rcmd(self.client, "REPLICAOF", "NO", "ONE")
        except IO_ERRORS as exc:
            return Outcome.failed(
                f"REPLICAOF NO ONE on port {self.port} failed: {describe_error(exc)}.",
                server=await self.status(),
            )
        await self._persist_role()
        return Outcome.done(
            f"Promoted port {self.port} to primary.", server=await self.status(), lag_bytes=last_lag_bytes
        )

    async def _writable_primary(self, host: str, port: int) -> bool:
        client = connect(host, port, self.io_timeout, self.access)
        try:
            return parse_status(port, await client.info("replication")).is_primary
        except IO_ERRORS:
            return False
        finally:
            await client.aclose()

    async def replicate_from(self, host: str, port: int, progress: Progress = no_progress) -> Outcome:
        """REPLICAOF host port (or NO ONE without a host), persisted into a managed server's config."""
        try:
            if host:
                await rcmd(self.client, "REPLICAOF", host, str(port))
            else:
                await rcmd(self.client, "REPLICAOF", "NO", "ONE")
        except IO_ERRORS as exc:
            return Outcome.failed(
                f"REPLICAOF on port {self.port} failed: {describe_error(exc)}.", server=await self.status()
            )
        await self._persist_role()
        if not host:
            return Outcome.done(f"Port {self.port} is now a primary.", server=await self.status())
        progress(f"port {self.port} set to replicate from {host}:{port}")
        status = await self.wait_linked(RELINK_WAIT_SECONDS)
        state = "link up" if status.link_up else "link not up yet"
        return Outcome.done(
            f"Port {self.port} replicates from {host}:{port} ({state}).",
            server=status,
            link_up=status.link_up,
        )

    async def wait_linked(self, seconds: float) -> RedisServerStatus:
        """The status once the replication link is up, or after `seconds` whatever it is."""
        deadline = self.clock.monotonic() + seconds
        while True:
            status = await self.status()
            if not status.is_replica or status.link_up or self.clock.monotonic() >= deadline:
                return status
            await self.clock.sleep(0.02)

    async def _persist_role(self) -> None:
        if not self.managed:
            return
        try:
            await rcmd(self.client, "CONFIG", "REWRITE")
        except IO_ERRORS as exc:
            log.warning("CONFIG REWRITE on port %d failed: %s", self.port, describe_error(exc))

    # --- process ---------------------------------------------------------------------------------

    def _refuse_adopted(self, action: str) -> Outcome:
        return Outcome.failed(
            f"Refused to {action} port {self.port}: it was adopted, not started by this agent, so its "
            "process belongs to whoever started it.",
        )

    async def start(self, role: DesiredRole | None = None) -> Outcome:
        """Starts the server; with `role`, in that role whatever its config said, checked (see role.py)."""
        if self.process is None:
            return self._refuse_adopted("start")
        try:
            if role is not None and self.process.pid() is None:
                self.process.write_role(role)
            await self.process.start(self.client)
        except KvmaintError as exc:
            return Outcome.failed(str(exc), port=self.port)
        if role is not None:
            return await self._check_role(role, "Started")
        status = await self.status()
        return Outcome.done(f"redis-server is running on port {self.port}.", server=status, port=self.port)

    async def restart(
        self, progress: Progress = no_progress, role: DesiredRole | None = None, build: Build | None = None
    ) -> Outcome:
        """SHUTDOWN and start again on the same data, on `build` when given (an upgrade); a replica then
        re-syncs.

        With `role` (the scheduler's record) the server comes back in that role, written into its config
        before the start, and a standby that is not replicating afterwards is a failure. Without it, the
        config's role is kept (CONFIG REWRITE first, so a live demoted primary does not come back primary;
        a dead one's config may be stale, which is why the scheduler sends the role).
        """
        if self.process is None:
            return self._refuse_adopted("restart")
        before = await self.status()
        if build is not None and build != self.process.build:
            progress(f"port {self.port} moves from {self.process.build.describe()} to {build.describe()}")
        try:
            if before.reachable:
                await rcmd(self.client, "CONFIG", "REWRITE")
                progress(f"shutting down port {self.port} ({before.role})")
                await self.process.shutdown(self.client)
            if role is not None:
                self.process.write_role(role)
            if build is not None:
                self.process.use_build(build)
            as_role = f" as {role.describe()}" if role else ""
            progress(f"starting port {self.port} on {self.process.build.describe()}{as_role}")
            await self.process.start(self.client)
        except KvmaintError as exc:
            return Outcome.failed(str(exc), server=await self.status(), port=self.port)
        except IO_ERRORS as exc:
            return Outcome.failed(
                f"Restarting port {self.port} failed: {describe_error(exc)}.",
                server=await self.status(),
                port=self.port,
            )
        finally:
            # The restart closed every connection; the next command must not reuse one.
            await self.client.connection_pool.disconnect()
        if role is not None:
            return await self._check_role(role, "Restarted")
        status = await self.wait_linked(RELINK_WAIT_SECONDS)
        tail = ""
        if status.is_replica:
            tail = " and re-synced" if status.link_up else "; it is still re-syncing"
        return Outcome.done(
            f"Restarted port {self.port} on {self.process.build.describe()} as {status.role}{tail}; "
            f"it reports version {status.version or 'unknown'}.",
            server=status,
            port=self.port,
            link_up=status.link_up,
        )

    async def _check_role(self, role: DesiredRole, verb: str) -> Outcome:
        """After a start: the server has the desired role, and a standby replicates; else a failure.

        A server that came back primary while the scheduler records it as a standby is demoted at once:
        it must never stay writable.
        """
        status = await self.status()
        wrong = role_mismatch(status, role)
        if wrong and status.is_primary and not role.is_primary:
            log.warning("port %d came back primary; demoting it to %s", self.port, role.describe())
            try:
                await rcmd(self.client, "REPLICAOF", role.primary_host, str(role.primary_port))
                await self._persist_role()
            except IO_ERRORS as exc:
                log.warning("demoting port %d failed: %s", self.port, describe_error(exc))
            status = await self.status()
            wrong = role_mismatch(status, role)
        if wrong:
            return Outcome.failed(
                f"{verb} port {self.port}, but {wrong}; the scheduler records it as the {role.describe()}.",
                server=status,
                port=self.port,
            )
        if role.is_primary:
            return Outcome.done(f"{verb} port {self.port} as primary.", server=status, port=self.port)
        status = await self.wait_linked(RELINK_WAIT_SECONDS)
        if not replicating(status):
            return Outcome.failed(
                f"{verb} port {self.port} as a {role.describe()}, but it is not replicating (link down "
                f"for {max(status.last_io_seconds_ago, 0)} s).",
                server=status,
                port=self.port,
            )
        state = "link up" if status.link_up else "syncing"
        return Outcome.done(
            f"{verb} port {self.port} as a {role.describe()} ({state}).",
            server=status,
            port=self.port,
            link_up=status.link_up,
        )

    async def stop(self, progress: Progress = no_progress) -> Outcome:
        if self.process is None:
            return self._refuse_adopted("stop")
        try:
            progress(f"shutting down port {self.port}")
            await self.process.shutdown(self.client)
        except KvmaintError as exc:
            return Outcome.failed(str(exc), server=await self.status(), port=self.port)
        return Outcome.done(f"Stopped port {self.port}.", port=self.port)
