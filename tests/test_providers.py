"""The simulated providers give valid answers for any real airport and any date in range."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from waypoint_common import geography
from waypoint_flights.provider import SimulatedFlights
from waypoint_hotels.provider import SimulatedHotels, nights
from waypoint_restaurants.provider import SimulatedRestaurants
from waypoint_weather.provider import SimulatedWeather

TODAY = dt.datetime.now(dt.UTC).date()
SAMPLE = random.Random(20261125).sample(sorted(geography._airports()), 150)


@pytest.mark.parametrize("code", SAMPLE[:60])
def test_weather_is_valid_everywhere_all_year(code: str) -> None:
    place = geography.airport(code)
    weather = SimulatedWeather()
    for offset in range(0, 365, 7):
        entry = weather.daily(place, TODAY + dt.timedelta(days=offset))
        assert entry.low_c < entry.high_c
        assert entry.precipitation_mm >= 0
        assert 0 <= entry.outdoor_suitability <= 1


@pytest.mark.parametrize(("origin", "destination"), list(zip(SAMPLE[:50], SAMPLE[50:100], strict=True)))
def test_flight_offers_are_consistent(origin: str, destination: str) -> None:
    flights = SimulatedFlights()
    a, b = geography.airport(origin), geography.airport(destination)
    depart, back = TODAY + dt.timedelta(days=30), TODAY + dt.timedelta(days=37)
    for quote in flights.search(a, b, depart, back, "economy"):
        assert flights.quote(quote.offer_id) == quote
        outbound, inbound = quote.slices
        assert outbound.arrival_local > outbound.departure_local
        assert (
            outbound.arrival_local - outbound.departure_local
        ).total_seconds() / 60 == outbound.duration_minutes
        assert outbound.departure_local.date() == depart
        assert inbound.departure_local.date() == back
        assert len(outbound.flight_numbers) == outbound.stops + 1
        assert quote.base_fare > 0


@pytest.mark.parametrize("code", SAMPLE[100:150])
def test_hotels_and_restaurants_exist_for_every_city(code: str) -> None:
    place = geography.airport(code)
    hotels = SimulatedHotels().hotels_in(place)
    assert 8 <= len(hotels) <= 14
    for hotel in hotels:
        assert SimulatedHotels().hotel(hotel.hotel_id) == hotel
        stay = nights(TODAY + dt.timedelta(days=10), TODAY + dt.timedelta(days=13))
        assert all(hotel.nightly_rate(n) > 0 for n in stay)
    restaurants = SimulatedRestaurants().restaurants_in(place)
    assert 12 <= len(restaurants) <= 18
    assert all(SimulatedRestaurants().restaurant(r.restaurant_id) == r for r in restaurants)
