"""Waiting for a trip takes no Redis connection per waiter: one subscriber per process fans out.

500 held event streams and 100 `Prefer: wait` requests on one orchestrator while other requests
answer as usual and nothing is 503; streams that reconnect with `Last-Event-ID` get every event
once, in order; a lost notification only delays a waiter (the re-check timer finds the event);
the subscriber comes back after its connection is killed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import orjson
import pytest
from redis.asyncio import Redis

from tests.helpers import month_ahead
from tests.support import Harness, RedisServer, ServiceProcess, api_headers, orchestrator_env, suite_key
from waypoint_orchestrator import states
from waypoint_orchestrator.events import CHANNEL
from waypoint_orchestrator.models import Termination, Trip
from waypoint_orchestrator.quotas import WaitSlots
from waypoint_orchestrator.store import TripStore

NO_DATES = {"query": "hiking trip to Patagonia from Seattle, under $3000 for two"}
VIENNA = (
    f"4-day trip to Vienna from London in {month_ahead(60)[0]} for two with one fancy dinner, budget 3000 EUR"
)
STREAMS = 500
WAITS = 100
STREAMS_PER_TRIP = 5
POOL = 64  # connect_redis's max_connections


def headers(service: ServiceProcess, **extra: str) -> dict[str, str]:
    """Every request's headers: the suite's API key on the service's Redis, and `extra`."""
    return api_headers(service, extra)


@dataclass
class SseEvent:
    id: str
    event: str
    data: dict[str, Any]


def read_events(
    service: ServiceProcess,
    trip_id: str,
    *,
    last_event_id: str | None = None,
    limit: int | None = None,
    timeout: float = 90,
) -> list[SseEvent]:
    """A trip's event stream until it ends (or `limit` events: then the client hangs up)."""
    extra = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        extra["Last-Event-ID"] = last_event_id
    events: list[SseEvent] = []
    fields: dict[str, str] = {}
    url = f"{service.base_url}/v1/trips/{trip_id}/events"
    with httpx2.stream("GET", url, headers=headers(service, **extra), timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line == "":
                if "data" in fields:
                    events.append(SseEvent(fields.get("id", ""), fields["event"], json.loads(fields["data"])))
                    if limit is not None and len(events) >= limit:
                        return events
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
    return events


@dataclass
class ApiOnly:
    """An orchestrator without workers (trips stay queued until a worker process comes)."""

    service: ServiceProcess
    redis_server: RedisServer
    env: dict[str, str]


@pytest.fixture(scope="module")
def api_only(servers: dict[str, ServiceProcess], harness: Harness) -> Iterator[ApiOnly]:
    state = harness.redis()
    env = orchestrator_env(state.url, servers, WAYPOINT_WORKERS="0")
    service = harness.start("waypoint-orchestrator", env)
    yield ApiOnly(service, state, env)
    service.stop()
    state.stop()


@pytest.fixture
async def state(api_only: ApiOnly) -> AsyncIterator[Redis]:
    client = Redis.from_url(api_only.redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


async def slots_held(state: Redis, api_only: ApiOnly) -> int:
    """Held-request slots (open streams, waiting requests) of the suite's key on this Redis."""
    return await WaitSlots(state).held(suite_key(api_only.redis_server.url).id)


async def wait_for_slots(state: Redis, api_only: ApiOnly, count: int) -> None:
    for _ in range(300):
        if await slots_held(state, api_only) == count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{await slots_held(state, api_only)} slots held, not {count}")


async def redis_clients(redis: Redis) -> list[dict[str, Any]]:
    """Every connection on the test's redis-server but this test's own."""
    me = await redis.client_id()
    return [c for c in await redis.client_list() if int(c["id"]) != me]


async def follow(
    client: httpx2.AsyncClient, auth: dict[str, str], trip_id: str, opened: list[str]
) -> list[str]:
    """Read a trip's stream to its end; note when its first event came."""
    kinds: list[str] = []
    async with client.stream("GET", f"/v1/trips/{trip_id}/events", headers=auth) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kinds.append(line.partition(":")[2].strip())
                if len(kinds) == 1:
                    opened.append(trip_id)
    return kinds


async def test_500_streams_and_100_waits_hold_no_pooled_connection_and_nothing_is_503(
    api_only: ApiOnly, state: Redis, servers: dict[str, ServiceProcess], harness: Harness
) -> None:
    limits = httpx2.Limits(max_connections=STREAMS + WAITS + 50, max_keepalive_connections=50)
    async with httpx2.AsyncClient(
        base_url=api_only.service.base_url, timeout=httpx2.Timeout(150), limits=limits
    ) as client:

        async def post(**extra: str) -> httpx2.Response:
            return await client.post("/v1/trips", json=NO_DATES, headers=headers(api_only.service, **extra))

        created = await asyncio.gather(*(post() for _ in range(STREAMS // STREAMS_PER_TRIP)))
        assert {r.status_code for r in created} == {202}
        followed = [r.json()["id"] for r in created]

        opened: list[str] = []
        streams = [
            asyncio.create_task(follow(client, headers(api_only.service), trip_id, opened))
            for trip_id in followed
            for _ in range(STREAMS_PER_TRIP)
        ]
        for _ in range(600):
            if len(opened) == STREAMS or any(s.done() for s in streams):
                break
            await asyncio.sleep(0.1)
        assert not [s.exception() for s in streams if s.done()], "a stream ended early"
        assert len(opened) == STREAMS, f"{len(opened)} of {STREAMS} streams opened"

        held_before = await slots_held(state, api_only)
        waits = [asyncio.create_task(post(Prefer="wait=60")) for _ in range(WAITS)]
        # Every wait is in (it holds its slot) before anything else is asked.
        for _ in range(600):
            if await slots_held(state, api_only) == held_before + WAITS or any(w.done() for w in waits):
                break
            await asyncio.sleep(0.1)
        assert not [w for w in waits if w.done()], "a Prefer: wait request was answered early"
        assert await slots_held(state, api_only) == held_before + WAITS

        # Meanwhile other requests answer as usual.
        for trip_id in followed[:10]:
            response = await client.get(f"/v1/trips/{trip_id}", headers=headers(api_only.service))
            assert response.status_code == 200, response.text
        extra = await asyncio.gather(*(post() for _ in range(10)))
        assert {r.status_code for r in extra} == {202}, [r.text for r in extra]

        # 600 waiters, and no Redis connection is held for any of them: nobody is blocked in a
        # read, the process has one subscriber, and the connections are the pool's (at most 64,
        # used for moments), not one per waiter.
        for _ in range(5):
            connections = await redis_clients(state)
            blocked = [c for c in connections if "b" in c.get("flags", "") or c.get("cmd") == "xread"]
            assert not blocked, blocked
            assert len([c for c in connections if int(c.get("sub", 0)) > 0]) == 1
            assert len(connections) <= POOL + 1, f"{len(connections)} Redis connections for 600 waiters"
            await asyncio.sleep(0.5)

        # A worker process on the same Redis runs the trips; its events reach every waiter here.
        worker = await asyncio.to_thread(
            harness.start, "waypoint-orchestrator", {**api_only.env, "WAYPOINT_WORKERS": "4"}
        )
        try:
            answers = await asyncio.gather(*waits)
            followed_kinds = await asyncio.wait_for(asyncio.gather(*streams), 120)
        finally:
            await asyncio.to_thread(worker.stop)
        statuses = [a.status_code for a in answers]
        assert 503 not in statuses
        assert set(statuses) == {200}, [a.text for a in answers if a.status_code != 200][:3]
        assert {a.json()["status"] for a in answers} == {"needs_input"}
        for kinds in followed_kinds:
            assert kinds[0] == "trip.accepted"
            assert kinds[-1] == "trip.settled"
            assert kinds.count("trip.settled") == 1


def test_streams_that_reconnect_get_every_event_once_in_order(orchestrator: ServiceProcess) -> None:
    response = httpx2.post(
        f"{orchestrator.base_url}/v1/trips",
        json={"query": VIENNA},
        headers=headers(orchestrator),
        timeout=30,
    )
    assert response.status_code == 202, response.text
    trip_id = response.json()["id"]

    def reconnecting(every: int) -> list[SseEvent]:
        """Hang up after `every` events each time, and reconnect with the last id seen."""
        seen: list[SseEvent] = []
        while not seen or seen[-1].event != "trip.settled":
            last = seen[-1].id if seen else None
            seen.extend(read_events(orchestrator, trip_id, last_event_id=last, limit=every))
        return seen

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        live = pool.submit(read_events, orchestrator, trip_id)
        choppy = [pool.submit(reconnecting, every) for every in (1, 3, 7)]
        followed = [live.result(timeout=120)] + [c.result(timeout=120) for c in choppy]
    everything = read_events(orchestrator, trip_id)
    ids = [e.id for e in everything]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert everything[0].event == "trip.accepted"
    assert everything[-1].event == "trip.settled"
    for events in followed:
        assert [e.id for e in events] == ids
        assert [e.event for e in events] == [e.event for e in everything]


async def write_quietly(redis: Redis, trip: Trip, kind: str, data: dict[str, Any]) -> None:
    """Change a trip and append its event the way `TripStore` does, but publish nothing: the
    notification is lost."""
    pipe = redis.pipeline(transaction=True)
    pipe.set(TripStore.key(trip.id), trip.model_dump_json())
    pipe.xadd(TripStore.events_key(trip.id), {"type": kind, "data": orjson.dumps(data).decode()})
    await pipe.execute()


async def test_a_lost_notification_only_delays_a_waiter(api_only: ApiOnly, state: Redis) -> None:
    base = api_only.service.base_url
    created = httpx2.post(f"{base}/v1/trips", json=NO_DATES, headers=headers(api_only.service), timeout=30)
    trip_id = created.json()["id"]
    held_before = await slots_held(state, api_only)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        stream = pool.submit(read_events, api_only.service, trip_id)
        # Cancelling a queued trip leaves it to its worker (there is none here): the request waits.
        waited = pool.submit(
            httpx2.post,
            f"{base}/v1/trips/{trip_id}/cancel",
            headers=headers(api_only.service, Prefer="wait=30"),
            timeout=60,
        )
        # Both are in: the stream is open and the cancel waits, each holding a slot.
        await wait_for_slots(state, api_only, held_before + 2)
        assert not stream.done()
        assert not waited.done()
        raw = await state.get(TripStore.key(trip_id))
        assert raw is not None
        trip = Trip.model_validate_json(raw)
        assert trip.cancel_requested
        trip.status = "cancelled"
        trip.termination = Termination(reason="cancelled", detail="cancelled by the test")
        await write_quietly(state, trip, "trip.settled", {"status": "cancelled", "reason": "cancelled"})
        answer = waited.result(timeout=30)
        events = stream.result(timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "cancelled"
    assert [e.event for e in events] == ["trip.accepted", "trip.cancel_requested", "trip.settled"]


async def test_a_wait_that_runs_out_answers_the_trip_as_it_now_stands(
    api_only: ApiOnly, state: Redis
) -> None:
    """A waiter woken by a status it does not wait for waits on; when its time runs out it answers
    the trip as stored, not as it first read it."""
    base = api_only.service.base_url
    before = {key async for key in state.scan_iter(match="{trip:*}", count=1000)}
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        waited = pool.submit(
            httpx2.post,
            f"{base}/v1/trips",
            json=NO_DATES,
            headers=headers(api_only.service, Prefer="wait=3"),
            timeout=30,
        )
        new: set[str] = set()
        for _ in range(100):
            new = {key async for key in state.scan_iter(match="{trip:*}", count=1000)} - before
            if new:
                break
            await asyncio.sleep(0.05)
        (key,) = new
        trip_id = key.removeprefix("{trip:").removesuffix("}")
        await asyncio.sleep(0.3)  # the request is waiting (no worker here: the trip stays queued)
        assert not waited.done()
        # As a worker would: queued -> running, which is published, and is not a settled status.
        moved = await TripStore(state).update(trip_id, lambda t: states.move(t, "running"))
        assert moved.status == "running"
        answer = waited.result(timeout=30)
    assert answer.status_code == 202, answer.text
    assert answer.headers["Preference-Applied"] == "wait=3"
    assert answer.json()["status"] == "running"


async def test_the_subscriber_comes_back_after_its_connection_is_killed(
    api_only: ApiOnly, state: Redis
) -> None:
    base = api_only.service.base_url
    assert await state.client_kill_filter(_type="pubsub") >= 1

    async def subscribers() -> int:
        return len([c for c in await redis_clients(state) if int(c.get("sub", 0)) > 0])

    for _ in range(100):
        if await subscribers() == 1:
            break
        await asyncio.sleep(0.1)
    assert await subscribers() == 1
    assert int((await state.pubsub_numsub(CHANNEL))[0][1]) == 1

    created = httpx2.post(f"{base}/v1/trips", json=NO_DATES, headers=headers(api_only.service), timeout=30)
    trip_id = created.json()["id"]
    held_before = await slots_held(state, api_only)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        stream = pool.submit(read_events, api_only.service, trip_id, limit=2)
        # The stream is open (it holds its slot) before the change it must be told of.
        await wait_for_slots(state, api_only, held_before + 1)
        cancel = httpx2.post(
            f"{base}/v1/trips/{trip_id}/cancel", headers=headers(api_only.service), timeout=30
        )
        assert cancel.status_code == 202
        events = stream.result(timeout=30)
    assert [e.event for e in events] == ["trip.accepted", "trip.cancel_requested"]
