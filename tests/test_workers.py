"""Workers: two orchestrator processes on one Redis share the queue and run every trip once; a
job that raises ends its trip at once. Both on one redis-server and on a Redis Cluster."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from tests.conftest import BACKENDS
from tests.helpers import days_ahead, spoken
from tests.support import (
    SUITE_TENANT,
    Harness,
    ServiceProcess,
    api_headers,
    orchestrator_env,
    read_sse,
)
from waypoint_common import keys
from waypoint_common.connections import RedisClient
from waypoint_common.results.flights import FlightOffer
from waypoint_orchestrator.jobs import GROUP, STREAM
from waypoint_orchestrator.models import (
    BookingRecord,
    BudgetUse,
    Itinerary,
    PlaceRef,
    ResolvedTrip,
    Trip,
    TripRequest,
)

TRIPS = 40
ON_BOTH = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def two_orchestrators(
    backend: str, tool_servers: dict[str, ServiceProcess], harness: Harness
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Two orchestrators with a queue of their own (the suite's orchestrator reads the suite's):
    on a redis-server, or on a Redis Cluster, of their own."""
    own_redis = harness.redis_cluster() if backend == "cluster" else harness.redis()
    env = orchestrator_env(own_redis.url, tool_servers, WAYPOINT_WORKERS="3")
    first = harness.spawn("waypoint-orchestrator", env)
    second = harness.spawn("waypoint-orchestrator", env)
    harness.wait_ready(first, second)
    yield first, second
    first.stop()
    second.stop()
    own_redis.stop()


@ON_BOTH
def test_two_orchestrators_split_the_work_and_run_each_trip_once(
    two_orchestrators: tuple[ServiceProcess, ServiceProcess],
) -> None:
    first, second = two_orchestrators
    cities = ["Denver", "Boston", "Chicago", "Miami", "Seattle", "Atlanta", "Dallas", "Phoenix"]

    def submit(i: int) -> str:
        target = (first, second)[i % 2]
        body = {
            "query": f"3-day trip to {cities[i % len(cities)]} from New York on "
            f"{spoken(days_ahead(30 + i % 20))} for {i % 3 + 1}, budget $6000"
        }
        response = httpx2.post(
            f"{target.base_url}/v1/trips", headers=api_headers(target), json=body, timeout=30
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(submit, range(TRIPS)))

    deadline = time.monotonic() + 240
    trips: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(trips) < TRIPS:
        for trip_id in ids:
            if trip_id not in trips:
                trip = httpx2.get(
                    f"{first.base_url}/v1/trips/{trip_id}", headers=api_headers(first), timeout=10
                ).json()
                if trip["status"] in ("planned", "partial", "over_budget", "failed", "needs_input"):
                    trips[trip_id] = trip
        time.sleep(0.5)
    assert len(trips) == TRIPS, f"{TRIPS - len(trips)} trips unfinished"
    assert {t["status"] for t in trips.values()} == {"planned"}, [
        (t["status"], t["problems"], t["termination"]) for t in trips.values() if t["status"] != "planned"
    ]

    # Both processes did some of the work (a trip records the process that ran it).
    processes = collections.Counter(t["worker"] for t in trips.values())
    assert len(processes) == 2, processes
    for trip_id in ids:
        events = read_sse(f"{second.base_url}/v1/trips/{trip_id}/events", auth=api_headers(second))
        kinds = [e.event for e in events]
        assert kinds.count("trip.settled") == 1
        assert kinds.count("router.decided") == 1
        assert kinds.count("step.finished") == len(trips[trip_id]["steps"])


@ON_BOTH
async def test_an_exception_in_a_job_fails_the_trip_at_once_with_reason_error(
    trip_api: ServiceProcess, redis: RedisClient
) -> None:
    """A job that raises is not delivered again and again (a deterministic failure would only
    repeat until `no_progress`, minutes later): the trip is `failed` with reason `error` at once,
    after compensating the bookings it holds; the job leaves the queue."""
    trip_id = uuid.uuid4().hex
    # The trip records its book job; the job is queued with that id once the trip is stored.
    seconds, micros = await redis.time()
    job_id = f"{seconds * 1000 + micros // 1000 + 1000}-0"
    start = days_ahead(40)
    denver = PlaceRef(code="DEN", city="Denver", country="US", lat=39.86, lon=-104.67, tz="America/Denver")
    created = dt.datetime.now(dt.UTC)
    trip = Trip(
        id=trip_id,
        tenant=SUITE_TENANT,
        status="booking",
        created_at=created,
        updated_at=created,
        request=TripRequest(destination="Denver", start_date=start, days=3, travelers=1),
        resolved=ResolvedTrip(
            kind="full_trip",
            destination=denver,
            start_date=start,
            end_date=start + dt.timedelta(days=2),
            travelers=1,
        ),
        # A flight offer with no slices: the saga names a flight by its first slice, so the job
        # raises IndexError (a bug in the job, not a tool's answer: tool answers are validated).
        itinerary=Itinerary(
            summary="broken",
            days=[],
            flight=FlightOffer(
                offer_id="not-an-offer",
                carrier="Nowhere Air",
                carrier_code="NW",
                cabin="economy",
                slices=[],
                price_per_passenger=0,
                total_price=0,
                seats_left=1,
            ),
            budget=BudgetUse(budget_usd=None, total_usd=0),
        ),
        bookings=[
            BookingRecord(
                kind="hotel",
                booking_id="HB-0000000000-NOPE",
                request_id=f"{trip_id}:book_hotel",
                status="confirmed",
                amount_usd=100,
                description="a booking the compensation must try to undo",
            )
        ],
        jobs={"plan": "0-1", "book": job_id},
    )
    await redis.set(keys.trip(trip_id), trip.model_dump_json())
    await redis.xadd(STREAM, {"trip_id": trip_id, "action": "book"}, id=job_id)

    deadline = time.monotonic() + 30
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        url = f"{trip_api.base_url}/v1/trips/{trip_id}"
        found = httpx2.get(url, headers=api_headers(trip_api), timeout=10).json()
        if found["status"] == "failed":
            break
        await asyncio.sleep(0.2)
    assert found["status"] == "failed", found
    assert found["termination"]["reason"] == "error"
    assert found["termination"]["detail"].startswith("IndexError in the book job")
    assert "not-an-offer" not in found["termination"]["detail"]
    # It compensated first: the hotel booking was asked to be cancelled (the tool server does not
    # know it, so a person has to look).
    assert found["manual_intervention_required"] is True
    events = [
        e.event
        for e in read_sse(f"{trip_api.base_url}/v1/trips/{trip_id}/events", auth=api_headers(trip_api))
    ]
    assert "compensation.failed" in events
    assert events[-1] == "trip.settled"
    assert await redis.xrange(STREAM, min=job_id, max=job_id) == []
    pending: Any = await redis.xpending_range(STREAM, GROUP, min=job_id, max=job_id, count=1)
    assert pending == []
