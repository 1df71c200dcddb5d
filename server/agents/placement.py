"""Places a new add-on's servers on connected agents' hosts, and adopts registered ones."""

from __future__ import annotations

import logging

from kvmaint.errors import ErrorReason, FailedPrecondition, KvmaintError
from kvmaint.v1 import agent_pb2
from server.agents.hub import AgentHub
from server.domain.builds import HostBuild, Running
from server.domain.credentials import AddonCredentials
from server.domain.health import Observation
from server.domain.models import Placed, Role, ServerRef

log = logging.getLogger(__name__)


def supervision_name(value: int) -> str:
    """SUPERVISION_CRASH_LOOPING -> "crash_looping"; "" when unset."""
    if value == agent_pb2.SUPERVISION_UNSPECIFIED:
        return ""
    try:
        return agent_pb2.Supervision.Name(value).removeprefix("SUPERVISION_").lower()  # type: ignore[arg-type]
    except ValueError:
        return ""


class AgentPlacement:
    def __init__(self, hub: AgentHub, command_timeout: float = 30.0) -> None:
        self.hub = hub
        self.timeout = command_timeout

    def endpoint(self, server: ServerRef) -> str:
        return f"{self.hub.endpoint_host(server.host)}:{server.port}"

    def host_builds(self) -> list[HostBuild]:
        return self.hub.host_builds()

    def running(self, server: ServerRef) -> Running | None:
        return self.hub.running(server.host, server.port)

    def observe(self, server: ServerRef) -> Observation:
        if not self.hub.is_connected(server.host):
            return Observation(connected=False)
        status = self.hub.server_status(server.host, server.port)
        if status is None:
            return Observation(
                connected=True, error=f"agent {server.host} does not report port {server.port}"
            )
        return Observation(
            connected=True,
            reachable=status.reachable,
            role=status.role,
            primary_host=status.primary_host,
            primary_port=status.primary_port,
            link_up=status.link_up,
            lag_bytes=self.hub.lag_bytes(status),
            error=status.error,
            supervision=supervision_name(status.supervision),
            supervision_detail=status.supervision_detail,
        )

    async def roles_changed(self, hosts: set[str]) -> None:
        await self.hub.push_roles(hosts)

    async def refresh(self, hosts: set[str]) -> None:
        await self.hub.refresh(hosts)

    def running_servers(self) -> dict[str, Running]:
        return self.hub.running_servers()

    def _least_loaded(self, exclude: set[str]) -> str | None:
        hosts = [h for h in self.hub.hosts() if h not in exclude]
        if not hosts:
            return None
        return min(hosts, key=lambda h: (len(self.hub.sessions[h].servers), h))

    async def place(
        self, addon_name: str, with_standby: bool, creds: AddonCredentials | None = None
    ) -> Placed:
        """Starts the primary (and standby) with `creds`' users; says whether they listen with TLS."""
        auth = creds.to_proto() if creds is not None else None
        primary_host = self._least_loaded(set())
        standby_host = self._least_loaded({primary_host}) if primary_host and with_standby else None
        if primary_host is None or (with_standby and standby_host is None):
            need = "two agents on different hosts" if with_standby else "an agent"
            raise FailedPrecondition(
                f"Placing this add-on needs {need}; connected: {', '.join(self.hub.hosts()) or 'none'}. "
                "Start kvmaint-agent on more hosts, or register servers with --primary/--standby.",
                reason=ErrorReason.NO_AGENT_AVAILABLE,
            )
        r = await self.hub.call(
            primary_host,
            f"place/{addon_name}/primary",
            "start_server",
            agent_pb2.StartServerCommand(port=0, auth=auth),
            self.timeout,
        )
        if not r.ok:
            raise FailedPrecondition(
                f"Agent {primary_host} could not start a Redis server: {r.error}",
                reason=ErrorReason.AGENT_COMMAND_FAILED,
            )
        primary = ServerRef(primary_host, r.port, Role.PRIMARY)
        tls = r.server.tls
        if standby_host is None:
            return Placed((primary,), tls)
        r = await self.hub.call(
            standby_host,
            f"place/{addon_name}/standby",
            "start_server",
            agent_pb2.StartServerCommand(
                port=0,
                replicate_from_host=self.hub.endpoint_host(primary_host),
                replicate_from_port=primary.port,
                auth=auth,
            ),
            self.timeout,
        )
        if not r.ok:
            await self._stop(primary, f"place/{addon_name}/undo")
            raise FailedPrecondition(
                f"Agent {standby_host} could not start the HA standby: {r.error}",
                reason=ErrorReason.AGENT_COMMAND_FAILED,
            )
        return Placed((primary, ServerRef(standby_host, r.port, Role.STANDBY)), tls)

    async def _stop(self, server: ServerRef, command_id: str) -> None:
        try:
            await self.hub.call(
                server.host,
                command_id,
                "stop_server",
                agent_pb2.StopServerCommand(port=server.port),
                self.timeout,
            )
        except KvmaintError as err:
            log.warning("could not stop %s: %s", server.key, err)

    async def adopt(self, servers: tuple[ServerRef, ...]) -> None:
        """Makes the standby replicate from the primary when both hosts' agents are connected."""
        primary = next((s for s in servers if s.role is Role.PRIMARY), None)
        standby = next((s for s in servers if s.role is Role.STANDBY), None)
        if primary is None or standby is None:
            return
        if not (self.hub.is_connected(primary.host) and self.hub.is_connected(standby.host)):
            log.info(
                "agents of %s/%s not connected: registering without checking replication",
                primary.key,
                standby.key,
            )
            return
        p_host = self.hub.endpoint_host(primary.host)
        status = self.hub.server_status(standby.host, standby.port)
        if (
            status is not None
            and status.role == "slave"
            and status.primary_port == primary.port
            and (status.primary_host in (p_host, primary.host))
        ):
            return
        r = await self.hub.call(
            standby.host,
            f"adopt/{standby.key}/{primary.key}",
            "replicate_from",
            agent_pb2.ReplicateFromCommand(port=standby.port, primary_host=p_host, primary_port=primary.port),
            self.timeout,
        )
        if not r.ok:
            raise FailedPrecondition(
                f"Could not make {standby.key} replicate from {primary.key}: {r.error} "
                f"(an existing server must be adopted by its host's agent: kvmaint-agent --adopt PORT).",
                reason=ErrorReason.AGENT_COMMAND_FAILED,
            )
