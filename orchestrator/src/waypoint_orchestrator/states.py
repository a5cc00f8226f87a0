"""A trip's states, the moves allowed between them and the events each move emits, in one table.

Nothing else assigns `Trip.status`: the pipeline and the routes call `move` (to a state the trip
passes through) or `settle` (to a state it rests in, with the reason it stopped), and
`TripStore.update` refuses to store a change of status this table does not allow.

    queued ──> running ──> planned / partial ──> booking ──> booked
       │          │  └──> needs_input, over_budget      │         │
       │          └──> booking (book: true)             │         │
       └─────┴──────────┴───> failed, cancelled <───────┴─────────┘
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waypoint_common.errors import StateError
from waypoint_orchestrator.models import SETTLED_STATUSES, Termination, TerminationReason, Trip, TripStatus

Event = tuple[str, dict[str, Any]]

# From each state, where a trip may go next (staying where it is is always allowed).
TRANSITIONS: Mapping[TripStatus, frozenset[TripStatus]] = {
    "queued": frozenset({"running", "failed", "cancelled"}),
    "running": frozenset(
        {"needs_input", "planned", "partial", "over_budget", "booking", "failed", "cancelled"}
    ),
    "planned": frozenset({"booking", "cancelled"}),
    "partial": frozenset({"booking", "cancelled"}),
    "booking": frozenset({"booked", "failed", "cancelled"}),
    # A booked trip is cancelled by undoing its bookings; an error while undoing them fails it.
    "booked": frozenset({"cancelled", "failed"}),
    "needs_input": frozenset({"cancelled"}),
    "over_budget": frozenset({"cancelled"}),
    # A failed trip may still hold bookings its compensation could not undo; cancel tries again.
    "failed": frozenset({"cancelled"}),
    "cancelled": frozenset(),
}
# The states a trip passes through (entered with `move`); the others are entered with `settle`.
PASSING: frozenset[TripStatus] = frozenset({"running", "booking"})


class IllegalTransition(StateError):
    """A change of status the table does not allow: a defect, never a client's doing."""

    def __init__(self, trip_id: str, source: str, target: str) -> None:
        super().__init__(f"trip {trip_id}: {source} -> {target} is not a legal transition")
        self.source = source
        self.target = target


def allowed(source: TripStatus, target: TripStatus) -> bool:
    return source == target or target in TRANSITIONS[source]


def check(trip_id: str, source: TripStatus, target: TripStatus) -> None:
    """Raise `IllegalTransition` unless `source -> target` is in the table."""
    if not allowed(source, target):
        raise IllegalTransition(trip_id, source, target)


def move(trip: Trip, target: TripStatus) -> list[Event]:
    """Put the trip in a state it passes through (`running`, `booking`): `trip.status`."""
    if target not in PASSING:
        raise ValueError(f"{target} is a settled state: use settle()")
    check(trip.id, trip.status, target)
    trip.status = target
    return [("trip.status", {"status": target})]


def settle(trip: Trip, status: TripStatus, reason: TerminationReason, detail: str = "") -> list[Event]:
    """Put the trip in a state it rests in, with the reason: `trip.status`, `trip.settled`.

    A cancel that came in meanwhile wins when the trip holds no confirmed booking: the trip is
    then `cancelled` whatever it was about to become.
    """
    if trip.cancel_requested and not any(b.status == "confirmed" for b in trip.bookings):
        status, reason, detail = "cancelled", "cancelled", "cancelled on request"
    if status not in SETTLED_STATUSES:
        raise ValueError(f"{status} is not a settled state: use move()")
    check(trip.id, trip.status, status)
    trip.status = status
    trip.termination = Termination(reason=reason, detail=detail)
    return [
        ("trip.status", {"status": status}),
        ("trip.settled", {"status": status, "reason": reason, "detail": detail}),
    ]
