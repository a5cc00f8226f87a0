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

    search_tool = "search_flights"

    def arguments(self, trip: ResolvedTrip) -> dict[str, Any]:
        """The search a trip asks for."""
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
        return args

    async def search(self, trip: ResolvedTrip, ctx: CallContext) -> list[FlightOffer]:
        found = await self.cached_call(self.search_tool, self.arguments(trip), ctx, FlightSearchResult)
        return found.offers

    def from_answers(self, answers: list[dict[str, Any]]) -> list[FlightOffer]:
        """The offers in search answers (each validated), once each, cheapest first."""
        offers = {
            o.offer_id: o for a in answers for o in self.parse(self.search_tool, a, FlightSearchResult).offers
        }
        return sorted(offers.values(), key=lambda o: (o.total_price, o.offer_id))

    async def book(self, offer_id: str, passengers: int, request_id: str, ctx: CallContext) -> FlightBooking:
        return await self.call(
            "book_flight",
            {"offer_id": offer_id, "passengers": passengers, "request_id": request_id},
            ctx,
            FlightBooking,
        )
