"""The role a restarted server must come back in, taken from the scheduler's record of the add-on.

The restart command carries it (`DesiredRole`), the agent writes it into the server's config before the
start and checks it after (agent/redisnode/role.py); `restart_mismatch` checks the answer once more here,
so an agent that ignored the role (an older build) cannot turn a split brain into `completed`.
"""

from __future__ import annotations

from collections.abc import Callable

from kvmaint.v1 import agent_pb2
from server.domain.models import Addon

Endpoint = Callable[[str], tuple[str, int]]


def desired_role(addon: Addon, key: str, endpoint: Endpoint) -> agent_pb2.DesiredRole:
    """Primary if the record says `key` is the add-on's primary; else a replica of that primary."""
    primary = addon.primary
    if primary is None or primary.key == key:
        return agent_pb2.DesiredRole(primary=True)
    host, port = endpoint(primary.key)
    return agent_pb2.DesiredRole(primary_host=host, primary_port=port)


def restart_mismatch(result: agent_pb2.CommandResult, role: agent_pb2.DesiredRole) -> str:
    """Why a successful restart's reported server does not match `role` ('' when it does)."""
    server = result.server
    if not server.reachable:
        return "it is not reachable"
    if role.primary:
        return "" if server.role == "master" else f"it came back as a {server.role or 'server of no role'}"
    if server.role != "slave":
        return f"it came back as a {server.role}, not as a replica"
    if (server.primary_host, server.primary_port) != (role.primary_host, role.primary_port):
        return f"it replicates from {server.primary_host}:{server.primary_port}"
    return ""
