"""The mcp-restaurants tools."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from waypoint_common.bookings import BookingLedger, request_owner, writing_owner
from waypoint_common.inventory import money
from waypoint_common.results.restaurants import (
    PriceLevel,
    Reservation,
    RestaurantOffer,
    RestaurantSearchResult,
)
from waypoint_common.toolargs import (
    LocationText,
    PartySize,
    PersonName,
    RequestId,
    check_place,
    check_travel_date,
)
from waypoint_common.toolserver import ToolContext
from waypoint_restaurants.provider import (
    SEATING_TIMES,
    RestaurantProfile,
    RestaurantProvider,
    SimulatedRestaurants,
    UnknownRestaurant,
    tables_for,
)

SERVICE = "mcp-restaurants"

RestaurantId = Annotated[
    str, Field(min_length=1, max_length=32, description="A restaurant_id from search_restaurants.")
]
ReservationId = Annotated[
    str, Field(min_length=1, max_length=96, description="A reservation_id from reserve_table.")
]
SeatingTime = Annotated[str, Field(pattern=r"^\d{2}:\d{2}$", description="Seating time, HH:MM local.")]
Cuisine = Annotated[str, Field(min_length=1, max_length=40, description="Cuisine, e.g. 'Italian'.")]


def _counter(date: dt.date, time: str) -> str:
    return f"slot:{date.isoformat()}:{time}"


def create_server(context: ToolContext, provider: RestaurantProvider | None = None) -> MCPServer:
    """Build the restaurants MCP server on the given Redis."""
    restaurants = provider or SimulatedRestaurants()
    ledger = BookingLedger(context.redis, "restaurants", "restaurant", "RR", id_field="reservation_id")
    mcp = MCPServer(
        SERVICE, instructions="Find restaurants and reserve tables. Writes are idempotent by request_id."
    )

    async def offers(
        profiles: list[RestaurantProfile], date: dt.date, party_size: int
    ) -> list[RestaurantOffer]:
        """Offers with the seating times that still have tables for the party, in one round trip."""
        counters = [(r.restaurant_id, _counter(date, t), r.tables) for r in profiles for t in SEATING_TIMES]
        left = await ledger.remaining(counters)
        needed = tables_for(party_size)
        n = len(SEATING_TIMES)
        return [
            RestaurantOffer(
                restaurant_id=r.restaurant_id,
                name=r.name,
                cuisine=r.cuisine,
                price_level=r.price_level,
                price_per_person=r.price_per_person,
                rating=r.rating,
                city=r.place.city,
                country=r.place.country,
                free_slots=[
                    t
                    for t, free in zip(SEATING_TIMES, left[i * n : (i + 1) * n], strict=True)
                    if free >= needed
                ],
            )
            for i, r in enumerate(profiles)
        ]

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True))
    async def search_restaurants(
        location: LocationText,
        date: dt.date,
        party_size: PartySize,
        cuisine: Cuisine | None = None,
        price_level: Annotated[PriceLevel | None, Field(description="Only this price level (1-4).")] = None,
    ) -> RestaurantSearchResult:
        """Find restaurants in a city with a free table for the party on a date.

        Each restaurant lists its free seating times (local time). Filter by cuisine
        (case-insensitive) and by price level: 3-4 is fine dining.
        """
        place = check_place("location", location)
        check_travel_date("date", date)
        profiles = [
            r
            for r in restaurants.restaurants_in(place)
            if (cuisine is None or r.cuisine.lower() == cuisine.strip().lower())
            and (price_level is None or r.price_level == price_level)
        ]
        found = [r for r in await offers(profiles, date, party_size) if r.free_slots]
        found.sort(key=lambda r: (-r.rating, r.price_per_person))
        return RestaurantSearchResult(
            city=place.city, country=place.country, date=date, party_size=party_size, restaurants=found
        )

    @mcp.tool(annotations=ToolAnnotations(destructiveHint=False, idempotentHint=True))
    async def reserve_table(
        restaurant_id: RestaurantId,
        date: dt.date,
        time: SeatingTime,
        party_size: PartySize,
        name: PersonName,
        request_id: RequestId,
        ctx: Context,
    ) -> Reservation:
        """Reserve a table. Idempotent: the same request_id returns the same reservation.

        Fails when the seating time has no table left for the party. Reusing a request_id with
        different arguments is an error, never a second reservation. The reservation belongs to
        the owner named in the request's `_meta` (`waypoint/owner`); only that owner can see or
        cancel it.
        """
        owner = writing_owner(ctx)
        try:
            profile = restaurants.restaurant(restaurant_id)
        except UnknownRestaurant:
            raise ToolError(f"restaurant_id: unknown restaurant {restaurant_id!r}") from None
        check_travel_date("date", date)
        if time not in SEATING_TIMES:
            raise ToolError(f"time: {time} is not a seating time; choose one of {', '.join(SEATING_TIMES)}")
        (offer,) = await offers([profile], date, party_size)
        tables = tables_for(party_size)
        reservation = Reservation(
            reservation_id=ledger.new_booking_id(restaurant_id),
            status="confirmed",
            restaurant=offer,
            date=date,
            time=time,
            party_size=party_size,
            tables=tables,
            name=name,
            estimated_total=money(profile.price_per_person * party_size),
            booked_at=dt.datetime.now(dt.UTC),
        )
        stored = await ledger.book(
            tool="reserve_table",
            arguments={
                "restaurant_id": restaurant_id,
                "date": date.isoformat(),
                "time": time,
                "party_size": party_size,
                "name": name,
            },
            owner=owner,
            request_id=request_id,
            item_id=restaurant_id,
            booking=reservation.model_dump(mode="json"),
            counters=[_counter(date, time)],
            amount=tables,
            initial=profile.tables,
            item_field="time",
        )
        return Reservation.model_validate(stored)

    @mcp.tool(annotations=ToolAnnotations(destructiveHint=True, idempotentHint=True))
    async def cancel_reservation(
        reservation_id: ReservationId, request_id: RequestId, ctx: Context
    ) -> Reservation:
        """Cancel one of the caller's reservations and free its table. Idempotent: the table comes
        back exactly once."""
        owner = request_owner(ctx)
        current = Reservation.model_validate(await ledger.get(reservation_id, owner))
        cancelled = await ledger.cancel(
            tool="cancel_reservation",
            booking_id=reservation_id,
            owner=owner,
            request_id=request_id,
            counters=[_counter(current.date, current.time)],
            amount=current.tables,
        )
        return Reservation.model_validate(cancelled)

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True))
    async def get_reservation(
        ctx: Context, reservation_id: ReservationId | None = None, request_id: RequestId | None = None
    ) -> Reservation:
        """One of the caller's reservations as it stands now (confirmed or cancelled), by its reservation_id,
        or by the request_id of the write that made it (to learn a write's outcome when its answer
        was lost, without writing again). Give one of the two."""
        found = await ledger.lookup(reservation_id, request_id, request_owner(ctx))
        return Reservation.model_validate(found)

    return mcp
