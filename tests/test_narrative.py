"""The narrative check: a price, a date or a place the itinerary does not hold rejects it."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.test_planning import START, flight, hotel, restaurant, trip
from waypoint_orchestrator.chooser import choose
from waypoint_orchestrator.llm.narrative import unsupported_claims
from waypoint_orchestrator.models import Itinerary
from waypoint_orchestrator.planner import shape
from waypoint_orchestrator.summarizer import summarize


def itinerary() -> Itinerary:
    t = trip()
    dinners = [(START + dt.timedelta(days=2), [restaurant("grand", 90, 3, rating=4.8)])]
    selection = choose(t, [flight("good", 1700)], [hotel("lovely", 600)], dinners)
    return summarize(t, shape(t), selection, [], [])


def test_a_narrative_of_the_itinerarys_facts_passes() -> None:
    plan = itinerary()
    arrival = START + dt.timedelta(days=1)
    text = (
        f"You fly from Seattle via Los Angeles (LAX) to El Calafate, landing on {arrival:%B} {arrival.day}. "
        f"The flights cost $1,700, the hotel ${plan.hotel.total_price if plan.hotel else 0:,.0f}, and dinner "
        f"at grand about $180: ${plan.budget.total_usd:,.0f} in all, {START.isoformat()} to "
        f"{plan.days[-1].date.day} {plan.days[-1].date:%B}."
    )
    assert unsupported_claims(text, plan) == []
    assert unsupported_claims(plan.summary, plan) == []


@pytest.mark.parametrize(
    ("addition", "claim"),
    [
        ("Dinner is only $12.", "price $12"),
        ("It costs 2,000 dollars less than you think.", "price 2,000 dollars"),
        ("Then a day trip to Buenos Aires.", "place Buenos Aires"),
        ("Fly home through EZE.", "place EZE"),
    ],
)
def test_an_invented_price_or_place_is_named(addition: str, claim: str) -> None:
    plan = itinerary()
    assert claim in unsupported_claims(f"{plan.summary}. {addition}", plan)


def test_an_invented_date_is_named() -> None:
    plan = itinerary()
    later = START + dt.timedelta(days=20)
    assert unsupported_claims(f"Back on {later:%B} {later.day}.", plan) == [f"date {later:%B} {later.day}"]
    assert unsupported_claims(f"Back on {later.isoformat()}.", plan) == [f"date {later.isoformat()}"]
