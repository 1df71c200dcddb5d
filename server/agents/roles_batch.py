"""The roles of many hosts in one read, for a reconnect storm.

Each hello is answered with its host's roles (server/driver/roles.py `host_roles`), one transaction per
hello: in a storm of 10,000 agents, 10,000 transactions queued one behind another on the store before the
last agent heard back. `RolesBatch` serves the lookups that arrive while one is running with the next
single read for all of them, and `roles.hosts_roles` is that read: the add-ons on those hosts through the
addon_servers index, the in-progress maintenances once, and each add-on's latest maintenance in one query.
A lookup is always answered by a read that began after it was asked, as before, so it is never older.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from kvmaint.v1 import agent_pb2

MAX_HOSTS = 2000  # one read answers at most this many hosts


Fetch = Callable[[list[str]], Awaitable[dict[str, agent_pb2.ServerRoles]]]


class RolesBatch:
    """A `RolesSource` (agents/hub.py) that coalesces concurrent lookups into one `fetch` per round."""

    def __init__(self, fetch: Fetch, max_hosts: int = MAX_HOSTS) -> None:
        self._fetch = fetch
        self._max = max_hosts
        self._waiting: dict[str, list[asyncio.Future[agent_pb2.ServerRoles]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    async def __call__(self, host: str) -> agent_pb2.ServerRoles:
        future: asyncio.Future[agent_pb2.ServerRoles] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(host, []).append(future)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="roles-batch")
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            await asyncio.sleep(0)  # the hellos of this loop pass join the round
            hosts = list(self._waiting)[: self._max]
            round_ = {h: self._waiting.pop(h) for h in hosts}
            self.rounds += 1
            try:
                roles = await self._fetch(hosts)
            except Exception as e:
                for futures in round_.values():
                    for f in futures:
                        if not f.done():
                            f.set_exception(e)
                continue
            for host, futures in round_.items():
                for f in futures:
                    if not f.done():
                        f.set_result(roles.get(host, agent_pb2.ServerRoles()))
