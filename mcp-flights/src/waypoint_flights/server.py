"""The mcp-flights tools."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from waypoint_common.bookings import BookingLedger, request_owner, writing_owner
from waypoint_common.geography import great_circle_km
from waypoint_common.results.flights import Cabin, FlightBooking, FlightOffer, FlightSearchResult
from waypoint_common.toolargs import (
    LocationText,
    PartySize,
    RequestId,
    check_date_range,
    check_place,
    check_travel_date,
)
from waypoint_common.toolserver import ToolContext
from waypoint_flights.provider import (
    FlightProvider,
    OfferQuote,
    SimulatedFlights,
    UnknownOffer,
    airport_model,
)

SERVICE = "mcp-flights"
MAX_TRIP_DAYS = 60
SEAT_COUNTER = "seats"

OfferId = Annotated[str, Field(min_length=1, max_length=64, description="An offer_id from search_flights.")]
BookingId = Annotated[str, Field(min_length=1, max_length=128, description="A booking_id from book_flight.")]


def create_server(context: ToolContext, provider: FlightProvider | None = None) -> MCPServer:
    """Build the flights MCP server on the given Redis."""
    flights = provider or SimulatedFlights()
    ledger = BookingLedger(context.redis, "flights", "flight", "FB")
    mcp = MCPServer(
        SERVICE, instructions="Search, book and cancel flights. Writes are idempotent by request_id."
    )

    async def priced(quotes: list[OfferQuote], passengers: int) -> list[FlightOffer]:
        """The offers at today's fares, which depend on the seats left."""
        seats_left = await ledger.remaining([(q.offer_id, SEAT_COUNTER, q.capacity) for q in quotes])
        return [to_offer(q, left, passengers) for q, left in zip(quotes, seats_left, strict=True)]

    def to_offer(quote: OfferQuote, left: int, passengers: int) -> FlightOffer:
        per_passenger = flights.fare(quote, left)
        return FlightOffer(
            offer_id=quote.offer_id,
            carrier=quote.carrier,
            carrier_code=quote.carrier_code,
            cabin=quote.cabin,
            slices=list(quote.slices),
            price_per_passenger=per_passenger,
            total_price=round(per_passenger * passengers, 2),
            seats_left=left,
        )

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True))
    async def search_flights(
        origin: LocationText,
        destination: LocationText,
        depart_date: dt.date,
        passengers: PartySize,
        return_date: dt.date | None = None,
        cabin: Cabin = "economy",
    ) -> FlightSearchResult:
        """Find flight offers between two places on a date, round trip when return_date is given.

        Offers carry local departure and arrival times with their time zones, the fare per
        passenger and in total, and the seats left; cheapest first. Offers with fewer seats
        left than passengers are left out.
        """
        src = check_place("origin", origin)
        dst = check_place("destination", destination)
        if src.code == dst.code:
            raise ToolError("destination: must differ from origin")
        if return_date is None:
            check_travel_date("depart_date", depart_date)
        else:
            check_date_range(
                "depart_date",
                depart_date,
                "return_date",
                return_date,
                max_days=MAX_TRIP_DAYS,
                allow_same_day=True,
            )
        quotes = flights.search(src, dst, depart_date, return_date, cabin)
        offers = await priced(quotes, passengers)
        bookable = sorted((o for o in offers if o.seats_left >= passengers), key=lambda o: o.total_price)
        return FlightSearchResult(
            origin=airport_model(src),
            destination=airport_model(dst),
            distance_km=round(great_circle_km(src, dst), 1),
            passengers=passengers,
            offers=bookable,
        )

    @mcp.tool(annotations=ToolAnnotations(destructiveHint=False, idempotentHint=True))
    async def book_flight(
        offer_id: OfferId, passengers: PartySize, request_id: RequestId, ctx: Context
    ) -> FlightBooking:
        """Book seats on an offer. Idempotent: the same request_id returns the same booking.

        Takes `passengers` seats; fails when fewer are left. Reusing a request_id with
        different arguments is an error, never a second booking. The booking belongs to the
        owner named in the request's `_meta` (`waypoint/owner`); only that owner can see or
        cancel it.
        """
        owner = writing_owner(ctx)
        try:
            quote = flights.quote(offer_id)
        except UnknownOffer:
            raise ToolError(f"offer_id: unknown offer {offer_id!r}") from None
        check_travel_date("offer_id", quote.departs)
        (offer,) = await priced([quote], passengers)
        booking = FlightBooking(
            booking_id=ledger.new_booking_id(offer_id),
            status="confirmed",
            passengers=passengers,
            price_per_passenger=offer.price_per_passenger,
            total_price=offer.total_price,
            offer=offer,
            booked_at=dt.datetime.now(dt.UTC),
        )
        stored = await ledger.book(
            tool="book_flight",
            arguments={"offer_id": offer_id, "passengers": passengers},
            owner=owner,
            request_id=request_id,
            item_id=offer_id,
            booking=booking.model_dump(mode="json"),
            counters=[SEAT_COUNTER],
            amount=passengers,
            initial=quote.capacity,
            item_field="offer_id",
        )
        return FlightBooking.model_validate(stored)

    @mcp.tool(annotations=ToolAnnotations(destructiveHint=True, idempotentHint=True))
    async def cancel_flight_booking(
        booking_id: BookingId, request_id: RequestId, ctx: Context
    ) -> FlightBooking:
        """Cancel one of the caller's bookings and release its seats. Idempotent: seats come back
        exactly once."""
        owner = request_owner(ctx)
        current = await ledger.get(booking_id, owner)
        cancelled = await ledger.cancel(
            tool="cancel_flight_booking",
            booking_id=booking_id,
            owner=owner,
            request_id=request_id,
            counters=[SEAT_COUNTER],
            amount=int(current["passengers"]),
        )
        return FlightBooking.model_validate(cancelled)

    @mcp.tool(annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True))
    async def get_flight_booking(
        ctx: Context, booking_id: BookingId | None = None, request_id: RequestId | None = None
    ) -> FlightBooking:
        """One of the caller's bookings as it stands now (confirmed or cancelled), by its booking_id,
        or by the request_id of the write that made it (to learn a write's outcome when its answer
        was lost, without writing again). Give one of the two."""
        found = await ledger.lookup(booking_id, request_id, request_owner(ctx))
        return FlightBooking.model_validate(found)

    return mcp
