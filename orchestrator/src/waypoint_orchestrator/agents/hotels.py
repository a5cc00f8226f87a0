"""The hotels specialist: finds rooms for the nights at the destination and books them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from waypoint_common.results.hotels import HotelBooking, HotelOffer, HotelSearchResult
from waypoint_orchestrator.agents.base import BookingAgent, CallContext
from waypoint_orchestrator.models import ResolvedTrip


class HotelsAgent(BookingAgent[HotelBooking]):
    name = "hotels"
    booking_model = HotelBooking
    lookup_tool = "get_hotel_booking"
    cancel_tool = "cancel_hotel_booking"

    search_tool = "search_hotels"

    def arguments(self, trip: ResolvedTrip, check_in: dt.date, check_out: dt.date) -> dict[str, Any]:
        """The search a trip's stay asks for."""
        return {
            "location": trip.destination.code,
            "check_in": check_in.isoformat(),
            "check_out": check_out.isoformat(),
            "guests": trip.travelers,
        }

    async def search(
        self, trip: ResolvedTrip, check_in: dt.date, check_out: dt.date, ctx: CallContext
    ) -> list[HotelOffer]:
        args = self.arguments(trip, check_in, check_out)
        return (await self.cached_call(self.search_tool, args, ctx, HotelSearchResult)).hotels

    def from_answers(self, answers: list[dict[str, Any]]) -> list[HotelOffer]:
        """The hotels in search answers (each validated), once each, best rated first."""
        hotels = {
            h.hotel_id: h for a in answers for h in self.parse(self.search_tool, a, HotelSearchResult).hotels
        }
        return sorted(hotels.values(), key=lambda h: (-h.rating, h.total_price, h.hotel_id))

    async def book(
        self,
        hotel_id: str,
        check_in: dt.date,
        check_out: dt.date,
        trip: ResolvedTrip,
        request_id: str,
        ctx: CallContext,
    ) -> HotelBooking:
        return await self.call(
            "book_hotel",
            {
                "hotel_id": hotel_id,
                "check_in": check_in.isoformat(),
                "check_out": check_out.isoformat(),
                "guests": trip.travelers,
                "guest_name": trip.traveler_name,
                "request_id": request_id,
            },
            ctx,
            HotelBooking,
        )
