"""A real OTLP/HTTP receiver for the suite: what service processes export, decoded for assertions.

Services export with the OpenTelemetry SDK's OTLP/HTTP protobuf exporters, which POST
`application/x-protobuf` bodies (optionally gzip- or deflate-compressed) to
`<endpoint>/v1/traces`, `<endpoint>/v1/metrics` and `<endpoint>/v1/logs`. Point a service's
`OTEL_EXPORTER_OTLP_ENDPOINT` at `OtlpReceiver.endpoint` and assert on `spans()`, `metrics()` and
`logs()`; `wait_for` polls, since the services export in batches from background threads.

Ids are lower-case hex (`trace_id` 32 chars, `span_id` 16), empty when absent. Span `kind` is the
name of `opentelemetry.trace.SpanKind` ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER",
or "UNSPECIFIED"), so `span.kind == SpanKind.SERVER.name` reads naturally: the protobuf enum
numbers are one more than the API's, a trap when comparing ints.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

__all__ = [
    "LogRecord",
    "MetricPoint",
    "OtlpReceiver",
    "ReceivedRequest",
    "Span",
    "children",
    "is_descendant",
    "latest_points",
    "missing_parents",
    "spans_of_trace",
]

TRACES_PATH = "/v1/traces"
METRICS_PATH = "/v1/metrics"
LOGS_PATH = "/v1/logs"

_SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_TEMPORALITIES = {0: "", 1: "delta", 2: "cumulative"}


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    name: str
    kind: str  # SpanKind name: "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER", "UNSPECIFIED"
    service: str  # resource attribute service.name ("" when absent)
    attributes: dict[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    events: list[tuple[str, dict[str, Any]]]
    links: list[tuple[str, str]]  # (trace id, span id)
    start_ns: int
    end_ns: int
    scope: str = ""  # instrumentation scope name (the tracer's name)
    resource: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricPoint:
    service: str
    name: str
    kind: str  # "sum", "gauge", "histogram", "exponential_histogram" or "summary"
    attributes: dict[str, Any]
    value: float | None  # sum and gauge points
    count: int | None  # histogram points
    sum: float | None  # histogram points (None when the SDK did not record a sum)
    bucket_counts: tuple[int, ...]  # explicit-bucket histograms; () otherwise
    time_ns: int
    start_time_ns: int = 0
    bounds: tuple[float, ...] = ()  # explicit-bucket histogram boundaries
    temporality: str = ""  # "cumulative" or "delta" for sums and histograms; "" for gauges
    monotonic: bool | None = None  # sums only
    unit: str = ""
    scope: str = ""
    resource: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LogRecord:
    service: str
    body: str  # a string body as is; any other body in its flattened Python form, str()'d
    attributes: dict[str, Any]
    trace_id: str  # "" when the record carried no trace context
    span_id: str
    severity_text: str
    severity_number: int = 0
    time_ns: int = 0
    event_name: str = ""
    scope: str = ""
    resource: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request as it reached the receiver, whatever became of it."""

    method: str
    path: str
    content_type: str
    content_encoding: str
    body_bytes: int  # as sent on the wire (compressed size if compressed)
    status: int  # the status the receiver answered with


def _any_value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_any_value(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    return {pair.key: _any_value(pair.value) for pair in pairs}


def _resource(resource: resource_pb2.Resource) -> tuple[str, dict[str, Any]]:
    attributes = _attributes(resource.attributes)
    service = attributes.get("service.name", "")
    return (service if isinstance(service, str) else str(service)), attributes


def _decode_spans(body: bytes) -> list[Span]:
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[Span] = []
    for resource_spans in request.resource_spans:
        service, resource = _resource(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=_SPAN_KINDS.get(span.kind, str(span.kind)),
                        service=service,
                        attributes=_attributes(span.attributes),
                        status_code=span.status.code,
                        status_message=span.status.message,
                        events=[(event.name, _attributes(event.attributes)) for event in span.events],
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        scope=scope_spans.scope.name,
                        resource=dict(resource),
                    )
                )
    return spans


def _number(point: metrics_pb2.NumberDataPoint) -> float | None:
    kind = point.WhichOneof("value")
    if kind == "as_int":
        return float(point.as_int)
    if kind == "as_double":
        return point.as_double
    return None


def _decode_metrics(body: bytes) -> list[MetricPoint]:
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    request.ParseFromString(body)
    points: list[MetricPoint] = []
    for resource_metrics in request.resource_metrics:
        service, resource = _resource(resource_metrics.resource)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope.name
            for metric in scope_metrics.metrics:
                common: dict[str, Any] = {
                    "service": service,
                    "name": metric.name,
                    "unit": metric.unit,
                    "scope": scope,
                }
                data = metric.WhichOneof("data")
                if data == "sum":
                    temporality = _TEMPORALITIES.get(metric.sum.aggregation_temporality, "")
                    for number in metric.sum.data_points:
                        points.append(
                            MetricPoint(
                                **common,
                                kind="sum",
                                attributes=_attributes(number.attributes),
                                value=_number(number),
                                count=None,
                                sum=None,
                                bucket_counts=(),
                                time_ns=number.time_unix_nano,
                                start_time_ns=number.start_time_unix_nano,
                                temporality=temporality,
                                monotonic=metric.sum.is_monotonic,
                                resource=dict(resource),
                            )
                        )
                elif data == "gauge":
                    for number in metric.gauge.data_points:
                        points.append(
                            MetricPoint(
                                **common,
                                kind="gauge",
                                attributes=_attributes(number.attributes),
                                value=_number(number),
                                count=None,
                                sum=None,
                                bucket_counts=(),
                                time_ns=number.time_unix_nano,
                                start_time_ns=number.start_time_unix_nano,
                                resource=dict(resource),
                            )
                        )
                elif data == "histogram":
                    temporality = _TEMPORALITIES.get(metric.histogram.aggregation_temporality, "")
                    for histogram in metric.histogram.data_points:
                        points.append(
                            MetricPoint(
                                **common,
                                kind="histogram",
                                attributes=_attributes(histogram.attributes),
                                value=None,
                                count=histogram.count,
                                sum=histogram.sum if histogram.HasField("sum") else None,
                                bucket_counts=tuple(histogram.bucket_counts),
                                time_ns=histogram.time_unix_nano,
                                start_time_ns=histogram.start_time_unix_nano,
                                bounds=tuple(histogram.explicit_bounds),
                                temporality=temporality,
                                resource=dict(resource),
                            )
                        )
                elif data == "exponential_histogram":
                    temporality = _TEMPORALITIES.get(metric.exponential_histogram.aggregation_temporality, "")
                    for exponential in metric.exponential_histogram.data_points:
                        points.append(
                            MetricPoint(
                                **common,
                                kind="exponential_histogram",
                                attributes=_attributes(exponential.attributes),
                                value=None,
                                count=exponential.count,
                                sum=exponential.sum if exponential.HasField("sum") else None,
                                bucket_counts=(),
                                time_ns=exponential.time_unix_nano,
                                start_time_ns=exponential.start_time_unix_nano,
                                temporality=temporality,
                                resource=dict(resource),
                            )
                        )
                elif data == "summary":
                    for summary in metric.summary.data_points:
                        points.append(
                            MetricPoint(
                                **common,
                                kind="summary",
                                attributes=_attributes(summary.attributes),
                                value=None,
                                count=summary.count,
                                sum=summary.sum,
                                bucket_counts=(),
                                time_ns=summary.time_unix_nano,
                                start_time_ns=summary.start_time_unix_nano,
                                resource=dict(resource),
                            )
                        )
    return points


def _body_text(body: common_pb2.AnyValue) -> str:
    value = _any_value(body)
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _decode_logs(body: bytes) -> list[LogRecord]:
    request = logs_service_pb2.ExportLogsServiceRequest()
    request.ParseFromString(body)
    records: list[LogRecord] = []
    for resource_logs in request.resource_logs:
        service, resource = _resource(resource_logs.resource)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                records.append(
                    LogRecord(
                        service=service,
                        body=_body_text(record.body),
                        attributes=_attributes(record.attributes),
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        severity_text=record.severity_text,
                        severity_number=record.severity_number,
                        time_ns=record.time_unix_nano or record.observed_time_unix_nano,
                        event_name=record.event_name,
                        scope=scope_logs.scope.name,
                        resource=dict(resource),
                    )
                )
    return records


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: OtlpReceiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = receiver


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so no handler thread outlives stop() in a keep-alive read.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # the suite's output stays quiet
        return None

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        assert isinstance(self.server, _Server)
        receiver = self.server.receiver
        path = self.path.split("?", 1)[0]
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        raw = self._read_body()

        def answer(status: int, body: bytes, content_type_out: str, error: str = "") -> None:
            receiver._record_request(
                ReceivedRequest("POST", path, content_type, encoding, len(raw), status), error
            )
            self._answer(status, body, content_type_out)

        if path not in (TRACES_PATH, METRICS_PATH, LOGS_PATH):
            answer(404, b"not an OTLP path", "text/plain", f"POST to unknown path {path}")
            return
        if content_type != "application/x-protobuf":
            # OTLP/JSON is valid OTLP but not what the SDK's proto exporters send: say so loudly.
            answer(
                415, b"only application/x-protobuf", "text/plain", f"{path}: Content-Type {content_type!r}"
            )
            return
        try:
            body = _decompress(raw, encoding)
            if path == TRACES_PATH:
                receiver._add(spans=_decode_spans(body))
                response = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            elif path == METRICS_PATH:
                receiver._add(metrics=_decode_metrics(body))
                response = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
            else:
                receiver._add(logs=_decode_logs(body))
                response = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
        except Exception as exc:  # a body we cannot decode is a finding, not a crash
            answer(400, str(exc).encode(), "text/plain", f"{path}: {type(exc).__name__}: {exc}")
            return
        answer(200, response, "application/x-protobuf")

    def do_GET(self) -> None:
        assert isinstance(self.server, _Server)
        self.server.receiver._record_request(
            ReceivedRequest("GET", self.path, "", "", 0, 405), f"GET {self.path}"
        )
        self._answer(405, b"OTLP/HTTP takes POST", "text/plain")


class OtlpReceiver:
    """An OTLP/HTTP (protobuf) receiver on 127.0.0.1, serving from a background thread.

    Usable as a context manager (`with OtlpReceiver() as receiver:`), which starts and stops it.
    Everything received is kept until `clear()`; the accessors return snapshots.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Span] = []
        self._metrics: list[MetricPoint] = []
        self._logs: list[LogRecord] = []
        self._requests: list[ReceivedRequest] = []
        self._errors: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> OtlpReceiver:
        if self._server is not None:
            return self
        server = _Server(self)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="otlp-receiver", daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("OtlpReceiver is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """The base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`; signals go to `/v1/traces` etc. under it."""
        return f"http://127.0.0.1:{self.port}"

    # -- what was received -------------------------------------------------------------------

    def _add(
        self,
        spans: Sequence[Span] = (),
        metrics: Sequence[MetricPoint] = (),
        logs: Sequence[LogRecord] = (),
    ) -> None:
        with self._lock:
            self._spans.extend(spans)
            self._metrics.extend(metrics)
            self._logs.extend(logs)

    def _record_request(self, request: ReceivedRequest, error: str = "") -> None:
        with self._lock:
            self._requests.append(request)
            if error:
                self._errors.append(error)

    def clear(self) -> None:
        """Forget everything received so far (spans, metrics, logs, requests and errors)."""
        with self._lock:
            self._spans.clear()
            self._metrics.clear()
            self._logs.clear()
            self._requests.clear()
            self._errors.clear()

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    def metrics(self) -> list[MetricPoint]:
        with self._lock:
            return list(self._metrics)

    def logs(self) -> list[LogRecord]:
        with self._lock:
            return list(self._logs)

    def requests(self) -> list[ReceivedRequest]:
        """Every HTTP request received, in order, with the status it was answered with."""
        with self._lock:
            return list(self._requests)

    @property
    def requests_received(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def errors(self) -> list[str]:
        """Requests the receiver refused (bad path, content type, encoding or body), described."""
        with self._lock:
            return list(self._errors)

    def summary(self) -> str:
        """A short account of what has been received, for assertion messages."""
        with self._lock:
            spans, metrics, logs = list(self._spans), list(self._metrics), list(self._logs)
            requests, errors = len(self._requests), list(self._errors)
        span_names = sorted({f"{span.service}:{span.name}" for span in spans})
        metric_names = sorted({f"{point.service}:{point.name}" for point in metrics})
        counts = f"{len(spans)} span(s), {len(metrics)} metric point(s), {len(logs)} log(s)"
        lines = [
            f"{requests} request(s); {counts}",
            f"span names: {_shorten(span_names)}",
            f"metric names: {_shorten(metric_names)}",
        ]
        if errors:
            lines.append(f"refused requests: {_shorten(errors)}")
        return "\n".join(lines)

    def wait_for(
        self, predicate: Callable[[OtlpReceiver], bool], timeout: float = 10.0, what: str = ""
    ) -> None:
        """Poll until `predicate(self)` is true; on timeout raise AssertionError saying what arrived.

        An exception from the predicate counts as "not yet" (a span may not have arrived to
        index into); the last one is included in the timeout message.
        """
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            try:
                if predicate(self):
                    return
                last_error = None
            except Exception as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        described = what or getattr(predicate, "__name__", repr(predicate))
        message = f"OTLP receiver: {described} not satisfied within {timeout}s\n{self.summary()}"
        if last_error is not None:
            message += f"\nlast predicate error: {type(last_error).__name__}: {last_error}"
        raise AssertionError(message)


def _shorten(items: Sequence[str], limit: int = 40) -> str:
    if not items:
        return "(none)"
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# -- assertion helpers ------------------------------------------------------------------------


def spans_of_trace(spans: Iterable[Span], trace_id: str) -> list[Span]:
    """The spans of one trace, in the order given."""
    return [span for span in spans if span.trace_id == trace_id]


def children(spans: Iterable[Span], span: Span) -> list[Span]:
    """The direct children of `span` (same trace, parent id = its span id)."""
    return [
        child for child in spans if child.trace_id == span.trace_id and child.parent_span_id == span.span_id
    ]


def is_descendant(spans: Iterable[Span], span: Span, ancestor: Span) -> bool:
    """Whether `ancestor` is on `span`'s chain of parents (strictly: a span is not its own descendant).

    The chain is followed through the spans given, so a missing intermediate span breaks it.
    """
    if span.trace_id != ancestor.trace_id:
        return False
    by_id = {candidate.span_id: candidate for candidate in spans if candidate.trace_id == span.trace_id}
    seen: set[str] = set()
    parent_id = span.parent_span_id
    while parent_id and parent_id not in seen:
        if parent_id == ancestor.span_id:
            return True
        seen.add(parent_id)
        parent = by_id.get(parent_id)
        if parent is None:
            return False
        parent_id = parent.parent_span_id
    return False


def missing_parents(spans: Iterable[Span]) -> list[Span]:
    """Spans whose (non-empty) parent id is not among the spans of their own trace."""
    spans = list(spans)
    present = {(span.trace_id, span.span_id) for span in spans}
    return [
        span for span in spans if span.parent_span_id and (span.trace_id, span.parent_span_id) not in present
    ]


def _attribute_key(attributes: dict[str, Any]) -> str:
    return repr(sorted(attributes.items()))


def latest_points(points: Iterable[MetricPoint], name: str) -> list[MetricPoint]:
    """For cumulative metrics: the most recent point of metric `name` per (service, attribute set).

    Returned in the order each (service, attribute set) was first seen. With delta temporality
    this is just the last interval's point; sum the points instead.
    """
    latest: dict[tuple[str, str], MetricPoint] = {}
    for point in points:
        if point.name != name:
            continue
        key = (point.service, _attribute_key(point.attributes))
        current = latest.get(key)
        if current is None or point.time_ns >= current.time_ns:
            latest[key] = point
    return list(latest.values())
