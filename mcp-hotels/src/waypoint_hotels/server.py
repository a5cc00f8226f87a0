"""The mcp-hotels tools."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from waypoint_common.bookings import BookingLedger, request_owner, writing_owner
from waypoint_common.inventory import money
from waypoint_common.results.hotels import HotelBooking, HotelLocation, HotelOffer, HotelSearchResult
from waypoint_common.toolargs import (
    MAX_STAY_NIGHTS,
    LocationText,
    PartySize,
    PersonName,
    RequestId,
    check_date_range,
    check_place,
)
from waypoint_common.toolserver import ToolContext
from waypoint_hotels.provider import (
    HotelProfile,
    HotelProvider,
    SimulatedHotels,
    UnknownHotel,
    nights,
    rooms_for,
)

SERVICE = "mcp-hotels"

HotelId = Annotated[str, Field(min_length=1, max_length=32, description="A hotel_id from search_hotels.")]
BookingId = Annotated[str, Field(min_length=1, max_length=96, description="A booking_id from book_hotel.")]


def _counter(night: dt.date) -> str:
    return f"night:{night.isoformat()}"


def create_server(context: ToolContext, provider: HotelProvider | None = None) -> MCPServer:
    """Build the hotels MCP server on the given Redis."""
    hotels = provider or SimulatedHotels()
    ledger = BookingLedger(context.redis, "hotels", "hotel", "HB")
    mcp = MCPServer(
        SERVICE, instructions="Search, book and cancel hotel rooms. Writes are idempotent by request_id."
    )

    def check_stay(check_in: dt.date, check_out: dt.date) -> list[dt.date]:
        check_date_range(
            "check_in", check_in, "check_out", check_out, max_days=MAX_STAY_NIGHTS, allow_same_day=False
        )
        return nights(check_in, check_out)

    async def offers(profiles: list[HotelProfile], stay: list[dt.date], guests: int) -> list[HotelOffer]:
        """Priced offers with the fewest rooms left on any night, in one Redis round trip."""
        counters = [(h.hotel_id, _counter(n), h.rooms) for h in profiles for n in stay]
        left = await ledger.remaining(counters)
        rooms = rooms_for(guests)
        result = []
        for i, h in enumerate(profiles):
            rates = [h.nightly_rate(n) for n in stay]
            total = money(sum(rates) * rooms)
            result.append(
                HotelOffer(
                    hotel_id=h.hotel_id,
                    name=h.name,
                    stars=h.stars,
                    rating=h.rating,
                    location=HotelLocation(
                        city=h.place.city, country=h.place.country, airport=h.place.code, lat=h.lat, lon=h.lon
                    ),
                    distance_from_centre_km=h.distance_km,
                    amenities=list(h.amenities),
                    rooms=rooms,
                    nights=len(stay),
                    nightly_price=money(total / len(stay)),
                    total_price=total,
                    rooms_left=min(left[i * len(stay) : (i + 1) * len(stay)]),
                )
            )
        return result

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True))
    async def search_hotels(
        location: LocationText,
        check_in: dt.date,
        check_out: dt.date,
        guests: PartySize,
        max_price_per_night: Annotated[
            float | None, Field(gt=0, le=100_000, description="Upper bound on nightly_price, in USD.")
        ] = None,
    ) -> HotelSearchResult:
        """Find hotels in a city with rooms for every night from check_in to check_out.

        Prices are for all the rooms the guests need (two guests per room); hotels without
        enough rooms left on some night, or above max_price_per_night, are left out.
        """
        place = check_place("location", location)
        stay = check_stay(check_in, check_out)
        found = await offers(hotels.hotels_in(place), stay, guests)
        available = [
            h
            for h in found
            if h.rooms_left >= h.rooms
            and (max_price_per_night is None or h.nightly_price <= max_price_per_night)
        ]
        available.sort(key=lambda h: (-h.rating, h.total_price))
        return HotelSearchResult(
            location=HotelLocation(
                city=place.city, country=place.country, airport=place.code, lat=place.lat, lon=place.lon
            ),
            check_in=check_in,
            check_out=check_out,
            guests=guests,
            hotels=available,
        )

    @mcp.tool(annotations=ToolAnnotations(destructiveHint=False, idempotentHint=True))
    async def book_hotel(
        hotel_id: HotelId,
        check_in: dt.date,
        check_out: dt.date,
        guests: PartySize,
        guest_name: PersonName,
        request_id: RequestId,
        ctx: Context,
    ) -> HotelBooking:
        """Book rooms for every night of a stay. Idempotent: the same request_id returns the same booking.

        Fails when some night has too few rooms left. Reusing a request_id with different
        arguments is an error, never a second booking. The booking belongs to the owner named
        in the request's `_meta` (`waypoint/owner`); only that owner can see or cancel it.
        """
        owner = writing_owner(ctx)
        try:
            profile = hotels.hotel(hotel_id)
        except UnknownHotel:
            raise ToolError(f"hotel_id: unknown hotel {hotel_id!r}") from None
        stay = check_stay(check_in, check_out)
        (offer,) = await offers([profile], stay, guests)
        booking = HotelBooking(
            booking_id=ledger.new_booking_id(hotel_id),
            status="confirmed",
            hotel=offer,
            check_in=check_in,
            check_out=check_out,
            guests=guests,
            guest_name=guest_name,
            total_price=offer.total_price,
            booked_at=dt.datetime.now(dt.UTC),
        )
        stored = await ledger.book(
            tool="book_hotel",
            arguments={
                "hotel_id": hotel_id,
                "check_in": check_in.isoformat(),
                "check_out": check_out.isoformat(),
                "guests": guests,
                "guest_name": guest_name,
            },
            owner=owner,
            request_id=request_id,
            item_id=hotel_id,
            booking=booking.model_dump(mode="json"),
            counters=[_counter(n) for n in stay],
            amount=offer.rooms,
            initial=profile.rooms,
            item_field="hotel_id",
        )
        return HotelBooking.model_validate(stored)

    @mcp.tool(annotations=ToolAnnotations(destructiveHint=True, idempotentHint=True))
    async def cancel_hotel_booking(
        booking_id: BookingId, request_id: RequestId, ctx: Context
    ) -> HotelBooking:
        """Cancel one of the caller's bookings and release its rooms. Idempotent: rooms come back
        exactly once."""
        owner = request_owner(ctx)
        current = HotelBooking.model_validate(await ledger.get(booking_id, owner))
        cancelled = await ledger.cancel(
            tool="cancel_hotel_booking",
            booking_id=booking_id,
            owner=owner,
            request_id=request_id,
            counters=[_counter(n) for n in nights(current.check_in, current.check_out)],
            amount=current.hotel.rooms,
        )
        return HotelBooking.model_validate(cancelled)

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True))
    async def get_hotel_booking(
        ctx: Context, booking_id: BookingId | None = None, request_id: RequestId | None = None
    ) -> HotelBooking:
        """One of the caller's bookings as it stands now (confirmed or cancelled), by its booking_id,
        or by the request_id of the write that made it (to learn a write's outcome when its answer
        was lost, without writing again). Give one of the two."""
        found = await ledger.lookup(booking_id, request_id, request_owner(ctx))
        return HotelBooking.model_validate(found)

    return mcp
