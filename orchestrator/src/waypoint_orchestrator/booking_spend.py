"""A trip's booking spend, against the daily cap of the API key that asked to book it.

The saga reserves the trip's cost before it books anything (`quotas.SpendLedger`: once per trip,
atomically, so replicas and resumed jobs never count it twice) and gives it back once every
booking is undone. Over the cap, the trip ends `failed`, reason `spend_cap_exceeded`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from waypoint_orchestrator.models import Trip
from waypoint_orchestrator.quotas import SpendLedger
from waypoint_orchestrator.states import settle
from waypoint_orchestrator.store import TripStore

Event = tuple[str, dict[str, Any]]


class BookingSpend:
    def __init__(self, store: TripStore, ledger: SpendLedger | None) -> None:
        self.store = store
        self.ledger = ledger

    async def reserve(self, trip: Trip) -> bool:
        """Reserve the trip's cost against the booking key's daily spend cap, before anything is
        booked (once per trip: a resumed saga passes again). Over the cap, the trip ends here."""
        if trip.spend is None or trip.itinerary is None or self.ledger is None:
            return True
        authority = trip.spend
        day = authority.reserved_on or dt.datetime.now(dt.UTC).date()
        amount = trip.itinerary.budget.total_usd
        decision = await self.ledger.reserve(authority.key_id, day, trip.id, amount, authority.daily_cap_usd)
        if decision.allowed:
            if authority.reserved_on is None:

                def reserved(t: Trip) -> list[Event]:
                    if t.spend is not None:
                        t.spend.reserved_on = day
                    return []

                await self.store.update(trip.id, reserved)
            return True
        detail = (
            f"booking ${amount:,.2f} would take API key {authority.key_id}'s booking spend on {day} "
            f"to ${decision.spent_usd + amount:,.2f}, over its daily cap of ${authority.daily_cap_usd:,.2f}; "
            "nothing was booked"
        )

        def refused(t: Trip) -> list[Event]:
            return [
                (
                    "spend.refused",
                    {
                        "amount_usd": amount,
                        "spent_usd": decision.spent_usd,
                        "cap_usd": authority.daily_cap_usd,
                    },
                ),
                *settle(t, "failed", "spend_cap_exceeded", detail),
            ]

        await self.store.update(trip.id, refused)
        return False

    async def refund(self, trip_id: str) -> None:
        """Give the reservation back once every booking of the trip is undone."""
        trip = await self.store.get(trip_id)
        if self.ledger is None or trip.spend is None or trip.spend.reserved_on is None:
            return
        if any(b.status == "confirmed" for b in trip.bookings):
            return
        await self.ledger.refund(trip.spend.key_id, trip.spend.reserved_on, trip_id)
