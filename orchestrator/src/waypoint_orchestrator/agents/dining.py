"""The dining specialist: restaurants that match the dinner wish, and table reservations."""

from __future__ import annotations

import datetime as dt
from typing import Any

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

    search_tool = "search_restaurants"

    def arguments(self, trip: ResolvedTrip, date: dt.date) -> dict[str, Any]:
        """The search an evening of the trip asks for."""
        return {"location": trip.destination.code, "date": date.isoformat(), "party_size": trip.travelers}

    async def search(
        self, trip: ResolvedTrip, date: dt.date, wish: DiningWish, ctx: CallContext
    ) -> list[RestaurantOffer]:
        found = await self.cached_call(
            self.search_tool, self.arguments(trip, date), ctx, RestaurantSearchResult
        )
        return [r for r in found.restaurants if matches(r, wish)]

    def from_answers(self, answers: list[dict[str, Any]], wish: DiningWish) -> list[RestaurantOffer]:
        """The restaurants in search answers (each validated) that match the wish, once each."""
        found = {
            r.restaurant_id: r
            for a in answers
            for r in self.parse(self.search_tool, a, RestaurantSearchResult).restaurants
        }
        ranked = sorted(found.values(), key=lambda r: (-r.rating, r.price_per_person, r.restaurant_id))
        return [r for r in ranked if matches(r, wish)]

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
