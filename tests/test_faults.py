"""Fault injection: errors, latency, hangs and lost-after-commit responses, per tool."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import httpx2
import pytest
from mcp.shared.exceptions import MCPError
from redis.asyncio import Redis

from tests.support import Harness, RedisServer, ServiceProcess, mcp_client, structured
from waypoint_common import keys


def day(offset: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=offset)).isoformat()


def rid() -> str:
    return f"test-{uuid.uuid4().hex}"


SEARCH = {"origin": "MAD", "destination": "ATH", "depart_date": day(200), "passengers": 1}


async def test_faults_are_off_by_default(faulty_flights: ServiceProcess) -> None:
    assert faulty_flights.admin("GET", "/admin/faults") == {}
    async with mcp_client(faulty_flights.mcp_url) as client:
        for _ in range(20):
            structured(await client.call_tool("search_flights", SEARCH))


async def test_lost_response_after_commit_then_retry_returns_the_booking(
    faulty_flights: ServiceProcess, redis: Redis
) -> None:
    async with mcp_client(faulty_flights.mcp_url) as client:
        offer = structured(await client.call_tool("search_flights", SEARCH))["offers"][0]
        faulty_flights.admin("PUT", "/admin/faults", {"book_flight": {"lose_response_rate": 1.0}})
        args = {"offer_id": offer["offer_id"], "passengers": 1, "request_id": rid()}
        with pytest.raises(MCPError, match="response lost"):
            await client.call_tool("book_flight", args)
        # The write happened although the caller never heard of it.
        made = [k async for k in redis.scan_iter(match=keys.booking(f"flight:{offer['offer_id']}", "*"))]
        assert len(made) == 1
        faulty_flights.admin("PUT", "/admin/faults", {})
        retried = structured(await client.call_tool("book_flight", args))
    assert made[0].endswith(retried["booking_id"])
    assert [k async for k in redis.scan_iter(match=keys.booking(f"flight:{offer['offer_id']}", "*"))] == made
    assert (
        int(await redis.get(keys.capacity(f"flight:{offer['offer_id']}", "seats")) or -1)
        == offer["seats_left"] - 1
    )


async def test_injected_errors_fail_before_anything_is_written(
    faulty_flights: ServiceProcess, redis: Redis
) -> None:
    async with mcp_client(faulty_flights.mcp_url) as client:
        offer = structured(await client.call_tool("search_flights", {**SEARCH, "depart_date": day(201)}))[
            "offers"
        ][0]
        faulty_flights.admin("PUT", "/admin/faults", {"book_flight": {"error_rate": 1.0}})
        faulty_flights.admin("DELETE", "/admin/stats")
        for _ in range(3):
            with pytest.raises(MCPError, match="injected fault in book_flight"):
                await client.call_tool(
                    "book_flight", {"offer_id": offer["offer_id"], "passengers": 1, "request_id": rid()}
                )
        # Other tools are untouched by a per-tool fault.
        structured(await client.call_tool("search_flights", SEARCH))
    stats = faulty_flights.admin("GET", "/admin/stats")
    assert stats["calls"] == {"book_flight": 3, "search_flights": 1}
    assert stats["injected"] == {"book_flight:error": 3}
    assert [k async for k in redis.scan_iter(match=keys.under(f"flight:{offer['offer_id']}"))] == []


async def test_error_rate_is_a_rate(faulty_flights: ServiceProcess) -> None:
    faulty_flights.admin("PUT", "/admin/faults", {"*": {"error_rate": 0.5}})
    failures = 0
    async with mcp_client(faulty_flights.mcp_url) as client:
        for _ in range(200):
            try:
                await client.call_tool("search_flights", SEARCH)
            except MCPError:
                failures += 1
    assert 60 < failures < 140


async def test_latency_and_hang(faulty_flights: ServiceProcess, redis: Redis) -> None:
    faulty_flights.admin("PUT", "/admin/faults", {"search_flights": {"latency_ms": 300}})
    async with mcp_client(faulty_flights.mcp_url, read_timeout=2.0) as client:
        started = time.monotonic()
        structured(await client.call_tool("search_flights", SEARCH))
        assert time.monotonic() - started >= 0.3
        offer = structured(await client.call_tool("search_flights", SEARCH))["offers"][1]
    faulty_flights.admin("PUT", "/admin/faults", {"book_flight": {"hang_rate": 1.0, "hang_seconds": 5}})
    async with mcp_client(faulty_flights.mcp_url, read_timeout=1.0) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool(
                "book_flight", {"offer_id": offer["offer_id"], "passengers": 1, "request_id": rid()}
            )
        assert "timed out" in str(raised.value).lower() or raised.value.error.code == -32001
    assert [k async for k in redis.scan_iter(match=keys.booking(f"flight:{offer['offer_id']}", "*"))] == []


async def test_service_time_makes_concurrent_calls_queue(faulty_flights: ServiceProcess) -> None:
    """`service_ms`: one call at a time per process. Eight concurrent calls of 100 ms each take at
    least 800 ms together (without the slot they would overlap and take about 100 ms); a lower
    bound, so a slow machine cannot fail it."""
    faulty_flights.admin("PUT", "/admin/faults", {"search_flights": {"service_ms": 100}})
    try:
        async with mcp_client(faulty_flights.mcp_url, read_timeout=10.0) as client:
            started = time.monotonic()
            results = await asyncio.gather(*(client.call_tool("search_flights", SEARCH) for _ in range(8)))
            elapsed = time.monotonic() - started
        assert all(not r.is_error for r in results)
        assert elapsed >= 0.8
    finally:
        faulty_flights.admin("PUT", "/admin/faults", {})


async def test_admin_refuses_a_bad_plan(faulty_flights: ServiceProcess) -> None:
    response = httpx2.put(
        f"{faulty_flights.base_url}/admin/faults",
        json={"book_flight": {"error_rate": 3}},
        headers={"Authorization": f"Bearer {faulty_flights.token}"},
    )
    assert response.status_code == 422
    assert "error_rate" in response.text


async def test_faults_from_the_environment_and_admin_with_the_service_token(
    redis_server: RedisServer, harness: Harness
) -> None:
    token = f"weather-{uuid.uuid4().hex}"
    service = harness.start(
        "mcp-weather",
        {
            "REDIS_URL": redis_server.url,
            "WAYPOINT_FAULTS": '{"get_forecast": {"error_rate": 1.0}}',
            "WAYPOINT_SERVICE_TOKEN": token,
        },
    )
    try:
        async with mcp_client(service.mcp_url, token=token) as client:
            with pytest.raises(MCPError, match="injected fault in get_forecast"):
                await client.call_tool(
                    "get_forecast", {"location": "FTE", "start_date": day(3), "end_date": day(5)}
                )
        assert httpx2.get(f"{service.base_url}/admin/faults").status_code == 401
        response = httpx2.put(
            f"{service.base_url}/admin/faults", json={}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200
        async with mcp_client(service.mcp_url, token=token) as client:
            structured(
                await client.call_tool(
                    "get_forecast", {"location": "FTE", "start_date": day(3), "end_date": day(5)}
                )
            )
    finally:
        service.stop()
