"""The trip state machine: every legal move works, every illegal one is refused (also by the
store), and `partial` is a fact about the steps, not a warning's wording."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any, get_args

import pytest

from tests.conftest import BACKENDS
from tests.helpers import new_trip, plan_and_wait
from tests.support import ServiceProcess
from waypoint_common.connections import RedisClient
from waypoint_orchestrator import states
from waypoint_orchestrator.models import SETTLED_STATUSES, BookingRecord, Trip, TripStatus
from waypoint_orchestrator.store import TripStore

ALL: tuple[TripStatus, ...] = get_args(TripStatus)


def enter(trip: Trip, target: TripStatus) -> list[states.Event]:
    if target == "queued":  # where a trip starts: nothing moves into it
        states.check(trip.id, trip.status, target)
        return [("trip.status", {"status": trip.status})]
    if target in states.PASSING:
        return states.move(trip, target)
    return states.settle(trip, target, "done")


def test_the_table_names_every_state_and_only_states() -> None:
    assert set(states.TRANSITIONS) == set(ALL)
    for targets in states.TRANSITIONS.values():
        assert targets <= set(ALL)
    assert states.TRANSITIONS["cancelled"] == frozenset()  # the end
    # Every state but the start can be reached, and every state can reach `cancelled` or is it.
    reachable = set().union(*states.TRANSITIONS.values())
    assert reachable == set(ALL) - {"queued"}
    assert all(s == "cancelled" or "cancelled" in states.TRANSITIONS[s] for s in ALL)


@pytest.mark.parametrize(("source", "target"), list(itertools.product(ALL, ALL)))
def test_each_move_is_taken_or_refused_as_the_table_says(source: TripStatus, target: TripStatus) -> None:
    trip = new_trip(source)
    legal = source == target or target in states.TRANSITIONS[source]
    if not legal:
        with pytest.raises(states.IllegalTransition):
            enter(trip, target)
        assert trip.status == source
        return
    events = enter(trip, target)
    assert trip.status == target
    assert events[0] == ("trip.status", {"status": target})
    if target in SETTLED_STATUSES:
        assert trip.termination is not None
        assert events[-1][0] == "trip.settled"
    else:
        assert [kind for kind, _ in events] == ["trip.status"]


def test_move_and_settle_are_not_interchangeable() -> None:
    with pytest.raises(ValueError, match="settled"):
        states.move(new_trip("running"), "planned")
    with pytest.raises(ValueError, match="not a settled"):
        states.settle(new_trip("queued"), "running", "done")


def test_a_cancel_that_came_in_wins_unless_bookings_are_held() -> None:
    trip = new_trip("running", cancel_requested=True)
    states.settle(trip, "planned", "done")
    assert trip.status == "cancelled"
    assert trip.termination is not None
    assert trip.termination.reason == "cancelled"
    booked = new_trip(
        "booking",
        cancel_requested=True,
        bookings=[
            BookingRecord(
                kind="flight",
                booking_id="FB-x",
                request_id="t:book_flight",
                status="confirmed",
                amount_usd=1.0,
                description="a flight",
            )
        ],
    )
    states.settle(booked, "booked", "done")
    assert booked.status == "booked"  # its bookings must be undone first (by the saga)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_store_refuses_an_illegal_change_and_keeps_the_trip(redis: RedisClient) -> None:
    store = TripStore(redis)
    trip = new_trip("queued")
    assert await store.create(trip, ("trip.accepted", {})) == "created"

    def skip_to_booked(t: Trip) -> list[states.Event]:
        t.status = "booked"  # not through the table: the store must refuse it
        return [("trip.status", {"status": "booked"})]

    with pytest.raises(states.IllegalTransition):
        await store.update(trip.id, skip_to_booked)
    stored = await store.get(trip.id)
    assert stored.status == "queued"
    assert [e.type for e in await store.events(trip.id)] == ["trip.accepted"]

    with pytest.raises(states.IllegalTransition):
        await store.create(new_trip("planned"), ("trip.accepted", {}))


@pytest.mark.parametrize(
    ("body", "note"),
    [
        (
            {"kind": "flights_only", "origin": "SEA", "destination": "Denver", "travelers": 1},
            "no return date",
        ),
        ({"kind": "hotels_only", "destination": "Denver", "travelers": 2}, "no check-out date"),
    ],
    ids=["one-way flight", "hotel without a length"],
)
def test_a_trip_whose_notes_start_with_no_is_planned_not_partial(
    orchestrator: ServiceProcess, body: dict[str, Any], note: str
) -> None:
    start = dt.date.today() + dt.timedelta(days=40)
    trip = plan_and_wait(orchestrator, {**body, "start_date": start.isoformat(), "budget": {"amount": 5000}})
    assert any(w.startswith(note) for w in trip["warnings"]), trip["warnings"]
    assert [s["status"] for s in trip["steps"]] == ["succeeded"] * len(trip["steps"])
    assert not any(s["degraded"] for s in trip["steps"])
    assert trip["status"] == "planned", trip["termination"]
