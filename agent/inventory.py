"""The local servers this agent knows: managed ones found under DATA_DIR/servers/, adopted ones by port."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from agent.builds import Build, Builds
from agent.redisnode import RedisNode
from agent.redisnode.acl import NO_AUTH, Access, RedisTls, ServerAuth, load_agent_credentials
from agent.redisnode.process import CONF_NAME, FORBIDDEN_PORTS, ServerLayout, ServerProcess, pick_free_port
from agent.redisnode.status import RedisServerStatus, unreachable
from kvmaint.clock import Clock
from kvmaint.errors import AlreadyExists, FailedPrecondition, InvalidArgument

log = logging.getLogger(__name__)

STATUS_TIMEOUT_SECONDS = 3.0


class Inventory:
    def __init__(
        self,
        data_dir: Path,
        builds: Builds,
        clock: Clock,
        bind: tuple[str, ...] = ("127.0.0.1",),
        tls: RedisTls | None = None,
        adopted_access: Access = NO_AUTH,
    ) -> None:
        self.bind = bind
        # Managed servers listen with TLS only when set; adopted ones are reached with `adopted_access`
        # (the user and password the operator gave, and TLS when the agent has it).
        self.tls = tls
        self.adopted_access = adopted_access
        self.data_dir = data_dir
        self.servers_dir = data_dir / "servers"
        self.retired_dir = data_dir / "retired"
        self.builds = builds
        self.clock = clock
        self._nodes: dict[int, RedisNode] = {}
        # Guards port choice and registration, so two start_server commands never pick the same port.
        self._lock = asyncio.Lock()

    def __iter__(self) -> Iterator[RedisNode]:
        return iter(sorted(self._nodes.values(), key=lambda node: node.port))

    def get(self, port: int) -> RedisNode | None:
        return self._nodes.get(port)

    def discover(self) -> list[int]:
        """Registers every managed server with a config under servers/ (running or not)."""
        found: list[int] = []
        if not self.servers_dir.is_dir():
            return found
        for entry in sorted(self.servers_dir.iterdir()):
            if not (entry.is_dir() and entry.name.isdigit() and (entry / CONF_NAME).exists()):
                continue
            port = int(entry.name)
            if port not in self._nodes:
                self._nodes[port] = self._managed_node(port)
                found.append(port)
        return found

    def adopt(self, port: int) -> RedisNode:
        if port in self._nodes:
            raise AlreadyExists(f"Port {port} is already in the inventory.")
        node = RedisNode(port, self.clock, access=self.adopted_access)
        self._nodes[port] = node
        return node

    def _managed_node(self, port: int, build: Build | None = None) -> RedisNode:
        layout = ServerLayout.under(self.servers_dir, port)
        if build is None:
            recorded = layout.recorded_build()
            build = self.builds.get(recorded) if recorded else self.builds.default
            if build is None:
                build = self.builds.default
                log.warning(
                    "port %d was on build %s, which this host no longer has; it starts on %s",
                    port,
                    recorded,
                    build.describe(),
                )
        access = Access(load_agent_credentials(layout.auth_file), self.tls)
        return RedisNode(
            port, self.clock, ServerProcess(layout, build, self.clock, self.bind, self.tls), access=access
        )

    async def create(
        self,
        port: int,
        replicaof: tuple[str, int] | None,
        build: Build | None = None,
        auth: ServerAuth | None = None,
    ) -> tuple[RedisNode, bool]:
        """Registers a new managed server and writes its config (with `auth`'s users); (node, created).
        Does not start it.

        An existing managed server on the same port is returned as is (a repeated start_server command).
        """
        async with self._lock:
            if port in FORBIDDEN_PORTS:
                raise InvalidArgument.field("port", f"Port {port} is reserved; choose another.")
            if port:
                existing = self._nodes.get(port)
                if existing is not None:
                    if existing.managed:
                        return existing, False
                    raise FailedPrecondition(f"Port {port} is an adopted server; it cannot be started here.")
            else:
                port = self._free_port()
            layout = ServerLayout.under(self.servers_dir, port)
            ServerProcess(layout, build or self.builds.default, self.clock, self.bind, self.tls).write_conf(
                replicaof, auth
            )
            node = self._managed_node(port, build or self.builds.default)
            self._nodes[port] = node
            return node, True

    def _free_port(self) -> int:
        while True:
            port = pick_free_port()
            if port not in self._nodes and not (self.servers_dir / str(port)).exists():
                return port

    async def forget(self, port: int, keep: bool = True) -> Path | None:
        """Drops a stopped managed server; its directory moves to retired/ (data kept, never deleted).

        keep=False deletes the directory instead: only for a server that never ran, so holds no data.
        """
        node = self._nodes.pop(port, None)
        if node is None:
            return None
        await node.close()
        layout = node.layout
        if layout is None or not layout.dir.exists():
            return None
        if not keep:
            shutil.rmtree(layout.dir, ignore_errors=True)
            return None
        self.retired_dir.mkdir(parents=True, exist_ok=True)
        stamp = re.sub(r"[^0-9T]", "", self.clock.now().strftime("%Y%m%dT%H%M%S%f"))
        target = self.retired_dir / f"{port}-{stamp}"
        shutil.move(str(layout.dir), str(target))
        return target

    def was_retired(self, port: int) -> bool:
        return self.retired_dir.is_dir() and any(self.retired_dir.glob(f"{port}-*"))

    async def statuses(self) -> list[RedisServerStatus]:
        """Fresh status of every server, read concurrently; a slow server reads as unreachable."""
        nodes = list(self)

        async def one(node: RedisNode) -> RedisServerStatus:
            try:
                return await asyncio.wait_for(node.status(), STATUS_TIMEOUT_SECONDS)  # real: socket I/O
            except TimeoutError:
                return unreachable(node.port, "status read timed out", node.managed)

        return list(await asyncio.gather(*(one(node) for node in nodes)))

    async def close(self) -> None:
        for node in list(self._nodes.values()):
            await node.close()
