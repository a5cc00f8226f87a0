"""The restaurant tools' structured outputs."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

PriceLevel = Literal[1, 2, 3, 4]


class RestaurantOffer(BaseModel):
    restaurant_id: str
    name: str
    cuisine: str
    price_level: PriceLevel = Field(description="1 (cheap) to 4 (fine dining).")
    price_per_person: float = Field(ge=0, description="Typical spend per person, in USD.")
    currency: Literal["USD"] = "USD"
    rating: float = Field(ge=0, le=5)
    city: str
    country: str
    free_slots: list[str] = Field(description="Seating times (HH:MM, local) with a table free for the party.")


class RestaurantSearchResult(BaseModel):
    city: str
    country: str
    date: dt.date
    party_size: int
    restaurants: list[RestaurantOffer] = Field(description="Restaurants with a free table, best rated first.")


class Reservation(BaseModel):
    reservation_id: str
    status: Literal["confirmed", "cancelled"]
    restaurant: RestaurantOffer
    date: dt.date
    time: str
    party_size: int
    tables: int
    name: str
    estimated_total: float = Field(description="price_per_person times party_size, in USD.")
    currency: Literal["USD"] = "USD"
    booked_at: dt.datetime
