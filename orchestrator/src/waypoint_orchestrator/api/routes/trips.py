"""`/v1/trips`: accept, read, follow, confirm and cancel trips."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from sse_starlette import EventSourceResponse, ServerSentEvent

from waypoint_common.telemetry import TRIP_ATTRIBUTE, current_traceparent, trip_context
from waypoint_orchestrator.api.deps import Services, ServicesDep
from waypoint_orchestrator.idempotency_keys import StoredResponse, fingerprint, valid_key
from waypoint_orchestrator.models import SETTLED_STATUSES, Termination, Trip, TripRequest, jsonable
from waypoint_orchestrator.problems import Problem
from waypoint_orchestrator.store import TransitionRefused, TripNotFound, now

router = APIRouter(prefix="/v1/trips", tags=["trips"])

_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)\"?", re.IGNORECASE)
TRIP_ID = re.compile(r"^[0-9a-f]{32}$")

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed request or Idempotency-Key", **PROBLEM},
    404: {"description": "No such trip", **PROBLEM},
    409: {"description": "Conflicting state, or the same Idempotency-Key still in flight", **PROBLEM},
    422: {"description": "Invalid body, or an Idempotency-Key reused with another body", **PROBLEM},
    503: {"description": "Trip storage unreachable", **PROBLEM},
}


def _wait_seconds(prefer: str | None, cap: float) -> float | None:
    """`Prefer: wait=N` (RFC 7240), capped."""
    if not prefer:
        return None
    match = _PREFER_WAIT.search(prefer)
    return min(float(match.group(1)), cap) if match else None


def _trip_json(trip: Trip) -> dict[str, Any]:
    return jsonable(trip)


def _trip_response(trip: Trip, status_code: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """The trip, with its `Location` and the id of its trace (`X-Trace-Id`)."""
    extra = {"Location": f"/v1/trips/{trip.id}", **(headers or {})}
    if trip.trace_id:
        extra["X-Trace-Id"] = trip.trace_id
    return JSONResponse(_trip_json(trip), status_code=status_code, headers=extra)


async def _load(services: Services, trip_id: str) -> Trip:
    if not TRIP_ID.match(trip_id):
        raise Problem(404, "trip-not-found", f"no trip {trip_id!r}")
    try:
        return await _with_usage(services, await services.store.get(trip_id))
    except TripNotFound:
        raise Problem(404, "trip-not-found", f"no trip {trip_id!r}") from None


async def _with_usage(services: Services, trip: Trip) -> Trip:
    """The trip with its budget use as the ledger has it now (the ledger is the source of truth)."""
    trip.usage = await services.ledger.usage(trip.id)
    return trip


async def _wait_until(services: Services, trip: Trip, seconds: float, done: frozenset[str]) -> Trip:
    """Follow the trip's events until its status is in `done` or the time is up."""
    deadline = time.monotonic() + seconds
    events = await services.store.events(trip.id)
    last = events[-1].id if events else None
    while trip.status not in done:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        new = await services.store.events(trip.id, last, block_ms=max(1, int(min(left, 5) * 1000)))
        if new:
            last = new[-1].id
        trip = await services.store.get(trip.id)
    return await _with_usage(services, trip)


async def _answer(
    services: Services,
    trip: Trip,
    prefer: str | None,
    *,
    until: frozenset[str] = SETTLED_STATUSES,
    done: frozenset[str] | None = None,
) -> JSONResponse:
    """The trip as it stands, or, with `Prefer: wait=N`, once its status is in `until`.

    `200` when the trip's status is in `done`, else `202`. Without `done` (accepting a trip,
    confirming one) the immediate answer is always `202` and a waited one is `200` once settled.
    """
    wait = _wait_seconds(prefer, services.settings.max_wait_seconds)
    if wait is None:
        return _trip_response(trip, 200 if done is not None and trip.status in done else 202)
    trip = await _wait_until(services, trip, wait, until)
    finished = done if done is not None else until
    return _trip_response(
        trip, 200 if trip.status in finished else 202, {"Preference-Applied": f"wait={wait:g}"}
    )


def _trace_ids() -> tuple[str | None, str | None]:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


@router.post(
    "",
    status_code=202,
    response_model=Trip,
    responses={200: {"description": "Finished within `Prefer: wait`", "model": Trip}, **ERRORS},
    summary="Plan (and optionally book) a trip",
)
async def create_trip(
    body: TripRequest,
    services: ServicesDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    prefer: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Accept a trip request; it is planned by a worker. `202` with the trip and its `Location`.

    With `Idempotency-Key`, a replay returns the first response (`Idempotent-Replayed: true`);
    the same key with another body is `422`, and while the first request is still being
    accepted `409` with `Retry-After`. With `Prefer: wait=N` the answer waits up to N seconds
    for the trip to settle and is then `200`.
    """
    payload = body.model_dump(mode="json")
    _, refused = services.settings.limits_for(body.limits)
    if refused:
        raise Problem(
            422,
            "validation-error",
            "; ".join(f"{f}: {r}" for f, r in refused),
            errors=[{"field": f, "message": r} for f, r in refused],
        )
    trip_id = uuid.uuid4().hex
    trace.get_current_span().set_attribute(TRIP_ATTRIBUTE, trip_id)
    with trip_context(trip_id):
        return await _accept(body, payload, trip_id, services, idempotency_key, prefer)


async def _accept(
    body: TripRequest,
    payload: dict[str, Any],
    trip_id: str,
    services: Services,
    idempotency_key: str | None,
    prefer: str | None,
) -> JSONResponse:
    if idempotency_key is not None:
        if not valid_key(idempotency_key):
            raise Problem(
                400, "invalid-idempotency-key", "Idempotency-Key must be 1 to 255 visible ASCII characters"
            )
        claim = await services.idempotency.claim(idempotency_key, fingerprint(payload))
        if claim.outcome == "mismatch":
            raise Problem(
                422, "idempotency-key-reused", "this Idempotency-Key was used with a different request body"
            )
        if claim.outcome == "in_flight":
            raise Problem(
                409,
                "idempotency-key-in-flight",
                "a request with this Idempotency-Key is still being processed",
                headers={"Retry-After": "1"},
            )
        if claim.outcome == "replay" and claim.response is not None:
            stored = claim.response
            return JSONResponse(
                stored.body,
                status_code=stored.status_code,
                headers={**stored.headers, "Idempotent-Replayed": "true"},
            )

    trace_id, _ = _trace_ids()
    created = now()
    trip = Trip(
        id=trip_id,
        tenant="public",  # replaced by the caller's tenant when API keys land (issue 9)
        status="queued",
        created_at=created,
        updated_at=created,
        request=body,
        trace_id=trace_id,
        traceparent=current_traceparent(),
        trace_url=f"{str(services.settings.jaeger_ui_url).rstrip('/')}/trace/{trace_id}"
        if services.settings.jaeger_ui_url and trace_id
        else None,
    )
    try:
        await services.store.create(trip, ("trip.accepted", {"status": "queued", "trace_id": trace_id}))
        await services.queue.enqueue(trip.id, "plan")
    except BaseException:
        if idempotency_key is not None:
            await asyncio.shield(_release(services, idempotency_key))
        raise
    location = {"Location": f"/v1/trips/{trip.id}"}
    if idempotency_key is not None:
        await services.idempotency.complete(idempotency_key, StoredResponse(202, location, _trip_json(trip)))

    return await _answer(services, trip, prefer)


async def _release(services: Services, key: str) -> None:
    try:
        await services.idempotency.release(key)
    except Exception:  # Redis is gone too; the pending claim expires by itself
        return


@router.get("/{trip_id}", response_model=Trip, responses=ERRORS, summary="A trip as it stands")
async def get_trip(trip_id: str, services: ServicesDep) -> JSONResponse:
    """Status, itinerary, budget use, warnings, every step with its outcome, and the trace id."""
    return _trip_response(await _load(services, trip_id), 200)


@router.get(
    "/{trip_id}/events",
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}, **ERRORS},
    summary="Follow a trip's progress",
)
async def trip_events(
    trip_id: str,
    request: Request,
    services: ServicesDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """The trip's events as server-sent events, from the start or after `Last-Event-ID`.

    Each event's `id` is its position in the trip's log, so a client that reconnects with the
    last id it saw gets every later event once, in order. The stream ends when the trip has
    settled and every event has been sent.
    """
    await _load(services, trip_id)
    if last_event_id is not None and not re.fullmatch(r"\d+-\d+", last_event_id):
        raise Problem(400, "invalid-last-event-id", "Last-Event-ID must be an id this stream sent")

    async def stream() -> AsyncIterator[ServerSentEvent]:
        last = last_event_id
        while True:
            for event in await services.store.events(trip_id, last):
                last = event.id
                yield ServerSentEvent(data=orjson.dumps(event.data).decode(), event=event.type, id=event.id)
            trip = await services.store.get(trip_id)
            if trip.status in SETTLED_STATUSES and not await services.store.events(trip_id, last):
                return
            if await request.is_disconnected():
                return
            # Wait for the next event; the loop reads it (and any others) from the log.
            await services.store.events(trip_id, last or "0-0", block_ms=5000)

    return EventSourceResponse(stream(), ping=15, send_timeout=30)


@router.post(
    "/{trip_id}/confirm",
    status_code=202,
    response_model=Trip,
    responses={200: {"description": "Booked within `Prefer: wait`", "model": Trip}, **ERRORS},
    summary="Book a planned trip",
)
async def confirm_trip(
    trip_id: str, services: ServicesDep, prefer: Annotated[str | None, Header()] = None
) -> JSONResponse:
    """Book a `planned` (or `partial`) trip. Idempotent: confirming a trip that is booking or booked
    changes nothing and returns it."""
    await _load(services, trip_id)
    started = False

    def confirm(t: Trip) -> list[tuple[str, dict[str, Any]]]:
        nonlocal started
        started = False
        if t.status in ("booking", "booked"):
            return []
        if t.status not in ("planned", "partial") or t.cancel_requested:
            raise TransitionRefused(t.status)
        t.status = "booking"
        started = True
        return [("trip.confirmed", {}), ("trip.status", {"status": "booking"})]

    try:
        trip = await services.store.update(trip_id, confirm)
    except TransitionRefused as exc:
        raise Problem(
            409,
            "trip-not-confirmable",
            f"the trip is {exc}; only a planned or partial trip can be confirmed",
            trip_id=trip_id,
        ) from None
    if started:
        await services.queue.enqueue(trip_id, "book")
    return await _answer(services, trip, prefer)


@router.post(
    "/{trip_id}/cancel",
    status_code=202,
    response_model=Trip,
    responses={200: {"description": "Cancelled within `Prefer: wait`", "model": Trip}, **ERRORS},
    summary="Cancel a trip and undo its bookings",
)
async def cancel_trip(
    trip_id: str, services: ServicesDep, prefer: Annotated[str | None, Header()] = None
) -> JSONResponse:
    """Cancel a trip; every booking it made is cancelled at the tool servers. Idempotent."""
    await _load(services, trip_id)
    enqueue = False

    def cancel(t: Trip) -> list[tuple[str, dict[str, Any]]]:
        nonlocal enqueue
        enqueue = False
        if t.status == "cancelled" or t.cancel_requested:
            return []
        t.cancel_requested = True
        events: list[tuple[str, dict[str, Any]]] = [("trip.cancel_requested", {})]
        if t.status in ("queued", "running", "booking"):
            return events  # the worker that runs it stops at its next step
        if any(b.status == "confirmed" for b in t.bookings):
            enqueue = True
            return events
        t.status = "cancelled"
        t.termination = Termination(reason="cancelled", detail="cancelled on request")
        return [
            *events,
            ("trip.status", {"status": "cancelled"}),
            (
                "trip.settled",
                {"status": "cancelled", "reason": "cancelled", "detail": "cancelled on request"},
            ),
        ]

    trip = await services.store.update(trip_id, cancel)
    if enqueue:
        await services.queue.enqueue(trip_id, "cancel")
    return await _answer(
        services, trip, prefer, until=frozenset({"cancelled", "failed"}), done=frozenset({"cancelled"})
    )
