"""OpenTelemetry setup, once for every service: traces, metrics and log correlation.

Telemetry is always recorded in-process (so spans exist for the MCP SDK's own
instrumentation and for trace ids in logs); it is exported over OTLP/HTTP only when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set. Export is batched and asynchronous: an
unreachable collector never blocks a request.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry import baggage, context, metrics, propagate, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from redis.observability import MetricGroup, OTelConfig, get_observability_instance

from waypoint_common.settings import ServiceSettings

log = logging.getLogger(__name__)

TRIP_BAGGAGE = "waypoint.trip_id"
TRIP_ATTRIBUTE = "waypoint.trip.id"


class TripIdSpanProcessor(SpanProcessor):
    """Puts the trip id carried in baggage on every span started under it, in every service."""

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        trip_id = baggage.get_baggage(TRIP_BAGGAGE, parent_context)
        if trip_id:
            span.set_attribute(TRIP_ATTRIBUTE, str(trip_id))

    def on_end(self, span: ReadableSpan) -> None:
        return None


# The Redis instrumentation names a pipeline's span after every command in it ("GET GET GET …",
# hundreds of characters); span names should be low-cardinality and short.
MAX_SPAN_NAME_WORDS = 3


def bounded_name(name: str) -> str:
    """A pipeline span's name as its distinct commands, the first few: `MULTI HSET EXPIRE +2`."""
    words = list(dict.fromkeys(name.split()))
    if len(words) <= MAX_SPAN_NAME_WORDS and len(name) <= 64:
        return name
    shown = " ".join(w[:20] for w in words[:MAX_SPAN_NAME_WORDS])
    more = len(words) - MAX_SPAN_NAME_WORDS
    return f"{shown} +{more}" if more > 0 else shown


class BoundedSpanNames(SpanProcessor):
    """Shortens the Redis instrumentation's pipeline span names as the spans start."""

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        scope = span.instrumentation_scope
        if scope is not None and scope.name.startswith("opentelemetry.instrumentation.redis"):
            shorter = bounded_name(span.name)
            if shorter != span.name:
                span.update_name(shorter)

    def on_end(self, span: ReadableSpan) -> None:
        return None


@contextlib.contextmanager
def trip_context(trip_id: str, traceparent: str | None = None) -> Iterator[None]:
    """Within this block, spans carry the trip id and it travels as baggage to other services.

    With `traceparent` (W3C), new spans join that trace: a job that runs a trip later becomes
    part of the trip's trace, under the request that created it.
    """
    ctx = propagate.extract({"traceparent": traceparent}) if traceparent else context.get_current()
    token = context.attach(baggage.set_baggage(TRIP_BAGGAGE, trip_id, context=ctx))
    try:
        yield
    finally:
        context.detach(token)


def span_context_of(traceparent: str | None) -> trace.SpanContext | None:
    """The span a W3C `traceparent` names (for a link to it), or None when it names none."""
    if not traceparent:
        return None
    found = trace.get_current_span(propagate.extract({"traceparent": traceparent})).get_span_context()
    return found if found.is_valid else None


def current_traceparent() -> str | None:
    """The active span as a W3C `traceparent` value."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


async def propagate_mcp_context(request: Any) -> None:
    """httpx2 request hook: copy the MCP message's trace context into the HTTP headers.

    The MCP SDK puts W3C trace context (and baggage) into `params._meta` of each request, but
    the HTTP request is sent from the transport's own task, outside the caller's context; this
    copies that context onto the HTTP request too, so the tool server's HTTP and Redis spans
    join the caller's trace.
    """
    if request.method != "POST" or not request.content:
        return
    try:
        message = orjson.loads(request.content)
    except orjson.JSONDecodeError:
        return
    params = message.get("params") if isinstance(message, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    if not isinstance(meta, dict):
        return
    for header in ("traceparent", "tracestate", "baggage"):
        value = meta.get(header)
        if isinstance(value, str) and header not in request.headers:
            request.headers[header] = value


@dataclass(frozen=True)
class Telemetry:
    """The providers installed for this process; `shutdown()` flushes them."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


_installed: Telemetry | None = None


def setup_telemetry(service_name: str, settings: ServiceSettings) -> Telemetry:
    """Install the global tracer and meter providers and the library instrumentations.

    Idempotent within a process: a second call returns the providers already installed.
    FastAPI apps are instrumented where they are built; Redis commands here, with a span each
    when `redis_spans` is on. HTTP clients are `httpx2`
    (the MCP SDK's transport), which no OpenTelemetry package instruments.
    The sampler comes from the standard `OTEL_TRACES_SAMPLER` variables (the SDK default is
    parent-based always-on, so a trip is never half-sampled).
    """
    global _installed
    if _installed is not None:
        return _installed
    resource = Resource.create({"service.name": service_name, "service.namespace": "waypoint"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(TripIdSpanProcessor())
    tracer_provider.add_span_processor(BoundedSpanNames())
    readers: list[MetricReader] = []
    if settings.otel_endpoint:
        base = settings.otel_endpoint.rstrip("/")
        # Batched in a background thread with a bounded queue: a slow or absent collector
        # costs dropped spans, never a blocked request.
        tracer_provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=5),
                max_queue_size=4096,
                schedule_delay_millis=1000,
            )
        )
        # The interval comes from OTEL_METRIC_EXPORT_INTERVAL (milliseconds; the SDK default is 60 s).
        readers.append(
            PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=5))
        )
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    if settings.redis_spans:
        RedisInstrumentor().instrument(tracer_provider=tracer_provider)
    # redis-py's own metrics (on the meter provider just installed): each command's duration as
    # `db.client.operation.duration`, connections, errors and retries.
    get_observability_instance().init(
        OTelConfig(
            metric_groups=[MetricGroup.COMMAND, MetricGroup.CONNECTION_BASIC, MetricGroup.RESILIENCY],
            hide_pubsub_channel_names=True,
            hide_stream_names=True,
        )
    )
    _installed = Telemetry(tracer_provider, meter_provider)
    log.info("telemetry ready", extra={"otlp_endpoint": settings.otel_endpoint or "none"})
    return _installed
