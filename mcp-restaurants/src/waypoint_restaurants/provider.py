"""Where restaurants come from: a small interface, and simulated restaurants for every real city."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from waypoint_common import geography
from waypoint_common.errors import InputError
from waypoint_common.geography import Place
from waypoint_common.inventory import city_item, city_item_id, money, seeded_rng
from waypoint_common.results.restaurants import PriceLevel

SEATING_TIMES = ("17:30", "18:00", "18:30", "19:00", "19:30", "20:00", "20:30", "21:00", "21:30", "22:00")
SEATS_PER_TABLE = 4
PRICE_LEVELS: tuple[PriceLevel, ...] = (1, 2, 2, 2, 3, 3, 4)
PRICE_PER_PERSON = {1: 18.0, 2: 35.0, 3: 70.0, 4: 140.0}
LOCAL_CUISINE = {
    "AR": "Argentine",
    "CL": "Chilean",
    "PE": "Peruvian",
    "MX": "Mexican",
    "IT": "Italian",
    "FR": "French",
    "ES": "Spanish",
    "JP": "Japanese",
    "TH": "Thai",
    "IN": "Indian",
    "CN": "Chinese",
    "GR": "Greek",
    "US": "American",
    "GB": "British",
    "DE": "German",
    "PT": "Portuguese",
    "BR": "Brazilian",
    "KR": "Korean",
    "VN": "Vietnamese",
    "TR": "Turkish",
    "MA": "Moroccan",
    "IS": "Nordic",
    "NO": "Nordic",
    "SE": "Nordic",
}
CUISINES = (
    "Italian",
    "French",
    "Japanese",
    "Seafood",
    "Steakhouse",
    "Vegetarian",
    "Mediterranean",
    "Thai",
    "Indian",
    "Mexican",
    "Fusion",
    "Bistro",
)
_FIRST = ("La", "El", "Casa", "The", "Chez", "Little", "Blue", "Old", "Wild", "Salt &", "Fig &", "Copper")
_SECOND = (
    "Olive",
    "Fogón",
    "Harbor",
    "Pepper",
    "Ember",
    "Garden",
    "Table",
    "Vine",
    "Lantern",
    "Anchor",
    "Larder",
    "Orchard",
    "Hearth",
    "Market",
)


class UnknownRestaurant(InputError):
    """The restaurant id names no restaurant."""


@dataclass(frozen=True, slots=True)
class RestaurantProfile:
    restaurant_id: str
    name: str
    cuisine: str
    price_level: PriceLevel
    price_per_person: float
    rating: float
    place: Place
    tables: int


class RestaurantProvider(Protocol):
    def restaurants_in(self, place: Place) -> list[RestaurantProfile]: ...

    def restaurant(self, restaurant_id: str) -> RestaurantProfile: ...


class SimulatedRestaurants:
    """Twelve to eighteen restaurants per city, a third of them serving the local cuisine."""

    def restaurants_in(self, place: Place) -> list[RestaurantProfile]:
        return list(_city_restaurants(place.code))

    def restaurant(self, restaurant_id: str) -> RestaurantProfile:
        found = city_item("RS", restaurant_id, _city_restaurants)
        if found is None:
            raise UnknownRestaurant(restaurant_id)
        return found


@lru_cache(maxsize=4096)
def _city_restaurants(code: str) -> tuple[RestaurantProfile, ...]:
    place = geography.airport(code)
    rng = seeded_rng("restaurants", code)
    cost = geography.cost_index(place.country)
    local = LOCAL_CUISINE.get(place.country)
    found = []
    for i in range(rng.randint(12, 18)):
        cuisine = local if local and rng.random() < 0.35 else rng.choice(CUISINES)
        level = rng.choice(PRICE_LEVELS)
        found.append(
            RestaurantProfile(
                restaurant_id=city_item_id("RS", code, i),
                name=f"{rng.choice(_FIRST)} {rng.choice(_SECOND)}",
                cuisine=cuisine,
                price_level=level,
                price_per_person=money(PRICE_PER_PERSON[level] * cost * rng.uniform(0.85, 1.2)),
                rating=round(min(5.0, rng.uniform(3.4, 4.4) + 0.15 * (level - 1)), 1),
                place=place,
                tables=rng.randint(2, 4),
            )
        )
    return tuple(found)


def tables_for(party_size: int) -> int:
    return math.ceil(party_size / SEATS_PER_TABLE)
