"""A request answered 5xx has stored nothing, or its retry with the same Idempotency-Key returns
the trip it stored; no trip is left queued without its job; a job without its trip is dropped.

Redis is made unreachable at the exact command that matters (a proxy between the orchestrator
and its redis-server cuts every connection there): just before the trip is created, just after
(it ran, the reply is lost), and around the update that confirms a trip.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
import pytest
from redis.asyncio import Redis

from tests.helpers import days_ahead, spoken
from tests.redisproxy import RedisProxy
from tests.support import Harness, RedisServer, ServiceProcess, bookings_of, orchestrator_env, suite_key
from waypoint_common import keys
from waypoint_orchestrator import store as trip_store
from waypoint_orchestrator.jobs import STREAM
from waypoint_orchestrator.models import Trip, TripRequest
from waypoint_orchestrator.store import _APPEND, TripStore

# Planned without a tool call: the dates are missing, so the trip ends `needs_input`.
NO_DATES = {"query": "hiking trip to Patagonia from Seattle, under $3000 for two"}
SETTLED = {"needs_input", "planned", "booked", "partial", "over_budget", "failed", "cancelled"}


@dataclass
class Fleet:
    orchestrator: ServiceProcess
    proxy: RedisProxy
    redis_server: RedisServer

    def headers(self, **extra: str) -> dict[str, str]:
        """The suite's API key, made on the real Redis (not through the proxy that the test cuts)."""
        return {**suite_key(self.redis_server.url).headers, **extra}

    def post(self, body: dict[str, Any], **extra: str) -> httpx2.Response:
        return httpx2.post(
            f"{self.orchestrator.base_url}/v1/trips", json=body, headers=self.headers(**extra), timeout=60
        )

    def get(self, trip_id: str) -> httpx2.Response:
        return httpx2.get(
            f"{self.orchestrator.base_url}/v1/trips/{trip_id}", headers=self.headers(), timeout=30
        )

    def confirm(self, trip_id: str) -> httpx2.Response:
        return httpx2.post(
            f"{self.orchestrator.base_url}/v1/trips/{trip_id}/confirm", headers=self.headers(), timeout=60
        )


@pytest.fixture(scope="module")
def fleet(servers: dict[str, ServiceProcess], harness: Harness) -> Iterator[Fleet]:
    """An orchestrator whose Redis sits behind a proxy the tests cut."""
    state = harness.redis()
    proxy = RedisProxy(state.port)
    # A short job lease: a job handed to a worker whose reply the cut lost is taken over soon.
    env = orchestrator_env(proxy.url, servers, WAYPOINT_WORKERS="2", WAYPOINT_JOB_LEASE_SECONDS="5")
    service = harness.start("waypoint-orchestrator", env)
    suite_key(state.url)  # the API key exists before any test cuts the proxy
    yield Fleet(service, proxy, state)
    service.stop()
    proxy.close()
    state.stop()


@pytest.fixture
async def state(fleet: Fleet) -> AsyncIterator[Redis]:
    """A client of the fleet's redis-server itself (not through the proxy)."""
    client = Redis.from_url(fleet.redis_server.url, decode_responses=True)
    fleet.proxy.wait_up()
    yield client
    fleet.proxy.disarm()
    await client.aclose()


async def trip_ids(redis: Redis) -> set[str]:
    return {key[len("{trip:") : -1] async for key in redis.scan_iter(match="{trip:*}", count=1000)}


def retry_until_answered(send: Any, timeout: float = 45) -> httpx2.Response:
    """Send again while the answer is 503 (Redis unreachable) or 409 (the key is in flight)."""
    deadline = time.monotonic() + timeout
    while True:
        response: httpx2.Response = send()
        if response.status_code not in (409, 503) or time.monotonic() > deadline:
            return response
        time.sleep(min(1.0, float(response.headers.get("Retry-After", "1"))))


def assert_unavailable(response: httpx2.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["Retry-After"]


async def wait_settled_and_queue_empty(fleet: Fleet, redis: Redis, within: float = 60) -> None:
    """Every trip in this Redis settles (none is stuck `queued` without its job), and no job is
    left in the queue, pending or not."""
    deadline = time.monotonic() + within
    statuses: dict[str, str] = {}
    left: int = -1
    while time.monotonic() < deadline:
        statuses = {}
        for trip_id in await trip_ids(redis):
            raw = await redis.get(TripStore.key(trip_id))
            if raw is not None:
                statuses[trip_id] = Trip.model_validate_json(raw).status
        left = int(await redis.xlen(STREAM))
        if set(statuses.values()) <= SETTLED and left == 0:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"unsettled trips or jobs left: {statuses}, {left} job(s) in the queue")


# Where Redis goes away in `POST /v1/trips`: (what identifies the command, cut before it reaches
# Redis or after it ran with the reply lost, seconds Redis stays unreachable).
PLAN_JOB = (b"XADD", keys.JOBS.encode(), b"plan")
CREATE = (b"trip.accepted",)  # in the command that creates the trip, whatever its form
KEYED_CUTS = {
    "plan-job-queued-reply-lost": (PLAN_JOB, "after", 4.0),
    "before-the-create": (CREATE, "before", 4.0),
    # Longer than the API tries to learn whether the create ran: it cannot know, answers 503.
    "create-ran-reply-lost": (CREATE, "after", 6.0),
}
KEYLESS_CUTS = {
    "before-the-plan-job": (PLAN_JOB, "before", 4.0),
    "plan-job-queued-reply-lost": (PLAN_JOB, "after", 4.0),
    "before-the-create": (CREATE, "before", 4.0),
}


@pytest.mark.parametrize("cut", KEYED_CUTS.values(), ids=KEYED_CUTS.keys())
async def test_a_5xx_with_a_key_stored_nothing_or_its_retry_returns_the_stored_trip(
    fleet: Fleet, state: Redis, cut: tuple[tuple[bytes, ...], Literal["before", "after"], float]
) -> None:
    needles, when, outage = cut
    before = await trip_ids(state)
    key = f"cut-{uuid.uuid4()}"
    fired = fleet.proxy.trap(*needles, when=when, outage=outage)
    first = fleet.post(NO_DATES, **{"Idempotency-Key": key})
    assert fired.is_set()
    assert_unavailable(first)
    stored = await trip_ids(state) - before
    assert len(stored) <= 1

    retry = retry_until_answered(lambda: fleet.post(NO_DATES, **{"Idempotency-Key": key}))
    assert retry.status_code == 202, retry.text
    trip_id = retry.json()["id"]
    if stored:
        # The 5xx came after the write: the retry is answered with the trip it stored.
        assert {trip_id} == stored
        assert retry.headers["Idempotent-Replayed"] == "true"
    again = fleet.post(NO_DATES, **{"Idempotency-Key": key})
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == trip_id
    await wait_settled_and_queue_empty(fleet, state)
    assert await trip_ids(state) - before == {trip_id}, "one trip for the key, never two"
    assert fleet.get(trip_id).json()["status"] == "needs_input"


@pytest.mark.parametrize("cut", KEYLESS_CUTS.values(), ids=KEYLESS_CUTS.keys())
async def test_a_5xx_without_a_key_stored_nothing(
    fleet: Fleet, state: Redis, cut: tuple[tuple[bytes, ...], Literal["before", "after"], float]
) -> None:
    needles, when, outage = cut
    before = await trip_ids(state)
    fired = fleet.proxy.trap(*needles, when=when, outage=outage)
    first = fleet.post(NO_DATES)
    assert fired.is_set()
    assert_unavailable(first)
    assert await trip_ids(state) == before, "a 5xx stored a trip"
    # A plan job queued before the create failed is dropped: a worker waits for its trip, then
    # tombstones the id, so the trip can never appear later.
    await wait_settled_and_queue_empty(fleet, state)
    assert await trip_ids(state) == before, "a 5xx stored a trip"


async def test_a_lost_reply_to_the_create_is_settled_before_answering(fleet: Fleet, state: Redis) -> None:
    before = await trip_ids(state)
    fired = fleet.proxy.trap(*CREATE, when="after", outage=1)
    response = fleet.post(NO_DATES)
    assert fired.is_set()
    assert response.status_code == 202, response.text
    assert await trip_ids(state) - before == {response.json()["id"]}
    await wait_settled_and_queue_empty(fleet, state)


async def test_a_worker_tombstones_a_trip_never_created_and_the_late_create_is_refused(
    fleet: Fleet, state: Redis
) -> None:
    trip_id = uuid.uuid4().hex
    job_id = await state.xadd(STREAM, {"trip_id": trip_id, "action": "plan"})
    for _ in range(150):
        if await state.exists(TripStore.tombstone_key(trip_id)):
            break
        await asyncio.sleep(0.2)
    assert await state.exists(TripStore.tombstone_key(trip_id)), "no tombstone"
    assert 0 < await state.ttl(TripStore.tombstone_key(trip_id)) <= trip_store.TOMBSTONE_TTL_SECONDS
    await wait_settled_and_queue_empty(fleet, state)
    assert await state.xrange(STREAM, min=job_id, max=job_id) == []

    now = trip_store.now()
    late = Trip(
        id=trip_id,
        tenant="public",
        status="queued",
        created_at=now,
        updated_at=now,
        request=TripRequest.model_validate(NO_DATES),
        jobs={"plan": str(job_id)},
    )
    assert await TripStore(state).create(late, ("trip.accepted", {})) == "refused"
    assert not await state.exists(TripStore.key(trip_id))
    assert fleet.get(trip_id).status_code == 404


async def stored_trip(redis: Redis, trip_id: str) -> Trip:
    raw = await redis.get(TripStore.key(trip_id))
    assert raw is not None
    return Trip.model_validate_json(raw)


def planned_trip(fleet: Fleet) -> dict[str, Any]:
    response = fleet.post(
        {"query": f"3-day trip to Denver from Chicago on {spoken(days_ahead(33))} for one, budget $4000"},
        Prefer="wait=60",
    )
    assert response.status_code == 200, response.text
    trip: dict[str, Any] = response.json()
    assert trip["status"] == "planned", trip
    return trip


def wait_status(fleet: Fleet, trip_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    trip: dict[str, Any] = {}
    while time.monotonic() < deadline:
        trip = fleet.get(trip_id).json()
        if trip["status"] in statuses:
            return trip
        time.sleep(0.3)
    raise AssertionError(f"trip {trip_id} still {trip.get('status')}")


BOOK_JOB = (b"XADD", keys.JOBS.encode(), b"book")
# The trip change that records the confirm: the store's compare-and-set script.
CONFIRM = (b"EVALSHA", hashlib.sha1(_APPEND.encode()).hexdigest().encode(), b"trip.confirmed")
CONFIRM_CUTS = {
    "before-the-book-job": (BOOK_JOB, "before", 4.0),
    "book-job-queued-reply-lost": (BOOK_JOB, "after", 4.0),
    "before-the-update": (CONFIRM, "before", 4.0),
}


@pytest.mark.parametrize("cut", CONFIRM_CUTS.values(), ids=CONFIRM_CUTS.keys())
async def test_a_confirm_answered_5xx_left_the_trip_unchanged_and_its_retry_books_once(
    fleet: Fleet,
    state: Redis,
    redis: Redis,
    cut: tuple[tuple[bytes, ...], Literal["before", "after"], float],
) -> None:
    needles, when, outage = cut
    trip = planned_trip(fleet)
    fired = fleet.proxy.trap(*needles, when=when, outage=outage)
    first = fleet.confirm(trip["id"])
    assert fired.is_set()
    assert_unavailable(first)
    assert (await stored_trip(state, trip["id"])).status == "planned"
    # A book job queued for the failed confirm is dropped (refused on the trip): it books nothing.
    await wait_settled_and_queue_empty(fleet, state)
    unchanged = await stored_trip(state, trip["id"])
    assert unchanged.status == "planned"
    assert "book" not in unchanged.jobs
    assert await bookings_of(redis, trip["id"]) == {}

    retry = retry_until_answered(lambda: fleet.confirm(trip["id"]))
    assert retry.status_code == 202, retry.text
    booked = wait_status(fleet, trip["id"], SETTLED)
    assert booked["status"] == "booked", booked["termination"]
    assert await bookings_of(redis, trip["id"]) == {"flight": ["confirmed"], "hotel": ["confirmed"]}
    await wait_settled_and_queue_empty(fleet, state)


async def test_a_confirm_whose_reply_is_lost_is_settled_and_answered_202(
    fleet: Fleet, state: Redis, redis: Redis
) -> None:
    trip = planned_trip(fleet)
    fired = fleet.proxy.trap(*CONFIRM, when="after", outage=1)
    response = fleet.confirm(trip["id"])
    assert fired.is_set()
    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("booking", "booked")
    booked = wait_status(fleet, trip["id"], SETTLED)
    assert booked["status"] == "booked", booked["termination"]
    assert await bookings_of(redis, trip["id"]) == {"flight": ["confirmed"], "hotel": ["confirmed"]}
    await wait_settled_and_queue_empty(fleet, state)
