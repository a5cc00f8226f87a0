"""Where hotels come from: a small interface, and simulated hotels for every real city.

Each city's hotels are generated from a seed of its airport code, so every replica and every
run sees the same hotels at the same prices.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from waypoint_common import geography
from waypoint_common.errors import InputError
from waypoint_common.geography import Place
from waypoint_common.inventory import city_item, city_item_id, money, seeded_rng

STAR_BASE_PRICE = {2: 70.0, 3: 110.0, 4: 185.0, 5: 330.0}
GUESTS_PER_ROOM = 2
_ADJECTIVES = (
    "Grand",
    "Royal",
    "Alpine",
    "Harbor",
    "Garden",
    "Old Town",
    "Riverside",
    "Summit",
    "Lakeview",
    "Cedar",
    "Silver",
    "Northern",
    "Golden",
    "Plaza",
    "Boutique",
)
_NOUNS = ("Lodge", "Suites", "Hotel", "Inn", "House", "Residence", "Retreat", "Palace", "Rooms")
_AMENITIES = (
    "wifi",
    "breakfast",
    "parking",
    "gym",
    "spa",
    "pool",
    "restaurant",
    "bar",
    "airport shuttle",
    "laundry",
    "pet friendly",
    "mountain view",
)


class UnknownHotel(InputError):
    """The hotel id names no hotel."""


@dataclass(frozen=True, slots=True)
class HotelProfile:
    hotel_id: str
    name: str
    stars: int
    rating: float
    place: Place
    lat: float
    lon: float
    distance_km: float
    amenities: tuple[str, ...]
    base_price: float
    rooms: int

    def nightly_rate(self, night: dt.date) -> float:
        """Price of one room for one night: dearer at weekends and in the local summer."""
        weekend = 1.15 if night.weekday() in (4, 5) else 1.0
        doy = night.timetuple().tm_yday
        peak = 200 if self.place.lat >= 0 else 17
        season = 1 + 0.15 * math.cos(2 * math.pi * (doy - peak) / 365.25)
        return money(self.base_price * weekend * season)


class HotelProvider(Protocol):
    def hotels_in(self, place: Place) -> list[HotelProfile]: ...

    def hotel(self, hotel_id: str) -> HotelProfile: ...


class SimulatedHotels:
    """Eight to fourteen hotels per city, priced by stars and the country's price level."""

    def hotels_in(self, place: Place) -> list[HotelProfile]:
        return list(_city_hotels(place.code))

    def hotel(self, hotel_id: str) -> HotelProfile:
        found = city_item("HT", hotel_id, _city_hotels)
        if found is None:
            raise UnknownHotel(hotel_id)
        return found


@lru_cache(maxsize=4096)
def _city_hotels(code: str) -> tuple[HotelProfile, ...]:
    place = geography.airport(code)
    rng = seeded_rng("hotels", code)
    cost = geography.cost_index(place.country)
    hotels = []
    for i in range(rng.randint(8, 14)):
        stars = rng.choice((2, 3, 3, 3, 4, 4, 4, 5, 5))
        noun = rng.choice(_NOUNS)
        name = rng.choice(
            (
                f"{rng.choice(_ADJECTIVES)} {noun}",
                f"{place.city} {rng.choice(_ADJECTIVES)} {noun}",
                f"Hotel {rng.choice(_ADJECTIVES)}",
                f"The {rng.choice(_ADJECTIVES)} {noun} {place.city}",
            )
        )
        distance = round(rng.uniform(0.2, 3.0) if stars >= 4 else rng.uniform(0.3, 9.0), 1)
        bearing = rng.uniform(0, 2 * math.pi)
        dlat = distance / 111.0 * math.cos(bearing)
        dlon = distance / (111.0 * max(0.2, math.cos(math.radians(place.lat)))) * math.sin(bearing)
        amenities = tuple(sorted(rng.sample(_AMENITIES, k=min(len(_AMENITIES), 2 + stars))))
        hotels.append(
            HotelProfile(
                hotel_id=city_item_id("HT", code, i),
                name=name,
                stars=stars,
                rating=round(min(10.0, rng.uniform(6.0, 8.0) + 0.4 * (stars - 2)), 1),
                place=place,
                lat=round(place.lat + dlat, 5),
                lon=round(place.lon + dlon, 5),
                distance_km=distance,
                amenities=amenities,
                base_price=money(STAR_BASE_PRICE[stars] * cost * rng.uniform(0.8, 1.3)),
                rooms=rng.randint(4, 12),
            )
        )
    return tuple(hotels)


def rooms_for(guests: int) -> int:
    return math.ceil(guests / GUESTS_PER_ROOM)


def nights(check_in: dt.date, check_out: dt.date) -> list[dt.date]:
    return [check_in + dt.timedelta(days=i) for i in range((check_out - check_in).days)]
