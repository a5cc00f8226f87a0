"""What the trip routes share: the problems they document, the scopes they need, loading the
caller's trip and answering with it, and the best-effort clean-ups of a write."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from fastapi.responses import JSONResponse

from waypoint_common.connections import REDIS_UNAVAILABLE
from waypoint_orchestrator.api.deps import Services
from waypoint_orchestrator.auth import Caller, caller_with
from waypoint_orchestrator.models import SpendAuthority, Trip
from waypoint_orchestrator.problems import Problem
from waypoint_orchestrator.store import TripNotFound

log = logging.getLogger(__name__)

Event = tuple[str, dict[str, Any]]
# Fresh trip ids to try when the one in hand turns out tombstoned (its creation was given up).
CREATE_ATTEMPTS = 3
# Settling a write whose outcome is unknown: tries, and the pause between them.
SETTLE_ATTEMPTS = 3
SETTLE_PAUSE_SECONDS = 1.0
T = TypeVar("T")
# Internal fields of a stored trip that no answer shows.
_INTERNAL = frozenset({"jobs", "refused_jobs"})

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


def trip_json(trip: Trip) -> dict[str, Any]:
    return trip.model_dump(mode="json", exclude=set(_INTERNAL))


def trip_response(trip: Trip, status_code: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """The trip, with its `Location` and the id of its trace (`X-Trace-Id`)."""
    extra = {"Location": f"/v1/trips/{trip.id}", **(headers or {})}
    if trip.trace_id:
        extra["X-Trace-Id"] = trip.trace_id
    return JSONResponse(trip_json(trip), status_code=status_code, headers=extra)


async def load_trip(services: Services, trip_id: str, caller: Caller) -> Trip:
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
    return await with_usage(services, trip)


async def with_usage(services: Services, trip: Trip) -> Trip:
    """The trip with its budget use as the ledger has it now (the ledger is the source of truth)."""
    trip.usage = await services.ledger.usage(trip.id)
    return trip


async def discard_job(services: Services, job_id: str) -> None:
    """Best effort: a queued job no trip records (a worker would drop it anyway)."""
    try:
        await asyncio.shield(services.queue.discard(job_id))
    except Exception as exc:
        log.info("could not discard job %s (%s); a worker drops it", job_id, type(exc).__name__)


def spend_authority(caller: Caller) -> SpendAuthority:
    """The key that asked to book: its daily booking spend pays for the trip's bookings."""
    return SpendAuthority(key_id=caller.key_id, daily_cap_usd=caller.daily_spend_usd)


async def settled(decide: Callable[[], Awaitable[T]]) -> T:
    """Run `decide` (settling a write whose outcome is unknown), trying for a few seconds more
    while Redis is unreachable: an answer then is worth more than a quick 503."""
    for _ in range(SETTLE_ATTEMPTS - 1):
        try:
            return await decide()
        except REDIS_UNAVAILABLE:
            await asyncio.sleep(SETTLE_PAUSE_SECONDS)
    return await decide()
