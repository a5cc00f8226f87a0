"""The hotels specialist: finds rooms for the nights at the destination and books them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from waypoint_orchestrator.agents.base import CallContext, Specialist
from waypoint_orchestrator.models import ResolvedTrip


class HotelsAgent(Specialist):
    name = "hotels"
    lookup_tool = "get_hotel_booking"

    async def search(
        self, trip: ResolvedTrip, check_in: dt.date, check_out: dt.date, ctx: CallContext
    ) -> list[dict[str, Any]]:
        found = await self.cached_call(
            "search_hotels",
            {
                "location": trip.destination.code,
                "check_in": check_in.isoformat(),
                "check_out": check_out.isoformat(),
                "guests": trip.travelers,
            },
            ctx,
        )
        hotels: list[dict[str, Any]] = found["hotels"]
        return hotels

    async def book(
        self,
        hotel_id: str,
        check_in: str,
        check_out: str,
        trip: ResolvedTrip,
        request_id: str,
        ctx: CallContext,
    ) -> dict[str, Any]:
        return await self.call(
            "book_hotel",
            {
                "hotel_id": hotel_id,
                "check_in": check_in,
                "check_out": check_out,
                "guests": trip.travelers,
                "guest_name": trip.traveler_name,
                "request_id": request_id,
            },
            ctx,
        )

    async def cancel(
        self, booking_id: str, request_id: str, ctx: CallContext, attempts: int
    ) -> dict[str, Any]:
        return await self.call(
            "cancel_hotel_booking",
            {"booking_id": booking_id, "request_id": request_id},
            ctx,
            attempts=attempts,
        )
