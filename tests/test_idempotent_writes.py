"""Exactly-once writes: concurrent replays across replicas, sold-out inventory, idempotent cancels.

Every test runs twice: on one redis-server and on a three-master Redis Cluster (the tool servers
started with its `redis+cluster://` URL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest

from tests.conftest import BACKENDS
from tests.support import ServiceProcess, error_text, mcp_client, structured
from waypoint_common import keys
from waypoint_common.connections import RedisClient
from waypoint_restaurants.provider import SimulatedRestaurants

CONCURRENT_CALLS = 50

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def day(offset: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=offset)).isoformat()


def rid() -> str:
    return f"test-{uuid.uuid4().hex}"


async def bookings(redis: RedisClient, kind: str) -> set[str]:
    return {key async for key in redis.scan_iter(match=keys.booking(f"{kind}:*", "*"), count=1000)}


async def call_on_both(
    pair: tuple[ServiceProcess, ServiceProcess], tool: str, args: dict[str, Any], n: int
) -> list[dict[str, Any]]:
    """`n` identical calls at once, alternating between the two replicas."""
    async with mcp_client(pair[0].mcp_url) as a, mcp_client(pair[1].mcp_url) as b:
        results = await asyncio.gather(*((a if i % 2 else b).call_tool(tool, args) for i in range(n)))
    return [structured(r) for r in results]


async def test_concurrent_book_flight_with_one_request_id_books_once(
    tool_replicas: dict[str, tuple[ServiceProcess, ServiceProcess]], redis: RedisClient
) -> None:
    pair = tool_replicas["mcp-flights"]
    async with mcp_client(pair[0].mcp_url) as client:
        found = structured(
            await client.call_tool(
                "search_flights",
                {"origin": "JFK", "destination": "LHR", "depart_date": day(120), "passengers": 3},
            )
        )
    offer = found["offers"][0]
    seats_key = keys.capacity(f"flight:{offer['offer_id']}", "seats")
    assert await redis.get(seats_key) is None
    before = await bookings(redis, "flight")

    answers = await call_on_both(
        pair,
        "book_flight",
        {"offer_id": offer["offer_id"], "passengers": 3, "request_id": rid()},
        CONCURRENT_CALLS,
    )

    assert len(answers) == CONCURRENT_CALLS
    assert all(a == answers[0] for a in answers), "replays differ"
    new = await bookings(redis, "flight") - before
    assert len(new) == 1
    assert new.pop().endswith(answers[0]["booking_id"])
    assert int(await redis.get(seats_key) or -1) == offer["seats_left"] - 3


async def test_concurrent_book_hotel_with_one_request_id_books_once(
    tool_replicas: dict[str, tuple[ServiceProcess, ServiceProcess]], redis: RedisClient
) -> None:
    pair = tool_replicas["mcp-hotels"]
    async with mcp_client(pair[0].mcp_url) as client:
        found = structured(
            await client.call_tool(
                "search_hotels",
                {"location": "Lisbon", "check_in": day(130), "check_out": day(133), "guests": 3},
            )
        )
    hotel = found["hotels"][0]
    assert hotel["rooms"] == 2
    before = await bookings(redis, "hotel")

    answers = await call_on_both(
        pair,
        "book_hotel",
        {
            "hotel_id": hotel["hotel_id"],
            "check_in": day(130),
            "check_out": day(133),
            "guests": 3,
            "guest_name": "Grace Hopper",
            "request_id": rid(),
        },
        CONCURRENT_CALLS,
    )

    assert len(answers) == CONCURRENT_CALLS
    assert all(a == answers[0] for a in answers)
    assert len(await bookings(redis, "hotel") - before) == 1
    for night in (130, 131, 132):
        left = await redis.get(keys.capacity(f"hotel:{hotel['hotel_id']}", f"night:{day(night)}"))
        assert int(left or -1) == hotel["rooms_left"] - 2
    assert await redis.get(keys.capacity(f"hotel:{hotel['hotel_id']}", f"night:{day(133)}")) is None


async def test_concurrent_reserve_table_with_one_request_id_reserves_once(
    tool_replicas: dict[str, tuple[ServiceProcess, ServiceProcess]], redis: RedisClient
) -> None:
    pair = tool_replicas["mcp-restaurants"]
    async with mcp_client(pair[0].mcp_url) as client:
        found = structured(
            await client.call_tool(
                "search_restaurants", {"location": "Rome", "date": day(140), "party_size": 6}
            )
        )
    restaurant = found["restaurants"][0]
    slot = restaurant["free_slots"][0]
    key = keys.capacity(f"restaurant:{restaurant['restaurant_id']}", f"slot:{day(140)}:{slot}")
    # The slot's tables before: the counter once the slot was written to, else all of them.
    untouched = SimulatedRestaurants().restaurant(restaurant["restaurant_id"]).tables
    tables_before = int(await redis.get(key) or untouched)
    assert tables_before >= 2  # it was offered to a party of six
    before = await bookings(redis, "restaurant")

    answers = await call_on_both(
        pair,
        "reserve_table",
        {
            "restaurant_id": restaurant["restaurant_id"],
            "date": day(140),
            "time": slot,
            "party_size": 6,
            "name": "Grace Hopper",
            "request_id": rid(),
        },
        CONCURRENT_CALLS,
    )

    assert len(answers) == CONCURRENT_CALLS
    assert all(a == answers[0] for a in answers)
    assert answers[0]["tables"] == 2
    assert len(await bookings(redis, "restaurant") - before) == 1
    # Exactly two tables were taken, once: not 0 (nothing committed), not 4 or more (twice).
    tables_left = int(await redis.get(key) or -1)
    assert tables_left == tables_before - 2
    async with mcp_client(pair[1].mcp_url) as client:
        again = structured(
            await client.call_tool(
                "search_restaurants", {"location": "Rome", "date": day(140), "party_size": 8}
            )
        )
    # What the servers offer agrees with the counter: a party needing two tables finds the slot
    # only if two are left.
    listed = next(
        (r for r in again["restaurants"] if r["restaurant_id"] == restaurant["restaurant_id"]), None
    )
    assert (listed is not None and slot in listed["free_slots"]) == (tables_left >= 2)


async def test_same_request_id_with_other_arguments_is_refused(
    tool_servers: dict[str, ServiceProcess], redis: RedisClient
) -> None:
    async with mcp_client(tool_servers["mcp-flights"].mcp_url) as client:
        found = structured(
            await client.call_tool(
                "search_flights",
                {"origin": "SFO", "destination": "NRT", "depart_date": day(150), "passengers": 1},
            )
        )
        first, second = found["offers"][0]["offer_id"], found["offers"][1]["offer_id"]
        request_id = rid()
        booked = structured(
            await client.call_tool(
                "book_flight", {"offer_id": first, "passengers": 1, "request_id": request_id}
            )
        )
        before = await bookings(redis, "flight")
        other_count = await client.call_tool(
            "book_flight", {"offer_id": first, "passengers": 2, "request_id": request_id}
        )
        other_offer = await client.call_tool(
            "book_flight", {"offer_id": second, "passengers": 1, "request_id": request_id}
        )
        replay = structured(
            await client.call_tool(
                "book_flight", {"offer_id": first, "passengers": 1, "request_id": request_id}
            )
        )
    for refused in (other_count, other_offer):
        assert "request_id" in error_text(refused)
        assert "different arguments" in error_text(refused)
    assert replay == booked
    assert await bookings(redis, "flight") == before


async def test_booking_until_sold_out_then_cancel_frees_capacity_once(
    tool_servers: dict[str, ServiceProcess], redis: RedisClient
) -> None:
    async with mcp_client(tool_servers["mcp-flights"].mcp_url) as client:
        found = structured(
            await client.call_tool(
                "search_flights",
                {
                    "origin": "CDG",
                    "destination": "FCO",
                    "depart_date": day(160),
                    "passengers": 1,
                    "cabin": "first",
                },
            )
        )
        offer = found["offers"][0]
        assert offer["seats_left"] == 2
        made = [
            structured(
                await client.call_tool(
                    "book_flight", {"offer_id": offer["offer_id"], "passengers": 1, "request_id": rid()}
                )
            )
            for _ in range(2)
        ]
        sold_out = await client.call_tool(
            "book_flight", {"offer_id": offer["offer_id"], "passengers": 1, "request_id": rid()}
        )
        assert "offer_id" in error_text(sold_out)
        assert "sold out" in error_text(sold_out)
        after = structured(
            await client.call_tool(
                "search_flights",
                {
                    "origin": "CDG",
                    "destination": "FCO",
                    "depart_date": day(160),
                    "passengers": 1,
                    "cabin": "first",
                },
            )
        )
        assert offer["offer_id"] not in {o["offer_id"] for o in after["offers"]}

        booking_id = made[0]["booking_id"]
        cancel_id = rid()
        cancels = [
            await client.call_tool(
                "cancel_flight_booking", {"booking_id": booking_id, "request_id": request_id}
            )
            for request_id in (cancel_id, cancel_id, rid(), rid(), cancel_id)
        ]
        assert [structured(c)["status"] for c in cancels] == ["cancelled"] * 5
        seats_key = keys.capacity(f"flight:{offer['offer_id']}", "seats")
        assert int(await redis.get(seats_key) or -1) == 1
        rebooked = await client.call_tool(
            "book_flight", {"offer_id": offer["offer_id"], "passengers": 1, "request_id": rid()}
        )
        assert structured(rebooked)["status"] == "confirmed"
        again = await client.call_tool(
            "book_flight", {"offer_id": offer["offer_id"], "passengers": 1, "request_id": rid()}
        )
        assert "sold out" in error_text(again)
    assert int(await redis.get(seats_key) or -1) == 0


async def test_hotel_rooms_sell_out_per_night(
    tool_servers: dict[str, ServiceProcess], redis: RedisClient
) -> None:
    """Booking a whole hotel for some nights leaves the others bookable; the busy night refuses."""
    async with mcp_client(tool_servers["mcp-hotels"].mcp_url) as client:
        found = structured(
            await client.call_tool(
                "search_hotels",
                {"location": "Oslo", "check_in": day(170), "check_out": day(172), "guests": 1},
            )
        )
        hotel = min(found["hotels"], key=lambda h: h["rooms_left"])
        for _ in range(hotel["rooms_left"]):
            structured(
                await client.call_tool(
                    "book_hotel",
                    {
                        "hotel_id": hotel["hotel_id"],
                        "check_in": day(171),
                        "check_out": day(172),
                        "guests": 1,
                        "guest_name": "Alan Turing",
                        "request_id": rid(),
                    },
                )
            )
        full = await client.call_tool(
            "book_hotel",
            {
                "hotel_id": hotel["hotel_id"],
                "check_in": day(170),
                "check_out": day(172),
                "guests": 1,
                "guest_name": "Alan Turing",
                "request_id": rid(),
            },
        )
        assert "hotel_id" in error_text(full)
        assert "sold out" in error_text(full)
        first_night = structured(
            await client.call_tool(
                "book_hotel",
                {
                    "hotel_id": hotel["hotel_id"],
                    "check_in": day(170),
                    "check_out": day(171),
                    "guests": 1,
                    "guest_name": "Alan Turing",
                    "request_id": rid(),
                },
            )
        )
        assert first_night["status"] == "confirmed"
    assert await redis.get(keys.capacity(f"hotel:{hotel['hotel_id']}", f"night:{day(171)}")) == "0"
