"""Planner, chooser and summarizer: pure functions on hand-made search results."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from waypoint_common.results.flights import FlightOffer, FlightSlice
from waypoint_common.results.hotels import HotelLocation, HotelOffer
from waypoint_common.results.restaurants import PriceLevel, RestaurantOffer
from waypoint_common.results.weather import DailyForecast
from waypoint_orchestrator.chooser import NothingToChoose, choose
from waypoint_orchestrator.models import DiningWish, PlaceRef, ResolvedTrip
from waypoint_orchestrator.planner import booking_steps, plan, shape
from waypoint_orchestrator.summarizer import hike_days, summarize

START = dt.date.today() + dt.timedelta(days=120)
SEATTLE_TIME = dt.timezone(dt.timedelta(hours=-8))
PATAGONIA_TIME = dt.timezone(dt.timedelta(hours=-3))
SEA = PlaceRef(code="SEA", city="Seattle", country="US", lat=47.45, lon=-122.31, tz="America/Los_Angeles")
FTE = PlaceRef(
    code="FTE", city="El Calafate", country="AR", lat=-50.28, lon=-72.05, tz="America/Argentina/Rio_Gallegos"
)
DEN = PlaceRef(code="DEN", city="Denver", country="US", lat=39.86, lon=-104.67, tz="America/Denver")


def trip(**changes: Any) -> ResolvedTrip:
    base: dict[str, Any] = {
        "kind": "full_trip",
        "origin": SEA,
        "destination": FTE,
        "start_date": START,
        "end_date": START + dt.timedelta(days=3),
        "travelers": 2,
        "budget_usd": 3000.0,
        "interests": ["hiking"],
        "dining": DiningWish(style="fancy", count=1),
    }
    return ResolvedTrip(**{**base, **changes})


def at(day: int, hour: int, tz: dt.timezone) -> dt.datetime:
    """Local time on the trip's `day` (0 = the start)."""
    return dt.datetime.combine(START + dt.timedelta(days=day), dt.time(hour), tz)


def flight(
    offer_id: str, total: float, hours: int = 20, stops: int = 1, arrive: dt.datetime | None = None
) -> FlightOffer:
    out = FlightSlice(
        origin="SEA",
        origin_tz="America/Los_Angeles",
        destination="FTE",
        destination_tz="America/Argentina/Rio_Gallegos",
        flight_numbers=["PX1", "PX2"],
        via=["LAX"],
        stops=stops,
        departure_local=at(0, 8, SEATTLE_TIME),
        arrival_local=arrive or at(1, 11, PATAGONIA_TIME),
        duration_minutes=hours * 60,
    )
    back = out.model_copy(
        update={
            "origin": "FTE",
            "origin_tz": out.destination_tz,
            "destination": "SEA",
            "destination_tz": out.origin_tz,
            "departure_local": at(3, 16, PATAGONIA_TIME),
            "arrival_local": at(4, 6, SEATTLE_TIME),
        }
    )
    return FlightOffer(
        offer_id=offer_id,
        carrier="Polaris",
        carrier_code="PX",
        cabin="economy",
        slices=[out, back],
        price_per_passenger=total / 2,
        total_price=total,
        seats_left=9,
    )


def hotel(hotel_id: str, total: float, rating: float = 8.0, stars: int = 3) -> HotelOffer:
    return HotelOffer(
        hotel_id=hotel_id,
        name=hotel_id,
        stars=stars,
        rating=rating,
        location=HotelLocation(city="El Calafate", country="AR", airport="FTE", lat=-50.34, lon=-72.27),
        distance_from_centre_km=1.0,
        amenities=[],
        rooms=1,
        nights=2,
        nightly_price=total / 2,
        total_price=total,
        rooms_left=4,
    )


def restaurant(rid: str, per_person: float, level: PriceLevel, rating: float = 4.5) -> RestaurantOffer:
    return RestaurantOffer(
        restaurant_id=rid,
        name=rid,
        cuisine="Argentine",
        price_level=level,
        price_per_person=per_person,
        rating=rating,
        city="El Calafate",
        country="AR",
        free_slots=["19:00", "20:00"],
    )


def test_plan_runs_searches_in_parallel_then_choose_and_summarize() -> None:
    steps = plan(trip())
    assert [s.id for s in steps] == [
        "search_flights",
        "search_hotels",
        "get_forecast",
        "search_restaurants_1",
        "choose",
        "summarize",
    ]
    assert all(not s.depends_on for s in steps[:4])
    assert steps[4].depends_on == ["search_flights", "search_hotels", "get_forecast", "search_restaurants_1"]
    assert steps[5].depends_on == ["choose"]
    assert [s.id for s in plan(trip(kind="weather_only", origin=None))] == ["get_forecast", "summarize"]
    saga = booking_steps({"flight": 1, "hotel": 1, "dinners": 1})
    assert [(s.id, s.depends_on) for s in saga] == [
        ("book_flight", ["summarize"]),
        ("book_hotel", ["book_flight"]),
        ("reserve_table_1", ["book_hotel"]),
    ]


def test_shape_starts_the_hotel_after_an_overnight_flight() -> None:
    long_haul = shape(trip())
    assert long_haul.check_in == START + dt.timedelta(days=1)
    assert long_haul.check_out == START + dt.timedelta(days=3)
    assert long_haul.dinner_dates == (START + dt.timedelta(days=2),)
    domestic = shape(trip(origin=SEA, destination=DEN))
    assert domestic.check_in == START


def test_choose_the_best_combination_within_budget() -> None:
    flights = [flight("cheap-long", 1500, hours=40, stops=3), flight("good", 1700, hours=18, stops=1)]
    hotels = [
        hotel("basic", 300, rating=6.5, stars=2),
        hotel("lovely", 600, rating=9.1, stars=4),
        hotel("palace", 2000, rating=9.8, stars=5),
    ]
    dinners = [
        (
            START + dt.timedelta(days=2),
            [restaurant("bistro", 30, 2), restaurant("fine", 120, 4), restaurant("grand", 90, 3, rating=4.8)],
        )
    ]
    chosen = choose(trip(), flights, hotels, dinners)
    assert chosen.within_budget
    assert chosen.total <= 3000
    assert chosen.flight is not None
    assert chosen.flight.offer_id == "good"
    assert chosen.hotel is not None
    assert chosen.hotel.hotel_id == "lovely"
    assert [d.restaurant.restaurant_id for d in chosen.dinners] == ["grand"]  # fancy, best rated
    assert chosen.dinners[0].estimated_cost_usd == 180
    assert chosen.total == 1700 + 600 + 180


def test_over_budget_gives_the_cheapest_complete_option_and_the_shortfall() -> None:
    flights = [flight("a", 1500), flight("b", 1400)]
    hotels = [hotel("h1", 300), hotel("h2", 250)]
    dinners = [(START + dt.timedelta(days=2), [restaurant("fine", 120, 4), restaurant("grand", 90, 3)])]
    chosen = choose(trip(budget_usd=200.0), flights, hotels, dinners)
    assert not chosen.within_budget
    assert chosen.flight is not None
    assert chosen.flight.offer_id == "b"
    assert chosen.hotel is not None
    assert chosen.hotel.hotel_id == "h2"
    assert chosen.dinners[0].restaurant.restaurant_id == "grand"
    assert chosen.total == 1400 + 250 + 180
    assert chosen.shortfall == chosen.total - 200


def test_nothing_to_choose_without_flights_or_hotels() -> None:
    with pytest.raises(NothingToChoose, match="flights"):
        choose(trip(), [], [hotel("h", 100)], [])
    with pytest.raises(NothingToChoose, match="hotels"):
        choose(trip(), [flight("f", 100)], [], [])


def test_a_dinner_that_does_not_fit_is_left_out_with_a_warning() -> None:
    chosen = choose(
        trip(budget_usd=2000.0),
        [flight("f", 1500)],
        [hotel("h", 400)],
        [(START + dt.timedelta(days=2), [restaurant("fine", 150, 4)])],
    )
    assert chosen.within_budget
    assert chosen.dinners == []
    assert chosen.warnings == ["1 of 1 dinner(s) not planned: not within the budget"]


def test_hikes_go_on_the_best_weather_days() -> None:
    t = trip(end_date=START + dt.timedelta(days=6))
    scores = [0.9, 0.3, 0.8, 0.2, 0.95, 0.6, 0.99]
    forecast = [
        DailyForecast(
            date=START + dt.timedelta(days=i),
            condition="sunny",
            high_c=12,
            low_c=3,
            precipitation_probability=0.1,
            precipitation_mm=0,
            wind_kph=10,
            outdoor_suitability=s,
        )
        for i, s in enumerate(scores)
    ]
    f = flight("f", 1000)
    f.slices[1].departure_local = at(6, 16, PATAGONIA_TIME)
    days = hike_days(t, shape(t), f, forecast)
    # Arrival on day 2 at 11:00, departure on day 7: candidates are days 2-6; the best half are hiked.
    assert days == [START + dt.timedelta(days=2), START + dt.timedelta(days=4), START + dt.timedelta(days=5)]
    selection = choose(t, [f], [hotel("h", 300)], [])
    itinerary = summarize(t, shape(t), selection, forecast, [])
    assert [d.date for d in itinerary.days if d.hike] == days
    assert itinerary.days[0].title == "Travel day"
    assert itinerary.budget.total_usd == 1300
    assert itinerary.budget.remaining_usd == 1700
