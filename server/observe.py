"""What the runner reports about a maintenance: a trace (one per maintenance, a span per step), log
fields, and step/pause metrics, behind three calls: `with_trace`, `step`, `ended`.

The trace's ids are drawn when the maintenance first starts a step and kept in its durable state
(`DriverState.traceparent`), so a scheduler restarted mid-maintenance continues the same trace; the root
span is recorded with those ids when the maintenance ends (see kvmaint/obs/tracing.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status as SpanStatus
from opentelemetry.trace import StatusCode

from kvmaint.obs import logs, tracing
from server.domain.driverstate import DriverState
from server.domain.models import Maintenance, Status
from server.metrics import SchedulerMetrics

log = logging.getLogger(__name__)


def _ns(m: Maintenance, ended: bool) -> int | None:
    at = m.completed_at if ended else m.started_at
    return int(at.timestamp() * 1e9) if at else None


@dataclass
class Observability:
    metrics: SchedulerMetrics = field(default_factory=SchedulerMetrics)
    provider: TracerProvider = field(default_factory=lambda: tracing.provider("kvmaint-scheduler"))

    @property
    def tracer(self) -> trace.Tracer:
        return self.provider.get_tracer("kvmaint.scheduler")

    @staticmethod
    def with_trace(state: DriverState) -> DriverState:
        """The state with its trace ids, drawn now if the maintenance has none yet."""
        return state if state.traceparent else replace(state, traceparent=tracing.new_traceparent())

    @contextlib.contextmanager
    def step(self, m: Maintenance, step: str) -> Iterator[None]:
        """One step's span (child of the maintenance's root), log fields and duration."""
        fields = {"maintenance_id": m.id, "addon": m.addon, "step": step}
        parent = tracing.with_baggage(tracing.context_of(m.state.traceparent), fields)
        with (
            logs.bound(**fields),
            self.metrics.timed_step(step),
            self.tracer.start_as_current_span(
                f"step {step}",
                context=parent,
                attributes={"kvmaint.maintenance_id": m.id, "kvmaint.addon": m.addon, "kvmaint.step": step},
            ),
        ):
            # Attached so the hub's commands, sent from inside the step, carry the baggage too.
            token = otel_context.attach(tracing.with_baggage(None, fields))
            start = time.monotonic()  # real time: the step's logged duration, no decision
            log.info("maintenance %s of %s: step %s started", m.id, m.addon, step)
            try:
                yield
                log.info("step %s done in %.3f s", step, time.monotonic() - start)
            finally:
                otel_context.detach(token)

    def ended(self, m: Maintenance) -> None:
        """Counts the end, observes the write pause, and records the maintenance's root span."""
        self.metrics.ended(m.status.value, m.write_pause_ms)
        traceparent = m.state.traceparent
        if not traceparent:
            return
        with tracing.forced_ids(traceparent):
            span = self.tracer.start_span(
                f"maintenance {m.addon}",
                attributes={
                    "kvmaint.maintenance_id": m.id,
                    "kvmaint.addon": m.addon,
                    "kvmaint.app": m.app,
                    "kvmaint.reason": m.reason.value,
                    "kvmaint.status": m.status.value,
                    "kvmaint.write_pause_ms": m.write_pause_ms,
                },
                start_time=_ns(m, ended=False),
            )
        if m.status is Status.FAILED:
            span.set_status(SpanStatus(StatusCode.ERROR, m.failure_reason))
        span.end(end_time=_ns(m, ended=True))
