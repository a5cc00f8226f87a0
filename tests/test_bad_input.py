"""Bad input: every case is an MCP tool error naming the argument, and nothing is written."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support import ServiceProcess, error_text, mcp_client, structured
from waypoint_common import keys


def day(offset: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=offset)).isoformat()


def rid() -> str:
    return f"test-{uuid.uuid4().hex}"


LONG = "x" * 10_000
FLIGHT = {"origin": "SEA", "destination": "FTE", "depart_date": day(60), "passengers": 2}
HOTEL = {"location": "FTE", "check_in": day(60), "check_out": day(63), "guests": 2}
TABLE = {"location": "FTE", "date": day(61), "party_size": 2}

# (server, tool, arguments, the field the error must name)
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("mcp-flights", "search_flights", {**FLIGHT, "origin": "XQZ"}, "origin"),
    ("mcp-flights", "search_flights", {**FLIGHT, "destination": "Atlantis"}, "destination"),
    ("mcp-flights", "search_flights", {**FLIGHT, "destination": "SEA"}, "destination"),
    ("mcp-flights", "search_flights", {**FLIGHT, "return_date": day(58)}, "return_date"),
    ("mcp-flights", "search_flights", {**FLIGHT, "depart_date": day(-1)}, "depart_date"),
    ("mcp-flights", "search_flights", {**FLIGHT, "depart_date": day(400)}, "depart_date"),
    ("mcp-flights", "search_flights", {**FLIGHT, "depart_date": "next tuesday"}, "depart_date"),
    ("mcp-flights", "search_flights", {**FLIGHT, "passengers": 0}, "passengers"),
    ("mcp-flights", "search_flights", {**FLIGHT, "passengers": 100}, "passengers"),
    ("mcp-flights", "search_flights", {**FLIGHT, "cabin": "cargo"}, "cabin"),
    ("mcp-flights", "search_flights", {**FLIGHT, "origin": LONG}, "origin"),
    (
        "mcp-flights",
        "book_flight",
        {"offer_id": "SEAFTE-20270101-OW-Y-9", "passengers": 1, "request_id": rid()},
        "offer_id",
    ),
    (
        "mcp-flights",
        "book_flight",
        {"offer_id": "nonsense", "passengers": 1, "request_id": rid()},
        "offer_id",
    ),
    (
        "mcp-flights",
        "book_flight",
        {"offer_id": "SEAFTE-20200101-OW-Y-1", "passengers": 1, "request_id": rid()},
        "offer_id",
    ),
    (
        "mcp-flights",
        "book_flight",
        {"offer_id": "SEAFTE-20270101-OW-Y-1", "passengers": 0, "request_id": rid()},
        "passengers",
    ),
    (
        "mcp-flights",
        "book_flight",
        {"offer_id": "SEAFTE-20270101-OW-Y-1", "passengers": 1, "request_id": ""},
        "request_id",
    ),
    (
        "mcp-flights",
        "book_flight",
        {"offer_id": "SEAFTE-20270101-OW-Y-1", "passengers": 1, "request_id": LONG},
        "request_id",
    ),
    (
        "mcp-flights",
        "cancel_flight_booking",
        {"booking_id": "FB-0000000000-SEAFTE-20270101-OW-Y-1", "request_id": rid()},
        "booking_id",
    ),
    ("mcp-flights", "cancel_flight_booking", {"booking_id": "garbage", "request_id": rid()}, "booking_id"),
    (
        "mcp-flights",
        "get_flight_booking",
        {"booking_id": "FB-0000000000-SEAFTE-20270101-OW-Y-1"},
        "booking_id",
    ),
    ("mcp-hotels", "search_hotels", {**HOTEL, "location": "Atlantis"}, "location"),
    ("mcp-hotels", "search_hotels", {**HOTEL, "check_out": day(59)}, "check_out"),
    ("mcp-hotels", "search_hotels", {**HOTEL, "check_out": day(60)}, "check_out"),
    ("mcp-hotels", "search_hotels", {**HOTEL, "check_in": day(-3)}, "check_in"),
    ("mcp-hotels", "search_hotels", {**HOTEL, "guests": 0}, "guests"),
    ("mcp-hotels", "search_hotels", {**HOTEL, "guests": 100}, "guests"),
    ("mcp-hotels", "search_hotels", {**HOTEL, "max_price_per_night": -5}, "max_price_per_night"),
    (
        "mcp-hotels",
        "book_hotel",
        {
            "hotel_id": "HT-FTE-00",
            "check_in": day(60),
            "check_out": day(62),
            "guests": 2,
            "guest_name": "",
            "request_id": rid(),
        },
        "guest_name",
    ),
    (
        "mcp-hotels",
        "book_hotel",
        {
            "hotel_id": "HT-FTE-00",
            "check_in": day(60),
            "check_out": day(62),
            "guests": 2,
            "guest_name": LONG,
            "request_id": rid(),
        },
        "guest_name",
    ),
    (
        "mcp-hotels",
        "book_hotel",
        {
            "hotel_id": "HT-FTE-00",
            "check_in": day(60),
            "check_out": day(62),
            "guests": 2,
            "guest_name": "   ",
            "request_id": rid(),
        },
        "guest_name",
    ),
    (
        "mcp-hotels",
        "book_hotel",
        {
            "hotel_id": "HT-FTE-99",
            "check_in": day(60),
            "check_out": day(62),
            "guests": 2,
            "guest_name": "Ada",
            "request_id": rid(),
        },
        "hotel_id",
    ),
    (
        "mcp-hotels",
        "book_hotel",
        {
            "hotel_id": "HT-FTE-00",
            "check_in": day(62),
            "check_out": day(60),
            "guests": 2,
            "guest_name": "Ada",
            "request_id": rid(),
        },
        "check_out",
    ),
    (
        "mcp-hotels",
        "book_hotel",
        {
            "hotel_id": "HT-FTE-00",
            "check_in": day(60),
            "check_out": day(62),
            "guests": 100,
            "guest_name": "Ada",
            "request_id": rid(),
        },
        "guests",
    ),
    (
        "mcp-hotels",
        "cancel_hotel_booking",
        {"booking_id": "HB-0000000000-HT-FTE-00", "request_id": rid()},
        "booking_id",
    ),
    ("mcp-hotels", "get_hotel_booking", {"booking_id": "nope"}, "booking_id"),
    (
        "mcp-weather",
        "get_forecast",
        {"location": "Atlantis", "start_date": day(5), "end_date": day(8)},
        "location",
    ),
    (
        "mcp-weather",
        "get_forecast",
        {"location": "FTE", "start_date": day(8), "end_date": day(5)},
        "end_date",
    ),
    (
        "mcp-weather",
        "get_forecast",
        {"location": "FTE", "start_date": day(-8), "end_date": day(5)},
        "start_date",
    ),
    (
        "mcp-weather",
        "get_forecast",
        {"location": "FTE", "start_date": day(5), "end_date": day(80)},
        "end_date",
    ),
    ("mcp-restaurants", "search_restaurants", {**TABLE, "location": "Atlantis"}, "location"),
    ("mcp-restaurants", "search_restaurants", {**TABLE, "date": day(-2)}, "date"),
    ("mcp-restaurants", "search_restaurants", {**TABLE, "party_size": 0}, "party_size"),
    ("mcp-restaurants", "search_restaurants", {**TABLE, "price_level": 7}, "price_level"),
    (
        "mcp-restaurants",
        "reserve_table",
        {
            "restaurant_id": "RS-FTE-00",
            "date": day(61),
            "time": "19:00",
            "party_size": 2,
            "name": "",
            "request_id": rid(),
        },
        "name",
    ),
    (
        "mcp-restaurants",
        "reserve_table",
        {
            "restaurant_id": "RS-FTE-00",
            "date": day(61),
            "time": "19:00",
            "party_size": 2,
            "name": LONG,
            "request_id": rid(),
        },
        "name",
    ),
    (
        "mcp-restaurants",
        "reserve_table",
        {
            "restaurant_id": "RS-FTE-00",
            "date": day(61),
            "time": "12:00",
            "party_size": 2,
            "name": "Ada",
            "request_id": rid(),
        },
        "time",
    ),
    (
        "mcp-restaurants",
        "reserve_table",
        {
            "restaurant_id": "RS-FTE-00",
            "date": day(61),
            "time": "7pm",
            "party_size": 2,
            "name": "Ada",
            "request_id": rid(),
        },
        "time",
    ),
    (
        "mcp-restaurants",
        "reserve_table",
        {
            "restaurant_id": "RS-XXX-00",
            "date": day(61),
            "time": "19:00",
            "party_size": 2,
            "name": "Ada",
            "request_id": rid(),
        },
        "restaurant_id",
    ),
    (
        "mcp-restaurants",
        "reserve_table",
        {
            "restaurant_id": "RS-FTE-00",
            "date": day(500),
            "time": "19:00",
            "party_size": 2,
            "name": "Ada",
            "request_id": rid(),
        },
        "date",
    ),
    (
        "mcp-restaurants",
        "reserve_table",
        {
            "restaurant_id": "RS-FTE-00",
            "date": day(61),
            "time": "19:00",
            "party_size": 100,
            "name": "Ada",
            "request_id": rid(),
        },
        "party_size",
    ),
    (
        "mcp-restaurants",
        "cancel_reservation",
        {"reservation_id": "RR-0000000000-RS-FTE-00", "request_id": rid()},
        "reservation_id",
    ),
]


async def _written_keys(redis: Redis) -> set[str]:
    """Everything a write leaves: bookings, capacity counters, request records and claims."""
    found: set[str] = set()
    patterns = (keys.booking("*", "*"), keys.capacity("*", "*"), keys.write_record("*", "*"))
    for pattern in (*patterns, keys.write_claim("*", "*")):
        found |= {k async for k in redis.scan_iter(match=pattern, count=1000)}
    return found


@pytest.mark.parametrize(
    ("server", "tool", "arguments", "field"), CASES, ids=[f"{c[1]}-{c[3]}-{i}" for i, c in enumerate(CASES)]
)
async def test_bad_input_is_a_tool_error_naming_the_field(
    servers: dict[str, ServiceProcess],
    redis: Redis,
    server: str,
    tool: str,
    arguments: dict[str, Any],
    field: str,
) -> None:
    before = await _written_keys(redis)
    async with mcp_client(servers[server].mcp_url) as client:
        result = await client.call_tool(tool, arguments)
        message = error_text(result)
        assert field in message, message
        assert len(message) < 2_000, "the error echoes the whole input"
        # The server is still fine afterwards.
        assert (await client.list_tools()).tools
    assert await _written_keys(redis) == before


async def test_bad_cancel_of_a_real_booking_writes_nothing(
    servers: dict[str, ServiceProcess], redis: Redis
) -> None:
    """A cancel with an invalid request_id leaves a confirmed booking confirmed."""
    async with mcp_client(servers["mcp-flights"].mcp_url) as client:
        offer = structured(await client.call_tool("search_flights", {**FLIGHT, "depart_date": day(61)}))[
            "offers"
        ][0]
        booking = structured(
            await client.call_tool(
                "book_flight", {"offer_id": offer["offer_id"], "passengers": 2, "request_id": rid()}
            )
        )
        before = await _written_keys(redis)
        refused = await client.call_tool(
            "cancel_flight_booking", {"booking_id": booking["booking_id"], "request_id": "x"}
        )
        assert "request_id" in error_text(refused)
        still = structured(
            await client.call_tool("get_flight_booking", {"booking_id": booking["booking_id"]})
        )
    assert still["status"] == "confirmed"
    assert await _written_keys(redis) == before
