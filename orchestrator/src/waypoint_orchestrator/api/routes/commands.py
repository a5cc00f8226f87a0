"""`POST /v1/trips/{id}/confirm` and `/cancel`: change a trip, queueing the job the change needs."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from waypoint_common.connections import REDIS_UNAVAILABLE
from waypoint_common.errors import WaypointError
from waypoint_common.telemetry import current_traceparent
from waypoint_orchestrator import states
from waypoint_orchestrator.api.deps import Services, ServicesDep
from waypoint_orchestrator.api.routes.common import (
    CREATE_ATTEMPTS,
    ERRORS,
    Booker,
    Event,
    Writer,
    discard_job,
    load_trip,
    settled,
    spend_authority,
)
from waypoint_orchestrator.api.routes.waits import answer
from waypoint_orchestrator.jobs import JobAction
from waypoint_orchestrator.models import Trip
from waypoint_orchestrator.problems import Problem
from waypoint_orchestrator.store import TransitionRefused

router = APIRouter()


async def _update_with_job(
    services: Services,
    trip: Trip,
    action: JobAction,
    change: Callable[[Trip], tuple[list[Event], bool]],
) -> Trip:
    """Apply `change` (it returns the events and whether the trip now needs an `action` job),
    queueing that job first and recording its id on the trip in the same update.

    So a stored change always has its job, and a job whose change was never stored is dropped
    by the worker. A change also records this request's token (`jobs["<action>:request"]`):
    when the update's outcome is unknown (Redis went away) `TripStore.resolve_job` settles it,
    either the change is stored (answered as done) or the token is refused and the update can
    no longer land (its WATCH fails): 503 then means unchanged.
    """
    job_id: str | None = None
    token = f"request-{uuid.uuid4().hex}"
    marker = f"{action}:request"
    if change(trip.model_copy(deep=True))[1]:  # predicted on the trip as loaded
        job_id = await services.queue.enqueue(trip.id, action, requested_by=current_traceparent())
    changed: Trip | None = None
    attempted = False  # a change was sent that may have been stored
    try:
        for _ in range(CREATE_ATTEMPTS):
            used = False

            def apply(t: Trip, job: str | None = job_id) -> list[Event]:
                nonlocal used, changed, attempted
                changed = t
                if t.jobs.get(marker) == token:
                    # This change is stored already: the transaction ran again after its reply
                    # was lost (redis-py retries a watched transaction as a WatchError).
                    used = t.jobs.get(action) == job
                    return []
                events, needs_job = change(t)
                attempted = attempted or bool(events)
                used = needs_job
                if needs_job:
                    if job is None or job in t.refused_jobs:
                        raise _NeedsJob
                    t.jobs = {**t.jobs, action: job}
                if events:
                    t.jobs = {**t.jobs, marker: token}
                return events

            try:
                updated = await services.store.update(trip.id, apply)
            except _NeedsJob:
                if job_id is not None:
                    await discard_job(services, job_id)
                job_id = await services.queue.enqueue(trip.id, action, requested_by=current_traceparent())
                continue
            except REDIS_UNAVAILABLE:
                if not attempted:
                    raise  # nothing was to change
                # If this fails too, the job (if any) stays: it runs if the change was stored.
                if not await settled(functools.partial(services.store.resolve_job, trip.id, marker, token)):
                    if job_id is not None:
                        await discard_job(services, job_id)
                    raise
                updated = await _get_or(services, trip.id, changed or trip)
            if not used and job_id is not None:
                await discard_job(services, job_id)
            return updated
    except TransitionRefused:
        if job_id is not None:
            await discard_job(services, job_id)
        raise
    raise Problem(
        503, "storage-unavailable", "the trip could not be changed; try again", headers={"Retry-After": "1"}
    )


class _NeedsJob(WaypointError):
    """The change needs a job and none is queued for it (or the worker gave up on it)."""


async def _get_or(services: Services, trip_id: str, fallback: Trip) -> Trip:
    try:
        return await services.store.get(trip_id)
    except Exception:
        return fallback


@router.post(
    "/{trip_id}/confirm",
    status_code=202,
    response_model=Trip,
    responses={200: {"description": "Booked within `Prefer: wait`", "model": Trip}, **ERRORS},
    summary="Book a planned trip",
)
async def confirm_trip(
    trip_id: str, services: ServicesDep, caller: Booker, prefer: Annotated[str | None, Header()] = None
) -> JSONResponse:
    """Book a `planned` (or `partial`) trip. Idempotent: confirming a trip that is booking or booked
    changes nothing and returns it. Needs `trips:book`; the bookings count against this API key's
    daily booking spend."""
    loaded = await load_trip(services, trip_id, caller)

    def confirm(t: Trip) -> tuple[list[Event], bool]:
        if t.status in ("booking", "booked"):
            return [], False
        if t.status not in ("planned", "partial") or t.cancel_requested:
            raise TransitionRefused(t.status)
        t.spend = spend_authority(caller)
        return [("trip.confirmed", {}), *states.move(t, "booking")], True

    try:
        trip = await _update_with_job(services, loaded, "book", confirm)
    except TransitionRefused as exc:
        raise Problem(
            409,
            "trip-not-confirmable",
            f"the trip is {exc}; only a planned or partial trip can be confirmed",
            trip_id=trip_id,
        ) from None
    return await answer(services, caller, trip, prefer)


@router.post(
    "/{trip_id}/cancel",
    status_code=202,
    response_model=Trip,
    responses={200: {"description": "Cancelled within `Prefer: wait`", "model": Trip}, **ERRORS},
    summary="Cancel a trip and undo its bookings",
)
async def cancel_trip(
    trip_id: str, services: ServicesDep, caller: Writer, prefer: Annotated[str | None, Header()] = None
) -> JSONResponse:
    """Cancel a trip; every booking it made is cancelled at the tool servers. Idempotent."""
    loaded = await load_trip(services, trip_id, caller)

    def cancel(t: Trip) -> tuple[list[Event], bool]:
        if t.status == "cancelled" or t.cancel_requested:
            return [], False
        t.cancel_requested = True
        events: list[Event] = [("trip.cancel_requested", {})]
        if t.status in ("queued", "running", "booking"):
            return events, False  # the worker that runs it stops at its next step
        if any(b.status == "confirmed" for b in t.bookings):
            return events, True  # a cancel job undoes the bookings
        return [*events, *states.settle(t, "cancelled", "cancelled", "cancelled on request")], False

    trip = await _update_with_job(services, loaded, "cancel", cancel)
    return await answer(
        services,
        caller,
        trip,
        prefer,
        until=frozenset({"cancelled", "failed"}),
        done=frozenset({"cancelled"}),
    )
