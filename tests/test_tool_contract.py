"""Every tool, called over MCP Streamable HTTP on the real servers: descriptions, schemas, results."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx2
import jsonschema
import pytest
from mcp_types import Tool

from tests.support import SERVICE_TOKEN, ServiceProcess, mcp_client, structured

EXPECTED_TOOLS = {
    "mcp-flights": {"search_flights", "book_flight", "cancel_flight_booking", "get_flight_booking"},
    "mcp-hotels": {"search_hotels", "book_hotel", "cancel_hotel_booking", "get_hotel_booking"},
    "mcp-weather": {"get_forecast"},
    "mcp-restaurants": {"search_restaurants", "reserve_table", "cancel_reservation", "get_reservation"},
}


def day(offset: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=offset)).isoformat()


def rid() -> str:
    return f"test-{uuid.uuid4().hex}"


class SchemaCheckedClient:
    """Calls tools and validates each structured result against the tool's output schema."""

    def __init__(self, client: Any, tools: dict[str, Tool]) -> None:
        self.client = client
        self.tools = tools

    async def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        result = structured(await self.client.call_tool(name, args))
        schema = self.tools[name].output_schema
        assert schema is not None, f"{name} has no output schema"
        jsonschema.validate(result, schema)
        return result


@pytest.mark.parametrize("service", sorted(EXPECTED_TOOLS))
async def test_tools_are_described_with_input_and_output_schemas(
    servers: dict[str, ServiceProcess], service: str
) -> None:
    async with mcp_client(servers[service].mcp_url) as client:
        tools = (await client.list_tools()).tools
    assert {t.name for t in tools} == EXPECTED_TOOLS[service]
    for tool in tools:
        assert len(tool.description or "") > 20, tool.name
        assert tool.input_schema["type"] == "object"
        assert (tool.output_schema or {}).get("type") == "object", tool.name
        if tool.name.startswith(("book_", "reserve_", "cancel_")):
            assert "request_id" in tool.input_schema["required"], tool.name


async def test_flight_tools_round_trip(servers: dict[str, ServiceProcess]) -> None:
    async with mcp_client(servers["mcp-flights"].mcp_url) as client:
        c = SchemaCheckedClient(client, {t.name: t for t in (await client.list_tools()).tools})
        found = await c.call(
            "search_flights",
            {
                "origin": "SEA",
                "destination": "Patagonia",
                "depart_date": day(90),
                "return_date": day(94),
                "passengers": 2,
                "cabin": "economy",
            },
        )
        assert found["origin"]["code"] == "SEA"
        assert found["destination"]["code"] == "FTE"
        offers = found["offers"]
        assert offers, "no offers"
        assert [o["total_price"] for o in offers] == sorted(o["total_price"] for o in offers)
        offer = offers[0]
        outbound, inbound = offer["slices"]
        assert outbound["origin"] == "SEA"
        assert inbound["destination"] == "SEA"
        assert dt.datetime.fromisoformat(outbound["departure_local"]).utcoffset() == dt.timedelta(hours=-8)
        assert offer["total_price"] == pytest.approx(offer["price_per_passenger"] * 2, abs=0.011)
        booked = await c.call(
            "book_flight", {"offer_id": offer["offer_id"], "passengers": 2, "request_id": rid()}
        )
        assert booked["status"] == "confirmed"
        assert booked["offer"]["offer_id"] == offer["offer_id"]
        got = await c.call("get_flight_booking", {"booking_id": booked["booking_id"]})
        assert got["booking_id"] == booked["booking_id"]
        assert got["status"] == "confirmed"
        cancelled = await c.call(
            "cancel_flight_booking", {"booking_id": booked["booking_id"], "request_id": rid()}
        )
        assert cancelled["status"] == "cancelled"
        got = await c.call("get_flight_booking", {"booking_id": booked["booking_id"]})
        assert got["status"] == "cancelled"


async def test_hotel_tools_round_trip(servers: dict[str, ServiceProcess]) -> None:
    async with mcp_client(servers["mcp-hotels"].mcp_url) as client:
        c = SchemaCheckedClient(client, {t.name: t for t in (await client.list_tools()).tools})
        found = await c.call(
            "search_hotels",
            {"location": "El Calafate", "check_in": day(91), "check_out": day(94), "guests": 2},
        )
        hotels = found["hotels"]
        assert hotels
        assert all(h["nights"] == 3 and h["rooms"] == 1 for h in hotels)
        # A bound between the cheapest and the dearest: some hotels pass it and some do not,
        # whatever the day's prices are.
        prices = sorted(h["nightly_price"] for h in hotels)
        assert prices[0] < prices[-1]
        bound = (prices[0] + prices[-1]) / 2
        cheap = await c.call(
            "search_hotels",
            {
                "location": "FTE",
                "check_in": day(91),
                "check_out": day(94),
                "guests": 2,
                "max_price_per_night": bound,
            },
        )
        assert cheap["hotels"]
        assert all(h["nightly_price"] <= bound for h in cheap["hotels"])
        assert {h["hotel_id"] for h in cheap["hotels"]} == {
            h["hotel_id"] for h in hotels if h["nightly_price"] <= bound
        }
        hotel = hotels[0]
        booked = await c.call(
            "book_hotel",
            {
                "hotel_id": hotel["hotel_id"],
                "check_in": day(91),
                "check_out": day(94),
                "guests": 2,
                "guest_name": "Ada Lovelace",
                "request_id": rid(),
            },
        )
        assert booked["status"] == "confirmed"
        assert booked["total_price"] == hotel["total_price"]
        assert (await c.call("get_hotel_booking", {"booking_id": booked["booking_id"]}))["guests"] == 2
        cancelled = await c.call(
            "cancel_hotel_booking", {"booking_id": booked["booking_id"], "request_id": rid()}
        )
        assert cancelled["status"] == "cancelled"


async def test_weather_forecast_has_one_entry_a_day(servers: dict[str, ServiceProcess]) -> None:
    async with mcp_client(servers["mcp-weather"].mcp_url) as client:
        c = SchemaCheckedClient(client, {t.name: t for t in (await client.list_tools()).tools})
        forecast = await c.call(
            "get_forecast", {"location": "Patagonia", "start_date": day(90), "end_date": day(93)}
        )
    assert [d["date"] for d in forecast["days"]] == [day(90 + i) for i in range(4)]
    for entry in forecast["days"]:
        assert entry["low_c"] < entry["high_c"]
        assert 0 <= entry["outdoor_suitability"] <= 1


async def test_restaurant_tools_round_trip(servers: dict[str, ServiceProcess]) -> None:
    async with mcp_client(servers["mcp-restaurants"].mcp_url) as client:
        c = SchemaCheckedClient(client, {t.name: t for t in (await client.list_tools()).tools})
        fancy = await c.call(
            "search_restaurants",
            {"location": "El Calafate", "date": day(92), "party_size": 2, "price_level": 4},
        )
        assert fancy["restaurants"]
        assert all(r["price_level"] == 4 for r in fancy["restaurants"])
        restaurant = fancy["restaurants"][0]
        slot = restaurant["free_slots"][0]
        reserved = await c.call(
            "reserve_table",
            {
                "restaurant_id": restaurant["restaurant_id"],
                "date": day(92),
                "time": slot,
                "party_size": 2,
                "name": "Ada Lovelace",
                "request_id": rid(),
            },
        )
        assert reserved["status"] == "confirmed"
        assert reserved["time"] == slot
        got = await c.call("get_reservation", {"reservation_id": reserved["reservation_id"]})
        assert got["reservation_id"] == reserved["reservation_id"]
        cancelled = await c.call(
            "cancel_reservation", {"reservation_id": reserved["reservation_id"], "request_id": rid()}
        )
        assert cancelled["status"] == "cancelled"


async def test_session_based_client_is_served_by_any_replica(
    replicas: dict[str, tuple[ServiceProcess, ServiceProcess]],
) -> None:
    """An older (2025-06-18) client initializes on one replica and calls a tool on another."""
    first, second = replicas["mcp-flights"]
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {SERVICE_TOKEN}",
    }
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "legacy", "version": "1.0"},
        },
    }
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {
            "name": "search_flights",
            "arguments": {"origin": "BOS", "destination": "DEN", "depart_date": day(40), "passengers": 1},
        },
    }
    async with httpx2.AsyncClient(timeout=10) as http:
        r1 = await http.post(first.mcp_url, json=init, headers=headers)
        assert r1.status_code == 200, r1.text
        session = r1.headers.get("mcp-session-id")
        follow = {**headers, "MCP-Protocol-Version": "2025-06-18"}
        if session:
            follow["Mcp-Session-Id"] = session
        r2 = await http.post(second.mcp_url, json=call, headers=follow)
    assert r2.status_code == 200, r2.text
    assert '"offers"' in r2.text
    assert "DEN" in r2.text
