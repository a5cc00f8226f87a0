"""The date-sensitive layers (extractor, router, gate) on every day of a year: `today` is injected,
so the queries the end-to-end tests send (built from today by `tests.helpers`) are read the same
way whatever day the suite runs on.

Each case is one `today`: the 366 days starting on the day the suite runs, plus the days around
the next 29 February (so a leap day is always among them). The queries and what they must mean are
relative to that day, never to a month of the calendar.
"""

from __future__ import annotations

import calendar
import datetime as dt

import pytest

from tests.helpers import days_ahead, month_ahead, service_today, spoken
from waypoint_orchestrator import gate
from waypoint_orchestrator.models import GateResult, TripRequest
from waypoint_orchestrator.router import route

DAY = dt.timedelta(days=1)


def _days() -> list[dt.date]:
    first = service_today()
    days = [first + i * DAY for i in range(366)]
    year = first.year
    while not (calendar.isleap(year) and dt.date(year, 2, 29) >= first):
        year += 1
    leap = dt.date(year, 2, 29)
    days += [d for d in (leap + i * DAY for i in range(-3, 4)) if d not in days]
    return days


DAYS = _days()


def check(today: dt.date, query: str | None = None, **fields: object) -> GateResult:
    request = TripRequest.model_validate({"query": query, **fields} if query else fields)
    return gate.check(route(request, today), request, today)


def passed(today: dt.date, query: str) -> GateResult:
    result = check(today, query)
    assert result.passed, (today, query, [(p.field, p.reason) for p in result.problems])
    assert result.trip is not None
    return result


def problems(today: dt.date, query: str) -> dict[str, str]:
    result = check(today, query)
    assert not result.passed, (today, query)
    assert result.trip is None
    return {p.field: p.reason for p in result.problems}


def test_the_days_cover_a_year_and_a_leap_day() -> None:
    assert len(set(DAYS)) >= 366
    assert DAYS[365] - DAYS[0] == 365 * DAY
    assert any((d.month, d.day) == (2, 29) for d in DAYS)
    assert len({d.month for d in DAYS}) == 12


@pytest.mark.parametrize("today", DAYS, ids=[d.isoformat() for d in DAYS])
def test_queries_built_from_today_mean_the_same_on_every_day(today: dt.date) -> None:
    horizon = today + gate.MAX_DAYS_AHEAD * DAY

    # A day of a month without a year, as the end-to-end tests write it: that very day.
    for offset in (1, 40, 120, 300, 362):
        day = days_ahead(offset, today)
        trip = passed(today, f"3-day trip to Denver from Chicago on {spoken(day)} for two, budget $5000").trip
        assert trip is not None
        assert (trip.kind, trip.start_date, trip.end_date, trip.travelers) == (
            "full_trip",
            day,
            day + 2 * DAY,
            2,
        )
        assert trip.budget_usd == 5000

    # A month alone, as the end-to-end tests name it: its 10th, two weeks ahead or more.
    month, tenth = month_ahead(60, today)
    query = (
        f"4-day hiking trip to Patagonia from Seattle in {month} with one fancy dinner, under $3000 for two"
    )
    result = passed(today, query)
    assert result.trip is not None
    assert (result.trip.start_date, result.trip.end_date) == (tenth, tenth + 3 * DAY)
    assert 14 <= (tenth - today).days <= 69
    assumed = route(TripRequest(query=query), today).assumptions
    assert f"start date assumed {tenth.isoformat()} from 'in {month}'" in assumed
    weekend = passed(today, f"weekend in Lisbon from Boston in {month} for two, budget 2500 USD").trip
    assert weekend is not None
    assert (weekend.start_date, weekend.end_date) == (tenth, tenth + 2 * DAY)

    # A range across whatever months it spans.
    first, last = days_ahead(50, today), days_ahead(53, today)
    ranged = passed(
        today, f"trip to Rome from Paris from {spoken(first)} to {spoken(last)} for one, 3000 EUR"
    )
    assert ranged.trip is not None
    assert (ranged.trip.start_date, ranged.trip.end_date) == (first, last)

    # Dates relative to today.
    soon = passed(today, "a weekend in Paris from London for two, budget 2000 EUR").trip
    assert soon is not None
    assert soon.start_date.weekday() == calendar.FRIDAY
    assert 1 <= (soon.start_date - today).days <= 7
    assert soon.end_date == soon.start_date + 2 * DAY
    later = passed(today, "trip to Rome from Paris in 3 weeks for 5 days for two, budget 3000 EUR").trip
    assert later is not None
    assert (later.start_date, later.end_date) == (today + 21 * DAY, today + 25 * DAY)
    monday = passed(today, "3-day trip to Rome from Paris on Monday for one, budget 3000 EUR").trip
    assert monday is not None
    assert monday.start_date.weekday() == calendar.MONDAY
    assert 1 <= (monday.start_date - today).days <= 7
    next_month = passed(today, "3-day trip to Rome from Paris next month for one, budget 3000 EUR").trip
    assert next_month is not None
    assert next_month.start_date >= today + 14 * DAY
    assert next_month.start_date.month == today.month % 12 + 1
    iso = days_ahead(100, today)
    dated = passed(today, f"trip to Rome from Paris {iso.isoformat()} for 4 days for one, budget 3000").trip
    assert dated is not None
    assert (dated.start_date, dated.end_date) == (iso, iso + 3 * DAY)

    # Structured dates, as test_edge and test_workers send them.
    structured = check(
        today,
        origin="SEA",
        destination="Denver",
        start_date=days_ahead(40, today).isoformat(),
        days=3,
        travelers=1,
        budget={"amount": 5000, "currency": "USD"},
    )
    assert structured.passed, structured.problems
    assert structured.trip is not None
    assert structured.trip.start_date == days_ahead(40, today)

    # What needs input on any day: today, the past, past the horizon, no date at all.
    assert (
        "is today"
        in problems(today, "2-day trip to Rome from Paris today for one, budget 3000")["start_date"]
    )
    yesterday = today - DAY
    past = problems(
        today, f"2-day trip to Rome from Paris on {spoken(yesterday)} {yesterday.year}, budget 3000"
    )
    assert "in the past" in past["start_date"]
    too_far = days_ahead(400, today).isoformat()
    assert (
        "more than 365 days ahead"
        in problems(today, f"2-day trip to Rome from Paris {too_far}")["start_date"]
    )
    # A start inside the horizon whose last day is past it: the end date is the problem.
    late = days_ahead(364, today)
    ends_late = problems(today, f"3-day trip to Denver from Chicago on {spoken(late)} for two, budget $5000")
    assert set(ends_late) == {"end_date"}
    assert f"{(late + 2 * DAY).isoformat()} is more than 365 days ahead" in ends_late["end_date"]
    assert late + 2 * DAY > horizon
    undated = problems(today, "hiking trip to Patagonia from Seattle, under $3000 for two")
    assert undated
    assert all("date" in field or field == "days" for field in undated), undated


def test_a_month_alone_is_a_date_the_gate_accepts_on_every_day() -> None:
    """A month alone ("4 days in March"), said on any day, is a trip in that month the gate accepts.

    The extractor used to read a month alone as its next 10th at least two weeks ahead, so from
    about two weeks before the 10th until a few days after it that was the next year's 10th:
    more than 365 days ahead, which the gate refused (the README's own "... in March ..." ended
    `needs_input` from 25 February to 12 March). Now the month's first day two weeks ahead is taken.
    """
    refused: list[str] = []
    for today in DAYS[:366]:
        for month in calendar.month_name[1:]:
            result = check(today, f"4-day trip to Rome from Paris in {month} for two, budget 3000 EUR")
            start = result.trip.start_date if result.trip else None
            if not result.passed or start is None or start.strftime("%B") != month:
                reasons = "; ".join(f"{p.field}: {p.reason}" for p in result.problems)
                refused.append(f"on {today} 'in {month}': {reasons or start}")
    assert refused == [], f"{len(refused)} of {366 * 12} refused, e.g. {refused[:3]}"
