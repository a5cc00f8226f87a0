"""The OTLP receiver decodes what the real OpenTelemetry SDK exporters send, over real HTTP.

Each test builds its own SDK providers and never installs them globally (other tests do), and
shuts them down at the end.
"""

from __future__ import annotations

import gzip
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, format_span_id, format_trace_id

from tests.otlp import (
    MetricPoint,
    OtlpReceiver,
    Span,
    children,
    is_descendant,
    latest_points,
    missing_parents,
    spans_of_trace,
)

SERVICE = "otlp-receiver-test"
RESOURCE = Resource.create({"service.name": SERVICE, "service.namespace": "waypoint"})


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as started:
        yield started


def _tracer_provider(receiver: OtlpReceiver, compression: Compression | None = None) -> TracerProvider:
    provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
    exporter = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces", timeout=5, compression=compression)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _meter_provider(receiver: OtlpReceiver, compression: Compression | None = None) -> MeterProvider:
    exporter = OTLPMetricExporter(
        endpoint=f"{receiver.endpoint}/v1/metrics", timeout=5, compression=compression
    )
    # An interval far beyond the test: exports happen only on force_flush and shutdown.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    return MeterProvider(resource=RESOURCE, metric_readers=[reader], shutdown_on_exit=False)


def _one(spans: Iterable[Span], name: str) -> Span:
    matching = [span for span in spans if span.name == name]
    assert len(matching) == 1, f"expected one span {name!r}, got {matching}"
    return matching[0]


def test_spans_from_the_sdk_exporter(receiver: OtlpReceiver) -> None:
    provider = _tracer_provider(receiver)
    tracer = provider.get_tracer("tests.otlp")
    try:
        with tracer.start_as_current_span("linked") as linked:
            linked_context = linked.get_span_context()
        with tracer.start_as_current_span(
            "parent", kind=SpanKind.SERVER, attributes={"http.route": "/trips", "retries": 2}
        ) as parent:
            parent_context = parent.get_span_context()
            with tracer.start_as_current_span(
                "child",
                kind=SpanKind.CLIENT,
                attributes={
                    "ratio": 0.5,
                    "cached": False,
                    "tags": ["a", "b"],
                    "sizes": [1, 2, 3],
                },
                links=[Link(linked_context, {"link.reason": "follows"})],
            ) as child:
                child_context = child.get_span_context()
                child.add_event("tool called", {"tool": "search_flights", "attempt": 1})
                child.set_status(Status(StatusCode.ERROR, "upstream timed out"))
            with pytest.raises(ValueError, match="bad city"), tracer.start_as_current_span("raises"):
                raise ValueError("bad city")
    finally:
        provider.shutdown()

    receiver.wait_for(lambda r: len(r.spans()) == 4, timeout=10, what="four spans")
    assert receiver.errors == []
    spans = receiver.spans()
    parent_span, child_span = _one(spans, "parent"), _one(spans, "child")
    linked_span, raised_span = _one(spans, "linked"), _one(spans, "raises")

    assert parent_span.trace_id == format_trace_id(parent_context.trace_id)
    assert parent_span.span_id == format_span_id(parent_context.span_id)
    assert len(parent_span.trace_id) == 32
    assert len(parent_span.span_id) == 16
    assert parent_span.parent_span_id == ""
    assert parent_span.kind == SpanKind.SERVER.name == "SERVER"
    assert parent_span.service == SERVICE
    assert parent_span.scope == "tests.otlp"
    assert parent_span.resource["service.namespace"] == "waypoint"
    assert parent_span.attributes == {"http.route": "/trips", "retries": 2}
    assert parent_span.status_code == 0
    assert parent_span.start_ns <= child_span.start_ns <= child_span.end_ns <= parent_span.end_ns

    assert child_span.trace_id == parent_span.trace_id
    assert child_span.span_id == format_span_id(child_context.span_id)
    assert child_span.parent_span_id == parent_span.span_id
    assert child_span.kind == "CLIENT"
    assert child_span.attributes == {"ratio": 0.5, "cached": False, "tags": ("a", "b"), "sizes": (1, 2, 3)}
    assert child_span.events == [("tool called", {"tool": "search_flights", "attempt": 1})]
    assert child_span.links == [(linked_span.trace_id, linked_span.span_id)]
    assert (child_span.status_code, child_span.status_message) == (2, "upstream timed out")

    # An exception escaping start_as_current_span: the SDK records an "exception" event and
    # sets an error status whose message is "<type>: <message>".
    assert raised_span.parent_span_id == parent_span.span_id
    assert raised_span.status_code == 2
    assert raised_span.status_message == "ValueError: bad city"
    [(event_name, event_attributes)] = raised_span.events
    assert event_name == "exception"
    assert event_attributes["exception.type"] == "ValueError"
    assert event_attributes["exception.message"] == "bad city"
    assert "Traceback" in event_attributes["exception.stacktrace"]

    assert linked_span.trace_id != parent_span.trace_id
    trace = spans_of_trace(spans, parent_span.trace_id)
    assert {span.name for span in trace} == {"parent", "child", "raises"}
    assert {span.name for span in children(spans, parent_span)} == {"child", "raises"}
    assert is_descendant(spans, child_span, parent_span)
    assert not is_descendant(spans, parent_span, child_span)
    assert missing_parents(spans) == []
    assert all(request.path == "/v1/traces" and request.status == 200 for request in receiver.requests())


def test_metrics_from_the_sdk_exporter(receiver: OtlpReceiver) -> None:
    provider = _meter_provider(receiver)
    meter = provider.get_meter("tests.otlp")
    counter = meter.create_counter("waypoint.test.calls", unit="{call}")
    histogram = meter.create_histogram("waypoint.test.latency", unit="ms")
    temperatures = {"SFO": 18.5}

    def observe(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, {"airport": airport}) for airport, value in temperatures.items()]

    meter.create_observable_gauge("waypoint.test.temperature", callbacks=[observe], unit="Cel")
    try:
        counter.add(2, {"tool": "flights"})
        counter.add(3, {"tool": "flights"})
        counter.add(1, {"tool": "hotels", "cached": True})
        histogram.record(7, {"tool": "flights"})
        histogram.record(30.5, {"tool": "flights"})
        assert provider.force_flush(timeout_millis=10_000)
        receiver.wait_for(lambda r: r.requests_received >= 1, timeout=10)
        first = receiver.metrics()

        calls = {point.attributes["tool"]: point for point in latest_points(first, "waypoint.test.calls")}
        assert set(calls) == {"flights", "hotels"}
        assert calls["flights"].kind == "sum"
        assert calls["flights"].value == 5
        assert calls["flights"].attributes == {"tool": "flights"}
        assert calls["hotels"].attributes == {"tool": "hotels", "cached": True}
        assert calls["flights"].monotonic is True
        assert calls["flights"].temporality == "cumulative"  # the SDK's default for counters
        assert calls["flights"].service == SERVICE
        assert calls["flights"].unit == "{call}"
        assert calls["flights"].scope == "tests.otlp"

        [latency] = latest_points(first, "waypoint.test.latency")
        assert latency.kind == "histogram"
        assert latency.attributes == {"tool": "flights"}
        assert latency.value is None
        assert latency.count == 2
        assert latency.sum == 37.5
        assert sum(latency.bucket_counts) == 2
        assert len(latency.bucket_counts) == len(latency.bounds) + 1
        assert latency.bounds[:4] == (0.0, 5.0, 10.0, 25.0)  # the SDK's default boundaries
        assert latency.bucket_counts[2] == 1  # 7 in (5, 10]
        assert latency.bucket_counts[4] == 1  # 30.5 in (25, 50]

        [temperature] = latest_points(first, "waypoint.test.temperature")
        assert (temperature.kind, temperature.value, temperature.attributes) == (
            "gauge",
            18.5,
            {"airport": "SFO"},
        )
        assert temperature.temporality == ""

        # Cumulative export repeats every series at every collection: latest_points keeps the newest.
        counter.add(10, {"tool": "flights"})
        histogram.record(1, {"tool": "flights"})
        temperatures["SFO"] = 20.0
        assert provider.force_flush(timeout_millis=10_000)
        receiver.wait_for(lambda r: r.requests_received >= 2, timeout=10)
    finally:
        provider.shutdown()

    points = receiver.metrics()
    assert len([point for point in points if point.name == "waypoint.test.calls"]) >= 4
    start_ns = calls["flights"].start_time_ns
    calls = {point.attributes["tool"]: point for point in latest_points(points, "waypoint.test.calls")}
    assert (calls["flights"].value, calls["hotels"].value) == (15, 1)
    assert calls["flights"].start_time_ns == start_ns  # cumulative: the series keeps its start
    assert calls["flights"].time_ns > start_ns
    [latency] = latest_points(points, "waypoint.test.latency")
    assert (latency.count, latency.sum) == (3, 38.5)
    [temperature] = latest_points(points, "waypoint.test.temperature")
    assert temperature.value == 20.0
    assert receiver.errors == []


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.Deflate])
def test_compressed_exports(receiver: OtlpReceiver, compression: Compression) -> None:
    tracer_provider = _tracer_provider(receiver, compression)
    meter_provider = _meter_provider(receiver, compression)
    try:
        with tracer_provider.get_tracer("tests.otlp").start_as_current_span(
            "compressed", attributes={"n": 1}
        ):
            pass
        meter_provider.get_meter("tests.otlp").create_counter("waypoint.test.compressed").add(4)
        assert meter_provider.force_flush(timeout_millis=10_000)
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    receiver.wait_for(lambda r: len(r.spans()) == 1 and len(r.metrics()) >= 1, timeout=10)
    [span] = receiver.spans()
    assert (span.name, span.attributes, span.service) == ("compressed", {"n": 1}, SERVICE)
    [point] = latest_points(receiver.metrics(), "waypoint.test.compressed")
    assert point.value == 4
    assert point.attributes == {}
    requests = receiver.requests()
    assert {request.path for request in requests} == {"/v1/traces", "/v1/metrics"}
    assert all(request.content_encoding == compression.value for request in requests)
    assert all(request.status == 200 for request in requests)
    assert receiver.errors == []


def test_logs_from_the_sdk_exporter(receiver: OtlpReceiver) -> None:
    tracer_provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{receiver.endpoint}/v1/logs", timeout=5))
    )
    try:
        logger = provider.get_logger("tests.otlp")
        with tracer_provider.get_tracer("tests.otlp").start_as_current_span("logging") as span:
            context = span.get_span_context()
            logger.emit(body="trip planned", severity_text="INFO", attributes={"trip.id": "t-1"})
        logger.emit(body={"structured": 1}, severity_text="WARN")
    finally:
        provider.shutdown()
        tracer_provider.shutdown()

    receiver.wait_for(lambda r: len(r.logs()) == 2, timeout=10)
    planned, structured = receiver.logs()
    assert (planned.body, planned.severity_text, planned.service) == ("trip planned", "INFO", SERVICE)
    assert planned.attributes == {"trip.id": "t-1"}
    assert planned.trace_id == format_trace_id(context.trace_id)
    assert planned.span_id == format_span_id(context.span_id)
    assert structured.body == "{'structured': 1}"
    assert (structured.trace_id, structured.span_id) == ("", "")


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)


def test_refused_requests_are_counted_and_described(receiver: OtlpReceiver) -> None:
    protobuf = {"Content-Type": "application/x-protobuf"}
    assert _post(f"{receiver.endpoint}/v1/traces", b"\xff\xff\xff", protobuf) == 400
    assert _post(f"{receiver.endpoint}/v1/other", b"", protobuf) == 404
    assert _post(f"{receiver.endpoint}/v1/traces", b"{}", {"Content-Type": "application/json"}) == 415
    assert (
        _post(f"{receiver.endpoint}/v1/traces", gzip.compress(b""), {**protobuf, "Content-Encoding": "gzip"})
        == 200
    )
    assert receiver.requests_received == 4
    assert [request.status for request in receiver.requests()] == [400, 404, 415, 200]
    assert len(receiver.errors) == 3
    assert receiver.spans() == []

    with pytest.raises(AssertionError, match=r"a span named 'x'.*\n4 request\(s\); 0 span\(s\)"):
        receiver.wait_for(
            lambda r: any(s.name == "x" for s in r.spans()), timeout=0.2, what="a span named 'x'"
        )

    receiver.clear()
    assert (receiver.requests_received, receiver.errors) == (0, [])


def _span(name: str, span_id: str, parent: str = "", trace_id: str = "a" * 32) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind="INTERNAL",
        service="svc",
        attributes={},
        status_code=0,
        status_message="",
        events=[],
        links=[],
        start_ns=0,
        end_ns=1,
    )


def _point(attributes: dict[str, object], value: float, time_ns: int, name: str = "m") -> MetricPoint:
    return MetricPoint(
        service="svc",
        name=name,
        kind="sum",
        attributes=dict(attributes),
        value=value,
        count=None,
        sum=None,
        bucket_counts=(),
        time_ns=time_ns,
    )


def test_helpers_on_hand_made_spans_and_points() -> None:
    root = _span("root", "1" * 16)
    child = _span("child", "2" * 16, parent=root.span_id)
    grandchild = _span("grandchild", "3" * 16, parent=child.span_id)
    sibling = _span("sibling", "4" * 16, parent=root.span_id)
    orphan = _span("orphan", "5" * 16, parent="9" * 16)
    # Another trace reusing span ids: relations never cross traces.
    other_root = _span("other", root.span_id, trace_id="b" * 32)
    stray = _span("stray", "6" * 16, parent=child.span_id, trace_id="b" * 32)  # no such span in trace b
    spans = [root, child, grandchild, sibling, orphan, other_root, stray]

    assert spans_of_trace(spans, "a" * 32) == [root, child, grandchild, sibling, orphan]
    assert spans_of_trace(spans, "c" * 32) == []
    assert children(spans, root) == [child, sibling]
    assert children(spans, grandchild) == []
    assert children(spans, other_root) == []  # `child` and `sibling` point at the same id, other trace

    assert is_descendant(spans, grandchild, root)
    assert is_descendant(spans, grandchild, child)
    assert is_descendant(spans, child, root)
    assert not is_descendant(spans, root, root)
    assert not is_descendant(spans, sibling, child)
    assert not is_descendant(spans, root, grandchild)
    assert not is_descendant(spans, stray, child)  # parent id matches, trace does not
    assert not is_descendant(spans, stray, other_root)
    assert not is_descendant([root, grandchild], grandchild, root)  # the chain breaks at a missing span

    assert missing_parents(spans) == [orphan, stray]
    assert missing_parents([root, child, grandchild]) == []

    points = [
        _point({"tool": "flights"}, 1, time_ns=10),
        _point({"tool": "hotels"}, 5, time_ns=10),
        _point({"tool": "flights"}, 3, time_ns=20),
        _point({"tool": "flights", "cached": True}, 7, time_ns=15),
        _point({"tool": "flights"}, 2, time_ns=5),  # older, arriving late
        _point({"tool": "flights"}, 99, time_ns=30, name="other"),
    ]
    latest = latest_points(points, "m")
    assert [(point.attributes, point.value) for point in latest] == [
        ({"tool": "flights"}, 3),
        ({"tool": "hotels"}, 5),
        ({"tool": "flights", "cached": True}, 7),
    ]
    assert latest_points(points, "missing") == []
