"""The flights specialist: finds round trips and books them on mcp-flights."""

from __future__ import annotations

from typing import Any

from waypoint_orchestrator.agents.base import CallContext, Specialist
from waypoint_orchestrator.models import ResolvedTrip


class FlightsAgent(Specialist):
    name = "flights"
    lookup_tool = "get_flight_booking"

    async def search(self, trip: ResolvedTrip, ctx: CallContext) -> list[dict[str, Any]]:
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
        found = await self.cached_call("search_flights", args, ctx)
        offers: list[dict[str, Any]] = found["offers"]
        return offers

    async def book(self, offer_id: str, passengers: int, request_id: str, ctx: CallContext) -> dict[str, Any]:
        return await self.call(
            "book_flight", {"offer_id": offer_id, "passengers": passengers, "request_id": request_id}, ctx
        )

    async def cancel(
        self, booking_id: str, request_id: str, ctx: CallContext, attempts: int
    ) -> dict[str, Any]:
        return await self.call(
            "cancel_flight_booking",
            {"booking_id": booking_id, "request_id": request_id},
            ctx,
            attempts=attempts,
        )
