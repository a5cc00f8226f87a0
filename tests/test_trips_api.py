"""The trip API end to end: real orchestrator, real tool servers, real Redis, over HTTP."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from redis.asyncio import Redis

from tests.helpers import days_ahead, month_ahead, spoken, wait_queue_drained
from tests.support import ServiceProcess, api_headers, bookings_of, read_sse

# Dates from today: a month named alone ("in <MONTH>") means its 10th, 29 to 69 days ahead.
MONTH, _ = month_ahead(60)
PATAGONIA = (
    f"4-day hiking trip to Patagonia from Seattle in {MONTH} with one fancy dinner, under $3000 for two"
)
SETTLED = {"needs_input", "planned", "booked", "partial", "over_budget", "failed", "cancelled"}


def post(orchestrator: ServiceProcess, body: dict[str, Any], **headers: str) -> httpx2.Response:
    return httpx2.post(
        f"{orchestrator.base_url}/v1/trips", json=body, headers=api_headers(orchestrator, headers), timeout=90
    )


def get(orchestrator: ServiceProcess, trip_id: str) -> dict[str, Any]:
    response = httpx2.get(
        f"{orchestrator.base_url}/v1/trips/{trip_id}", headers=api_headers(orchestrator), timeout=10
    )
    response.raise_for_status()
    trip: dict[str, Any] = response.json()
    return trip


def settle(orchestrator: ServiceProcess, body: dict[str, Any]) -> dict[str, Any]:
    """Post a trip and wait for it to settle."""
    response = post(orchestrator, body, Prefer="wait=60")
    assert response.status_code == 200, response.text
    trip: dict[str, Any] = response.json()
    return trip


def wait_status(
    orchestrator: ServiceProcess, trip_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trip = get(orchestrator, trip_id)
        if trip["status"] in statuses:
            return trip
        time.sleep(0.2)
    raise AssertionError(f"trip {trip_id} still {get(orchestrator, trip_id)['status']}")


@pytest.fixture
def clean_faults(servers: dict[str, ServiceProcess]) -> Iterator[dict[str, ServiceProcess]]:
    yield servers
    for service in servers.values():
        service.admin("PUT", "/admin/faults", {})


async def test_patagonia_free_text_is_planned_then_booked_once(
    orchestrator: ServiceProcess, redis: Redis
) -> None:
    trip = settle(orchestrator, {"query": PATAGONIA})
    assert trip["status"] == "planned", trip
    assert trip["kind"] == "full_trip"
    resolved = trip["resolved"]
    assert resolved["origin"]["code"] == "SEA"
    assert resolved["destination"]["city"] in {"El Calafate", "Puerto Natales", "Punta Arenas", "Ushuaia"}
    assert resolved["travelers"] == 2
    itinerary = trip["itinerary"]
    outbound, inbound = itinerary["flight"]["slices"]
    assert outbound["origin"] == "SEA"
    assert outbound["destination"] == resolved["destination"]["code"]
    assert inbound["destination"] == "SEA"
    assert itinerary["hotel"]["nights"] >= 1
    start, end = dt.date.fromisoformat(resolved["start_date"]), dt.date.fromisoformat(resolved["end_date"])
    assert (end - start).days + 1 == 4
    days = itinerary["days"]
    assert [d["date"] for d in days] == [(start + dt.timedelta(days=i)).isoformat() for i in range(4)]
    assert all(d["weather"] for d in days), "a forecast for every day"
    hikes = [d for d in days if d["hike"]]
    assert hikes
    candidates = [
        d
        for d in days
        if not d["hike"]
        and d["outdoor_suitability"] is not None
        and d["date"] not in (days[0]["date"], days[-1]["date"])
    ]
    # Four days, the first and last travel days: at most one of the two between is hiked, so
    # there is a day to compare the hike with.
    assert candidates
    assert min(h["outdoor_suitability"] for h in hikes) >= max(c["outdoor_suitability"] for c in candidates)
    assert len(itinerary["dinners"]) == 1
    assert itinerary["dinners"][0]["restaurant"]["price_level"] >= 3
    budget = itinerary["budget"]
    assert budget["total_usd"] <= 3000
    assert budget["within_budget"] is True
    assert budget["total_usd"] == pytest.approx(sum(line["amount_usd"] for line in budget["lines"]), abs=0.02)
    assert [s["status"] for s in trip["steps"]] == ["succeeded"] * len(trip["steps"])
    assert trip["trace_id"]
    assert await bookings_of(redis, trip["id"]) == {}

    confirmed = httpx2.post(
        f"{orchestrator.base_url}/v1/trips/{trip['id']}/confirm",
        headers=api_headers(orchestrator, {"Prefer": "wait=60"}),
        timeout=90,
    )
    assert confirmed.status_code == 200, confirmed.text
    booked = confirmed.json()
    assert booked["status"] == "booked", booked
    assert sorted(b["kind"] for b in booked["bookings"]) == ["dinner", "flight", "hotel"]
    assert await bookings_of(redis, trip["id"]) == {
        "flight": ["confirmed"],
        "hotel": ["confirmed"],
        "dinner": ["confirmed"],
    }
    # Confirming again changes nothing.
    again = httpx2.post(
        f"{orchestrator.base_url}/v1/trips/{trip['id']}/confirm",
        headers=api_headers(orchestrator),
        timeout=30,
    )
    assert again.status_code == 202
    assert again.json()["status"] == "booked"
    assert await bookings_of(redis, trip["id"]) == {
        "flight": ["confirmed"],
        "hotel": ["confirmed"],
        "dinner": ["confirmed"],
    }


async def test_idempotency_key_replays_sequentially_and_concurrently(
    orchestrator: ServiceProcess, redis: Redis
) -> None:
    body = {"query": f"weekend in Lisbon from Boston in {MONTH} for two, budget 2500 USD"}
    key = f"key-{uuid.uuid4()}"
    first = post(orchestrator, body, **{"Idempotency-Key": key})
    assert first.status_code == 202
    assert first.headers["Location"] == f"/v1/trips/{first.json()['id']}"
    replay = post(orchestrator, body, **{"Idempotency-Key": key})
    assert replay.status_code == 202
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]

    other = post(
        orchestrator, {**body, "query": body["query"] + " with a fancy dinner"}, **{"Idempotency-Key": key}
    )
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["type"] == "/problems/idempotency-key-reused"

    before = len([k async for k in redis.scan_iter(match="{trip:*}", count=1000)])
    concurrent_key = f"key-{uuid.uuid4()}"
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(
            pool.map(lambda _: post(orchestrator, body, **{"Idempotency-Key": concurrent_key}), range(20))
        )
    accepted = [r for r in responses if r.status_code == 202]
    assert accepted
    assert {r.json()["id"] for r in accepted} == {accepted[0].json()["id"]}
    for r in responses:
        assert r.status_code in (202, 409), r.text
        if r.status_code == 409:
            assert r.headers["Retry-After"]
    after = len([k async for k in redis.scan_iter(match="{trip:*}", count=1000)])
    assert after - before == 1
    # Both trips settle here, so their searches do not run into the next test's count of calls.
    for trip_id in (first.json()["id"], accepted[0].json()["id"]):
        wait_status(orchestrator, trip_id, SETTLED)


def test_idempotency_key_format_is_checked(orchestrator: ServiceProcess) -> None:
    for bad in ("x" * 256, "has space", "tab\there"):
        response = post(orchestrator, {"query": "trip to Rome"}, **{"Idempotency-Key": bad})
        assert response.status_code == 400, bad
        assert response.json()["type"] == "/problems/invalid-idempotency-key"


def test_missing_dates_end_in_needs_input_without_tool_calls(
    orchestrator: ServiceProcess, servers: dict[str, ServiceProcess]
) -> None:
    # Other tests' trips on these tool servers are done before the count starts.
    wait_queue_drained(orchestrator.env["REDIS_URL"])
    before = {name: s.admin("GET", "/admin/stats")["calls"] for name, s in servers.items()}
    trip = settle(orchestrator, {"query": "hiking trip to Patagonia from Seattle, under $3000 for two"})
    assert trip["status"] == "needs_input", trip
    fields = [p["field"] for p in trip["problems"]]
    assert fields
    assert all("date" in f for f in fields), fields
    assert trip["termination"]["reason"] == "needs_input"
    assert not [s for s in trip["steps"] if s["status"] != "pending"]
    after = {name: s.admin("GET", "/admin/stats")["calls"] for name, s in servers.items()}
    assert after == before


def test_small_budget_ends_over_budget_with_cheapest_option(orchestrator: ServiceProcess) -> None:
    trip = settle(orchestrator, {"query": PATAGONIA.replace("$3000", "$200")})
    assert trip["status"] == "over_budget", trip
    budget = trip["itinerary"]["budget"]
    assert budget["budget_usd"] == 200
    assert budget["within_budget"] is False
    assert budget["shortfall_usd"] == pytest.approx(budget["total_usd"] - 200, abs=0.01)
    assert "over the budget" in trip["termination"]["detail"]
    # The cheapest complete option: a flight, a hotel and a dinner that matches the wish.
    itinerary = trip["itinerary"]
    assert itinerary["flight"]
    assert itinerary["hotel"]
    assert itinerary["dinners"][0]["restaurant"]["price_level"] >= 3
    planned = settle(orchestrator, {"query": PATAGONIA})
    assert budget["total_usd"] <= planned["itinerary"]["budget"]["total_usd"]


async def test_hotel_failure_cancels_the_flight(
    orchestrator: ServiceProcess, clean_faults: dict[str, ServiceProcess], redis: Redis
) -> None:
    clean_faults["mcp-hotels"].admin("PUT", "/admin/faults", {"book_hotel": {"error_rate": 1.0}})
    trip = settle(
        orchestrator,
        {
            "query": f"3-day trip to Denver from Chicago on {spoken(days_ahead(33))} for two, budget $4000",
            "book": True,
        },
    )
    assert trip["status"] == "failed", trip
    assert trip["termination"]["reason"] == "booking_failed"
    assert "hotel" in trip["termination"]["detail"]
    flight = [b for b in trip["bookings"] if b["kind"] == "flight"]
    assert len(flight) == 1
    assert flight[0]["status"] == "cancelled"
    assert await bookings_of(redis, trip["id"]) == {"flight": ["cancelled"]}
    assert next(s for s in trip["steps"] if s["id"] == "book_hotel")["status"] == "failed"


async def test_dinner_failure_still_books_the_trip(
    orchestrator: ServiceProcess, clean_faults: dict[str, ServiceProcess], redis: Redis
) -> None:
    clean_faults["mcp-restaurants"].admin("PUT", "/admin/faults", {"reserve_table": {"error_rate": 1.0}})
    trip = settle(
        orchestrator,
        {
            "query": f"3-day trip to Austin from Denver on {spoken(days_ahead(41))} for two with a fancy "
            "dinner, budget $4000",
            "book": True,
        },
    )
    assert trip["status"] == "booked", trip
    assert any("dinner" in w and "not reserved" in w for w in trip["warnings"])
    assert await bookings_of(redis, trip["id"]) == {"flight": ["confirmed"], "hotel": ["confirmed"]}


def test_event_stream_shows_every_step_and_resumes(orchestrator: ServiceProcess) -> None:
    trip = settle(
        orchestrator,
        {
            "query": f"4-day trip to Vienna from London in {MONTH} for two with one fancy dinner, "
            "budget 3000 EUR"
        },
    )
    assert trip["status"] == "planned", trip
    url = f"{orchestrator.base_url}/v1/trips/{trip['id']}/events"
    events = read_sse(url, auth=api_headers(orchestrator))
    kinds = [e.event for e in events]
    assert kinds[0] == "trip.accepted"
    assert kinds[-1] == "trip.settled"
    assert kinds.index("router.decided") < kinds.index("plan.created") < kinds.index("step.started")
    for step in trip["steps"]:
        started = [
            i
            for i, e in enumerate(events)
            if e.event == "step.started" and json.loads(e.data)["step"] == step["id"]
        ]
        finished = [
            i
            for i, e in enumerate(events)
            if e.event == "step.finished" and json.loads(e.data)["step"] == step["id"]
        ]
        assert len(started) == 1
        assert len(finished) == 1
        assert started[0] < finished[0]
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids)
    # Reconnect after the fifth event: the rest, once each, in order.
    resumed = read_sse(url, auth=api_headers(orchestrator), last_event_id=events[4].id)
    assert [e.id for e in resumed] == ids[5:]
    # A stream followed live from the start ends with the trip's settlement too.
    oslo = f"3-day trip to Oslo from Paris on {spoken(days_ahead(64))} for one, budget 2000 EUR"
    live = post(orchestrator, {"query": oslo})
    live_events = read_sse(
        f"{orchestrator.base_url}/v1/trips/{live.json()['id']}/events", auth=api_headers(orchestrator)
    )
    assert live_events[-1].event == "trip.settled"
    assert [e.id for e in live_events] == sorted(
        {e.id for e in live_events}, key=lambda i: tuple(map(int, i.split("-")))
    )


async def test_cancel_undoes_every_booking(orchestrator: ServiceProcess, redis: Redis) -> None:
    trip = settle(
        orchestrator,
        {
            "query": f"3-day trip to Seattle from Denver on {spoken(days_ahead(77))} for two with a fancy "
            "dinner, budget $5000",
            "book": True,
        },
    )
    assert trip["status"] == "booked", trip
    cancelled = httpx2.post(
        f"{orchestrator.base_url}/v1/trips/{trip['id']}/cancel",
        headers=api_headers(orchestrator, {"Prefer": "wait=60"}),
        timeout=90,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert await bookings_of(redis, trip["id"]) == {
        "flight": ["cancelled"],
        "hotel": ["cancelled"],
        "dinner": ["cancelled"],
    }
    again = httpx2.post(
        f"{orchestrator.base_url}/v1/trips/{trip['id']}/cancel", headers=api_headers(orchestrator), timeout=30
    )
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"


def test_errors_are_problem_documents(orchestrator: ServiceProcess) -> None:
    cases = [
        httpx2.post(
            f"{orchestrator.base_url}/v1/trips",
            headers=api_headers(orchestrator),
            json={"travelers": 0, "destination": "Rome"},
        ),
        httpx2.post(f"{orchestrator.base_url}/v1/trips", headers=api_headers(orchestrator), json={}),
        httpx2.post(
            f"{orchestrator.base_url}/v1/trips",
            headers=api_headers(orchestrator),
            json={"query": "x", "surprise": True},
        ),
        httpx2.post(
            f"{orchestrator.base_url}/v1/trips",
            content=b"{not json",
            headers=api_headers(orchestrator, {"content-type": "application/json"}),
        ),
        httpx2.get(f"{orchestrator.base_url}/v1/trips/{uuid.uuid4().hex}", headers=api_headers(orchestrator)),
        httpx2.get(f"{orchestrator.base_url}/v1/trips/not-an-id", headers=api_headers(orchestrator)),
        httpx2.post(
            f"{orchestrator.base_url}/v1/trips/{uuid.uuid4().hex}/confirm", headers=api_headers(orchestrator)
        ),
    ]
    statuses = [r.status_code for r in cases]
    assert statuses == [422, 422, 422, 400, 404, 404, 404]
    for response in cases:
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert {"type", "title", "status", "detail"} <= problem.keys()
        assert problem["status"] == response.status_code
    assert "travelers" in cases[0].json()["detail"]


def test_only_planned_trips_can_be_confirmed(orchestrator: ServiceProcess) -> None:
    trip = settle(orchestrator, {"query": "trip to Patagonia from Seattle for two, under $3000"})
    assert trip["status"] == "needs_input"
    response = httpx2.post(
        f"{orchestrator.base_url}/v1/trips/{trip['id']}/confirm", headers=api_headers(orchestrator)
    )
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/trip-not-confirmable"


def test_unsupported_requests_get_a_clear_answer(orchestrator: ServiceProcess) -> None:
    trip = settle(orchestrator, {"query": "rent a car in Denver next week"})
    assert trip["status"] == "needs_input"
    assert trip["kind"] == "unsupported"
    assert trip["termination"]["reason"] == "unsupported"
    assert trip["problems"][0]["field"] == "query"


def test_openapi_documents_the_trip_api(orchestrator: ServiceProcess) -> None:
    assert httpx2.get(f"{orchestrator.base_url}/docs", timeout=10).status_code == 200
    spec = httpx2.get(f"{orchestrator.base_url}/openapi.json", timeout=10).json()
    paths = spec["paths"]
    assert {
        "/v1/trips",
        "/v1/trips/{trip_id}",
        "/v1/trips/{trip_id}/events",
        "/v1/trips/{trip_id}/confirm",
        "/v1/trips/{trip_id}/cancel",
    } <= paths.keys()
    post = paths["/v1/trips"]["post"]
    assert {"202", "200", "409", "422", "503"} <= post["responses"].keys()
    assert "application/problem+json" in post["responses"]["422"]["content"]
    assert {p["name"] for p in post["parameters"]} >= {"Idempotency-Key", "prefer"}


async def test_cancel_while_booking_undoes_what_was_booked(
    orchestrator: ServiceProcess, clean_faults: dict[str, ServiceProcess], redis: Redis
) -> None:
    """A cancel that comes while the hotel is being booked, after the flight was: the saga books
    nothing more, and cancels both the flight and the hotel whose booking was in flight."""
    clean_faults["mcp-hotels"].admin("PUT", "/admin/faults", {"book_hotel": {"latency_ms": 3000}})
    day = spoken(days_ahead(50))
    response = post(
        orchestrator,
        {"query": f"3-day trip to Atlanta from Boston on {day} for two, budget $4000", "book": True},
    )
    trip_id = response.json()["id"]
    deadline = time.monotonic() + 60
    trip = get(orchestrator, trip_id)
    while not (trip["status"] == "booking" and [b["kind"] for b in trip["bookings"]] == ["flight"]):
        assert trip["status"] in {"queued", "running", "booking"}, trip["termination"]
        assert time.monotonic() < deadline, f"the flight was not booked: {trip['status']}"
        await asyncio.sleep(0.1)
        trip = get(orchestrator, trip_id)
    cancel = httpx2.post(
        f"{orchestrator.base_url}/v1/trips/{trip_id}/cancel", headers=api_headers(orchestrator), timeout=30
    )
    assert cancel.status_code == 202
    trip = wait_status(orchestrator, trip_id, {"cancelled", "failed", "booked"})
    assert trip["status"] == "cancelled", trip["termination"]
    assert sorted((b["kind"], b["status"]) for b in trip["bookings"]) == [
        ("flight", "cancelled"),
        ("hotel", "cancelled"),
    ]
    assert await bookings_of(redis, trip_id) == {"flight": ["cancelled"], "hotel": ["cancelled"]}


def test_last_event_id_outside_the_stream_is_400(orchestrator: ServiceProcess) -> None:
    trip = settle(orchestrator, {"query": "hiking trip to Patagonia from Seattle, under $3000 for two"})
    url = f"{orchestrator.base_url}/v1/trips/{trip['id']}/events"
    events = read_sse(url, auth=api_headers(orchestrator))
    ids = [e.id for e in events]
    ms, seq = (int(part) for part in ids[-1].split("-"))
    beyond = [f"{ms}-{seq + 1}", f"{ms + 1}-0", "18446744073709551615-18446744073709551615"]
    malformed = ["99999999999999999999999-0", "18446744073709551616-0", "0-18446744073709551616"]
    for bad in [*beyond, *malformed, "abc", "1-", "-1", "1-2-3", "+1-0"]:
        response = httpx2.get(
            url,
            headers=api_headers(orchestrator, {"Accept": "text/event-stream", "Last-Event-ID": bad}),
            timeout=10,
        )
        assert response.status_code == 400, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "/problems/invalid-last-event-id"
    # Ids inside the stream resume after them; the last one gives the rest: nothing.
    assert [e.id for e in read_sse(url, auth=api_headers(orchestrator), last_event_id=ids[1])] == ids[2:]
    assert read_sse(url, auth=api_headers(orchestrator), last_event_id=ids[-1]) == []
    assert [e.id for e in read_sse(url, auth=api_headers(orchestrator), last_event_id="0-0")] == ids
    assert [e.id for e in read_sse(url, auth=api_headers(orchestrator), last_event_id="")] == ids
