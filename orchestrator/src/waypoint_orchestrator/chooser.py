"""Choosing: the combination of flight, hotel and dinners that best fits the request.

Every flight and hotel pair is scored (hotel rating and stars, flight time and stops, and what
is left of the budget); dinners are the best-rated restaurants that match the wish and still fit.
When nothing fits the budget, the choice is the cheapest complete option and its shortfall.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

from waypoint_common.errors import FinalError
from waypoint_orchestrator.models import ResolvedTrip

PREFERRED_SLOTS = ("19:30", "20:00", "19:00", "20:30", "18:30", "21:00", "18:00", "21:30", "17:30", "22:00")


class NothingToChoose(FinalError):
    """An essential search came back empty."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


@dataclass
class Dinner:
    date: dt.date
    time: str
    restaurant: dict[str, Any]
    cost: float


@dataclass
class Selection:
    flight: dict[str, Any] | None = None
    hotel: dict[str, Any] | None = None
    dinners: list[Dinner] = field(default_factory=list)
    total: float = 0.0
    within_budget: bool = True
    shortfall: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _flight_hours(offer: dict[str, Any]) -> float:
    return sum(float(s["duration_minutes"]) for s in offer["slices"]) / 60


def _stops(offer: dict[str, Any]) -> int:
    return sum(int(s["stops"]) for s in offer["slices"])


def _score(
    flight: dict[str, Any] | None, hotel: dict[str, Any] | None, total: float, budget: float | None
) -> float:
    score = 0.0
    if hotel is not None:
        score += 2.0 * float(hotel["rating"]) + 1.5 * int(hotel["stars"])
    if flight is not None:
        score -= 0.15 * _flight_hours(flight) + 1.0 * _stops(flight)
    if budget:
        score -= 6.0 * total / budget
    return score


def _slot(restaurant: dict[str, Any]) -> str | None:
    free = set(restaurant["free_slots"])
    return next((t for t in PREFERRED_SLOTS if t in free), None)


def _dinner_cost(restaurant: dict[str, Any], travelers: int) -> float:
    return round(float(restaurant["price_per_person"]) * travelers, 2)


def _pick_dinners(
    options: list[tuple[dt.date, list[dict[str, Any]]]],
    travelers: int,
    money_left: float | None,
    cheapest: bool,
) -> list[Dinner]:
    """One dinner per evening: the best rated that fits what is left (or the cheapest)."""
    chosen: list[Dinner] = []
    taken: set[str] = set()
    left = money_left
    for date, restaurants in options:
        candidates = [r for r in restaurants if _slot(r) and r["restaurant_id"] not in taken]
        if cheapest:
            candidates.sort(key=lambda r: (float(r["price_per_person"]), r["restaurant_id"]))
        else:
            candidates.sort(
                key=lambda r: (-float(r["rating"]), float(r["price_per_person"]), r["restaurant_id"])
            )
        for r in candidates:
            cost = _dinner_cost(r, travelers)
            if cheapest or left is None or cost <= left:
                slot = _slot(r)
                assert slot is not None
                chosen.append(Dinner(date, slot, r, cost))
                taken.add(r["restaurant_id"])
                if left is not None:
                    left -= cost
                break
    return chosen


def choose(
    trip: ResolvedTrip,
    flights: list[dict[str, Any]] | None,
    hotels: list[dict[str, Any]] | None,
    dinners: list[tuple[dt.date, list[dict[str, Any]]]],
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
    flight_options: list[dict[str, Any] | None] = list(flights) if flights is not None else [None]
    hotel_options: list[dict[str, Any] | None] = list(hotels) if hotels is not None else [None]

    best: tuple[float, Selection] | None = None
    for flight, hotel in itertools.product(flight_options, hotel_options):
        base = (float(flight["total_price"]) if flight else 0.0) + (
            float(hotel["total_price"]) if hotel else 0.0
        )
        if budget is not None and base > budget:
            continue
        chosen = _pick_dinners(
            dinners, trip.travelers, None if budget is None else budget - base, cheapest=False
        )
        total = round(base + sum(d.cost for d in chosen), 2)
        score = _score(flight, hotel, total, budget) + 3.0 * len(chosen)
        key = (flight["offer_id"] if flight else "", hotel["hotel_id"] if hotel else "")
        if best is None or score > best[0] or (score == best[0] and key < _key(best[1])):
            best = (score, Selection(flight, hotel, chosen, total))
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
    flight = min(flights, key=lambda f: float(f["total_price"])) if flights else None
    hotel = min(hotels, key=lambda h: float(h["total_price"])) if hotels else None
    chosen = _pick_dinners(dinners, trip.travelers, None, cheapest=True)
    total = round(
        (float(flight["total_price"]) if flight else 0.0)
        + (float(hotel["total_price"]) if hotel else 0.0)
        + sum(d.cost for d in chosen),
        2,
    )
    assert budget is not None
    return Selection(flight, hotel, chosen, total, within_budget=False, shortfall=round(total - budget, 2))


def _key(selection: Selection) -> tuple[str, str]:
    return (
        selection.flight["offer_id"] if selection.flight else "",
        selection.hotel["hotel_id"] if selection.hotel else "",
    )
