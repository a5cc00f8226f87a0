"""The validation gate: what each kind of plan needs, every problem on its field, and the resolved trip."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from bench import adversarial_queries
from waypoint_orchestrator import gate
from waypoint_orchestrator.models import (
    Budget,
    DiningWish,
    GateResult,
    RouterDecision,
    TripFields,
    TripKind,
    TripRequest,
)
from waypoint_orchestrator.router import QUERY_NOT_READ, route, route_in_thread

TODAY = dt.date(2026, 11, 25)
REFERENCE = "4-day hiking trip to Patagonia from Seattle in March with one fancy dinner, under $3000 for two"
GOOD: dict[str, Any] = {
    "origin": "SEA",
    "destination": "FTE",
    "start_date": dt.date(2027, 3, 10),
    "days": 4,
    "travelers": 2,
    "budget": Budget(amount=3000),
}
ANY_REQUEST = TripRequest(destination="FTE")


def check_fields(kind: TripKind, request: TripRequest = ANY_REQUEST, **changes: Any) -> GateResult:
    """The gate's verdict on fields as the router would hand them over (GOOD, changed)."""
    values = {**GOOD, **changes}
    fields = TripFields(kind=kind, **{k: v for k, v in values.items() if v is not None})
    decision = RouterDecision(kind=kind, reason="test", fields=fields, extracted=TripFields())
    return gate.check(decision, request, TODAY)


def check_query(query: str, **structured: Any) -> GateResult:
    request = TripRequest(query=query, **structured)
    return gate.check(route(request, TODAY), request, TODAY)


def problem_fields(result: GateResult) -> list[str]:
    return [p.field for p in result.problems]


# -- the reference trip ------------------------------------------------------------------------


def test_reference_query_passes() -> None:
    result = check_query(REFERENCE)
    assert result.passed, result.problems
    trip = result.trip
    assert trip is not None
    assert trip.kind == "full_trip"
    assert trip.origin is not None
    assert trip.origin.code == "SEA"
    assert (trip.destination.code, trip.destination.country) == ("FTE", "AR")
    assert trip.destination.tz.startswith("America/Argentina")
    assert (trip.start_date, trip.end_date, trip.days) == (dt.date(2027, 3, 10), dt.date(2027, 3, 13), 4)
    assert trip.travelers == 2
    assert trip.budget_usd == 3000
    assert trip.budget == Budget(amount=3000, currency="USD")
    assert trip.interests == ["hiking"]
    assert trip.dining == DiningWish(style="fancy", count=1)
    assert trip.cabin == "economy"
    assert trip.traveler_name == gate.DEFAULT_TRAVELER_NAME
    assert result.warnings == []


def test_name_and_cabin_come_from_the_request() -> None:
    trip = check_query(REFERENCE, traveler_name="Ada Lovelace", cabin="business").trip
    assert trip is not None
    assert (trip.traveler_name, trip.cabin) == ("Ada Lovelace", "business")


def test_structured_fields_reach_the_trip() -> None:
    trip = check_query(REFERENCE, destination="Bariloche", travelers=3, budget={"amount": 4000}).trip
    assert trip is not None
    assert (trip.destination.code, trip.travelers, trip.budget_usd) == ("BRC", 3, 4000)


# -- dates -------------------------------------------------------------------------------------


def test_a_request_without_dates_is_refused_on_the_dates_only() -> None:
    result = check_query("hiking trip to Patagonia from Seattle with one fancy dinner, under $3000 for two")
    assert not result.passed
    assert result.trip is None
    assert problem_fields(result) == ["start_date", "end_date"]
    assert all("date" in f for f in problem_fields(result))
    assert all(p.reason.startswith("missing:") for p in result.problems)


def test_a_length_without_a_start_is_refused_on_the_start_only() -> None:
    result = check_query(
        "4-day hiking trip to Patagonia from Seattle with one fancy dinner, under $3000 for two"
    )
    assert problem_fields(result) == ["start_date"]


def test_a_past_date_is_refused() -> None:
    result = check_query("4-day trip to Paris from Seattle on March 1 2020 for 2, $3000")
    assert problem_fields(result) == ["start_date"]
    assert "2020-03-01 is in the past" in result.problems[0].reason


@pytest.mark.parametrize(
    ("start", "reason"),
    [
        (TODAY, "is today"),
        (TODAY - dt.timedelta(days=1), "in the past"),
        (TODAY + dt.timedelta(days=366), "more than 365 days ahead"),
    ],
)
def test_start_dates_out_of_range(start: dt.date, reason: str) -> None:
    result = check_fields("full_trip", start_date=start)
    assert problem_fields(result) == ["start_date"]
    assert reason in result.problems[0].reason


@pytest.mark.parametrize("start", [TODAY + dt.timedelta(days=1), TODAY + dt.timedelta(days=365)])
def test_start_dates_at_the_edges_pass(start: dt.date) -> None:
    result = check_fields("full_trip", start_date=start, days=1)
    assert result.passed, result.problems


def test_the_end_follows_from_the_length() -> None:
    trip = check_fields("full_trip", start_date=dt.date(2027, 3, 10), days=4).trip
    assert trip is not None
    assert trip.end_date == dt.date(2027, 3, 13)


def test_the_start_follows_from_the_end_and_the_length() -> None:
    trip = check_fields("full_trip", start_date=None, end_date=dt.date(2027, 3, 13), days=4).trip
    assert trip is not None
    assert trip.start_date == dt.date(2027, 3, 10)


def test_an_end_that_matches_the_length_passes() -> None:
    assert check_fields("full_trip", end_date=dt.date(2027, 3, 13), days=4).passed


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"end_date": dt.date(2027, 3, 9), "days": None}, "end_date", "before the start date"),
        ({"end_date": dt.date(2027, 3, 20), "days": 4}, "end_date", "does not match 4 days"),
        ({"end_date": dt.date(2027, 4, 10), "days": None}, "end_date", "would last 32 days"),
        ({"days": 31}, "days", "1 to 30 days"),
        ({"days": 0}, "days", "1 to 30 days"),
        ({"days": None}, "end_date", "missing"),
        ({"start_date": dt.date(2027, 11, 20), "days": 10}, "end_date", "more than 365 days ahead"),
    ],
)
def test_date_problems(changes: dict[str, Any], field: str, reason: str) -> None:
    result = check_fields("full_trip", **changes)
    assert field in problem_fields(result)
    assert any(reason in p.reason for p in result.problems if p.field == field)


def test_thirty_days_is_the_longest_trip() -> None:
    assert check_fields("full_trip", days=30).passed
    assert check_fields("full_trip", days=None, end_date=dt.date(2027, 4, 8)).passed
    assert not check_fields("full_trip", days=None, end_date=dt.date(2027, 4, 9)).passed


def test_a_one_way_flight_needs_no_return() -> None:
    result = check_fields("flights_only", days=None, budget=None)
    assert result.passed, result.problems
    assert result.trip is not None
    assert result.trip.end_date == result.trip.start_date
    assert result.trip.budget_usd is None
    assert "one-way" in result.warnings[0]


def test_a_hotel_stay_without_a_length_is_one_night() -> None:
    result = check_fields("hotels_only", days=None)
    assert result.passed, result.problems
    assert "one night" in result.warnings[0]


@pytest.mark.parametrize("kind", ["weather_only", "dining_only"])
def test_single_day_kinds(kind: TripKind) -> None:
    result = check_fields(kind, days=None, origin=None)
    assert result.passed, result.problems
    assert result.trip is not None
    assert result.trip.end_date == result.trip.start_date
    assert result.warnings == []


def test_a_forecast_spans_at_most_thirty_days() -> None:
    assert check_fields("weather_only", days=30).passed
    assert problem_fields(check_fields("weather_only", days=None, end_date=dt.date(2027, 4, 9))) == [
        "end_date"
    ]


# -- places ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["origin", "destination"])
def test_a_place_that_does_not_resolve_is_named(name: str) -> None:
    changes: dict[str, Any] = {name: "Atlantis"}
    result = check_fields("full_trip", **changes)
    assert problem_fields(result) == [name]
    assert "'Atlantis'" in result.problems[0].reason


def test_an_unknown_destination_from_the_query_is_named() -> None:
    result = check_query("4-day trip to Atlantis from Seattle on March 10 for two, $3000")
    assert problem_fields(result) == ["destination"]
    assert "'Atlantis'" in result.problems[0].reason


@pytest.mark.parametrize(
    ("origin", "destination"), [("SEA", "Seattle"), ("Paris", "ORY"), ("FTE", "Patagonia")]
)
def test_origin_and_destination_must_differ(origin: str, destination: str) -> None:
    result = check_fields("full_trip", origin=origin, destination=destination)
    assert problem_fields(result) == ["destination"]
    assert "same place as the origin" in result.problems[0].reason


@pytest.mark.parametrize(
    ("kind", "needs_origin"),
    [
        ("full_trip", True),
        ("flights_only", True),
        ("hotels_only", False),
        ("weather_only", False),
        ("dining_only", False),
    ],
)
def test_which_kinds_need_an_origin(kind: TripKind, needs_origin: bool) -> None:
    result = check_fields(kind, origin=None)
    assert ("origin" in problem_fields(result)) == needs_origin
    assert result.passed != needs_origin


def test_every_kind_needs_a_destination() -> None:
    for kind in gate.NEEDS:
        result = check_fields(kind, destination=None)
        assert problem_fields(result) == ["destination"]
        assert result.problems[0].reason.startswith("missing:")


def test_an_unknown_origin_is_only_a_warning_where_none_is_needed() -> None:
    result = check_fields("hotels_only", origin="Atlantis")
    assert result.passed
    assert result.trip is not None
    assert result.trip.origin is None
    assert "origin 'Atlantis' ignored" in result.warnings[0]


# -- travellers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "needs_travelers"),
    [
        ("full_trip", True),
        ("flights_only", True),
        ("hotels_only", True),
        ("dining_only", True),
        ("weather_only", False),
    ],
)
def test_which_kinds_need_travelers(kind: TripKind, needs_travelers: bool) -> None:
    result = check_fields(kind, travelers=None)
    assert ("travelers" in problem_fields(result)) == needs_travelers
    if not needs_travelers:
        assert result.trip is not None
        assert result.trip.travelers == 1


@pytest.mark.parametrize(("travelers", "ok"), [(1, True), (9, True), (0, False), (10, False), (-2, False)])
def test_party_sizes(travelers: int, ok: bool) -> None:
    result = check_fields("full_trip", travelers=travelers)
    assert result.passed == ok
    assert ("travelers" in problem_fields(result)) != ok


# -- budget ------------------------------------------------------------------------------------


def test_a_full_trip_needs_a_budget() -> None:
    result = check_fields("full_trip", budget=None)
    assert problem_fields(result) == ["budget"]
    assert result.problems[0].reason.startswith("missing:")


@pytest.mark.parametrize("kind", ["flights_only", "hotels_only", "weather_only", "dining_only"])
def test_other_kinds_do_not_need_a_budget(kind: TripKind) -> None:
    result = check_fields(kind, budget=None)
    assert result.passed, result.problems
    assert result.trip is not None
    assert result.trip.budget_usd is None


@pytest.mark.parametrize(
    ("amount", "currency", "usd"),
    [
        (3000, "USD", 3000),
        (2500, "EUR", 2700),
        (1000, "GBP", 1270),
        (4000, "CHF", 4520),
        (300000, "JPY", 2010),
        (1000, "CAD", 730),
        (1000, "AUD", 660),
        (1_000_000, "CLP", 1050),
    ],
)
def test_budgets_are_converted_to_dollars(amount: float, currency: str, usd: float) -> None:
    result = check_fields("full_trip", budget=Budget(amount=amount, currency=currency))
    assert result.trip is not None
    assert result.trip.budget_usd == pytest.approx(usd)
    assert result.trip.budget == Budget(amount=amount, currency=currency)
    if currency == "USD":
        assert result.warnings == []
    else:
        assert len(result.warnings) == 1
        assert f"1 {currency} = {gate.RATES_TO_USD[currency]:g} USD" in result.warnings[0]


def test_a_currency_without_a_rate_is_a_problem() -> None:
    result = check_fields("full_trip", budget=Budget(amount=50000, currency="THB"))
    assert problem_fields(result) == ["budget.currency"]
    assert "THB" in result.problems[0].reason


def test_a_budget_of_nothing_is_a_problem() -> None:
    # Budget itself refuses 0; a decision built without validation must still not pass.
    result = check_fields("full_trip", budget=Budget.model_construct(amount=0, currency="USD"))
    assert problem_fields(result) == ["budget"]


def test_a_budget_in_euros_from_the_query() -> None:
    result = check_query("4-day trip to Rome from London on March 10 for two, max 2000 EUR")
    assert result.trip is not None
    assert result.trip.budget_usd == pytest.approx(2160)
    assert "1 EUR = 1.08 USD" in result.warnings[0]


# -- the whole ---------------------------------------------------------------------------------


def test_every_problem_is_reported() -> None:
    result = check_fields(
        "full_trip",
        origin="Atlantis",
        destination=None,
        start_date=dt.date(2020, 3, 1),
        travelers=None,
        budget=Budget(amount=10, currency="XYZ"),
    )
    assert sorted(problem_fields(result)) == [
        "budget.currency",
        "destination",
        "origin",
        "start_date",
        "travelers",
    ]
    assert result.trip is None
    assert not result.passed


def test_unsupported_requests_are_refused_with_the_routers_reason() -> None:
    request = TripRequest(query="rent a car in Denver")
    decision = route(request, TODAY)
    result = gate.check(decision, request, TODAY)
    assert problem_fields(result) == ["query"]
    assert result.problems[0].reason == decision.reason
    assert "Car rental" in result.problems[0].reason


def test_a_query_naming_no_destination_is_refused() -> None:
    result = check_query("write me a poem")
    assert problem_fields(result) == ["query"]


# -- what a request can carry: the ends of the calendar, odd text (issue 9) ------------------------

DAY = dt.timedelta(days=1)
PROBLEM_FIELDS = {"origin", "destination", "start_date", "end_date", "days", "travelers", "budget"}
PROBLEM_FIELDS |= {"budget.currency", "query"}
EDGES = [dt.date.min, dt.date.min + DAY, dt.date.max - 30 * DAY, dt.date.max - DAY, dt.date.max]


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"start_date": dt.date.max}, ["start_date"]),  # with GOOD's 4 days: past 9999-12-31
        ({"start_date": dt.date.max, "days": 30}, ["start_date"]),
        ({"start_date": dt.date.max - 10 * DAY, "days": 30}, ["start_date"]),
        ({"start_date": dt.date.max, "days": None}, ["end_date", "start_date"]),
        ({"start_date": dt.date.min}, ["start_date"]),
        (
            {"start_date": dt.date.max, "end_date": dt.date.max - DAY, "days": None},
            ["end_date", "start_date"],
        ),
        ({"start_date": None, "end_date": dt.date.min, "days": 30}, ["end_date"]),
        ({"start_date": None, "end_date": dt.date.min + DAY, "days": 2}, ["start_date"]),
        ({"start_date": None, "end_date": dt.date.max, "days": 30}, ["start_date"]),
        ({"start_date": dt.date.min, "end_date": dt.date.max, "days": None}, ["end_date", "start_date"]),
        # the end matches neither the length nor the longest trip
        (
            {"start_date": dt.date.min, "end_date": dt.date.max, "days": 30},
            ["end_date", "end_date", "start_date"],
        ),
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_problems(changes: dict[str, Any], fields: list[str]) -> None:
    """9999-12-31 + 4 days used to raise OverflowError inside the job (redelivered until
    `no_progress`); now each such date is a problem on the field at fault: `needs_input`."""
    result = check_fields("full_trip", **changes)
    assert sorted(problem_fields(result)) == fields
    assert result.trip is None


def test_the_reported_date_needs_input() -> None:
    request = TripRequest(
        origin="SEA",
        destination="FTE",
        start_date=dt.date.max,
        days=4,
        travelers=2,
        budget=Budget(amount=3000),
    )
    result = gate.check(route(request, TODAY), request, TODAY)
    assert problem_fields(result) == ["start_date"]
    assert "9999-12-31 is more than 365 days ahead" in result.problems[0].reason


@pytest.mark.parametrize("kind", ["full_trip", "flights_only", "hotels_only", "weather_only", "dining_only"])
def test_no_date_a_request_can_carry_breaks_the_gate(kind: TripKind) -> None:
    horizon = TODAY + dt.timedelta(days=gate.MAX_DAYS_AHEAD)
    for start in [*EDGES, None]:
        for end in [*EDGES, None]:
            for days in (None, 1, 30):
                result = check_fields(kind, start_date=start, end_date=end, days=days)
                assert set(problem_fields(result)) <= PROBLEM_FIELDS
                given = [d for d in (start, end) if d is not None]
                if any(not TODAY < d <= horizon for d in given):
                    assert not result.passed
                    assert {"start_date", "end_date", "days"} & set(problem_fields(result))


@pytest.mark.parametrize("today", [dt.date.min, dt.date.max])
def test_a_today_at_the_ends_of_the_calendar_breaks_nothing(today: dt.date) -> None:
    for start in [*EDGES, None]:
        for days in (None, 1, 30):
            fields = TripFields(kind="full_trip", **{**GOOD, "start_date": start, "days": days})
            decision = RouterDecision(kind="full_trip", reason="test", fields=fields, extracted=TripFields())
            result = gate.check(decision, ANY_REQUEST, today)
            assert set(problem_fields(result)) <= PROBLEM_FIELDS


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("4-day trip to Paris from Seattle on 9999-12-31 for two, $3000", ["start_date"]),
        ("trip to Paris from Seattle 9999-12-30 to 9999-12-31 for two, $3000", ["start_date"]),
        ("trip to Paris from Seattle 0001-01-01 to 0001-01-03 for two, $3000", ["start_date"]),
        (
            "trip to Paris from Seattle from 9999-12-30 until Saturday for two, $3000",
            ["end_date", "start_date"],
        ),
        ("trip to Paris from Seattle 9999-12-31 - 0001-01-01 for two, $3000", ["end_date", "start_date"]),
    ],
)
def test_far_dates_in_the_text_need_input(query: str, fields: list[str]) -> None:
    assert sorted(problem_fields(check_query(query))) == fields


def test_a_query_not_read_in_time_is_one_problem_on_the_query() -> None:
    request = TripRequest(query=REFERENCE, destination="Rome")
    result = gate.check(route(request, TODAY, deadline=time.thread_time()), request, TODAY)
    assert problem_fields(result) == ["query"]
    assert result.problems[0].reason == QUERY_NOT_READ
    assert "could not be read in time" in QUERY_NOT_READ
    assert "structured fields" in QUERY_NOT_READ


async def test_no_time_to_read_the_query_needs_input() -> None:
    request = TripRequest(query=REFERENCE)
    result = gate.check(await route_in_thread(request, TODAY, time_limit=0), request, TODAY)
    assert problem_fields(result) == ["query"]
    assert result.trip is None


@pytest.mark.parametrize(
    ("family", "queries"),
    list(adversarial_queries.corpus(generated_count=20).items()),
    ids=list(adversarial_queries.corpus(generated_count=0)),
)
def test_adversarial_queries_route_and_pass_the_gate_without_raising(family: str, queries: list[str]) -> None:
    for query in queries:
        if not query.strip():
            continue
        result = check_query(query)
        assert set(problem_fields(result)) <= PROBLEM_FIELDS, family


LONGEST = "x" * 120


@pytest.mark.parametrize(
    "structured",
    [
        {"origin": LONGEST, "destination": LONGEST, "traveler_name": LONGEST},
        {"interests": []},
        {"interests": ["y" * 40] * 10},
        {"destination": "\u0663\u0663\u0663", "origin": "\uff33\uff25\uff21"},
        {"destination": "Rome", "dining": {"cuisine": LONGEST, "count": 0}},
        {"budget": {"amount": 1_000_000, "currency": "XYZ"}},
        {"budget": {"amount": 0.01, "currency": "jpy"}},
        {"travelers": 9, "days": 30, "start_date": TODAY + DAY},
    ],
)
def test_odd_but_valid_structured_requests(structured: dict[str, Any]) -> None:
    request = TripRequest(**{"destination": "FTE", **structured})
    result = gate.check(route(request, TODAY), request, TODAY)
    assert set(problem_fields(result)) <= PROBLEM_FIELDS
