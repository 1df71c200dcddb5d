"""OpenTelemetry plumbing: a private tracer provider per process, W3C context in and out of commands,
and spans whose ids are chosen in advance.

A maintenance outlives any one scheduler process, so its trace cannot hang off a live root span: the
trace id and the root span id are drawn when it starts and kept in its durable state (as a W3C
`traceparent`); each step span is a child of that root, and the root span itself is recorded, with those
same ids, when the maintenance ends. A restarted scheduler so continues the same trace.

OTLP export is on only when OTEL_EXPORTER_OTLP_ENDPOINT is set (OTEL_EXPORTER_OTLP_PROTOCOL picks
`grpc`, the default, or `http/protobuf`); otherwise spans go nowhere unless a test adds an exporter.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import random
from collections.abc import Iterator, Mapping

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import DefaultGetter, DefaultSetter, Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_TRACE = TraceContextTextMapPropagator()
# traceparent for the span, baggage for the log fields (maintenance_id, addon, step) of the agent's lines.
_PROPAGATOR = CompositePropagator([_TRACE, W3CBaggagePropagator()])
_SETTER: Setter[dict[str, str]] = DefaultSetter()  # type: ignore[assignment]
_forced: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "kvmaint_forced_ids", default=None
)


class _Ids(IdGenerator):
    """Random ids, except inside `forced_ids`, where the given trace and span id are used once."""

    def generate_span_id(self) -> int:
        forced = _forced.get()
        return forced[1] if forced else random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        forced = _forced.get()
        return forced[0] if forced else random.getrandbits(128) or 1

    def is_trace_id_random(self) -> bool:
        return True


def otlp_exporter() -> SpanExporter | None:
    """The OTLP exporter the environment asks for, or None when OTEL_EXPORTER_OTLP_ENDPOINT is unset."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"
    )
    if protocol.startswith("http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

        return Http()
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

    return Grpc()


def provider(
    service: str, processors: tuple[SpanProcessor, ...] = (), attributes: Mapping[str, str] | None = None
) -> TracerProvider:
    """A provider of this process's own (never the global one), exporting by OTLP when configured."""
    resource = Resource.create({"service.name": service, **(attributes or {})})
    p = TracerProvider(resource=resource, id_generator=_Ids())
    exporter = otlp_exporter()
    if exporter is not None:
        p.add_span_processor(BatchSpanProcessor(exporter))
    for proc in processors:
        p.add_span_processor(proc)
    return p


def new_traceparent() -> str:
    """Fresh trace and root span ids, as a W3C traceparent (sampled)."""
    return f"00-{random.getrandbits(128) or 1:032x}-{random.getrandbits(64) or 1:016x}-01"


def parse_traceparent(value: str) -> trace.SpanContext | None:
    ctx = _TRACE.extract({"traceparent": value}, getter=DefaultGetter())
    sc = trace.get_current_span(ctx).get_span_context()
    return sc if sc.is_valid else None


def context_of(traceparent: str) -> Context | None:
    """A context whose current span is the one `traceparent` names, for starting its children."""
    sc = parse_traceparent(traceparent)
    if sc is None:
        return None
    local = trace.SpanContext(sc.trace_id, sc.span_id, is_remote=False, trace_flags=sc.trace_flags)
    return trace.set_span_in_context(trace.NonRecordingSpan(local))


@contextlib.contextmanager
def forced_ids(traceparent: str) -> Iterator[None]:
    """Spans started in this block take the trace id and span id of `traceparent` (for a root span
    recorded after the fact)."""
    sc = parse_traceparent(traceparent)
    token = _forced.set((sc.trace_id, sc.span_id) if sc else None)
    try:
        yield
    finally:
        _forced.reset(token)


def with_baggage(ctx: Context | None, fields: Mapping[str, str]) -> Context:
    """`ctx` (default: the current context) with the fields as W3C baggage."""
    ctx = ctx if ctx is not None else otel_context.get_current()
    for key, value in fields.items():
        ctx = baggage.set_baggage(key, value, ctx)
    return ctx


def baggage_of(ctx: Context) -> dict[str, str]:
    return {k: str(v) for k, v in baggage.get_all(ctx).items()}


def inject() -> dict[str, str]:
    """The current span's W3C headers (traceparent, tracestate, baggage), empty when there is none."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, setter=_SETTER)
    return carrier


def extract(carrier: Mapping[str, str]) -> Context:
    return _PROPAGATOR.extract(dict(carrier), getter=DefaultGetter())
