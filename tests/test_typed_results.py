"""Typed tool results: one model per answer, shared by the server (its output schema) and the
orchestrator's agents (which validate every answer into it), against the real servers."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from pydantic import BaseModel, SecretStr

from tests.support import SERVICE_TOKEN, ServiceProcess, mcp_client
from waypoint_common.errors import MalformedResult
from waypoint_common.results.flights import FlightBooking, FlightOffer, FlightSearchResult
from waypoint_common.results.hotels import HotelBooking, HotelSearchResult
from waypoint_common.results.restaurants import Reservation, RestaurantSearchResult
from waypoint_common.results.weather import DailyForecast, Forecast
from waypoint_orchestrator.agents import FlightsAgent, WeatherAgent
from waypoint_orchestrator.agents.base import CallContext, RetrySettings
from waypoint_orchestrator.models import PlaceRef, ResolvedTrip
from waypoint_orchestrator.toolclient import ToolClient

# Every tool and the shared model its answer is.
RESULT_MODELS: dict[str, dict[str, type[BaseModel]]] = {
    "mcp-flights": {
        "search_flights": FlightSearchResult,
        "book_flight": FlightBooking,
        "cancel_flight_booking": FlightBooking,
        "get_flight_booking": FlightBooking,
    },
    "mcp-hotels": {
        "search_hotels": HotelSearchResult,
        "book_hotel": HotelBooking,
        "cancel_hotel_booking": HotelBooking,
        "get_hotel_booking": HotelBooking,
    },
    "mcp-restaurants": {
        "search_restaurants": RestaurantSearchResult,
        "reserve_table": Reservation,
        "cancel_reservation": Reservation,
        "get_reservation": Reservation,
    },
    "mcp-weather": {"get_forecast": Forecast},
}
ORD = PlaceRef(code="ORD", city="Chicago", country="US", lat=41.98, lon=-87.9, tz="America/Chicago")
MIA = PlaceRef(code="MIA", city="Miami", country="US", lat=25.79, lon=-80.29, tz="America/New_York")


def resolved_trip() -> ResolvedTrip:
    start = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    return ResolvedTrip(
        kind="flights_only",
        origin=ORD,
        destination=MIA,
        start_date=start,
        end_date=start + dt.timedelta(days=3),
        travelers=1,
    )


def context() -> CallContext:
    return CallContext(trip_id=uuid.uuid4().hex, step_id="test")


@pytest.mark.parametrize("service", sorted(RESULT_MODELS))
async def test_each_server_publishes_the_shared_models_schema(
    servers: dict[str, ServiceProcess], service: str
) -> None:
    async with mcp_client(servers[service].mcp_url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    expected = RESULT_MODELS[service]
    assert set(expected) <= set(tools)
    for name, model in expected.items():
        schema = tools[name].output_schema
        assert schema is not None, name
        # The published schema is the shared model's: same title, same properties, same required.
        assert schema.get("title") == model.__name__, name
        reference = model.model_json_schema(mode="serialization")
        assert set(schema["properties"]) == set(reference["properties"]), name
        assert set(schema.get("required", [])) == set(reference.get("required", [])), name


async def test_agents_return_typed_answers_from_the_real_servers(servers: dict[str, ServiceProcess]) -> None:
    trip = resolved_trip()
    flights_client = ToolClient("mcp-flights", servers["mcp-flights"].mcp_url, token=SecretStr(SERVICE_TOKEN))
    weather_client = ToolClient("mcp-weather", servers["mcp-weather"].mcp_url, token=SecretStr(SERVICE_TOKEN))
    try:
        offers = await FlightsAgent(flights_client, RetrySettings()).search(trip, context())
        days = await WeatherAgent(weather_client, RetrySettings()).forecast(trip, context())
    finally:
        await flights_client.aclose()
        await weather_client.aclose()
    assert offers
    assert all(isinstance(o, FlightOffer) for o in offers)
    assert offers[0].slices[0].origin == "ORD"
    assert isinstance(offers[0].slices[0].departure_local, dt.datetime)
    assert [d.date for d in days] == [trip.start_date + dt.timedelta(days=i) for i in range(4)]
    assert all(isinstance(d, DailyForecast) for d in days)


async def test_an_answer_that_does_not_fit_its_model_is_a_malformed_result(
    servers: dict[str, ServiceProcess],
) -> None:
    """A server whose answer no longer matches the model (here: a flight search read as a hotel
    search) fails the call as a `MalformedResult` naming the fields, not a KeyError later."""
    trip = resolved_trip()
    client = ToolClient("mcp-flights", servers["mcp-flights"].mcp_url, token=SecretStr(SERVICE_TOKEN))
    agent = FlightsAgent(client, RetrySettings())
    ctx = context()
    arguments = {
        "origin": "ORD",
        "destination": "MIA",
        "depart_date": trip.start_date.isoformat(),
        "passengers": 1,
    }
    try:
        with pytest.raises(MalformedResult) as caught:
            await agent.call("search_flights", arguments, ctx, HotelSearchResult)
    finally:
        await client.aclose()
    message = str(caught.value)
    assert message.startswith("mcp-flights/search_flights: answer is not a valid HotelSearchResult")
    assert "location" in message
    assert ctx.attempts == 1  # final: not retried
