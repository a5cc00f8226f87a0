"""Recovery paths, end to end: workers killed with SIGKILL mid-trip and taken over by another
process, the lease heartbeat, `no_progress`, compensation that keeps failing, and an uncertain
booking.

The tool servers are this module's own (on a Redis of their own), so the calls they count are
this module's only; each test's orchestrators get a Redis of their own for the queue and the
trips, so no job one test leaves behind is run by the next. Slow steps are made with the fault
injector's `latency_ms`; the tests wait for conditions (a call reached a tool, a step finished),
never for a length of time.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx2
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from tests.helpers import days_ahead, get_trip, spoken, tool_calls, wait_for_trip, worker_pid
from tests.support import (
    Harness,
    RedisServer,
    ServiceProcess,
    api_headers,
    bookings_of,
    orchestrator_env,
    own_tool_servers,
    read_sse,
    wait_until,
)
from waypoint_orchestrator.jobs import GROUP, STREAM

LEASE_SECONDS = "2"


@pytest.fixture(scope="module")
def tools(harness: Harness) -> Iterator[tuple[RedisServer, dict[str, ServiceProcess]]]:
    with own_tool_servers(harness) as fleet:
        yield fleet


@pytest.fixture
async def tool_redis(tools: tuple[RedisServer, dict[str, ServiceProcess]]) -> AsyncIterator[Redis]:
    """The tool servers' Redis, where the bookings are."""
    client = Redis.from_url(tools[0].url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def servers(tools: tuple[RedisServer, dict[str, ServiceProcess]]) -> Iterator[dict[str, ServiceProcess]]:
    """The module's tool servers, with their counts zeroed before the test and faults off after."""
    for service in tools[1].values():
        service.admin("DELETE", "/admin/stats")
    yield tools[1]
    for service in tools[1].values():
        service.admin("PUT", "/admin/faults", {})


Start = Callable[..., ServiceProcess]


@pytest.fixture
def start(servers: dict[str, ServiceProcess], harness: Harness) -> Iterator[Start]:
    """Start orchestrators on a Redis of this test's own; all of them are stopped at the end."""
    state = harness.redis()
    started: list[ServiceProcess] = []

    def orchestrator(**env: str) -> ServiceProcess:
        settings = {
            "WAYPOINT_JOB_LEASE_SECONDS": LEASE_SECONDS,
            # Slow steps are slow on purpose: no attempt times out and is retried meanwhile.
            "WAYPOINT_TOOL_TIMEOUT_SECONDS": "90",
            **env,
        }
        service = harness.start("waypoint-orchestrator", orchestrator_env(state.url, servers, **settings))
        started.append(service)
        return service

    yield orchestrator
    for service in started:
        service.stop()
    state.stop()


def post(service: ServiceProcess, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = httpx2.post(
        f"{service.base_url}/v1/trips", json=body, headers=api_headers(service, headers), timeout=90
    )
    assert response.status_code in (200, 202), response.text
    trip: dict[str, Any] = response.json()
    return trip


def calls(servers: dict[str, ServiceProcess]) -> dict[str, int]:
    """Every call that reached a tool of the module's servers, by tool."""
    found: dict[str, int] = {}
    for service in servers.values():
        found.update(tool_calls(service))
    return found


def kill(service: ServiceProcess) -> None:
    """SIGKILL: the process gets no chance to hand its job back or to finish a step."""
    service.proc.kill()
    service.proc.wait(timeout=10)


def step_status(trip: dict[str, Any]) -> dict[str, str]:
    return {s["id"]: s["status"] for s in trip["steps"]}


def event_counts(service: ServiceProcess, trip_id: str) -> collections.Counter[tuple[str, str]]:
    """(event, step) pairs of the trip's whole event log ("" for events of no step)."""
    counted: collections.Counter[tuple[str, str]] = collections.Counter()
    for event in read_sse(f"{service.base_url}/v1/trips/{trip_id}/events", auth=api_headers(service)):
        counted[(event.event, str(json.loads(event.data).get("step", "")))] += 1
    return counted


def trip_query(offset: int, *, dinner: bool = True) -> str:
    wish = " with a fancy dinner" if dinner else ""
    return f"3-day trip to Denver from Boston on {spoken(days_ahead(offset))} for two{wish}, budget $6000"


# -- takeover after a crash -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "slow_tool"),
    [("planning", "search_hotels"), ("booking", "book_hotel")],
)
async def test_a_worker_killed_mid_trip_is_taken_over_and_finished_steps_are_not_run_again(
    start: Start, servers: dict[str, ServiceProcess], tool_redis: Redis, phase: str, slow_tool: str
) -> None:
    """Two orchestrators; the one running the trip is killed (SIGKILL) while a slow step is in
    flight, after the others finished. The other process takes the job over once the lease runs
    out and finishes the trip from the checkpoints: at the tool servers, every finished step was
    called once, only the interrupted one twice, and (booking) nothing is booked twice."""
    booking = phase == "booking"
    servers["mcp-hotels"].admin("PUT", "/admin/faults", {slow_tool: {"latency_ms": 3000}})
    first, second = start(WAYPOINT_WORKERS="2"), start(WAYPOINT_WORKERS="2")
    trip_id = post(first, {"query": trip_query(35 if booking else 36), "book": booking})["id"]

    searches = ("search_flights", "search_hotels", "get_forecast", "search_restaurants_1")
    finished_first = [s for s in searches if s != slow_tool] + (["book_flight"] if booking else [])

    def interrupted_step_in_flight() -> bool:
        trip = get_trip(first, trip_id)
        done = step_status(trip)
        return calls(servers).get(slow_tool, 0) == 1 and all(
            done.get(s) == "succeeded" for s in finished_first
        )

    try:
        wait_until(interrupted_step_in_flight, 60, f"{slow_tool} in flight after the other steps")
    except TimeoutError:
        trip = get_trip(first, trip_id)
        state = (trip["status"], trip["termination"], step_status(trip), calls(servers))
        raise AssertionError(f"{slow_tool} never in flight after the other steps: {state}") from None
    trip = get_trip(first, trip_id)
    runner, survivor = (first, second) if worker_pid(trip) == first.proc.pid else (second, first)
    assert worker_pid(trip) == runner.proc.pid
    kill(runner)

    trip = wait_for_trip(survivor, trip_id, timeout=120)
    assert trip["status"] == ("booked" if booking else "planned"), trip["termination"]
    # Only the other process was left to finish it (while planning, the trip records that).
    assert runner.proc.poll() is not None
    if not booking:
        assert worker_pid(trip) == survivor.proc.pid

    made = calls(servers)
    expected = {"search_flights": 1, "search_hotels": 1, "get_forecast": 1, "search_restaurants": 1}
    if booking:
        expected |= {"book_flight": 1, "book_hotel": 1, "reserve_table": 1}
    expected[slow_tool] = 2  # the interrupted call, and the resumed job's
    assert made == expected
    counted = event_counts(survivor, trip_id)
    for step in finished_first:
        assert counted[("step.finished", step)] == 1, step
    assert counted[("step.started", slow_tool)] == 2
    assert counted[("step.finished", slow_tool)] == 1
    assert counted[("trip.settled", "")] == 1
    if booking:
        assert await bookings_of(tool_redis, trip_id) == {
            "flight": ["confirmed"],
            "hotel": ["confirmed"],
            "dinner": ["confirmed"],
        }
        assert sorted(b["kind"] for b in trip["bookings"]) == ["dinner", "flight", "hotel"]


# -- the lease heartbeat ------------------------------------------------------------------------------


def test_the_heartbeat_keeps_a_slow_steps_job_from_being_taken_over(
    start: Start, servers: dict[str, ServiceProcess]
) -> None:
    """A step that takes more than three leases: the running worker renews the lease, so neither
    the other process nor another worker of its own takes the job over; it is delivered once and
    every step runs once."""
    servers["mcp-hotels"].admin("PUT", "/admin/faults", {"search_hotels": {"latency_ms": 7000}})
    first, _ = start(WAYPOINT_WORKERS="2"), start(WAYPOINT_WORKERS="2")
    trip = post(first, {"query": trip_query(37)})
    trip_id = trip["id"]
    queue = SyncRedis.from_url(first.env["REDIS_URL"], decode_responses=True)
    deliveries: list[int] = []
    workers: set[int] = set()
    deadline = time.monotonic() + 90
    try:
        while trip["status"] not in ("planned", "partial", "failed", "over_budget", "needs_input"):
            assert time.monotonic() < deadline, f"trip still {trip['status']}"
            # This test's Redis holds this trip's job only.
            pending: Any = queue.xpending_range(STREAM, GROUP, min="-", max="+", count=10)
            deliveries += [int(p["times_delivered"]) for p in pending]
            if trip.get("worker"):
                workers.add(worker_pid(trip))
            time.sleep(0.2)
            trip = get_trip(first, trip_id)
    finally:
        queue.close()
    assert trip["status"] == "planned", trip["termination"]
    # The job was pending (and watched) for the whole slow step: one delivery throughout.
    assert len(deliveries) >= 3
    assert set(deliveries) == {1}
    assert workers == {worker_pid(trip)}
    assert calls(servers) == {
        "search_flights": 1,
        "search_hotels": 1,
        "get_forecast": 1,
        "search_restaurants": 1,
    }
    counted = event_counts(first, trip_id)
    assert counted[("step.started", "search_hotels")] == 1
    assert counted[("router.decided", "")] == 1


# -- no progress ----------------------------------------------------------------------------------


def test_a_job_whose_worker_dies_every_time_ends_no_progress(
    start: Start, servers: dict[str, ServiceProcess]
) -> None:
    """The worker running the trip is killed three times in the middle of a step that never
    finishes in time; the fourth delivery ends the trip `failed` with reason `no_progress`
    instead of running it again. The searches that finished the first time were not repeated."""
    servers["mcp-hotels"].admin("PUT", "/admin/faults", {"search_hotels": {"latency_ms": 60_000}})
    api = start(WAYPOINT_WORKERS="0")
    trip_id = post(api, {"query": trip_query(38)})["id"]
    for delivery in (1, 2, 3):
        worker = start(WAYPOINT_WORKERS="1")

        def running_here(worker: ServiceProcess = worker, delivery: int = delivery) -> bool:
            trip = get_trip(api, trip_id)
            # The other searches finished (and were checkpointed) first: killing the worker while
            # one is still in flight would make the next delivery repeat it, rightly.
            succeeded = {s["id"] for s in trip["steps"] if s["status"] == "succeeded"}
            others_done = {"search_flights", "get_forecast", "search_restaurants_1"} <= succeeded
            return (
                calls(servers).get("search_hotels", 0) == delivery
                and worker_pid(trip) == worker.proc.pid
                and others_done
            )

        wait_until(running_here, 60, f"delivery {delivery} in search_hotels")
        kill(worker)
    start(WAYPOINT_WORKERS="1")  # the fourth delivery's worker
    trip = wait_for_trip(api, trip_id, timeout=60)
    assert trip["status"] == "failed", trip["termination"]
    assert trip["termination"]["reason"] == "no_progress"
    assert trip["termination"]["detail"] == "the plan job was delivered 4 times without finishing"
    assert trip["manual_intervention_required"] is False
    # Three deliveries reached the slow search; the fourth ran nothing.
    assert calls(servers) == {
        "search_flights": 1,
        "search_hotels": 3,
        "get_forecast": 1,
        "search_restaurants": 1,
    }


# -- compensation ------------------------------------------------------------------------------------


async def test_a_compensation_that_keeps_failing_needs_manual_intervention(
    start: Start, servers: dict[str, ServiceProcess], tool_redis: Redis
) -> None:
    """The hotel refuses the booking, and cancelling the flight fails every time: the trip is
    `failed`, flagged `manual_intervention_required`, says which booking to check, and the flight
    is still confirmed at the tool server (nothing claims it was undone)."""
    servers["mcp-hotels"].admin("PUT", "/admin/faults", {"book_hotel": {"reject_rate": 1.0}})
    servers["mcp-flights"].admin("PUT", "/admin/faults", {"cancel_flight_booking": {"error_rate": 1.0}})
    orchestrator = start()
    trip = post(orchestrator, {"query": trip_query(39, dinner=False), "book": True}, Prefer="wait=60")
    assert trip["status"] == "failed", trip
    assert trip["termination"]["reason"] == "booking_failed"
    assert trip["manual_intervention_required"] is True
    assert trip["termination"]["detail"].endswith("manual intervention needed")
    (flight,) = trip["bookings"]
    assert (flight["kind"], flight["status"]) == ("flight", "confirmed")
    (manual,) = [w for w in trip["warnings"] if w.startswith("manual intervention needed")]
    assert f"flight booking {flight['booking_id']} could not be cancelled" in manual
    assert await bookings_of(tool_redis, trip["id"]) == {"flight": ["confirmed"]}
    made = calls(servers)
    assert made["book_hotel"] == 1  # a refusal is final
    assert made["cancel_flight_booking"] > 1  # retried before giving up
    counted = event_counts(orchestrator, trip["id"])
    assert counted[("compensation.failed", "")] == 1
    assert counted[("compensation.done", "")] == 0


async def test_a_booking_whose_answer_was_lost_is_found_and_cancelled(
    start: Start, servers: dict[str, ServiceProcess], tool_redis: Redis
) -> None:
    """Every answer of `book_hotel` is lost after the booking committed: the saga cannot know from
    the booking call whether the hotel is booked. It must find out (the booking exists), cancel it
    with the flight, and leave nothing confirmed and nobody to call."""
    servers["mcp-hotels"].admin("PUT", "/admin/faults", {"book_hotel": {"lose_response_rate": 1.0}})
    orchestrator = start()
    trip = post(orchestrator, {"query": trip_query(40, dinner=False), "book": True}, Prefer="wait=60")
    assert trip["status"] == "failed", trip
    assert trip["termination"]["reason"] == "booking_failed"
    in_redis = await bookings_of(tool_redis, trip["id"])
    assert in_redis == {"flight": ["cancelled"], "hotel": ["cancelled"]}, (in_redis, trip["warnings"])
    assert sorted((b["kind"], b["status"]) for b in trip["bookings"]) == [
        ("flight", "cancelled"),
        ("hotel", "cancelled"),
    ]
    assert trip["manual_intervention_required"] is False, trip["warnings"]
