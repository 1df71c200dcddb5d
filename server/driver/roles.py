"""The role a restarted server must come back in, taken from the scheduler's record of the add-on.

The restart command carries it (`DesiredRole`), the agent writes it into the server's config before the
start and checks it after (agent/redisnode/role.py); `restart_mismatch` checks the answer once more here,
so an agent that ignored the role (an older build) cannot turn a split brain into `completed`.
"""

from __future__ import annotations

from collections.abc import Callable

from kvmaint.v1 import agent_pb2
from server.domain import steps as S
from server.domain.models import Addon, Maintenance, Status
from server.storage import Store

Endpoint = Callable[[str], tuple[str, int]]


def desired_role(addon: Addon, key: str, endpoint: Endpoint) -> agent_pb2.DesiredRole:
    """Primary if the record says `key` is the add-on's primary; else a replica of that primary."""
    primary = addon.primary
    if primary is None or primary.key == key:
        return agent_pb2.DesiredRole(primary=True)
    host, port = endpoint(primary.key)
    return agent_pb2.DesiredRole(primary_host=host, primary_port=port)


async def host_roles(store: Store, host: str, endpoint: Endpoint) -> agent_pb2.ServerRoles:
    """Every server the record places on `host`, in the role it gives it, for the agent's keeper. A
    server of an add-on under maintenance is held: the maintenance's steps move roles, and a keeper that
    restarted a dead server mid-failover in the role of a moment ago could bring back a second primary.

    Also held: an add-on whose last maintenance failed after its failover but before its repoint, so
    the record still names the old primary while the servers have swapped (an operator's case).

    Sent on each hello and on each change, so it reads only that host's add-ons (addon_servers is
    indexed by host) and their latest maintenances, in one read-only transaction, not the fleet."""
    return (await hosts_roles(store, [host], endpoint))[host]


async def hosts_roles(store: Store, hosts: list[str], endpoint: Endpoint) -> dict[str, agent_pb2.ServerRoles]:
    """`host_roles` for each of `hosts`, in one read-only transaction (a reconnect storm's hellos share
    one: server/agents/roles_batch.py)."""
    wanted = set(hosts)
    async with store.read() as tx:
        addons = await tx.addons_on_hosts(sorted(wanted))
        busy = {m.addon for m in await tx.in_progress_maintenances()}
        latest = await tx.latest_of([a.name for a in addons])
    busy |= {name for name, m in latest.items() if stale_record(m)}
    out = {host: agent_pb2.ServerRoles() for host in hosts}
    for addon in sorted(addons, key=lambda a: a.name):
        for server in addon.servers:
            if server.host in wanted:
                out[server.host].servers.add(
                    port=server.port,
                    role=desired_role(addon, server.key, endpoint),
                    addon=addon.name,
                    hold=addon.name in busy,
                )
    return out


def stale_record(m: Maintenance) -> bool:
    """The maintenance ended failed with the primary moved but the record not yet repointed."""
    done = m.state.done
    return m.status is Status.FAILED and S.FAILOVER in done and S.REPOINT not in done


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
