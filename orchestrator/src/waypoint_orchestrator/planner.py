"""The planner: turns a resolved request into a small DAG of steps.

Searches do not depend on each other and run in parallel; choosing depends on every search,
summarizing on the choice, and the bookings (a saga) run one after another at the end.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from waypoint_common import geography
from waypoint_orchestrator.models import ResolvedTrip, StepRecord

# Beyond this distance the outbound flight is overnight: the first hotel night is the next one.
OVERNIGHT_FLIGHT_KM = 7000


@dataclass(frozen=True, slots=True)
class TripShape:
    """The dates a plan is built on: hotel nights and dinner evenings."""

    check_in: dt.date
    check_out: dt.date
    dinner_dates: tuple[dt.date, ...]


def shape(trip: ResolvedTrip) -> TripShape:
    check_in, check_out = trip.start_date, trip.end_date
    if trip.origin is not None and trip.kind == "full_trip":
        distance = geography.great_circle_km(
            geography.airport(trip.origin.code), geography.airport(trip.destination.code)
        )
        if distance > OVERNIGHT_FLIGHT_KM and (check_out - check_in).days > 1:
            check_in += dt.timedelta(days=1)
    if check_out <= check_in:
        check_out = check_in + dt.timedelta(days=1)
    count = trip.dinner_count
    evenings = [check_in + dt.timedelta(days=i) for i in range((check_out - check_in).days)] or [
        trip.start_date
    ]
    # Spread the dinners over the stay, starting in its middle (not the tiring arrival evening).
    middle = len(evenings) // 2
    order = sorted(range(len(evenings)), key=lambda i: (abs(i - middle), i))
    return TripShape(check_in, check_out, tuple(sorted(evenings[i] for i in order[:count])))


def plan(trip: ResolvedTrip) -> list[StepRecord]:
    """The steps for this kind of request (booking steps are added when booking starts)."""
    searches: list[StepRecord] = []
    if trip.kind in ("full_trip", "flights_only"):
        searches.append(StepRecord(id="search_flights", agent="flights", action="search_flights"))
    if trip.kind in ("full_trip", "hotels_only"):
        searches.append(StepRecord(id="search_hotels", agent="hotels", action="search_hotels"))
    if trip.kind in ("full_trip", "weather_only"):
        searches.append(StepRecord(id="get_forecast", agent="weather", action="get_forecast"))
    if trip.kind in ("full_trip", "dining_only"):
        for i, _ in enumerate(shape(trip).dinner_dates):
            searches.append(
                StepRecord(id=f"search_restaurants_{i + 1}", agent="dining", action="search_restaurants")
            )
    ids = [s.id for s in searches]
    steps = [*searches]
    if trip.kind != "weather_only":
        steps.append(StepRecord(id="choose", agent="planner", action="choose", depends_on=ids))
        ids = ["choose"]
    steps.append(StepRecord(id="summarize", agent="summarizer", action="summarize", depends_on=ids))
    return steps


def booking_steps(selection_has: dict[str, int]) -> list[StepRecord]:
    """The saga's steps, in order: flight, hotel, then each dinner."""
    steps: list[StepRecord] = []
    previous = ["summarize"]
    if selection_has.get("flight"):
        steps.append(StepRecord(id="book_flight", agent="flights", action="book_flight", depends_on=previous))
        previous = ["book_flight"]
    if selection_has.get("hotel"):
        steps.append(StepRecord(id="book_hotel", agent="hotels", action="book_hotel", depends_on=previous))
        previous = ["book_hotel"]
    for i in range(selection_has.get("dinners", 0)):
        step_id = f"reserve_table_{i + 1}"
        steps.append(StepRecord(id=step_id, agent="dining", action="reserve_table", depends_on=previous))
        previous = [step_id]
    return steps
