"""Learning a write's outcome by its request id, without writing again (issue 11, defect 2).

Tool servers answer `get_*_booking(request_id=…)` from what the write stored; the saga uses it
for a booking whose answer was lost, and every attempt it makes to look up or undo bookings
counts in the trip's tool-call budget.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from redis.asyncio import Redis

from tests.support import (
    Harness,
    ServiceProcess,
    api_headers,
    bookings_of,
    mcp_client,
    orchestrator_env,
    structured,
)
from tests.test_toolserver_security import OWNER_A, OWNER_B, book_flight, offer_on, refusal, rid


async def test_a_booking_is_found_by_the_request_id_that_made_it(servers: dict[str, ServiceProcess]) -> None:
    url = servers["mcp-flights"].mcp_url
    offer = await offer_on(url, "ORD", "MIA", 81)
    request_id = rid()
    booking = structured(await book_flight(url, OWNER_A, offer["offer_id"], request_id))
    async with mcp_client(url, owner=OWNER_A) as a, mcp_client(url, owner=OWNER_B) as b:
        found = structured(await a.call_tool("get_flight_booking", {"request_id": request_id}))
        assert found == structured(
            await a.call_tool("get_flight_booking", {"booking_id": booking["booking_id"]})
        )
        # Nothing for another owner, or for a request that booked nothing: one answer for both.
        theirs = refusal(
            await b.call_tool("get_flight_booking", {"request_id": request_id}), "get_flight_booking"
        )
        never = rid()
        nothing = refusal(
            await a.call_tool("get_flight_booking", {"request_id": never}), "get_flight_booking"
        )
        assert theirs == f"request_id: no booking was made with request id {request_id!r}"
        assert nothing == f"request_id: no booking was made with request id {never!r}"
        # One of the two names the booking, never both or neither.
        both = refusal(
            await a.call_tool(
                "get_flight_booking", {"request_id": request_id, "booking_id": booking["booking_id"]}
            ),
            "get_flight_booking",
        )
        neither = refusal(await a.call_tool("get_flight_booking", {}), "get_flight_booking")
        assert both.startswith("booking_id: give either booking_id or request_id")
        assert neither == both
        # A cancelled booking is found as cancelled.
        structured(
            await a.call_tool(
                "cancel_flight_booking", {"booking_id": booking["booking_id"], "request_id": rid()}
            )
        )
        after = structured(await a.call_tool("get_flight_booking", {"request_id": request_id}))
    assert after["status"] == "cancelled"


async def test_looking_a_booking_up_writes_nothing(servers: dict[str, ServiceProcess], redis: Redis) -> None:
    url = servers["mcp-hotels"].mcp_url
    request_id = rid()
    before = {k async for k in redis.scan_iter(match="*", count=1000)}
    async with mcp_client(url, owner=OWNER_A) as a:
        refusal(await a.call_tool("get_hotel_booking", {"request_id": request_id}), "get_hotel_booking")
    after = {k async for k in redis.scan_iter(match="*", count=1000)}
    assert after == before


@pytest.fixture
def lossy_hotels(
    servers: dict[str, ServiceProcess], harness: Harness
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """An orchestrator whose hotel server loses every booking's answer after writing it."""
    redis = harness.redis()
    orchestrator = harness.start(
        "waypoint-orchestrator",
        orchestrator_env(redis.url, servers, WAYPOINT_TOOL_ATTEMPTS="2"),
    )
    hotels = servers["mcp-hotels"]
    hotels.admin("PUT", "/admin/faults", {"book_hotel": {"lose_response_rate": 1.0}})
    yield orchestrator, hotels
    hotels.admin("PUT", "/admin/faults", {})
    orchestrator.stop()
    redis.stop()


async def test_a_booking_whose_answer_was_lost_is_found_and_undone_and_every_call_counts(
    lossy_hotels: tuple[ServiceProcess, ServiceProcess], redis: Redis
) -> None:
    orchestrator, hotels = lossy_hotels
    start = dt.date.today() + dt.timedelta(days=52)
    before = hotels.admin("GET", "/admin/stats")["calls"]
    response = httpx2.post(
        f"{orchestrator.base_url}/v1/trips",
        json={
            "origin": "SEA",
            "destination": "Denver",
            "start_date": start.isoformat(),
            "days": 3,
            "travelers": 1,
            "budget": {"amount": 5000},
            "book": True,
        },
        headers=api_headers(orchestrator, {"Prefer": "wait=60"}),
        timeout=90,
    )
    assert response.status_code == 200, response.text
    trip: dict[str, Any] = response.json()
    assert trip["status"] == "failed"
    assert trip["termination"]["reason"] == "booking_failed"
    # The hotel the lost answers hid was found by its request id and cancelled, like the flight.
    assert not trip["manual_intervention_required"], trip["warnings"]
    assert sorted((b["kind"], b["status"]) for b in trip["bookings"]) == [
        ("flight", "cancelled"),
        ("hotel", "cancelled"),
    ]
    assert await bookings_of(redis, trip["id"]) == {"flight": ["cancelled"], "hotel": ["cancelled"]}
    calls = hotels.admin("GET", "/admin/stats")["calls"]
    # Learning the outcome wrote nothing: book_hotel was called only by the saga's own two tries.
    assert calls.get("book_hotel", 0) - before.get("book_hotel", 0) == 2
    lookups = calls.get("get_hotel_booking", 0) - before.get("get_hotel_booking", 0)
    assert lookups >= 1
    # Every attempt counts: the searches, both booking tries, the look-up and the two cancels.
    attempts = sum(s["attempts"] for s in trip["steps"])
    assert trip["usage"]["used"]["tool_calls"] >= attempts + lookups + 2
