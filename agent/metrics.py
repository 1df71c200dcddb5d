"""The agent's Prometheus metrics, in a registry of its own (agents built side by side in one test
process must not collide).

Per-server figures are read fresh from each server when scraped (`refresh`), so a scrape sees what INFO
says now; restarts are counted where the agent restarts a server.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from agent.redisnode.status import PRIMARY, RedisServerStatus


def role_name(status: RedisServerStatus) -> str:
    if not status.reachable:
        return "unknown"
    return "primary" if status.role == PRIMARY else "replica"


def server_kind(status: RedisServerStatus) -> str:
    """valkey or redis: Valkey's own version differs from the redis_version it reports for clients."""
    return "valkey" if status.version and status.version != status.redis_version else "redis"


class AgentMetrics:
    def __init__(self, host: str) -> None:
        self.host = host
        r = self.registry = CollectorRegistry()
        self.up = Gauge("kvmaint_agent_server_up", "1 when the server answers INFO.", ["port"], registry=r)
        self.role = Gauge(
            "kvmaint_agent_server_role",
            "1 for the server's current role (primary, replica).",
            ["port", "role"],
            registry=r,
        )
        self.lag = Gauge(
            "kvmaint_agent_server_replication_lag_bytes",
            "Bytes a replica is behind this primary (its offset against master_repl_offset), per replica.",
            ["port", "replica"],
            registry=r,
        )
        self.offset = Gauge(
            "kvmaint_agent_server_repl_offset_bytes", "The server's replication offset.", ["port"], registry=r
        )
        self.build = Gauge(
            "kvmaint_agent_server_build_info",
            "1, with the server's software and version (from INFO) and the agent's build name as labels.",
            ["port", "server", "version", "build", "managed"],
            registry=r,
        )
        self.restarts = Counter(
            "kvmaint_agent_server_restarts", "Restarts of a server by this agent.", ["port"], registry=r
        )
        self.commands = Counter(
            "kvmaint_agent_commands",
            "Commands run, by action and outcome (ok, failed).",
            ["action", "outcome"],
            registry=r,
        )

    def observe(self, statuses: Iterable[RedisServerStatus]) -> None:
        """Replaces the per-server gauges with these statuses (servers gone since disappear)."""
        for gauge in (self.up, self.role, self.lag, self.offset, self.build):
            gauge.clear()
        for s in statuses:
            port = str(s.port)
            self.up.labels(port).set(1 if s.reachable else 0)
            if not s.reachable:
                continue
            self.role.labels(port, role_name(s)).set(1)
            self.offset.labels(port).set(s.repl_offset)
            version = s.version or s.redis_version
            self.build.labels(port, server_kind(s), version, s.build, str(s.managed).lower()).set(1)
            if s.role == PRIMARY:
                for r in s.replicas:
                    self.lag.labels(port, f"{r.ip}:{r.port}").set(max(0, s.repl_offset - r.offset))

    def restarted(self, port: int) -> None:
        self.restarts.labels(str(port)).inc()
