"""`POST /v1/trips`: accept a trip (with `Idempotency-Key`), storing it with its plan job."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from opentelemetry import trace

from waypoint_common.connections import REDIS_UNAVAILABLE
from waypoint_common.telemetry import TRIP_ATTRIBUTE, current_traceparent, trip_context
from waypoint_orchestrator.api.deps import Services, ServicesDep
from waypoint_orchestrator.api.routes.common import (
    CREATE_ATTEMPTS,
    ERRORS,
    Writer,
    discard_job,
    settled,
    spend_authority,
    trip_json,
    trip_response,
)
from waypoint_orchestrator.api.routes.waits import answer
from waypoint_orchestrator.auth import Caller
from waypoint_orchestrator.idempotency_keys import StoredResponse, fingerprint, valid_key
from waypoint_orchestrator.models import Trip, TripRequest
from waypoint_orchestrator.problems import Problem
from waypoint_orchestrator.store import now

log = logging.getLogger(__name__)
router = APIRouter()

IDEMPOTENCY_KEY = Header(
    alias="Idempotency-Key",
    description="1 to 255 visible ASCII characters; a retry with the same key and body gets the same trip.",
    json_schema_extra={"pattern": r"^[!-~]{1,255}$"},
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
    if not services.settings.idempotency_keys_enabled:
        idempotency_key = None  # switched off for measuring only: no record, no replay
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
                idempotency_key, StoredResponse(202, location, trip_json(trip))
            )
        except Exception as exc:
            # A retry with the key still finds the trip (the claim names it) and completes this.
            log.warning("could not complete the idempotency record (%s)", type(exc).__name__)
    if replayed:
        return trip_response(trip, 202, {"Idempotent-Replayed": "true"})
    with trip_context(trip.id):
        return await answer(services, caller, trip, prefer)


def _new_trip(body: TripRequest, trip_id: str, services: Services, caller: Caller) -> Trip:
    trace_id, _ = _trace_ids()
    created = now()
    return Trip(
        id=trip_id,
        tenant=caller.tenant,
        spend=spend_authority(caller) if body.book else None,
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
                buried = await settled(functools.partial(store.bury, trip_id))
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
                await discard_job(services, job_id)
            return stored, False
        # Refused: this trip id is tombstoned and can never be created; use another.
        await discard_job(services, job_id)
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
