"""`GET /v1/trips/{id}` and `GET /v1/trips/{id}/events`: read a trip, or follow it as
server-sent events."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from waypoint_common.connections import REDIS_UNAVAILABLE
from waypoint_orchestrator.api.deps import Services, ServicesDep
from waypoint_orchestrator.api.routes.common import ERRORS, Reader, load_trip, trip_response
from waypoint_orchestrator.api.routes.waits import free_slot
from waypoint_orchestrator.models import SETTLED_STATUSES, Trip
from waypoint_orchestrator.problems import Problem
from waypoint_orchestrator.store import TripNotFound, parse_event_id

log = logging.getLogger(__name__)
router = APIRouter()

# An event stream holds one of the key's held-request slots; it renews the slot while open.
STREAM_SLOT_SECONDS = 30.0
# Events read from the trip's log at a time.
STREAM_BATCH = 500

LAST_EVENT_ID = Header(
    alias="Last-Event-ID",
    description="The id of the last event received (`<ms>-<seq>`): the stream resumes after it "
    "(empty: from the start).",
    json_schema_extra={"pattern": r"^([0-9]{1,20}-[0-9]{1,20})?$"},
)


@router.get("/{trip_id}", response_model=Trip, responses=ERRORS, summary="A trip as it stands")
async def get_trip(trip_id: str, services: ServicesDep, caller: Reader) -> JSONResponse:
    """Status, itinerary, budget use, warnings, every step with its outcome, and the trace id."""
    return trip_response(await load_trip(services, trip_id, caller), 200)


@router.get(
    "/{trip_id}/events",
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}, **ERRORS},
    summary="Follow a trip's progress",
)
async def trip_events(
    trip_id: str,
    request: Request,
    services: ServicesDep,
    caller: Reader,
    last_event_id: Annotated[str | None, LAST_EVENT_ID] = None,
) -> EventSourceResponse:
    """The trip's events as server-sent events, from the start or after `Last-Event-ID`.

    Each event's `id` is its position in the trip's log, so a client that reconnects with the
    last id it saw gets every later event once, in order. The stream ends when the trip has
    settled and every event has been sent. An open stream holds one of the API key's held-request
    slots; with none free the answer is `429`.
    """
    await load_trip(services, trip_id, caller)
    # An empty Last-Event-ID is no id (a browser sends none until it has seen one): the start.
    after = await _resume_from(services, trip_id, last_event_id) if last_event_id else None
    slot = await services.waits.take(caller.key_id, caller.concurrent_waits, STREAM_SLOT_SECONDS)
    if slot is None:
        raise Problem(
            429,
            "too-many-held-requests",
            f"this API key already holds {caller.concurrent_waits} event streams or waiting requests open",
            headers={"Retry-After": "5"},
        )

    async def stream() -> AsyncIterator[ServerSentEvent]:
        # Woken by the process's EventHub (at least every few seconds); reads with quick
        # non-blocking XRANGEs. When the client goes away, sse-starlette cancels this generator:
        # the subscription is removed and the slot given back.
        last = after
        renewed = time.monotonic()
        try:
            async with services.events.subscribe(trip_id) as sub:
                while True:
                    if time.monotonic() - renewed > STREAM_SLOT_SECONDS / 3:
                        renewed = time.monotonic()
                        with contextlib.suppress(*REDIS_UNAVAILABLE):
                            await services.waits.renew(caller.key_id, slot, STREAM_SLOT_SECONDS)
                    sub.clear()
                    try:
                        events = await services.store.events(trip_id, last, count=STREAM_BATCH)
                        settled = False
                        if len(events) < STREAM_BATCH:
                            trip = await services.store.get(trip_id)
                            settled = trip.status in SETTLED_STATUSES and not await services.store.events(
                                trip_id, events[-1].id if events else last, count=1
                            )
                    except TripNotFound:
                        return
                    except REDIS_UNAVAILABLE as exc:
                        # Redis is away: keep the stream, look again on the hub's next wake-up.
                        log.info("event stream for trip %s paused (%s)", trip_id, type(exc).__name__)
                        await sub.wait()
                        continue
                    for event in events:
                        last = event.id
                        yield ServerSentEvent(
                            data=orjson.dumps(event.data).decode(), event=event.type, id=event.id
                        )
                    if settled:
                        return
                    if len(events) < STREAM_BATCH:
                        await sub.wait()
        finally:
            await free_slot(services, caller, slot)

    return EventSourceResponse(stream(), ping=15, send_timeout=30)


async def _resume_from(services: Services, trip_id: str, last_event_id: str) -> str:
    """The stream position a `Last-Event-ID` names; 400 unless it is an id within the trip's log
    (`<ms>-<seq>`, each part an unsigned 64-bit integer, not after the trip's last event)."""
    wanted = parse_event_id(last_event_id)
    latest = await services.store.last_event_id(trip_id)
    if wanted is None or latest is None or wanted > (parse_event_id(latest) or (0, 0)):
        raise Problem(
            400,
            "invalid-last-event-id",
            "Last-Event-ID must be the id of an event this trip's stream sent",
        )
    return f"{wanted[0]}-{wanted[1]}"
