"""Choosing: the combination of flight, hotel and dinners that best fits the request.

Every flight and hotel pair is scored (hotel rating and stars, flight time and stops, and what
is left of the budget); dinners are the best-rated restaurants that match the wish and still fit.
When nothing fits the budget, the choice is the cheapest complete option and its shortfall.
"""

from __future__ import annotations

import datetime as dt
import itertools

from pydantic import BaseModel, Field

from waypoint_common.errors import FinalError
from waypoint_common.results.flights import FlightOffer
from waypoint_common.results.hotels import HotelOffer
from waypoint_common.results.restaurants import RestaurantOffer
from waypoint_orchestrator.models import PlannedDinner, ResolvedTrip

PREFERRED_SLOTS = ("19:30", "20:00", "19:00", "20:30", "18:30", "21:00", "18:00", "21:30", "17:30", "22:00")


class NothingToChoose(FinalError):
    """An essential search came back empty."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


class Selection(BaseModel):
    """The chosen flight, hotel and dinners, their total, and how it stands against the budget.

    It is the `choose` step's checkpoint, so it is a model: a resumed trip reads it back typed.
    """

    flight: FlightOffer | None = None
    hotel: HotelOffer | None = None
    dinners: list[PlannedDinner] = Field(default_factory=list)
    total: float = 0.0
    within_budget: bool = True
    shortfall: float = 0.0
    warnings: list[str] = Field(default_factory=list)


def _flight_hours(offer: FlightOffer) -> float:
    return sum(s.duration_minutes for s in offer.slices) / 60


def _stops(offer: FlightOffer) -> int:
    return sum(s.stops for s in offer.slices)


def _score(flight: FlightOffer | None, hotel: HotelOffer | None, total: float, budget: float | None) -> float:
    score = 0.0
    if hotel is not None:
        score += 2.0 * hotel.rating + 1.5 * hotel.stars
    if flight is not None:
        score -= 0.15 * _flight_hours(flight) + 1.0 * _stops(flight)
    if budget:
        score -= 6.0 * total / budget
    return score


def _slot(restaurant: RestaurantOffer) -> str | None:
    free = set(restaurant.free_slots)
    return next((t for t in PREFERRED_SLOTS if t in free), None)


def _dinner_cost(restaurant: RestaurantOffer, travelers: int) -> float:
    return round(restaurant.price_per_person * travelers, 2)


def _pick_dinners(
    options: list[tuple[dt.date, list[RestaurantOffer]]],
    travelers: int,
    money_left: float | None,
    cheapest: bool,
) -> list[PlannedDinner]:
    """One dinner per evening: the best rated that fits what is left (or the cheapest)."""
    chosen: list[PlannedDinner] = []
    taken: set[str] = set()
    left = money_left
    for date, restaurants in options:
        candidates = [r for r in restaurants if _slot(r) and r.restaurant_id not in taken]
        if cheapest:
            candidates.sort(key=lambda r: (r.price_per_person, r.restaurant_id))
        else:
            candidates.sort(key=lambda r: (-r.rating, r.price_per_person, r.restaurant_id))
        for r in candidates:
            cost = _dinner_cost(r, travelers)
            if cheapest or left is None or cost <= left:
                slot = _slot(r)
                assert slot is not None
                chosen.append(PlannedDinner(date=date, time=slot, estimated_cost_usd=cost, restaurant=r))
                taken.add(r.restaurant_id)
                if left is not None:
                    left -= cost
                break
    return chosen


def choose(
    trip: ResolvedTrip,
    flights: list[FlightOffer] | None,
    hotels: list[HotelOffer] | None,
    dinners: list[tuple[dt.date, list[RestaurantOffer]]],
) -> Selection:
    """Pick the best combination within the budget, or the cheapest one and its shortfall.

    `flights` or `hotels` is None when the request needs none; an empty list means none is
    available, which ends the choice (`NothingToChoose`).
    """
    if flights is not None and not flights:
        raise NothingToChoose("flights", "no flight with enough seats on these dates")
    if hotels is not None and not hotels:
        raise NothingToChoose("hotels", "no hotel with rooms for every night")
    budget = trip.budget_usd
    warnings: list[str] = []
    flight_options: list[FlightOffer | None] = list(flights) if flights is not None else [None]
    hotel_options: list[HotelOffer | None] = list(hotels) if hotels is not None else [None]

    best: tuple[float, Selection] | None = None
    for flight, hotel in itertools.product(flight_options, hotel_options):
        base = (flight.total_price if flight else 0.0) + (hotel.total_price if hotel else 0.0)
        if budget is not None and base > budget:
            continue
        chosen = _pick_dinners(
            dinners, trip.travelers, None if budget is None else budget - base, cheapest=False
        )
        total = round(base + sum(d.estimated_cost_usd for d in chosen), 2)
        score = _score(flight, hotel, total, budget) + 3.0 * len(chosen)
        key = (flight.offer_id if flight else "", hotel.hotel_id if hotel else "")
        if best is None or score > best[0] or (score == best[0] and key < _key(best[1])):
            best = (score, Selection(flight=flight, hotel=hotel, dinners=chosen, total=total))
    wanted = trip.dinner_count
    if best is not None:
        selection = best[1]
        if wanted and len(selection.dinners) < wanted:
            missing = wanted - len(selection.dinners)
            available = sum(1 for _, rs in dinners if rs)
            why = (
                "no matching restaurant with a free table" if available < wanted else "not within the budget"
            )
            warnings.append(f"{missing} of {wanted} dinner(s) not planned: {why}")
        selection.warnings = warnings
        return selection

    # Nothing fits: the cheapest complete option, and by how much it misses.
    flight = min(flights, key=lambda f: f.total_price) if flights else None
    hotel = min(hotels, key=lambda h: h.total_price) if hotels else None
    chosen = _pick_dinners(dinners, trip.travelers, None, cheapest=True)
    total = round(
        (flight.total_price if flight else 0.0)
        + (hotel.total_price if hotel else 0.0)
        + sum(d.estimated_cost_usd for d in chosen),
        2,
    )
    assert budget is not None
    return Selection(
        flight=flight,
        hotel=hotel,
        dinners=chosen,
        total=total,
        within_budget=False,
        shortfall=round(total - budget, 2),
    )


def _key(selection: Selection) -> tuple[str, str]:
    return (
        selection.flight.offer_id if selection.flight else "",
        selection.hotel.hotel_id if selection.hotel else "",
    )
