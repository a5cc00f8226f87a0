"""The hotels specialist: finds rooms for the nights at the destination and books them."""

from __future__ import annotations

import datetime as dt

from waypoint_common.results.hotels import HotelBooking, HotelOffer, HotelSearchResult
from waypoint_orchestrator.agents.base import BookingAgent, CallContext
from waypoint_orchestrator.models import ResolvedTrip


class HotelsAgent(BookingAgent[HotelBooking]):
    name = "hotels"
    booking_model = HotelBooking
    lookup_tool = "get_hotel_booking"
    cancel_tool = "cancel_hotel_booking"

    async def search(
        self, trip: ResolvedTrip, check_in: dt.date, check_out: dt.date, ctx: CallContext
    ) -> list[HotelOffer]:
        found = await self.cached_call(
            "search_hotels",
            {
                "location": trip.destination.code,
                "check_in": check_in.isoformat(),
                "check_out": check_out.isoformat(),
                "guests": trip.travelers,
            },
            ctx,
            HotelSearchResult,
        )
        return found.hotels

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
