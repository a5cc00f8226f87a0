"""The router: kinds, reasons, and structured fields merged over the extracted ones."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from typing import Any

import pytest

from bench import adversarial_queries
from waypoint_orchestrator import router as router_module
from waypoint_orchestrator.extract import extract as real_extract
from waypoint_orchestrator.models import Budget, DiningWish, RouterDecision, TripFields, TripRequest
from waypoint_orchestrator.router import (
    EXTRACTION_TIME_LIMIT_SECONDS,
    NO_DESTINATION,
    QueryNotRead,
    query_not_read,
    route,
    route_in_thread,
)

TODAY = dt.date(2026, 11, 25)
REFERENCE = "4-day hiking trip to Patagonia from Seattle in March with one fancy dinner, under $3000 for two"


def decide(**request: Any) -> RouterDecision:
    return route(TripRequest(**request), TODAY)


def test_reference_query() -> None:
    decision = decide(query=REFERENCE)
    assert decision.kind == "full_trip"
    assert "trip" in decision.reason
    fields = decision.fields
    assert fields.kind == "full_trip"
    assert (fields.origin, fields.destination) == ("SEA", "FTE")
    assert (fields.start_date, fields.days, fields.travelers) == (dt.date(2027, 3, 10), 4, 2)
    assert fields.budget == Budget(amount=3000, currency="USD")
    assert fields.interests == ["hiking"]
    assert fields.dining == DiningWish(style="fancy", count=1)
    assert decision.extracted.model_dump(exclude={"kind"}) == fields.model_dump(exclude={"kind"})
    assert "start date assumed 2027-03-10 from 'in March'" in decision.assumptions


def test_structured_fields_win_over_the_query() -> None:
    decision = decide(
        query=REFERENCE,
        origin="Portland, Oregon",
        destination="Bariloche",
        travelers=3,
        budget={"amount": 5000, "currency": "EUR"},
        interests=["wine"],
        dining={"style": "casual", "count": 2},
    )
    fields, extracted = decision.fields, decision.extracted
    assert (fields.origin, fields.destination) == ("Portland, Oregon", "Bariloche")
    assert fields.travelers == 3
    assert fields.budget == Budget(amount=5000, currency="EUR")
    assert fields.dining == DiningWish(style="casual", count=2)  # whole, not merged
    assert fields.interests == ["wine", "hiking"]  # a union
    # What the query said on its own is kept apart.
    assert (extracted.origin, extracted.destination, extracted.travelers) == ("SEA", "FTE", 2)
    assert extracted.budget == Budget(amount=3000, currency="USD")
    # Fields the request did not set still come from the query.
    assert (fields.start_date, fields.days) == (dt.date(2027, 3, 10), 4)


def test_replaced_fields_are_noted_and_their_assumptions_dropped() -> None:
    decision = decide(query=REFERENCE, destination="Bariloche", start_date="2027-04-02")
    assert "start date assumed 2027-03-10 from 'in March'" not in decision.assumptions
    assert "destination 'Patagonia' read as El Calafate, AR (FTE)" not in decision.assumptions
    assert "origin 'Seattle' read as Seattle, US (SEA)" in decision.assumptions
    assert any("dates from the structured request" in a and "2027-03-10" in a for a in decision.assumptions)
    assert any("destination from the structured request" in a and "FTE" in a for a in decision.assumptions)


@pytest.mark.parametrize(
    ("structured", "start", "end", "days"),
    [
        # A structured start replaces the text's whole range; the text's length still applies.
        ({"start_date": "2027-04-01"}, dt.date(2027, 4, 1), None, 5),
        # A structured end replaces the text's start too.
        ({"end_date": "2027-04-05"}, None, dt.date(2027, 4, 5), 5),
        # A structured length replaces the text's last day, keeping its first.
        ({"days": 3}, dt.date(2027, 3, 10), None, 3),
        # Both ends given: the text's length is not kept.
        (
            {"start_date": "2027-04-01", "end_date": "2027-04-03"},
            dt.date(2027, 4, 1),
            dt.date(2027, 4, 3),
            None,
        ),
        ({}, dt.date(2027, 3, 10), dt.date(2027, 3, 14), 5),
    ],
)
def test_dates_merge_as_one_field(
    structured: dict[str, Any], start: dt.date | None, end: dt.date | None, days: int | None
) -> None:
    fields = decide(query="5-day trip to Rome March 10-14 from Paris", **structured).fields
    assert (fields.start_date, fields.end_date, fields.days) == (start, end, days)


def test_a_structured_request_without_a_query() -> None:
    decision = decide(origin="SEA", destination="Patagonia", start_date="2027-03-10", days=4, travelers=2)
    assert decision.kind == "full_trip"
    assert decision.extracted.model_dump(exclude_defaults=True) == {}
    assert decision.fields.destination == "Patagonia"
    assert decision.assumptions == []


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("flights only from Seattle to Paris on March 10", "flights_only"),
        ("just a hotel in Paris for 3 nights", "hotels_only"),
        ("weather in Paris tomorrow", "weather_only"),
        ("book a table in Paris for two on Friday", "dining_only"),
        ("vacation in Rome", "full_trip"),
        ("Rome from Paris", "full_trip"),  # no kind in words: a destination makes a full trip
    ],
)
def test_kinds_from_the_query(query: str, kind: str) -> None:
    decision = decide(query=query)
    assert decision.kind == kind
    assert decision.fields.kind == kind
    assert decision.reason.endswith(".")


def test_the_requests_kind_wins() -> None:
    decision = decide(query="weather in Paris tomorrow", kind="full_trip")
    assert decision.kind == "full_trip"
    assert "`kind`" in decision.reason
    assert decision.extracted.kind == "weather_only"


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("rent a car in Denver", "Car rental"),
        ("a cruise to Alaska in June", "Cruises"),
        ("train from Paris to Rome", "Trains"),
        ("do I need a visa for Brazil", "Visas"),
        ("write me a poem", "does not look like a travel request"),
    ],
)
def test_unsupported_requests(query: str, said: str) -> None:
    decision = decide(query=query)
    assert decision.kind == "unsupported"
    assert said in decision.reason
    assert decision.fields.kind is None


def test_unsupported_wins_over_a_structured_destination() -> None:
    decision = decide(query="rent a car", destination="Denver")
    assert decision.kind == "unsupported"


def test_no_destination_and_no_kind_is_unsupported() -> None:
    decision = decide(query="4 days in March for two, $3000")
    assert decision.kind == "unsupported"
    assert NO_DESTINATION in decision.reason.lower()


def test_routing_is_deterministic() -> None:
    assert decide(query=REFERENCE) == decide(query=REFERENCE)


# -- off the event loop, with a time limit ------------------------------------------------------


def test_a_deadline_already_past_routes_without_the_query() -> None:
    request = TripRequest(query=REFERENCE, destination="Rome", travelers=3, interests=["wine"])
    decision = route(request, TODAY, deadline=time.thread_time())
    assert isinstance(decision, QueryNotRead)
    assert decision.kind == "full_trip"
    assert "could not be read in time" in decision.reason
    assert (decision.fields.destination, decision.fields.travelers) == ("Rome", 3)
    assert decision.fields.interests == ["wine"]  # nothing from the text
    assert decision.extracted == TripFields()
    assert decision.assumptions == []


def test_a_query_not_read_keeps_the_requested_kind() -> None:
    decision = route(TripRequest(query=REFERENCE, kind="weather_only"), TODAY, deadline=time.thread_time())
    assert isinstance(decision, QueryNotRead)
    assert (decision.kind, decision.fields.kind) == ("weather_only", "weather_only")


async def test_no_time_to_read_is_the_time_out_decision_every_time() -> None:
    """A time limit of 0: the router thread finds its deadline passed at its first check."""
    request = TripRequest(query=REFERENCE)
    for _ in range(5):
        decision = await route_in_thread(request, TODAY, time_limit=0)
        assert isinstance(decision, QueryNotRead)
        assert decision == query_not_read(request)


async def test_enough_time_reads_as_route_does() -> None:
    request = TripRequest(query=REFERENCE, travelers=3)
    decision = await route_in_thread(request, TODAY, time_limit=60)
    assert not isinstance(decision, QueryNotRead)
    assert decision == route(request, TODAY)


async def test_a_request_without_a_query_needs_no_time() -> None:
    request = TripRequest(destination="Rome", origin="Paris")
    decision = await route_in_thread(request, TODAY, time_limit=0)
    assert not isinstance(decision, QueryNotRead)
    assert decision == route(request, TODAY)


async def test_the_query_is_read_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The extractor here waits for a callback that only the event loop can run: on the loop it
    would wait forever (the worker used to call route() on the loop, stalling every client)."""
    loop_ran = threading.Event()
    threads: list[str] = []

    def extract_once_the_loop_has_run(query: str, today: dt.date, *, deadline: float | None = None) -> Any:
        threads.append(threading.current_thread().name)
        assert loop_ran.wait(timeout=60), "the event loop did not run while the query was read"
        return real_extract(query, today, deadline=deadline)

    monkeypatch.setattr(router_module, "extract", extract_once_the_loop_has_run)
    asyncio.get_running_loop().call_soon(loop_ran.set)
    decision = await route_in_thread(TripRequest(query=REFERENCE), TODAY, time_limit=60)
    assert decision.kind == "full_trip"
    assert threads[0].startswith("waypoint-router")
    assert threads[0] != threading.current_thread().name


async def test_the_loop_stops_waiting_for_a_stuck_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even an extractor that never checks its deadline cannot hold the trip: past the limit
    (and the wall-time limit, both 0 here) the decision is the time-out one."""
    release = threading.Event()

    def stuck_extract(query: str, today: dt.date, *, deadline: float | None = None) -> Any:
        release.wait(timeout=60)  # until the test is over
        return real_extract(query, today)

    monkeypatch.setattr(router_module, "extract", stuck_extract)
    monkeypatch.setattr(router_module, "_WALL_LIMIT_SECONDS", 0.0)
    try:
        decision = await route_in_thread(TripRequest(query=REFERENCE), TODAY, time_limit=0)
    finally:
        release.set()
    assert isinstance(decision, QueryNotRead)


def test_the_time_limit_is_sane() -> None:
    assert 0 < EXTRACTION_TIME_LIMIT_SECONDS <= 10


async def test_a_reading_that_waits_for_a_core_is_not_cut_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit is CPU time: a reader that is kept waiting (a loaded machine: here it sleeps,
    using no CPU) well past the limit in wall time still reads the query."""

    def slow_to_get_a_core(query: str, today: dt.date, *, deadline: float | None = None) -> Any:
        time.sleep(0.3)
        return real_extract(query, today, deadline=deadline)

    monkeypatch.setattr(router_module, "extract", slow_to_get_a_core)
    decision = await route_in_thread(TripRequest(query=REFERENCE), TODAY, time_limit=0.1)
    assert not isinstance(decision, QueryNotRead)
    assert decision == route(TripRequest(query=REFERENCE), TODAY)


# -- odd but valid requests ----------------------------------------------------------------------

LONGEST = "x" * 120  # ShortText's max_length


@pytest.mark.parametrize(
    "request_fields",
    [
        {"query": "a" * 2000},
        {"query": adversarial_queries.run_between("March 1", "x")},
        {"query": "\u0663 days in Paris for \uff12, \u017fix nights, \u0130n May"},
        {"destination": LONGEST, "origin": LONGEST, "traveler_name": LONGEST},
        {"destination": "Rome", "interests": []},
        {"destination": "Rome", "interests": ["y" * 40] * 10},
        {"query": "trip", "dining": {"cuisine": LONGEST, "count": 0}},
        {"query": "\u0000\ufeff\u200d trip to Rome \U0001f600"},
        {"destination": "\u0663\u0663\u0663", "start_date": dt.date.max, "end_date": dt.date.min},
    ],
)
def test_odd_but_valid_requests_route(request_fields: dict[str, Any]) -> None:
    decision = decide(**request_fields)
    assert decision.reason.endswith(".")
