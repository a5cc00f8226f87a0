"""The hotel tools' structured outputs."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class HotelLocation(BaseModel):
    city: str
    country: str = Field(description="ISO 3166-1 alpha-2 country code.")
    airport: str = Field(description="IATA code of the nearest airport.")
    lat: float
    lon: float


class HotelOffer(BaseModel):
    hotel_id: str
    name: str
    stars: int = Field(ge=1, le=5)
    rating: float = Field(ge=0, le=10, description="Guest rating out of 10.")
    location: HotelLocation
    distance_from_centre_km: float = Field(ge=0)
    amenities: list[str]
    rooms: int = Field(ge=1, description="Rooms needed for the guests (two per room).")
    nights: int = Field(ge=1)
    nightly_price: float = Field(ge=0, description="Average price per night for all the rooms.")
    total_price: float = Field(ge=0, description="For all nights and rooms.")
    currency: Literal["USD"] = "USD"
    rooms_left: int = Field(ge=0, description="Fewest rooms left on any night of the stay.")


class HotelSearchResult(BaseModel):
    location: HotelLocation
    check_in: dt.date
    check_out: dt.date
    guests: int
    hotels: list[HotelOffer] = Field(description="Available hotels, best rated first.")


class HotelBooking(BaseModel):
    booking_id: str
    status: Literal["confirmed", "cancelled"]
    hotel: HotelOffer
    check_in: dt.date
    check_out: dt.date
    guests: int
    guest_name: str
    total_price: float
    currency: Literal["USD"] = "USD"
    booked_at: dt.datetime
