"""The scheduler's Prometheus metrics, in a registry of its own (never the global one, so schedulers
built side by side in one test process do not collide).

Counters and histograms are fed by one-line hooks where things happen (runner, hub, planner, sender,
the gRPC interceptor); gauges that are facts of the database (maintenances by status, the notification
backlog) are read when scraped.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from server.domain.models import Status

# Steps run from milliseconds (repoint) to minutes (a large catch-up).
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# A write pause is meant to stay well under a second.
PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
COMMAND_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class SchedulerMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.maintenances = Gauge(
            "kvmaint_maintenances", "Maintenances by status (read from the database).", ["status"], registry=r
        )
        self.step_duration = Histogram(
            "kvmaint_step_duration_seconds",
            "Time one run of a maintenance step took, by step and outcome (ok, failed).",
            ["step", "outcome"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.write_pause = Histogram(
            "kvmaint_write_pause_seconds",
            "Writes paused by a failover, from the pause to the new primary accepting writes.",
            buckets=PAUSE_BUCKETS,
            registry=r,
        )
        self.maintenances_ended = Counter(
            "kvmaint_maintenances_ended", "Maintenances that ended, by status.", ["status"], registry=r
        )
        self.agents_connected = Gauge(
            "kvmaint_agents_connected", "Agent hosts with a stream open to this scheduler.", registry=r
        )
        self.command_duration = Histogram(
            "kvmaint_agent_command_duration_seconds",
            "Round trip of one agent command, from sending to its result, by action and outcome "
            "(ok, failed, timeout).",
            ["action", "outcome"],
            buckets=COMMAND_BUCKETS,
            registry=r,
        )
        self.notification_backlog = Gauge(
            "kvmaint_notification_backlog",
            "Notifications (emails, webhook POSTs) not yet delivered nor dropped, by kind.",
            ["kind"],
            registry=r,
        )
        self.notification_failures = Counter(
            "kvmaint_notification_failures",
            "Failed delivery attempts, by kind and what followed (retry, dropped).",
            ["kind", "then"],
            registry=r,
        )
        self.planner_pass = Histogram(
            "kvmaint_planner_pass_duration_seconds", "One planner pass over the due maintenances.", registry=r
        )
        self.reminder_pass = Histogram(
            "kvmaint_reminder_pass_duration_seconds",
            "One pass over the maintenances starting within 24 hours (the reminders).",
            registry=r,
        )
        self.grpc_requests = Counter(
            "kvmaint_grpc_requests",
            "gRPC requests served, by method and status code.",
            ["method", "code"],
            registry=r,
        )

    def count_agents(self, connected: Callable[[], int]) -> None:
        self.agents_connected.set_function(connected)

    def set_maintenances(self, counts: dict[str, int]) -> None:
        for status in Status:
            if status is not Status.NONE:
                self.maintenances.labels(status.value).set(counts.get(status.value, 0))

    def set_backlog(self, counts: dict[str, int]) -> None:
        for kind in ("email", "webhook", *counts):
            self.notification_backlog.labels(kind).set(counts.get(kind, 0))

    def ended(self, status: str, write_pause_ms: int) -> None:
        self.maintenances_ended.labels(status).inc()
        if write_pause_ms >= 0:
            self.write_pause.observe(write_pause_ms / 1000)

    @contextlib.contextmanager
    def timed_step(self, step: str) -> Iterator[None]:
        start = time.monotonic()  # real time: histogram durations, no decision
        outcome = "failed"
        try:
            yield
            outcome = "ok"
        finally:
            self.step_duration.labels(step, outcome).observe(time.monotonic() - start)

    def command(self, action: str, started: float, outcome: str) -> None:
        self.command_duration.labels(action, outcome).observe(time.monotonic() - started)
