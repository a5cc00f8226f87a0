"""One trace per trip across the five services, per-tool metrics, redaction, and export that never blocks.

The whole fleet here exports to a real OTLP/HTTP receiver (`tests/otlp.py`) with the real SDK
exporters; nothing is read from inside the processes.
"""

from __future__ import annotations

import collections
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from tests.helpers import days_ahead, spoken
from tests.otlp import OtlpReceiver, Span, is_descendant, latest_points, missing_parents, spans_of_trace
from tests.support import (
    SERVICE_TOKEN,
    Harness,
    RedisServer,
    ServiceProcess,
    api_headers,
    free_port,
    orchestrator_env,
    own_tool_servers,
    suite_key,
    wait_until,
)

TOOL_SERVERS = ("mcp-flights", "mcp-hotels", "mcp-weather", "mcp-restaurants")
SERVICES = {*TOOL_SERVERS, "orchestrator"}
TRAVELLER = "Ada Quintessa Lovelace"
SECRET = "Bearer do-not-export-this-token-7f3a"


@pytest.fixture(scope="module")
def traced(harness: Harness) -> Iterator[tuple[OtlpReceiver, dict[str, ServiceProcess]]]:
    """A fleet of its own (own Redis, own tool servers) exporting telemetry to the receiver."""
    receiver = OtlpReceiver()
    receiver.start()
    telemetry = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_METRIC_EXPORT_INTERVAL": "500"}
    try:
        with own_tool_servers(harness, **telemetry) as (redis, tools):
            orchestrator = harness.start(
                "waypoint-orchestrator", orchestrator_env(redis.url, tools, **telemetry)
            )
            yield receiver, {**tools, "orchestrator": orchestrator}
            orchestrator.stop()
    finally:
        receiver.stop()


def book(orchestrator: ServiceProcess, query: str, **headers: str) -> dict[str, Any]:
    response = httpx2.post(
        f"{orchestrator.base_url}/v1/trips",
        json={"query": query, "book": True, "traveler_name": TRAVELLER},
        headers=api_headers(orchestrator, {"Prefer": "wait=60", **headers}),
        timeout=90,
    )
    assert response.status_code == 200, response.text
    trip: dict[str, Any] = response.json()
    assert trip["status"] == "booked", trip
    assert response.headers["X-Trace-Id"] == trip["trace_id"]
    return trip


def trace_of(receiver: OtlpReceiver, trip: dict[str, Any], services: set[str] = SERVICES) -> list[Span]:
    """The trip's spans once every service it used has exported its part."""
    trace_id = trip["trace_id"]

    def complete(r: OtlpReceiver) -> bool:
        spans = spans_of_trace(r.spans(), trace_id)
        return {s.service for s in spans} >= services and not missing_parents(spans)

    receiver.wait_for(complete, timeout=30)
    return spans_of_trace(receiver.spans(), trace_id)


def test_a_booked_trip_is_one_connected_trace_across_the_fleet(
    traced: tuple[OtlpReceiver, dict[str, ServiceProcess]],
) -> None:
    receiver, fleet = traced
    trip = book(
        fleet["orchestrator"],
        f"3-day trip to Boston from Chicago on {spoken(days_ahead(41))} for two with a fancy dinner, "
        "budget $5000",
    )
    spans = trace_of(receiver, trip)

    # One trace: every span that carries the trip id is in it, and every span in it carries the trip id.
    carrying = [s for s in receiver.spans() if s.attributes.get("waypoint.trip.id") == trip["id"]]
    assert {s.trace_id for s in carrying} == {trip["trace_id"]}
    assert [s.name for s in spans if s.attributes.get("waypoint.trip.id") != trip["id"]] == []
    assert {s.service for s in spans} == SERVICES
    assert missing_parents(spans) == []
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == 1
    assert roots[0].service == "orchestrator"

    names = collections.Counter(s.name for s in spans)
    for agent in ("flights", "hotels", "weather", "dining"):
        assert names[f"invoke_agent {agent}"] >= 1, names
    assert names["saga book_trip"] == 1
    assert names["process trip.plan"] == 1

    # Each tool server's handling of a call sits under the orchestrator's execute_tool span for it.
    executes = [s for s in spans if s.name.startswith("execute_tool ")]
    assert {s.attributes["gen_ai.tool.name"] for s in executes} >= {
        "search_flights",
        "search_hotels",
        "get_forecast",
        "search_restaurants",
        "book_flight",
        "book_hotel",
        "reserve_table",
    }
    for s in executes:
        assert s.attributes["gen_ai.operation.name"] == "execute_tool"
        assert s.attributes["gen_ai.tool.call.id"]
    handling = [s for s in spans if s.service in TOOL_SERVERS and s.kind == "SERVER"]
    assert handling
    for server_span in handling:
        owners = [e for e in executes if is_descendant(spans, server_span, e)]
        assert len(owners) == 1, (server_span.name, server_span.service)
        tool = owners[0].attributes["gen_ai.tool.name"]
        if server_span.name.startswith("tools/call"):
            assert server_span.name == f"tools/call {tool}"
    # The tool servers' own HTTP spans and Redis spans are in the trace too.
    assert any(s.service == "mcp-flights" and s.name.startswith("POST") for s in spans)

    def redis_span_from_flights(r: OtlpReceiver) -> bool:
        return any(
            s.service == "mcp-flights"
            and "redis" in (s.attributes.get("db.system"), s.attributes.get("db.system.name"))
            for s in spans_of_trace(r.spans(), trip["trace_id"])
        )

    receiver.wait_for(redis_span_from_flights, timeout=15)
    agent_spans = [s for s in spans if s.name.startswith("invoke_agent ")]
    for s in executes:
        assert any(is_descendant(spans, s, a) for a in agent_spans) or s.name.startswith("execute_tool book_")


def test_redis_commands_are_spans_in_the_tool_servers_and_metrics_everywhere(
    traced: tuple[OtlpReceiver, dict[str, ServiceProcess]],
) -> None:
    """The orchestrator's Redis bookkeeping is no span per command (WAYPOINT_REDIS_SPANS is off
    there by default) but is measured: redis-py's `db.client.operation.duration` by command."""
    receiver, fleet = traced
    trip = book(
        fleet["orchestrator"],
        f"3-day trip to Austin from Denver on {spoken(days_ahead(44))} for one, budget $3000",
    )
    spans = trace_of(receiver, trip, SERVICES - {"mcp-restaurants"})

    def is_redis(span: Span) -> bool:
        return "redis" in (span.attributes.get("db.system"), span.attributes.get("db.system.name"))

    def durations(r: OtlpReceiver) -> dict[str, set[str]]:
        by_service: dict[str, set[str]] = collections.defaultdict(set)
        for point in latest_points(r.metrics(), "db.client.operation.duration"):
            by_service[point.service].add(str(point.attributes.get("db.operation.name")))
        return by_service

    receiver.wait_for(
        lambda r: {"EVALSHA", "GET"} <= durations(r)["orchestrator"] and bool(durations(r)["mcp-flights"]),
        timeout=30,
    )
    assert all(
        p.kind == "histogram" for p in latest_points(receiver.metrics(), "db.client.operation.duration")
    )
    assert [s.name for s in spans if s.service == "orchestrator" and is_redis(s)] == []
    assert any(s.service == "mcp-hotels" and is_redis(s) for s in spans)


def test_a_retried_call_shows_both_attempts(traced: tuple[OtlpReceiver, dict[str, ServiceProcess]]) -> None:
    receiver, fleet = traced
    fleet["mcp-weather"].admin("PUT", "/admin/faults", {"get_forecast": {"fail_next": 1}})
    try:
        trip = book(
            fleet["orchestrator"],
            f"3-day trip to Denver from Boston on {spoken(days_ahead(48))} for one, budget $3000",
        )
    finally:
        fleet["mcp-weather"].admin("PUT", "/admin/faults", {})
    spans = trace_of(receiver, trip, SERVICES - {"mcp-restaurants"})
    attempts = sorted((s for s in spans if s.name == "execute_tool get_forecast"), key=lambda s: s.start_ns)
    assert len(attempts) == 2
    first, second = attempts
    assert first.status_code == 2
    assert first.attributes["error.type"] == "ToolUnavailable"
    assert second.status_code != 2
    assert "error.type" not in second.attributes
    assert first.attributes["gen_ai.tool.call.id"] != second.attributes["gen_ai.tool.call.id"]
    agent = next(s for s in spans if s.name == "invoke_agent weather")
    assert first.parent_span_id == agent.span_id
    assert second.parent_span_id == agent.span_id
    assert any(name == "retry" for name, _ in agent.events)
    forecast = next(step for step in trip["steps"] if step["id"] == "get_forecast")
    assert forecast["attempts"] == 2
    # Logs are JSON lines carrying the trace, the span and the trip.
    lines = [
        json.loads(line)
        for line in fleet["orchestrator"].log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    failures = [
        line
        for line in lines
        if line.get("message") == "tool call failed" and line.get("trip_id") == trip["id"]
    ]
    assert failures
    assert failures[0]["trace_id"] == trip["trace_id"]
    assert failures[0]["span_id"] == first.span_id


def test_per_tool_metrics_count_the_calls_made(
    traced: tuple[OtlpReceiver, dict[str, ServiceProcess]],
) -> None:
    receiver, fleet = traced
    book(
        fleet["orchestrator"],
        f"3-day trip to Miami from Denver on {spoken(days_ahead(55))} for two, budget $4000",
    )
    reached = collections.Counter[str]()
    for name in TOOL_SERVERS:
        reached.update(fleet[name].admin("GET", "/admin/stats")["calls"])

    def counted(r: OtlpReceiver) -> dict[str, float]:
        totals: dict[str, float] = collections.defaultdict(float)
        for point in latest_points(r.metrics(), "mcp.client.operation.duration"):
            totals[str(point.attributes["gen_ai.tool.name"])] += point.count or 0
        return totals

    receiver.wait_for(lambda r: counted(r) == dict(reached), timeout=30)
    histograms = latest_points(receiver.metrics(), "mcp.client.operation.duration")
    assert all(p.kind == "histogram" for p in histograms)
    assert all(p.attributes["mcp.method.name"] == "tools/call" for p in histograms)
    calls: dict[str, float] = collections.defaultdict(float)
    for point in latest_points(receiver.metrics(), "waypoint.tool.calls"):
        calls[str(point.attributes["gen_ai.tool.name"])] += point.value or 0
    assert calls == dict(reached)
    errors = latest_points(receiver.metrics(), "waypoint.tool.errors")
    assert sum(p.value or 0 for p in errors) == sum(
        p.value or 0
        for p in latest_points(receiver.metrics(), "waypoint.tool.calls")
        if p.attributes.get("outcome") == "error"
    )
    settled = latest_points(receiver.metrics(), "waypoint.trips.settled")
    assert any(p.attributes["status"] == "booked" and (p.value or 0) >= 1 for p in settled)
    assert latest_points(receiver.metrics(), "waypoint.trip.cost")


def test_no_traveller_name_api_key_or_service_token_is_exported_or_logged(
    traced: tuple[OtlpReceiver, dict[str, ServiceProcess]],
) -> None:
    receiver, fleet = traced
    orchestrator = fleet["orchestrator"]
    trip = book(
        orchestrator,
        f"3-day trip to Seattle from Miami on {spoken(days_ahead(62))} for two with a fancy dinner, "
        "budget $5000",
    )
    spans = trace_of(receiver, trip)
    assert spans
    key = suite_key(orchestrator.env["REDIS_URL"]).key
    # A refused key is not exported either (nor the header it came in).
    refused = httpx2.get(
        f"{orchestrator.base_url}/v1/trips/{trip['id']}", headers={"Authorization": SECRET}, timeout=10
    )
    assert refused.status_code == 401
    credentials = [key, key.rsplit("_", 1)[1], SECRET.split()[-1], SERVICE_TOKEN]
    exported = [*receiver.spans(), *receiver.logs()]
    for item in exported:
        text = repr(item)
        assert TRAVELLER not in text
        assert "Lovelace" not in text
        for credential in credentials:
            assert credential not in text
    for span in receiver.spans():
        assert not any("authorization" in name.lower() for name in span.attributes)
    # The tenant and the key's id (not the key) are on the request's span.
    assert any(
        s.attributes.get("waypoint.api_key.id") == suite_key(orchestrator.env["REDIS_URL"]).id for s in spans
    )
    for service in fleet.values():
        logged = service.log_path.read_text()
        for credential in credentials:
            assert credential not in logged, service.name


class SilentCollector:
    """A collector that accepts every connection and never answers: no byte read, none sent,
    nothing closed until the test ends (a hung collector, or a proxy in front of a dead one)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def accepted(self) -> int:
        return len(self._held)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(connection)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        for connection in [*self._held, self._listener]:
            connection.close()


@pytest.mark.parametrize("collector", ["refusing", "silent"])
def test_trips_succeed_when_the_collector_is_unreachable(
    redis_server: RedisServer, servers: dict[str, ServiceProcess], harness: Harness, collector: str
) -> None:
    """Export never blocks a request: with nothing listening (connections refused) or with a
    collector that takes the connection and never answers, trips plan within their `Prefer: wait`
    and /healthz answers."""
    silent = SilentCollector() if collector == "silent" else None
    endpoint = silent.endpoint if silent else f"http://127.0.0.1:{free_port()}"
    orchestrator = harness.start(
        "waypoint-orchestrator",
        orchestrator_env(
            redis_server.url, servers, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_METRIC_EXPORT_INTERVAL="200"
        ),
    )
    try:
        if silent is not None:
            # The exporters did reach it (the metrics every 200 ms): what follows runs while
            # they wait for answers that never come.
            wait_until(lambda: silent.accepted >= 1, 30, "a connection to the silent collector")
        for offset in (83, 84, 85):
            response = httpx2.post(
                f"{orchestrator.base_url}/v1/trips",
                json={
                    "query": f"2-day trip to Austin from Dallas on {spoken(days_ahead(offset))} for one, "
                    "budget $3000"
                },
                headers=api_headers(orchestrator, {"Prefer": "wait=30"}),
                timeout=60,
            )
            # 200, not 202: the trip settled within the wait.
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "planned"
            assert httpx2.get(f"{orchestrator.base_url}/healthz", timeout=5).status_code == 200
    finally:
        orchestrator.stop()
        if silent is not None:
            silent.stop()


def test_a_confirmed_trips_book_job_is_in_the_trips_trace_under_the_confirm_request(
    traced: tuple[OtlpReceiver, dict[str, ServiceProcess]],
) -> None:
    """Planned first, booked later by `POST /confirm`: the book job, run by a worker, continues the
    trip's trace and is a child of (or linked to) the confirm request that queued it."""
    receiver, fleet = traced
    orchestrator = fleet["orchestrator"]
    planned = httpx2.post(
        f"{orchestrator.base_url}/v1/trips",
        json={
            "query": f"3-day trip to Denver from Miami on {spoken(days_ahead(90))} for two, budget $4000",
            "traveler_name": TRAVELLER,
        },
        headers=api_headers(orchestrator, {"Prefer": "wait=60"}),
        timeout=90,
    ).json()
    assert planned["status"] == "planned", planned
    confirmed = httpx2.post(
        f"{orchestrator.base_url}/v1/trips/{planned['id']}/confirm",
        headers=api_headers(orchestrator, {"Prefer": "wait=60"}),
        timeout=90,
    )
    assert confirmed.status_code == 200, confirmed.text
    trip = confirmed.json()
    assert trip["status"] == "booked", trip
    trace_id = trip["trace_id"]
    assert trace_id == planned["trace_id"]

    def exported(r: OtlpReceiver) -> bool:
        names = {s.name for s in spans_of_trace(r.spans(), trace_id)}
        wanted = {"process trip.plan", "process trip.book", "saga book_trip", "tools/call book_hotel"}
        return wanted <= names and any(
            s.kind == "SERVER" and "/confirm" in str(s.attributes.get("http.route", s.name))
            for s in r.spans()
        )

    receiver.wait_for(exported, timeout=30)
    spans = spans_of_trace(receiver.spans(), trace_id)
    (book_job,) = [s for s in spans if s.name == "process trip.book"]
    assert book_job.kind == "CONSUMER"
    assert book_job.attributes["waypoint.trip.id"] == trip["id"]
    (saga,) = [s for s in spans if s.name == "saga book_trip"]
    assert is_descendant(spans, saga, book_job)
    bookings = [s for s in spans if s.name in ("execute_tool book_flight", "execute_tool book_hotel")]
    assert sorted(s.name for s in bookings) == ["execute_tool book_flight", "execute_tool book_hotel"]
    for s in bookings:
        assert is_descendant(spans, s, book_job)
    assert {s.service for s in spans if s.name == "tools/call book_hotel"} == {"mcp-hotels"}

    # The confirm request (the orchestrator's server span for it) is the book job's parent, or
    # the book job links to it.
    (confirm,) = [
        s
        for s in receiver.spans()
        if s.service == "orchestrator"
        and s.kind == "SERVER"
        and "/confirm" in str(s.attributes.get("http.route", s.name))
        and s.start_ns < book_job.start_ns
    ]
    related = {book_job.parent_span_id, *(span_id for _, span_id in book_job.links)}
    assert confirm.span_id in related, (
        f"the book job's parent {book_job.parent_span_id} and links {book_job.links} do not name "
        f"the confirm request {confirm.span_id} (trace {confirm.trace_id}, the trip's is {trace_id})"
    )


def test_an_unsampled_trip_is_unsampled_in_every_service(
    traced: tuple[OtlpReceiver, dict[str, ServiceProcess]], harness: Harness
) -> None:
    """Sampling is decided once, at the trip's first span; every service follows it."""
    receiver, fleet = traced
    tools = {name: fleet[name] for name in TOOL_SERVERS}
    redis_url = fleet["mcp-flights"].env["REDIS_URL"]
    orchestrator = harness.start(
        "waypoint-orchestrator",
        orchestrator_env(
            redis_url,
            tools,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_TRACES_SAMPLER="parentbased_traceidratio",
            OTEL_TRACES_SAMPLER_ARG="0",
            JAEGER_UI_URL="http://localhost:16686",
        ),
    )
    try:
        trip = book(
            orchestrator,
            f"3-day trip to Denver from Seattle on {spoken(days_ahead(69))} for two with a fancy dinner, "
            "budget $5000",
        )
        # A sampled trip from the module's orchestrator, to know that everything exported meanwhile arrived.
        marker = book(
            fleet["orchestrator"],
            f"3-day trip to Boston from Denver on {spoken(days_ahead(76))} for one, budget $3000",
        )
        trace_of(receiver, marker, SERVICES - {"mcp-restaurants"})
    finally:
        orchestrator.stop()
    assert trip["trace_url"] == f"http://localhost:16686/trace/{trip['trace_id']}"
    assert [s for s in receiver.spans() if s.attributes.get("waypoint.trip.id") == trip["id"]] == []
    assert spans_of_trace(receiver.spans(), trip["trace_id"]) == []
