"""`Prefer: wait=N` (RFC 7240): answering once the trip's status is reached, holding one of the
API key's held-request slots meanwhile."""

from __future__ import annotations

import asyncio
import logging
import re
import time

from fastapi.responses import JSONResponse

from waypoint_orchestrator.api.deps import Services
from waypoint_orchestrator.api.routes.common import trip_response, with_usage
from waypoint_orchestrator.auth import Caller
from waypoint_orchestrator.models import SETTLED_STATUSES, Trip

log = logging.getLogger(__name__)

_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)\"?", re.IGNORECASE)

# A held request's slot outlives it by this much.
SLOT_MARGIN_SECONDS = 10.0


def _wait_seconds(prefer: str | None, cap: float) -> float | None:
    """`Prefer: wait=N` (RFC 7240), capped."""
    if not prefer:
        return None
    match = _PREFER_WAIT.search(prefer)
    return min(float(match.group(1)), cap) if match else None


async def _wait_until(services: Services, trip: Trip, seconds: float, done: frozenset[str]) -> Trip:
    """Wait until the trip's status is in `done` or the time is up.

    The process's `EventHub` wakes this request when the trip has new events. When they came
    with the trip's new status and it is not one waited for, the request waits on; otherwise (a
    status waited for, an unknown one, the re-check timer) it reads the trip (a pooled connection
    for a moment). No connection is held while waiting.
    """
    deadline = time.monotonic() + seconds
    async with services.events.subscribe(trip.id) as sub:
        trip = await services.store.get(trip.id)  # after subscribing: no change can slip by
        while trip.status not in done:
            # Once the time is up this returns at once (and, unless a notice was already in, the
            # trip is then read as it now is).
            woken = await sub.wait(max(0.0, deadline - time.monotonic()))
            sub.clear()
            if woken and sub.status is not None and sub.status not in done:
                continue  # the trip moved on, not to a status waited for
            trip = await services.store.get(trip.id)
            if time.monotonic() >= deadline:
                break
    return await with_usage(services, trip)


async def answer(
    services: Services,
    caller: Caller,
    trip: Trip,
    prefer: str | None,
    *,
    until: frozenset[str] = SETTLED_STATUSES,
    done: frozenset[str] | None = None,
) -> JSONResponse:
    """The trip as it stands, or, with `Prefer: wait=N`, once its status is in `until`.

    `200` when the trip's status is in `done`, else `202`. Without `done` (accepting a trip,
    confirming one) the immediate answer is always `202` and a waited one is `200` once settled.

    Only called once the request's change is stored: whatever goes wrong while waiting, the
    answer is the trip as last seen, `202`, never an error (a client told to retry would repeat
    a change that was made). Waiting takes one of the key's held-request slots; with none free
    the preference is not applied (RFC 7240 allows that) and the answer comes at once.
    """
    wait = _wait_seconds(prefer, services.settings.max_wait_seconds)
    if wait is None:
        return trip_response(trip, 200 if done is not None and trip.status in done else 202)
    try:
        slot = await services.waits.take(caller.key_id, caller.concurrent_waits, wait + SLOT_MARGIN_SECONDS)
    except Exception as exc:
        log.warning("no wait slot for trip %s (%s); answering 202", trip.id, type(exc).__name__)
        slot = None
    if slot is None:
        return trip_response(trip, 202)
    try:
        trip = await _wait_until(services, trip, wait, until)
    except Exception as exc:
        log.warning("waiting for trip %s failed (%s); answering 202", trip.id, type(exc).__name__)
        return trip_response(trip, 202)
    finally:
        await free_slot(services, caller, slot)
    finished = done if done is not None else until
    return trip_response(
        trip, 200 if trip.status in finished else 202, {"Preference-Applied": f"wait={wait:g}"}
    )


async def free_slot(services: Services, caller: Caller, slot: str) -> None:
    """Best effort: a slot not given back expires with its lease."""
    try:
        await asyncio.shield(services.waits.release(caller.key_id, slot))
    except Exception as exc:
        log.info("could not give back a wait slot (%s); its lease runs out", type(exc).__name__)
