"""The fleet as Sentinel reports it: one master per add-on (named by the add-on), its replicas, and the
fields stock clients read (`flags`, `ip`, `port`, `num-other-sentinels`, ...), laid out the way a healthy
redis-sentinel 7 lays them out. Pure: built from stored add-ons and the agents' advertised hosts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from server.auth import Principal
from server.domain.models import Addon, Role

# What a healthy Sentinel reports for its own settings. kvmaint does not detect failures (its failovers
# are planned), so these only have to look the way clients expect.
DOWN_AFTER_MS = 30_000
FAILOVER_TIMEOUT_MS = 180_000


@dataclass(frozen=True)
class Node:
    ip: str
    port: int

    @property
    def runid(self) -> str:
        """Stable per server, 40 hex digits like a real run id."""
        return hashlib.sha1(f"{self.ip}:{self.port}".encode()).hexdigest()


@dataclass(frozen=True)
class Master:
    name: str
    app: str
    primary: Node
    replicas: tuple[Node, ...]

    def fields(self, epoch: int = 0) -> dict[str, str]:
        """`SENTINEL MASTER NAME`: the fields and order of redis-sentinel 7.0, all as strings."""
        return {
            **_instance(self.name, self.primary, "master"),
            "config-epoch": str(epoch),
            "num-slaves": str(len(self.replicas)),
            "num-other-sentinels": "0",
            "quorum": "1",
            "failover-timeout": str(FAILOVER_TIMEOUT_MS),
            "parallel-syncs": "1",
        }

    def replica_fields(self) -> list[dict[str, str]]:
        """`SENTINEL REPLICAS NAME`: one map per replica, fields as redis-sentinel 7.0 sends them."""
        return [
            {
                **_instance(f"{r.ip}:{r.port}", r, "slave"),
                "master-link-down-time": "0",
                "master-link-status": "ok",
                "master-host": self.primary.ip,
                "master-port": str(self.primary.port),
                "slave-priority": "100",
                "slave-repl-offset": "0",
                "replica-announced": "1",
            }
            for r in self.replicas
        ]


def _instance(name: str, node: Node, role: str) -> dict[str, str]:
    """The leading fields every monitored instance has; timers read as a Sentinel that just pinged."""
    return {
        "name": name,
        "ip": node.ip,
        "port": str(node.port),
        "runid": node.runid,
        "flags": role,
        "link-pending-commands": "0",
        "link-refcount": "1",
        "last-ping-sent": "0",
        "last-ok-ping-reply": "0",
        "last-ping-reply": "0",
        "down-after-milliseconds": str(DOWN_AFTER_MS),
        "info-refresh": "0",
        "role-reported": role,
        "role-reported-time": "0",
    }


@dataclass(frozen=True)
class FleetView:
    masters: Mapping[str, Master]
    epochs: Mapping[str, int]

    def visible(self, principal: Principal) -> list[Master]:
        """The masters a connection may see, by name: an app token sees only its own app's add-ons."""
        return [m for _, m in sorted(self.masters.items()) if can_see(principal, m.app)]

    def get(self, principal: Principal, name: str) -> Master | None:
        m = self.masters.get(name)
        return m if m is not None and can_see(principal, m.app) else None


def can_see(principal: Principal, app: str) -> bool:
    return principal.is_operator or principal.app == app


def build_view(
    addons: Iterable[Addon], advertised: Mapping[str, str], epochs: Mapping[str, int]
) -> FleetView:
    """One master per add-on with a primary; a host id becomes the address its agent advertises."""

    def node(host: str, port: int) -> Node:
        return Node(advertised.get(host, host), port)

    masters: dict[str, Master] = {}
    for addon in addons:
        primary = addon.primary
        if primary is None:
            continue
        replicas = tuple(node(s.host, s.port) for s in addon.servers if s.role is Role.STANDBY)
        masters[addon.name] = Master(addon.name, addon.app, node(primary.host, primary.port), replicas)
    return FleetView(masters, dict(epochs))
