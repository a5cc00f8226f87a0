"""The validation gate: does a routed request have what its kind of plan needs?

Every problem found is reported, each on the field it concerns, so that the traveller can fix
them all at once; nothing is planned or booked for a request with problems.

Problem fields: `origin`, `destination`, `start_date`, `end_date`, `days`, `travelers`,
`budget`, `budget.currency`, and `query` for an unsupported request or one whose text could not
be read in time. Reasons for missing fields start with "missing:".

The gate never raises on what a request can carry: any date from 0001-01-01 to 9999-12-31, an
end before the start, a length that would run past the end of the calendar. Date arithmetic
goes through `_plus_days`, which answers None instead of overflowing; a date beyond the horizon
is a problem on the field at fault, so the trip ends `needs_input`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from waypoint_common import geography
from waypoint_orchestrator.models import (
    Budget,
    GateResult,
    PlaceRef,
    Problem,
    ResolvedTrip,
    RouterDecision,
    TripFields,
    TripKind,
    TripRequest,
)
from waypoint_orchestrator.router import QUERY_NOT_READ, QueryNotRead

__all__ = ["RATES_TO_USD", "check"]

# Indicative rates, USD per unit: enough to hold a budget against prices quoted in USD.
RATES_TO_USD: dict[str, float] = {
    "USD": 1.0,
    "EUR": 1.08,
    "GBP": 1.27,
    "CHF": 1.13,
    "CAD": 0.73,
    "AUD": 0.66,
    "JPY": 0.0067,
    "NZD": 0.60,
    "SEK": 0.095,
    "NOK": 0.093,
    "DKK": 0.145,
    "MXN": 0.058,
    "BRL": 0.2,
    "ARS": 0.0011,
    "CLP": 0.00105,
    "INR": 0.012,
}
MAX_TRAVELERS = 9  # the tool servers' party size limit
MAX_TRIP_DAYS = 30  # a forecast and a hotel stay both stop at 30 days
MAX_DAYS_AHEAD = 365  # the tool servers refuse dates further ahead
DEFAULT_TRAVELER_NAME = "Waypoint Traveller"


@dataclass(frozen=True, slots=True)
class Needs:
    """What a kind of plan cannot do without."""

    origin: bool
    last_day: bool  # an end date or a length; otherwise a single day (one-way flight, one dinner)
    travelers: bool
    budget: bool


NEEDS: dict[TripKind, Needs] = {
    "full_trip": Needs(origin=True, last_day=True, travelers=True, budget=True),
    "flights_only": Needs(origin=True, last_day=False, travelers=True, budget=False),
    "hotels_only": Needs(origin=False, last_day=False, travelers=True, budget=False),
    "weather_only": Needs(origin=False, last_day=False, travelers=False, budget=False),
    "dining_only": Needs(origin=False, last_day=False, travelers=True, budget=False),
}


@dataclass
class _Findings:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def problem(self, name: str, reason: str) -> None:
        self.problems.append(Problem(field=name, reason=reason))


def check(decision: RouterDecision, request: TripRequest, today: dt.date) -> GateResult:
    """Check a routed request against what its kind needs; resolve it when nothing is wrong."""
    if decision.kind == "unsupported":
        return GateResult(problems=[Problem(field="query", reason=decision.reason)])
    if isinstance(decision, QueryNotRead):
        return GateResult(problems=[Problem(field="query", reason=QUERY_NOT_READ)])
    kind, fields, needs = decision.kind, decision.fields, NEEDS[decision.kind]
    found = _Findings()
    origin = _place(found, "origin", fields.origin, required=needs.origin)
    destination = _place(found, "destination", fields.destination, required=True)
    if origin is not None and destination is not None and _same_place(origin, destination):
        found.problem(
            "destination", f"'{fields.destination}' is the same place as the origin ({origin.label})"
        )
    dates = _dates(found, kind, fields, today)
    travelers = _travelers(found, fields.travelers, required=needs.travelers)
    budget_usd = _budget_usd(found, fields.budget, required=needs.budget)
    if found.problems or destination is None or dates is None or travelers is None:
        return GateResult(problems=found.problems, warnings=found.warnings)
    trip = ResolvedTrip(
        kind=kind,
        origin=_ref(origin) if origin is not None else None,
        destination=_ref(destination),
        start_date=dates[0],
        end_date=dates[1],
        travelers=travelers,
        budget_usd=budget_usd,
        budget=fields.budget,
        interests=fields.interests,
        dining=fields.dining,
        cabin=request.cabin,
        traveler_name=request.traveler_name or DEFAULT_TRAVELER_NAME,
    )
    return GateResult(trip=trip, warnings=found.warnings)


def _place(found: _Findings, name: str, text: str | None, *, required: bool) -> geography.Place | None:
    if text is None:
        if required:
            where = "leave from" if name == "origin" else "go to"
            found.problem(name, f"missing: name the city, airport or region to {where}")
        return None
    try:
        return geography.resolve(text)
    except geography.UnknownPlace as exc:
        if required:
            found.problem(name, f"'{text}' is not a known airport, city or region ({exc})")
        else:
            found.warnings.append(f"{name} '{text}' ignored: it is not a known airport, city or region")
        return None


def _same_place(a: geography.Place, b: geography.Place) -> bool:
    same_city = geography.normalize(a.city) == geography.normalize(b.city) and a.country == b.country
    return a.code == b.code or same_city


def _ref(place: geography.Place) -> PlaceRef:
    return PlaceRef(
        code=place.code, city=place.city, country=place.country, lat=place.lat, lon=place.lon, tz=place.tz
    )


def _plus_days(day: dt.date, days: int) -> dt.date | None:
    """`day` moved by `days`, or None past the ends of the calendar (date.min, date.max)."""
    try:
        return day + dt.timedelta(days=days)
    except OverflowError:
        return None


def _horizon(today: dt.date) -> dt.date:
    """The last day a trip may start (or end) on."""
    return _plus_days(today, MAX_DAYS_AHEAD) or dt.date.max


def _dates(
    found: _Findings, kind: TripKind, fields: TripFields, today: dt.date
) -> tuple[dt.date, dt.date] | None:
    """The first and last day, after every date check; None when they are missing or wrong."""
    start, end, days = fields.start_date, fields.end_date, fields.days
    before = len(found.problems)
    if days is not None and not 1 <= days <= MAX_TRIP_DAYS:
        found.problem("days", f"{days} days: a trip lasts 1 to {MAX_TRIP_DAYS} days")
        days = None
    if start is None and end is not None and days is not None:
        start = _plus_days(end, -(days - 1))
        if start is None:  # the start would fall before 0001-01-01
            found.problem("end_date", _too_early(end, today))
            return None
    if start is None:
        found.problem("start_date", "missing: no date given")
        if NEEDS[kind].last_day and end is None and days is None:
            found.problem("end_date", "missing: no end date or trip length given")
        return None
    end = _last_day(found, kind, start, end, days, today)
    _check_start(found, start, today)
    if end is not None:
        _check_end(found, start, end, today)
    if end is None or len(found.problems) > before:
        return None
    return start, end


def _too_early(day: dt.date, today: dt.date) -> str:
    if day < today:
        return f"{day.isoformat()} is in the past (today is {today.isoformat()})"
    return f"{day.isoformat()} is too early a date"


def _last_day(
    found: _Findings,
    kind: TripKind,
    start: dt.date,
    end: dt.date | None,
    days: int | None,
    today: dt.date,
) -> dt.date | None:
    derived = _plus_days(start, days - 1) if days is not None else None
    if days is not None and derived is None:
        # The last day would fall after 9999-12-31: the start is far beyond the horizon, and
        # `_check_start` says so; the length is at fault only if the start is not.
        if start <= _horizon(today):
            found.problem("days", f"{days} days from {start.isoformat()} run past the end of the calendar")
        return None
    if end is not None:
        if derived is not None and derived != end:
            found.problem(
                "end_date",
                f"{end.isoformat()} does not match {days} days from {start.isoformat()} "
                f"(that would end on {derived.isoformat()})",
            )
        return end
    if derived is not None:
        return derived
    if NEEDS[kind].last_day:
        found.problem("end_date", "missing: no end date or trip length given")
        return None
    if kind == "flights_only":
        found.warnings.append("no return date given: planned as a one-way flight")
    elif kind == "hotels_only":
        found.warnings.append("no check-out date or length given: one night assumed")
    return start


def _check_start(found: _Findings, start: dt.date, today: dt.date) -> None:
    if start < today:
        found.problem("start_date", f"{start.isoformat()} is in the past (today is {today.isoformat()})")
    elif start == today:
        earliest = _plus_days(today, 1) or today
        found.problem(
            "start_date", f"{start.isoformat()} is today: the earliest start is {earliest.isoformat()}"
        )
    elif start > _horizon(today):
        found.problem("start_date", f"{start.isoformat()} is more than {MAX_DAYS_AHEAD} days ahead")


def _check_end(found: _Findings, start: dt.date, end: dt.date, today: dt.date) -> None:
    span = (end - start).days + 1
    if end < start:
        found.problem("end_date", f"{end.isoformat()} is before the start date {start.isoformat()}")
    elif span > MAX_TRIP_DAYS:
        found.problem("end_date", f"the trip would last {span} days; at most {MAX_TRIP_DAYS} can be planned")
    elif end > _horizon(today) >= start:
        found.problem("end_date", f"{end.isoformat()} is more than {MAX_DAYS_AHEAD} days ahead")


def _travelers(found: _Findings, travelers: int | None, *, required: bool) -> int | None:
    if travelers is None:
        if required:
            found.problem("travelers", "missing: how many people are travelling?")
            return None
        return 1
    if not 1 <= travelers <= MAX_TRAVELERS:
        found.problem("travelers", f"{travelers} travellers: bookings are for 1 to {MAX_TRAVELERS} people")
        return None
    return travelers


def _budget_usd(found: _Findings, budget: Budget | None, *, required: bool) -> float | None:
    if budget is None:
        if required:
            found.problem("budget", "missing: give the most the whole trip may cost, e.g. '$3000'")
        return None
    if budget.amount <= 0:
        found.problem("budget", f"{budget.amount:g} {budget.currency}: a budget must be more than 0")
        return None
    rate = RATES_TO_USD.get(budget.currency)
    if rate is None:
        known = ", ".join(sorted(RATES_TO_USD))
        found.problem("budget.currency", f"no exchange rate for {budget.currency}; use one of {known}")
        return None
    usd = round(budget.amount * rate, 2)
    if budget.currency != "USD":
        found.warnings.append(
            f"budget of {budget.amount:,.2f} {budget.currency} counted as {usd:,.2f} USD "
            f"at the indicative rate 1 {budget.currency} = {rate:g} USD"
        )
    return usd
