"""The flights specialist: finds round trips and books them on mcp-flights."""

from __future__ import annotations

from typing import Any

from waypoint_common.results.flights import FlightBooking, FlightOffer, FlightSearchResult
from waypoint_orchestrator.agents.base import BookingAgent, CallContext
from waypoint_orchestrator.models import ResolvedTrip


class FlightsAgent(BookingAgent[FlightBooking]):
    name = "flights"
    booking_model = FlightBooking
    lookup_tool = "get_flight_booking"
    cancel_tool = "cancel_flight_booking"

    async def search(self, trip: ResolvedTrip, ctx: CallContext) -> list[FlightOffer]:
        assert trip.origin is not None
        args: dict[str, Any] = {
            "origin": trip.origin.code,
            "destination": trip.destination.code,
            "depart_date": trip.start_date.isoformat(),
            "passengers": trip.travelers,
            "cabin": trip.cabin,
        }
        if trip.end_date > trip.start_date:
            args["return_date"] = trip.end_date.isoformat()
        found = await self.cached_call("search_flights", args, ctx, FlightSearchResult)
        return found.offers

    async def book(self, offer_id: str, passengers: int, request_id: str, ctx: CallContext) -> FlightBooking:
        return await self.call(
            "book_flight",
            {"offer_id": offer_id, "passengers": passengers, "request_id": request_id},
            ctx,
            FlightBooking,
        )
