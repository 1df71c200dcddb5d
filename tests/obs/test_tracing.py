"""The trace of one maintenance, in process with the in-memory exporter: a span per step under one
root, the same trace after a scheduler restart, the agent's span a child of the step that sent it."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kvmaint.obs import logs, tracing
from server.domain.driverstate import DriverState
from server.domain.models import Maintenance, Method, Reason, Status
from server.observe import Observability

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def observer(exporter: InMemorySpanExporter, service: str = "kvmaint-scheduler") -> Observability:
    return Observability(provider=tracing.provider(service, (SimpleSpanProcessor(exporter),)))


def maintenance() -> Maintenance:
    return Maintenance(
        id="m-1", addon="redis-a", app="app", reason=Reason.SECURITY_PATCH, method=Method.FAILOVER,
        status=Status.PREPARING, required_by=T0 + timedelta(days=7), created_at=T0, started_at=T0,
    )


def test_one_trace_across_a_restart_with_a_span_per_step() -> None:
    exporter = InMemorySpanExporter()
    m = replace(maintenance(), state=Observability.with_trace(DriverState()))
    assert Observability.with_trace(m.state) == m.state  # drawn once, then kept
    first = observer(exporter)
    with first.step(m, "prepare"):
        pass
    with pytest.raises(RuntimeError), first.step(m, "catch_up"):
        raise RuntimeError("the standby went away")
    # A new scheduler process: a new provider, the same durable state.
    second = observer(exporter)
    with second.step(m, "catch_up"):
        headers = tracing.inject()
    done = replace(m, status=Status.COMPLETED, completed_at=T0 + timedelta(seconds=30), write_pause_ms=12)
    second.ended(done)

    spans = exporter.get_finished_spans()
    root = next(s for s in spans if s.name == "maintenance redis-a")
    expected = tracing.parse_traceparent(m.state.traceparent)
    assert expected is not None
    assert (root.context.trace_id, root.context.span_id) == (expected.trace_id, expected.span_id)
    assert root.parent is None and root.start_time == int(T0.timestamp() * 1e9)
    steps = [s for s in spans if s.name.startswith("step ")]
    assert [s.name for s in steps] == ["step prepare", "step catch_up", "step catch_up"]
    assert all(s.context.trace_id == expected.trace_id and s.parent.span_id == expected.span_id for s in steps)
    assert not steps[1].status.is_ok  # the failed attempt is marked
    # What the hub puts in a command: the step's span and the log fields as baggage.
    assert headers["traceparent"].split("-")[1] == f"{expected.trace_id:032x}"
    assert "maintenance_id=m-1" in headers["baggage"] and "step=catch_up" in headers["baggage"]
    assert first.metrics.step_duration.labels("catch_up", "failed")._sum.get() >= 0
    assert second.metrics.write_pause._sum.get() == pytest.approx(0.012)


def test_the_agent_span_is_a_child_of_the_step_and_its_logs_name_the_maintenance() -> None:
    exporter = InMemorySpanExporter()
    m = replace(maintenance(), state=Observability.with_trace(DriverState()))
    with observer(exporter).step(m, "failover"):
        headers = tracing.inject()
        step_span = tracing.parse_traceparent(headers["traceparent"])
    agent_tracer = tracing.provider("kvmaint-agent", (SimpleSpanProcessor(exporter),)).get_tracer("t")
    parent = tracing.extract(headers)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.json_formatter())
    handler.addFilter(logs.ContextFilter({"host": "db-1"}))
    logger = logging.getLogger("test.agent.obs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    with logs.bound(**tracing.baggage_of(parent)), agent_tracer.start_as_current_span("agent Failover", context=parent):
        logger.info("paused writes")
    logger.info("idle")
    logger.removeHandler(handler)
    agent = next(s for s in exporter.get_finished_spans() if s.name == "agent Failover")
    assert step_span is not None and agent.parent.span_id == step_span.span_id
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "paused writes" and first["level"] == "INFO" and first["time"].endswith("+00:00")
    assert (first["maintenance_id"], first["addon"], first["step"], first["host"]) == ("m-1", "redis-a", "failover", "db-1")
    assert "maintenance_id" not in second and second["host"] == "db-1"


def test_no_traceparent_no_forced_ids_and_bad_headers_are_ignored() -> None:
    assert tracing.parse_traceparent("00-zz-yy-01") is None
    assert tracing.context_of("") is None
    assert tracing.baggage_of(tracing.extract({"traceparent": "garbage"})) == {}
