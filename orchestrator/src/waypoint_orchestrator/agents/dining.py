"""The dining specialist: restaurants that match the dinner wish, and table reservations."""

from __future__ import annotations

import datetime as dt

from waypoint_common.results.restaurants import Reservation, RestaurantOffer, RestaurantSearchResult
from waypoint_orchestrator.agents.base import BookingAgent, CallContext
from waypoint_orchestrator.models import DiningWish, ResolvedTrip

FANCY_LEVELS = (3, 4)


def matches(restaurant: RestaurantOffer, wish: DiningWish) -> bool:
    level = restaurant.price_level
    if wish.style == "fancy" and level not in FANCY_LEVELS:
        return False
    if wish.style == "casual" and level in FANCY_LEVELS:
        return False
    return wish.cuisine is None or restaurant.cuisine.lower() == wish.cuisine.lower()


class DiningAgent(BookingAgent[Reservation]):
    name = "dining"
    booking_model = Reservation
    lookup_tool = "get_reservation"
    cancel_tool = "cancel_reservation"
    id_argument = "reservation_id"

    async def search(
        self, trip: ResolvedTrip, date: dt.date, wish: DiningWish, ctx: CallContext
    ) -> list[RestaurantOffer]:
        found = await self.cached_call(
            "search_restaurants",
            {"location": trip.destination.code, "date": date.isoformat(), "party_size": trip.travelers},
            ctx,
            RestaurantSearchResult,
        )
        return [r for r in found.restaurants if matches(r, wish)]

    async def reserve(
        self,
        restaurant_id: str,
        date: dt.date,
        time: str,
        trip: ResolvedTrip,
        request_id: str,
        ctx: CallContext,
    ) -> Reservation:
        return await self.call(
            "reserve_table",
            {
                "restaurant_id": restaurant_id,
                "date": date.isoformat(),
                "time": time,
                "party_size": trip.travelers,
                "name": trip.traveler_name,
                "request_id": request_id,
            },
            ctx,
            Reservation,
        )
