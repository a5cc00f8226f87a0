"""The flight tools' structured outputs."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

Cabin = Literal["economy", "premium_economy", "business", "first"]
BookingStatus = Literal["confirmed", "cancelled"]


class Airport(BaseModel):
    code: str = Field(description="IATA code.")
    name: str
    city: str
    country: str = Field(description="ISO 3166-1 alpha-2 country code.")
    tz: str = Field(description="IANA time zone.")


class FlightSlice(BaseModel):
    """One direction of travel, possibly with connections."""

    origin: str = Field(description="IATA code of the departure airport.")
    origin_tz: str = Field(description="IANA time zone of the departure airport.")
    destination: str = Field(description="IATA code of the arrival airport.")
    destination_tz: str = Field(description="IANA time zone of the arrival airport.")
    flight_numbers: list[str] = Field(description="One flight number per leg.")
    via: list[str] = Field(description="IATA codes of the connecting airports.")
    stops: int = Field(ge=0)
    departure_local: dt.datetime = Field(description="Departure in the origin's local time, with offset.")
    arrival_local: dt.datetime = Field(description="Arrival in the destination's local time, with offset.")
    duration_minutes: int = Field(gt=0)


class FlightOffer(BaseModel):
    offer_id: str
    carrier: str
    carrier_code: str
    cabin: Cabin
    slices: list[FlightSlice] = Field(description="Outbound, then return when one was asked for.")
    price_per_passenger: float = Field(ge=0)
    total_price: float = Field(ge=0, description="For the passengers searched for.")
    currency: Literal["USD"] = "USD"
    seats_left: int = Field(ge=0)


class FlightSearchResult(BaseModel):
    origin: Airport
    destination: Airport
    distance_km: float
    passengers: int
    offers: list[FlightOffer] = Field(description="Bookable offers, cheapest first.")


class FlightBooking(BaseModel):
    booking_id: str
    status: BookingStatus
    passengers: int
    price_per_passenger: float
    total_price: float
    currency: Literal["USD"] = "USD"
    offer: FlightOffer
    booked_at: dt.datetime
