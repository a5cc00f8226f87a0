"""The summarizer: a day-by-day itinerary with every price and the total against the budget.

Deterministic: travel days from the chosen flight, hikes on the days with the best outdoor
score (when hiking is an interest), each dinner on its evening, and the forecast for every day.
"""

from __future__ import annotations

import datetime as dt
import math

from waypoint_common.results.flights import FlightOffer, FlightSlice
from waypoint_common.results.weather import DailyForecast
from waypoint_orchestrator.chooser import Selection
from waypoint_orchestrator.models import BudgetUse, CostLine, Itinerary, ItineraryDay, ResolvedTrip
from waypoint_orchestrator.planner import TripShape

LATE_ARRIVAL_HOUR = 14


def _flight_line(piece: FlightSlice) -> str:
    dep, arr = piece.departure_local, piece.arrival_local
    via = f" via {', '.join(piece.via)}" if piece.via else " nonstop"
    return (
        f"Fly {piece.origin} → {piece.destination}{via} ({', '.join(piece.flight_numbers)}): "
        f"departs {dep:%H:%M}, arrives {arr:%a %d %b %H:%M} local"
    )


def _weather_line(day: DailyForecast) -> str:
    condition = day.condition.replace("_", " ")
    return (
        f"{condition}, {day.low_c:.0f} to {day.high_c:.0f} °C, "
        f"{round(100 * day.precipitation_probability)}% chance of rain"
    )


def hike_days(
    trip: ResolvedTrip, shape: TripShape, flight: FlightOffer | None, forecast: list[DailyForecast]
) -> list[dt.date]:
    """The best-weather days at the destination: about half the free days, at least one."""
    if "hiking" not in trip.interests or not forecast:
        return []
    first = shape.check_in
    if flight is not None:
        arrival = flight.slices[0].arrival_local
        first = arrival.date() if arrival.hour < LATE_ARRIVAL_HOUR else arrival.date() + dt.timedelta(days=1)
    last = (
        trip.end_date - dt.timedelta(days=1)
        if flight is not None and len(flight.slices) > 1
        else trip.end_date
    )
    by_date = {d.date: d.outdoor_suitability for d in forecast}
    candidates = [d for d in sorted(by_date) if first <= d <= last]
    if not candidates:
        return []
    count = max(1, math.ceil(len(candidates) / 2))
    ranked = sorted(candidates, key=lambda d: (-by_date[d], d))
    return sorted(ranked[:count])


def budget_use(trip: ResolvedTrip, selection: Selection) -> BudgetUse:
    lines: list[CostLine] = []
    if selection.flight is not None:
        lines.append(CostLine(item=f"Flights for {trip.travelers}", amount_usd=selection.flight.total_price))
    if selection.hotel is not None:
        hotel = selection.hotel
        lines.append(CostLine(item=f"{hotel.name}, {hotel.nights} night(s)", amount_usd=hotel.total_price))
    for dinner in selection.dinners:
        lines.append(
            CostLine(
                item=f"Dinner at {dinner.restaurant.name} (estimate)", amount_usd=dinner.estimated_cost_usd
            )
        )
    total = round(sum(line.amount_usd for line in lines), 2)
    budget = trip.budget_usd
    return BudgetUse(
        budget_usd=budget,
        total_usd=total,
        remaining_usd=None if budget is None else round(max(0.0, budget - total), 2),
        shortfall_usd=None if budget is None else round(max(0.0, total - budget), 2),
        within_budget=None if budget is None else total <= budget,
        lines=lines,
    )


def summarize(
    trip: ResolvedTrip,
    shape: TripShape,
    selection: Selection,
    forecast: list[DailyForecast] | None,
    warnings: list[str],
) -> Itinerary:
    forecast = forecast or []
    weather = {d.date: d for d in forecast}
    hikes = set(hike_days(trip, shape, selection.flight, forecast))
    dinners = {d.date: d for d in selection.dinners}
    slices = selection.flight.slices if selection.flight else []
    days: list[ItineraryDay] = []
    for number in range(trip.days):
        date = trip.start_date + dt.timedelta(days=number)
        activities: list[str] = []
        title = f"Day {number + 1} in {trip.destination.city}"
        for piece in slices:
            if piece.departure_local.date() == date:
                activities.append(_flight_line(piece))
                title = "Travel day"
            if piece.arrival_local.date() == date and piece.destination == trip.destination.code:
                title = f"Arrive in {trip.destination.city}"
        if selection.hotel is not None:
            if date == shape.check_in:
                activities.append(f"Check in at {selection.hotel.name} ({selection.hotel.stars}★)")
            if date == shape.check_out:
                activities.append(f"Check out of {selection.hotel.name}")
        if date in hikes:
            activities.append("Hike: the best weather of the stay")
            title = f"Hiking near {trip.destination.city}"
        if date in dinners:
            d = dinners[date]
            r = d.restaurant
            activities.append(
                f"Dinner at {r.name} ({r.cuisine}, {'$' * r.price_level}) at {d.time}, "
                f"about ${d.estimated_cost_usd:,.0f}"
            )
        if not activities:
            activities.append(f"Explore {trip.destination.city}")
        day_weather = weather.get(date)
        days.append(
            ItineraryDay(
                date=date,
                day=number + 1,
                title=title,
                activities=activities,
                weather=_weather_line(day_weather) if day_weather else None,
                outdoor_suitability=day_weather.outdoor_suitability if day_weather else None,
                hike=date in hikes,
                dinner=date in dinners,
            )
        )
    use = budget_use(trip, selection)
    budget_text = ""
    if use.budget_usd is not None:
        verdict = "within" if use.within_budget else f"${use.shortfall_usd:,.0f} over"
        budget_text = f", ${use.total_usd:,.0f} of a ${use.budget_usd:,.0f} budget ({verdict})"
    summary = (
        f"{trip.days}-day trip to {trip.destination.city} for {trip.travelers} "
        f"from {trip.start_date:%d %b} to {trip.end_date:%d %b %Y}{budget_text}"
    )
    if warnings:
        summary += f"; {len(warnings)} warning(s)"
    return Itinerary(
        summary=summary,
        days=days,
        flight=selection.flight,
        hotel=selection.hotel,
        dinners=selection.dinners,
        forecast=forecast,
        budget=use,
        narrative=summary,
    )
