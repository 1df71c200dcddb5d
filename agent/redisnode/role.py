"""The role a managed server starts in comes from the scheduler's record, never from its own config.

A server's config file remembers the role it had at its last CONFIG REWRITE. When a server dies between
a role change and that rewrite (the old primary killed right after its demotion, say), the file still
says "primary", and a plain restart would bring back a second writable primary. So whatever (re)starts a
managed server (the `finish` step's restart, the agent's supervision, a host reboot) goes through
`RedisNode.start_as` / `restart`: the desired role is written into the config before the start
(`conf_with_role`), and the role the server came back with is checked (`role_mismatch`); a standby that
is not replicating is a failure.

Pure functions here; the I/O is in `process.ServerProcess.write_role` and the `RedisNode` facade.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.redisnode.status import RedisServerStatus

_REPLICAOF_LINE = re.compile(r"^\s*(replicaof|slaveof)\s", re.IGNORECASE)


@dataclass(frozen=True)
class DesiredRole:
    """A primary (no primary_host), or a replica of primary_host:primary_port."""

    primary_host: str = ""
    primary_port: int = 0

    @classmethod
    def primary(cls) -> DesiredRole:
        return cls()

    @classmethod
    def replica_of(cls, host: str, port: int) -> DesiredRole:
        return cls(host, port)

    @property
    def is_primary(self) -> bool:
        return not self.primary_host

    def describe(self) -> str:
        return "primary" if self.is_primary else f"replica of {self.primary_host}:{self.primary_port}"


def conf_with_role(conf: str, role: DesiredRole) -> str:
    """The config text with its replicaof/slaveof lines replaced by the desired role's."""
    lines = [line for line in conf.splitlines() if not _REPLICAOF_LINE.match(line)]
    if not role.is_primary:
        lines.append(f"replicaof {role.primary_host} {role.primary_port}")
    return "\n".join(lines) + "\n"


def role_mismatch(status: RedisServerStatus, role: DesiredRole) -> str:
    """Why the server's current role is not the desired one ('' when it is)."""
    if not status.reachable:
        return f"port {status.port} is unreachable ({status.error})"
    if role.is_primary:
        return "" if status.is_primary else f"port {status.port} is a {status.role}, not a primary"
    if not status.follows(role.primary_host, role.primary_port):
        actual = (
            f"replicates from {status.primary_host}:{status.primary_port}"
            if status.is_replica
            else f"is a {status.role}"
        )
        return f"port {status.port} {actual}, not from {role.primary_host}:{role.primary_port}"
    return ""


def replicating(status: RedisServerStatus) -> bool:
    """A replica whose link to its primary is up, or that is loading the primary's data."""
    return status.is_replica and (status.link_up or status.syncing)
