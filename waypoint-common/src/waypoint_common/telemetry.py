"""OpenTelemetry setup, once for every service: traces, metrics and log correlation.

Telemetry is always recorded in-process (so spans exist for the MCP SDK's own
instrumentation and for trace ids in logs); it is exported over OTLP/HTTP only when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set. Export is batched and asynchronous: an
unreachable collector never blocks a request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from waypoint_common.settings import ServiceSettings

log = logging.getLogger(__name__)


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
    FastAPI apps are instrumented where they are built; Redis here. HTTP clients are `httpx2`
    (the MCP SDK's transport), which no OpenTelemetry package instruments.
    The sampler comes from the standard `OTEL_TRACES_SAMPLER` variables (the SDK default is
    parent-based always-on, so a trip is never half-sampled).
    """
    global _installed
    if _installed is not None:
        return _installed
    resource = Resource.create({"service.name": service_name, "service.namespace": "waypoint"})
    tracer_provider = TracerProvider(resource=resource)
    readers: list[MetricReader] = []
    if settings.otel_endpoint:
        base = settings.otel_endpoint.rstrip("/")
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=5))
        )
        readers.append(
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=5),
                export_interval_millis=5_000,
            )
        )
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    RedisInstrumentor().instrument(tracer_provider=tracer_provider)
    _installed = Telemetry(tracer_provider, meter_provider)
    log.info("telemetry ready", extra={"otlp_endpoint": settings.otel_endpoint or "none"})
    return _installed
