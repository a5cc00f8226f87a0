"""The dining specialist: restaurants that match the dinner wish, and table reservations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from waypoint_orchestrator.agents.base import CallContext, Specialist
from waypoint_orchestrator.models import DiningWish, ResolvedTrip

FANCY_LEVELS = (3, 4)


def matches(restaurant: dict[str, Any], wish: DiningWish) -> bool:
    level = int(restaurant["price_level"])
    if wish.style == "fancy" and level not in FANCY_LEVELS:
        return False
    if wish.style == "casual" and level in FANCY_LEVELS:
        return False
    return wish.cuisine is None or str(restaurant["cuisine"]).lower() == wish.cuisine.lower()


class DiningAgent(Specialist):
    name = "dining"
    lookup_tool = "get_reservation"

    async def search(
        self, trip: ResolvedTrip, date: dt.date, wish: DiningWish, ctx: CallContext
    ) -> list[dict[str, Any]]:
        found = await self.cached_call(
            "search_restaurants",
            {"location": trip.destination.code, "date": date.isoformat(), "party_size": trip.travelers},
            ctx,
        )
        return [r for r in found["restaurants"] if matches(r, wish)]

    async def reserve(
        self, restaurant_id: str, date: str, time: str, trip: ResolvedTrip, request_id: str, ctx: CallContext
    ) -> dict[str, Any]:
        return await self.call(
            "reserve_table",
            {
                "restaurant_id": restaurant_id,
                "date": date,
                "time": time,
                "party_size": trip.travelers,
                "name": trip.traveler_name,
                "request_id": request_id,
            },
            ctx,
        )

    async def cancel(
        self, reservation_id: str, request_id: str, ctx: CallContext, attempts: int
    ) -> dict[str, Any]:
        return await self.call(
            "cancel_reservation",
            {"reservation_id": reservation_id, "request_id": request_id},
            ctx,
            attempts=attempts,
        )
