"""Retries, circuit breakers, budgets and degradation, on the real fleet with injected faults."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from tests.conftest import BACKENDS
from tests.helpers import days_ahead, plan_and_wait, spoken
from tests.support import (
    Harness,
    RedisServer,
    ServiceProcess,
    api_headers,
    free_port,
    orchestrator_env,
    own_tool_servers,
    redis_client,
)
from waypoint_common.errors import CircuitOpen
from waypoint_common.resilience import CircuitBreaker, RetryBudget
from waypoint_orchestrator.budgets import BudgetExhausted, BudgetLedger
from waypoint_orchestrator.models import Limits

TOOL_SERVERS = ("mcp-flights", "mcp-hotels", "mcp-weather", "mcp-restaurants")
FULL_TRIP = "3-day trip to Denver from Chicago on {day} for two with a fancy dinner, budget $5000"


def when(n: int) -> str:
    """The n-th travel day of this module, from today: each test asks for days no other test
    asks for, so no answer one test cached stands in for another's."""
    return spoken(days_ahead(30 + n))


@pytest.fixture(scope="module")
def tools(harness: Harness) -> Iterator[tuple[RedisServer, dict[str, ServiceProcess]]]:
    """Tool servers of this module's own on a Redis of its own: the calls they count are this
    module's only (no trip another test left running reaches them)."""
    with own_tool_servers(harness) as fleet:
        yield fleet


@pytest.fixture
def resilient(
    tools: tuple[RedisServer, dict[str, ServiceProcess]], harness: Harness
) -> Iterator[tuple[ServiceProcess, dict[str, ServiceProcess]]]:
    """An orchestrator of each test's own (its breakers start closed, whatever ran before), with
    short timeouts and a breaker that opens after 3 failures."""
    redis, servers = tools
    orchestrator = harness.start(
        "waypoint-orchestrator",
        orchestrator_env(
            redis.url,
            servers,
            WAYPOINT_TOOL_TIMEOUT_SECONDS="1",
            WAYPOINT_TOOL_ATTEMPTS="3",
            WAYPOINT_BREAKER_FAILURES="3",
            WAYPOINT_BREAKER_COOLDOWN_SECONDS="2",
        ),
    )
    yield orchestrator, servers
    orchestrator.stop()


@pytest.fixture(autouse=True)
def no_faults(tools: tuple[RedisServer, dict[str, ServiceProcess]]) -> Iterator[None]:
    yield
    for service in tools[1].values():
        service.admin("PUT", "/admin/faults", {})
        service.admin("PUT", "/admin/throttle", {"next": 0})


def calls(server: ServiceProcess, tool: str) -> int:
    return int(server.admin("GET", "/admin/stats")["calls"].get(tool, 0))


def step(trip: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in trip["steps"] if s["id"] == step_id)


def test_a_tool_error_is_not_retried_and_a_timeout_is(
    resilient: tuple[ServiceProcess, dict[str, ServiceProcess]],
) -> None:
    orchestrator, tools = resilient
    weather = tools["mcp-weather"]

    weather.admin("PUT", "/admin/faults", {"get_forecast": {"reject_rate": 1.0}})
    before = calls(weather, "get_forecast")
    rejected = plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(1))})
    assert calls(weather, "get_forecast") - before == 1
    assert step(rejected, "get_forecast")["attempts"] == 1
    assert "injected rejection" in step(rejected, "get_forecast")["error"]

    weather.admin("PUT", "/admin/faults", {"get_forecast": {"hang_rate": 1.0, "hang_seconds": 3}})
    before = calls(weather, "get_forecast")
    timed_out = plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(2))})
    assert calls(weather, "get_forecast") - before == 3
    assert step(timed_out, "get_forecast")["attempts"] == 3


def test_the_breaker_opens_fails_fast_and_closes_after_the_cooldown(
    resilient: tuple[ServiceProcess, dict[str, ServiceProcess]],
) -> None:
    orchestrator, tools = resilient
    weather = tools["mcp-weather"]
    weather.admin("PUT", "/admin/faults", {"get_forecast": {"error_rate": 1.0}})
    before = calls(weather, "get_forecast")
    first = plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(3))})
    assert calls(weather, "get_forecast") - before == 3  # three tries, the third opens the breaker
    assert first["status"] == "partial"

    second = plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(4))})
    assert calls(weather, "get_forecast") - before == 3, "fail-fast calls reached the server"
    assert "circuit open" in step(second, "get_forecast")["error"]
    assert second["status"] == "partial"

    weather.admin("PUT", "/admin/faults", {})
    # Trips until one is planned: until the cooldown is over each fails fast without a call;
    # then one probe goes through and closes the breaker.
    deadline = time.monotonic() + 60
    n = 100
    third = plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(n))})
    while third["status"] != "planned":
        assert "circuit open" in step(third, "get_forecast")["error"], third["warnings"]
        assert calls(weather, "get_forecast") - before == 3, "fail-fast calls reached the server"
        assert time.monotonic() < deadline, "the breaker never let a probe through"
        time.sleep(0.2)
        n += 1
        third = plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(n))})
    assert calls(weather, "get_forecast") - before == 4  # the probe went through and closed it


def test_a_tool_call_budget_stops_the_trip_after_exactly_that_many_calls(
    resilient: tuple[ServiceProcess, dict[str, ServiceProcess]],
) -> None:
    orchestrator, tools = resilient
    before = sum(sum(tools[n].admin("GET", "/admin/stats")["calls"].values()) for n in TOOL_SERVERS)
    trip = plan_and_wait(
        orchestrator, {"query": FULL_TRIP.format(day=when(5)), "limits": {"max_tool_calls": 3}}
    )
    after = sum(sum(tools[n].admin("GET", "/admin/stats")["calls"].values()) for n in TOOL_SERVERS)
    assert after - before == 3
    assert trip["termination"]["reason"] == "budget_exhausted"
    assert trip["termination"]["detail"].startswith("tool_calls: 3 of 3")
    assert trip["status"] == "partial"
    assert sum(s["attempts"] for s in trip["steps"]) == 3
    assert trip["usage"]["used"]["tool_calls"] == 3
    assert trip["usage"]["limits"]["max_tool_calls"] == 3


def test_limits_above_the_cap_are_refused(
    resilient: tuple[ServiceProcess, dict[str, ServiceProcess]],
) -> None:
    orchestrator, _ = resilient
    response = httpx2.post(
        f"{orchestrator.base_url}/v1/trips",
        headers=api_headers(orchestrator),
        json={"query": FULL_TRIP.format(day=when(6)), "limits": {"max_tool_calls": 100_000}},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "limits.max_tool_calls"


def test_a_wall_time_budget_stops_a_slow_trip(
    resilient: tuple[ServiceProcess, dict[str, ServiceProcess]],
) -> None:
    orchestrator, tools = resilient
    tools["mcp-hotels"].admin("PUT", "/admin/faults", {"search_hotels": {"latency_ms": 800}})
    trip = plan_and_wait(
        orchestrator, {"query": FULL_TRIP.format(day=when(7)), "limits": {"max_wall_seconds": 0.5}}
    )
    assert trip["termination"]["reason"] == "budget_exhausted"
    assert trip["termination"]["detail"].startswith("wall_time")


def test_without_weather_the_trip_is_partial_with_a_complete_plan(
    resilient: tuple[ServiceProcess, dict[str, ServiceProcess]],
) -> None:
    orchestrator, tools = resilient
    tools["mcp-weather"].admin("PUT", "/admin/faults", {"get_forecast": {"reject_rate": 1.0}})
    trip = plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(8))})
    assert trip["status"] == "partial"
    itinerary = trip["itinerary"]
    assert itinerary["flight"]
    assert itinerary["hotel"]
    assert len(itinerary["dinners"]) == 1
    assert itinerary["forecast"] == []
    assert any(w.startswith("no forecast") for w in trip["warnings"])


def test_without_restaurants_the_trip_is_partial_without_the_dinner(
    resilient: tuple[ServiceProcess, dict[str, ServiceProcess]],
) -> None:
    orchestrator, tools = resilient
    tools["mcp-restaurants"].admin("PUT", "/admin/faults", {"search_restaurants": {"reject_rate": 1.0}})
    trip = plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(9))})
    assert trip["status"] == "partial"
    itinerary = trip["itinerary"]
    assert itinerary["flight"]
    assert itinerary["hotel"]
    assert itinerary["dinners"] == []
    assert len(itinerary["days"]) == 3
    assert all(d["weather"] for d in itinerary["days"])
    assert any(w.startswith("no dinner") for w in trip["warnings"])


def test_without_flights_the_trip_fails_with_the_reason(
    resilient: tuple[ServiceProcess, dict[str, ServiceProcess]],
) -> None:
    orchestrator, tools = resilient
    tools["mcp-flights"].admin("PUT", "/admin/faults", {"search_flights": {"reject_rate": 1.0}})
    trip = plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(10))})
    assert trip["status"] == "failed"
    assert "search_flights" in trip["termination"]["detail"]
    assert trip["itinerary"] is None


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_concurrent_workers_never_overspend_a_trip(redis_url: str) -> None:
    """Twenty workers, each with its own client, charge one trip at once (on one redis-server and
    on a Redis Cluster): exactly the limit is granted."""
    trip_id = uuid.uuid4().hex
    clients = [redis_client(redis_url) for _ in range(20)]
    try:
        await BudgetLedger(clients[0]).open(
            trip_id, Limits(max_steps=25, max_tool_calls=40, max_tokens=0, max_wall_seconds=60)
        )

        async def worker(i: int) -> tuple[int, int]:
            ledger = BudgetLedger(clients[i])
            granted = refused = 0
            for n in range(10):
                try:
                    await ledger.charge(trip_id, "tool_calls", 1, f"worker{i}:{n}")
                    # A client retry re-applies the same charge: it must not count again.
                    await ledger.charge(trip_id, "tool_calls", 1, f"worker{i}:{n}")
                    granted += 1
                except BudgetExhausted:
                    refused += 1
            return granted, refused

        results = await asyncio.gather(*(worker(i) for i in range(20)))
        usage = await BudgetLedger(clients[0]).usage(trip_id)
    finally:
        for client in clients:
            await client.aclose()
    assert sum(g for g, _ in results) == 40
    assert sum(r for _, r in results) == 200 - 40
    assert usage is not None
    assert usage.used.tool_calls == 40
    assert usage.limits.max_tool_calls == 40


def test_breaker_and_retry_budget_state_machines() -> None:
    now = [0.0]
    breaker = CircuitBreaker("x", failures=2, cooldown=5, clock=lambda: now[0])
    breaker.before_call()
    breaker.record_failure()
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    now[0] = 5.0
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # only one probe at a time
    breaker.record_failure()
    assert breaker.state == "open"
    now[0] = 10.0
    breaker.before_call()
    breaker.record_success()
    assert [breaker.state] == ["closed"]  # a list: mypy keeps the earlier "open" narrowing otherwise
    assert breaker.openings == 2

    budget = RetryBudget(ratio=0.5, floor=1, capacity=3, clock=lambda: now[0])
    assert [budget.try_spend() for _ in range(4)] == [True, True, True, False]
    budget.deposit()
    assert budget.try_spend() is False  # half a token
    budget.deposit()
    assert budget.try_spend() is True
    now[0] = 12.0  # two seconds at one a second
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]


def test_a_stale_answer_stands_in_for_a_server_that_is_down(
    resilient: tuple[ServiceProcess, dict[str, ServiceProcess]],
) -> None:
    orchestrator, tools = resilient
    query = {"query": FULL_TRIP.format(day=when(11))}
    fresh = plan_and_wait(orchestrator, query)
    assert fresh["status"] == "planned"
    tools["mcp-flights"].admin("PUT", "/admin/faults", {"search_flights": {"error_rate": 1.0}})
    try:
        degraded = plan_and_wait(orchestrator, query)
    finally:
        tools["mcp-flights"].admin("PUT", "/admin/faults", {})
    assert degraded["status"] == "partial"
    assert degraded["itinerary"]["flight"]["offer_id"] == fresh["itinerary"]["flight"]["offer_id"]
    stale = [w for w in degraded["warnings"] if w.startswith("stale: search_flights")]
    assert len(stale) == 1
    assert "cached answer" in stale[0]
    assert "s old" in stale[0]
    assert step(degraded, "search_flights")["summary"].endswith("(stale)")
    # Essential data that was never cached still ends the trip rather than being made up.
    tools["mcp-flights"].admin("PUT", "/admin/faults", {"search_flights": {"error_rate": 1.0}})
    try:
        never_seen = plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(12))})
    finally:
        tools["mcp-flights"].admin("PUT", "/admin/faults", {})
    assert never_seen["status"] == "failed"


def test_a_429_is_retried_no_sooner_than_its_retry_after(
    resilient: tuple[ServiceProcess, dict[str, ServiceProcess]],
) -> None:
    orchestrator, tools = resilient
    flights = tools["mcp-flights"]
    # Connected first: a throttled connection handshake is a different story (the client falls back).
    assert plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(13))})["status"] == "planned"
    before = calls(flights, "search_flights")
    flights.admin("PUT", "/admin/throttle", {"next": 1, "retry_after": 1.5})
    trip = plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(14))})
    assert trip["status"] == "planned"
    search = step(trip, "search_flights")
    assert search["attempts"] == 2
    assert calls(flights, "search_flights") - before == 1  # the throttled try never reached the tool
    waited = dt.datetime.fromisoformat(search["finished_at"]) - dt.datetime.fromisoformat(
        search["started_at"]
    )
    assert waited.total_seconds() >= 1.5
    assert flights.admin("GET", "/admin/stats")["injected"]["http:throttle"] >= 1


def test_a_server_that_cannot_be_reached_is_named_without_its_address(
    tools: tuple[RedisServer, dict[str, ServiceProcess]], harness: Harness
) -> None:
    """The trip's warnings reach clients: they say which server failed and how, never its
    internal address or the exception's text."""
    redis, servers = tools
    unreachable = f"http://127.0.0.1:{free_port()}/mcp"
    env = orchestrator_env(redis.url, servers, WAYPOINT_TOOL_ATTEMPTS="2", MCP_WEATHER_URL=unreachable)
    orchestrator = harness.start("waypoint-orchestrator", env)
    try:
        trip = plan_and_wait(orchestrator, {"query": FULL_TRIP.format(day=when(15))})
    finally:
        orchestrator.stop()
    assert trip["status"] == "partial", trip["termination"]
    (warning,) = [w for w in trip["warnings"] if w.startswith("no forecast")]
    assert "mcp-weather" in warning
    assert "cannot connect (ConnectError)" in warning
    assert unreachable.split("/mcp")[0].removeprefix("http://") not in str(trip)
    assert "ExceptionGroup" not in warning
