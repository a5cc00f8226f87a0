"""`/v1/trips`: accept, read, follow, confirm and cancel trips."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from sse_starlette import EventSourceResponse, ServerSentEvent

from waypoint_common.connections import REDIS_UNAVAILABLE
from waypoint_common.errors import WaypointError
from waypoint_common.telemetry import TRIP_ATTRIBUTE, current_traceparent, trip_context
from waypoint_orchestrator import states
from waypoint_orchestrator.api.deps import Services, ServicesDep
from waypoint_orchestrator.auth import Caller, caller_with
from waypoint_orchestrator.idempotency_keys import StoredResponse, fingerprint, valid_key
from waypoint_orchestrator.jobs import JobAction
from waypoint_orchestrator.models import SETTLED_STATUSES, SpendAuthority, Trip, TripRequest
from waypoint_orchestrator.problems import Problem
from waypoint_orchestrator.store import TransitionRefused, TripNotFound, now, parse_event_id

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/trips", tags=["trips"])

Event = tuple[str, dict[str, Any]]
# Fresh trip ids to try when the one in hand turns out tombstoned (its creation was given up).
CREATE_ATTEMPTS = 3
# Settling a write whose outcome is unknown: tries, and the pause between them.
SETTLE_ATTEMPTS = 3
SETTLE_PAUSE_SECONDS = 1.0
T = TypeVar("T")
# Internal fields of a stored trip that no answer shows.
_INTERNAL = frozenset({"jobs", "refused_jobs"})

_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)\"?", re.IGNORECASE)
TRIP_ID = re.compile(r"^[0-9a-f]{32}$")

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed request or Idempotency-Key", **PROBLEM},
    401: {"description": "No API key, or one that is unknown or revoked (`WWW-Authenticate`)", **PROBLEM},
    403: {"description": "The API key lacks the scope this needs", **PROBLEM},
    404: {"description": "No such trip (or another tenant's)", **PROBLEM},
    409: {"description": "Conflicting state, or the same Idempotency-Key still in flight", **PROBLEM},
    413: {"description": "Request body too large", **PROBLEM},
    422: {"description": "Invalid body, or an Idempotency-Key reused with another body", **PROBLEM},
    429: {
        "description": "Over the API key's request rate, or all its held requests are in use (`Retry-After`)",
        **PROBLEM,
    },
    503: {"description": "Trip storage unreachable, or the server too busy (`Retry-After`)", **PROBLEM},
}
Reader = Annotated[Caller, Depends(caller_with("trips:read"))]
Writer = Annotated[Caller, Depends(caller_with("trips:write"))]
Booker = Annotated[Caller, Depends(caller_with("trips:book"))]
# A held request's slot outlives it by this much; an event stream renews its slot while open.
SLOT_MARGIN_SECONDS = 10.0
STREAM_SLOT_SECONDS = 30.0
IDEMPOTENCY_KEY = Header(
    alias="Idempotency-Key",
    description="1 to 255 visible ASCII characters; a retry with the same key and body gets the same trip.",
    json_schema_extra={"pattern": r"^[!-~]{1,255}$"},
)
LAST_EVENT_ID = Header(
    alias="Last-Event-ID",
    description="The id of the last event received (`<ms>-<seq>`): the stream resumes after it "
    "(empty: from the start).",
    json_schema_extra={"pattern": r"^([0-9]{1,20}-[0-9]{1,20})?$"},
)


def _wait_seconds(prefer: str | None, cap: float) -> float | None:
    """`Prefer: wait=N` (RFC 7240), capped."""
    if not prefer:
        return None
    match = _PREFER_WAIT.search(prefer)
    return min(float(match.group(1)), cap) if match else None


def _trip_json(trip: Trip) -> dict[str, Any]:
    return trip.model_dump(mode="json", exclude=set(_INTERNAL))


def _trip_response(trip: Trip, status_code: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """The trip, with its `Location` and the id of its trace (`X-Trace-Id`)."""
    extra = {"Location": f"/v1/trips/{trip.id}", **(headers or {})}
    if trip.trace_id:
        extra["X-Trace-Id"] = trip.trace_id
    return JSONResponse(_trip_json(trip), status_code=status_code, headers=extra)


async def _load(services: Services, trip_id: str, caller: Caller) -> Trip:
    """The caller's trip; another tenant's is answered exactly like one that does not exist."""
    not_found = Problem(404, "trip-not-found", f"no trip {trip_id!r}")
    if not TRIP_ID.match(trip_id):
        raise not_found
    try:
        trip = await services.store.get(trip_id)
    except TripNotFound:
        raise not_found from None
    if trip.tenant != caller.tenant:
        raise not_found
    return await _with_usage(services, trip)


async def _with_usage(services: Services, trip: Trip) -> Trip:
    """The trip with its budget use as the ledger has it now (the ledger is the source of truth)."""
    trip.usage = await services.ledger.usage(trip.id)
    return trip


async def _wait_until(services: Services, trip: Trip, seconds: float, done: frozenset[str]) -> Trip:
    """Wait until the trip's status is in `done` or the time is up.

    The process's `EventHub` wakes this request when the trip has new events; it then reads the
    trip (a pooled connection for a moment). No connection is held while waiting.
    """
    deadline = time.monotonic() + seconds
    async with services.events.subscribe(trip.id) as sub:
        trip = await services.store.get(trip.id)  # after subscribing: no change can slip by
        while trip.status not in done:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await sub.wait(left)
            sub.clear()
            trip = await services.store.get(trip.id)
    return await _with_usage(services, trip)


async def _answer(
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
        return _trip_response(trip, 200 if done is not None and trip.status in done else 202)
    try:
        slot = await services.waits.take(caller.key_id, caller.concurrent_waits, wait + SLOT_MARGIN_SECONDS)
    except Exception as exc:
        log.warning("no wait slot for trip %s (%s); answering 202", trip.id, type(exc).__name__)
        slot = None
    if slot is None:
        return _trip_response(trip, 202)
    try:
        trip = await _wait_until(services, trip, wait, until)
    except Exception as exc:
        log.warning("waiting for trip %s failed (%s); answering 202", trip.id, type(exc).__name__)
        return _trip_response(trip, 202)
    finally:
        await _free_slot(services, caller, slot)
    finished = done if done is not None else until
    return _trip_response(
        trip, 200 if trip.status in finished else 202, {"Preference-Applied": f"wait={wait:g}"}
    )


async def _free_slot(services: Services, caller: Caller, slot: str) -> None:
    """Best effort: a slot not given back expires with its lease."""
    try:
        await asyncio.shield(services.waits.release(caller.key_id, slot))
    except Exception as exc:
        log.info("could not give back a wait slot (%s); its lease runs out", type(exc).__name__)


async def _discard_job(services: Services, job_id: str) -> None:
    """Best effort: a queued job no trip records (a worker would drop it anyway)."""
    try:
        await asyncio.shield(services.queue.discard(job_id))
    except Exception as exc:
        log.info("could not discard job %s (%s); a worker drops it", job_id, type(exc).__name__)


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
    caller: Writer,
    idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY] = None,
    prefer: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Accept a trip request; it is planned by a worker. `202` with the trip and its `Location`.

    With `Idempotency-Key`, a replay returns the first response (`Idempotent-Replayed: true`);
    the same key with another body is `422`, and while the first request is still being
    accepted `409` with `Retry-After`. With `Prefer: wait=N` the answer waits up to N seconds
    for the trip to settle and is then `200`. Needs `trips:write`, and `trips:book` with `book`.
    """
    if body.book:
        caller.require("trips:book")
    payload = body.model_dump(mode="json")
    _, refused = services.settings.limits_for(body.limits)
    if refused:
        raise Problem(
            422,
            "validation-error",
            "; ".join(f"{f}: {r}" for f, r in refused),
            errors=[{"field": f, "message": r} for f, r in refused],
        )
    return await _accept(body, payload, services, caller, idempotency_key, prefer)


async def _accept(
    body: TripRequest,
    payload: dict[str, Any],
    services: Services,
    caller: Caller,
    idempotency_key: str | None,
    prefer: str | None,
) -> JSONResponse:
    """Store the trip and its plan job, then answer; a request answered 5xx has stored nothing.

    The plan job is queued first, then the trip is created (`SET NX`) recording the job's id; a
    worker that meets the job before the trip waits a little, then tombstones the trip id. So a
    stored trip always has its job, and a job without a trip is dropped. Once the trip is stored
    the answer is never an error. With an Idempotency-Key the claim names the trip id, so a retry
    after a failure finds the trip if it was stored after all, or creates it (once).
    """
    trip_id = uuid.uuid4().hex
    owner = uuid.uuid4().hex
    resumed = False
    if idempotency_key is not None:
        if not valid_key(idempotency_key):
            raise Problem(
                400, "invalid-idempotency-key", "Idempotency-Key must be 1 to 255 visible ASCII characters"
            )
        # Keys are the tenant's own: another tenant's use of the same key is another record.
        idempotency_key = f"{caller.tenant}:{idempotency_key}"
        claim = await services.idempotency.claim(idempotency_key, fingerprint(payload), trip_id, owner)
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
        assert claim.trip_id is not None
        trip_id, resumed = claim.trip_id, claim.resumed

    try:
        trip, replayed = await _store_trip(body, trip_id, resumed, services, caller, idempotency_key, owner)
    except BaseException:
        if idempotency_key is not None:
            await asyncio.shield(_release(services, idempotency_key, owner))
        raise

    # The trip is stored: from here on the answer is the trip, whatever fails.
    location = {"Location": f"/v1/trips/{trip.id}"}
    if idempotency_key is not None:
        try:
            await services.idempotency.complete(
                idempotency_key, StoredResponse(202, location, _trip_json(trip))
            )
        except Exception as exc:
            # A retry with the key still finds the trip (the claim names it) and completes this.
            log.warning("could not complete the idempotency record (%s)", type(exc).__name__)
    if replayed:
        return _trip_response(trip, 202, {"Idempotent-Replayed": "true"})
    with trip_context(trip.id):
        return await _answer(services, caller, trip, prefer)


def _spend_authority(caller: Caller) -> SpendAuthority:
    """The key that asked to book: its daily booking spend pays for the trip's bookings."""
    return SpendAuthority(key_id=caller.key_id, daily_cap_usd=caller.daily_spend_usd)


def _new_trip(body: TripRequest, trip_id: str, services: Services, caller: Caller) -> Trip:
    trace_id, _ = _trace_ids()
    created = now()
    return Trip(
        id=trip_id,
        tenant=caller.tenant,
        spend=_spend_authority(caller) if body.book else None,
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


async def _store_trip(
    body: TripRequest,
    trip_id: str,
    resumed: bool,
    services: Services,
    caller: Caller,
    idempotency_key: str | None,
    owner: str,
) -> tuple[Trip, bool]:
    """Queue the plan job, then create the trip recording it: (the stored trip, whether an
    earlier request with the same Idempotency-Key had stored it).

    Raises (and the request is answered 503) when nothing is stored under the trip id and
    nothing ever will be (it is tombstoned, or was never created and its job is dropped), with
    one exception: when the create's reply is lost and Redis stays unreachable while this tries
    to settle it, the trip may have been stored; a retry with the same Idempotency-Key finds it.
    """
    store = services.store
    if resumed:
        existing = await store.find(trip_id)
        if existing is not None:
            return existing, True
    for _ in range(CREATE_ATTEMPTS):
        trace.get_current_span().set_attribute(TRIP_ATTRIBUTE, trip_id)
        with trip_context(trip_id):
            trip = _new_trip(body, trip_id, services, caller)
            job_id = await services.queue.enqueue(trip_id, "plan")
            trip.jobs = {"plan": job_id}
            accepted = ("trip.accepted", {"status": "queued", "trace_id": trip.trace_id})
            try:
                outcome: str = await store.create(trip, accepted)
            except REDIS_UNAVAILABLE:
                # Whether the create was applied is unknown: make it one or the other for good.
                # If that fails too, the job stays: it runs if the trip was stored, else a worker
                # tombstones the id; a retry with the same Idempotency-Key finds the trip.
                buried = await _settled(functools.partial(store.bury, trip_id))
                outcome = "exists" if buried == "exists" else "refused"
        if outcome == "created":
            return trip, False
        if outcome == "exists":
            # Stored by this request (a retried command) or by a retry with the same key.
            try:
                stored = await store.get(trip_id)
            except Exception:
                return trip, False
            if stored.jobs.get("plan") != job_id:
                await _discard_job(services, job_id)
            return stored, False
        # Refused: this trip id is tombstoned and can never be created; use another.
        await _discard_job(services, job_id)
        fresh = uuid.uuid4().hex
        if idempotency_key is not None and not await services.idempotency.rebind(
            idempotency_key, owner, trip_id, fresh
        ):
            raise Problem(
                409,
                "idempotency-key-in-flight",
                "a request with this Idempotency-Key is still being processed",
                headers={"Retry-After": "1"},
            )
        trip_id = fresh
    raise Problem(
        503, "storage-unavailable", "the trip could not be stored; try again", headers={"Retry-After": "1"}
    )


async def _release(services: Services, key: str, owner: str) -> None:
    try:
        await services.idempotency.release(key, owner)
    except Exception:  # Redis is gone too; the claim's lease runs out by itself
        return


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
                    await _discard_job(services, job_id)
                job_id = await services.queue.enqueue(trip.id, action, requested_by=current_traceparent())
                continue
            except REDIS_UNAVAILABLE:
                if not attempted:
                    raise  # nothing was to change
                # If this fails too, the job (if any) stays: it runs if the change was stored.
                if not await _settled(functools.partial(services.store.resolve_job, trip.id, marker, token)):
                    if job_id is not None:
                        await _discard_job(services, job_id)
                    raise
                updated = await _get_or(services, trip.id, changed or trip)
            if not used and job_id is not None:
                await _discard_job(services, job_id)
            return updated
    except TransitionRefused:
        if job_id is not None:
            await _discard_job(services, job_id)
        raise
    raise Problem(
        503, "storage-unavailable", "the trip could not be changed; try again", headers={"Retry-After": "1"}
    )


async def _settled(decide: Callable[[], Awaitable[T]]) -> T:
    """Run `decide` (settling a write whose outcome is unknown), trying for a few seconds more
    while Redis is unreachable: an answer then is worth more than a quick 503."""
    for _ in range(SETTLE_ATTEMPTS - 1):
        try:
            return await decide()
        except REDIS_UNAVAILABLE:
            await asyncio.sleep(SETTLE_PAUSE_SECONDS)
    return await decide()


class _NeedsJob(WaypointError):
    """The change needs a job and none is queued for it (or the worker gave up on it)."""


async def _get_or(services: Services, trip_id: str, fallback: Trip) -> Trip:
    try:
        return await services.store.get(trip_id)
    except Exception:
        return fallback


@router.get("/{trip_id}", response_model=Trip, responses=ERRORS, summary="A trip as it stands")
async def get_trip(trip_id: str, services: ServicesDep, caller: Reader) -> JSONResponse:
    """Status, itinerary, budget use, warnings, every step with its outcome, and the trace id."""
    return _trip_response(await _load(services, trip_id, caller), 200)


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
    await _load(services, trip_id, caller)
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
            await _free_slot(services, caller, slot)

    return EventSourceResponse(stream(), ping=15, send_timeout=30)


STREAM_BATCH = 500


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
    loaded = await _load(services, trip_id, caller)

    def confirm(t: Trip) -> tuple[list[Event], bool]:
        if t.status in ("booking", "booked"):
            return [], False
        if t.status not in ("planned", "partial") or t.cancel_requested:
            raise TransitionRefused(t.status)
        t.spend = _spend_authority(caller)
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
    return await _answer(services, caller, trip, prefer)


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
    loaded = await _load(services, trip_id, caller)

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
    return await _answer(
        services,
        caller,
        trip,
        prefer,
        until=frozenset({"cancelled", "failed"}),
        done=frozenset({"cancelled"}),
    )
