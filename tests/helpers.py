"""Helpers for tests that must not depend on the day they run or on the tests before them:
dates built from today, and waiting for a condition (a trip settled, a queue drained) instead of
sleeping. The process harness is in `tests.support`."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import httpx2
from redis import Redis as SyncRedis

from tests.support import ServiceProcess, api_headers, wait_until
from waypoint_orchestrator.jobs import STREAM
from waypoint_orchestrator.models import Trip, TripRequest, TripStatus
from waypoint_orchestrator.store import now

# -- dates from today, so that no test depends on the day it runs -----------------------------------


def service_today() -> dt.date:
    """The day the services take as today: the orchestrator and the tool servers use UTC."""
    return dt.datetime.now(dt.UTC).date()


def days_ahead(days: int, today: dt.date | None = None) -> dt.date:
    return (today or service_today()) + dt.timedelta(days=days)


def spoken(day: dt.date) -> str:
    """A date as a traveller writes it, without a year ("June 17"): the extractor reads it as
    its next occurrence."""
    return f"{day:%B} {day.day}"


def month_ahead(days: int = 60, today: dt.date | None = None) -> tuple[str, dt.date]:
    """A month a query can name alone ("in June"), and the day the extractor reads it as.

    The month of today + `days`; with the default 60 its 10th (what "in June" means) is 29 to
    69 days away: past the extractor's two-week minimum and far inside the 365-day horizon."""
    month = days_ahead(days, today)
    return f"{month:%B}", month.replace(day=10)


# -- waiting for conditions -----------------------------------------------------------------------


SETTLED_STATUSES = frozenset(
    {"needs_input", "planned", "booked", "partial", "over_budget", "failed", "cancelled"}
)


def plan_and_wait(service: ServiceProcess, body: dict[str, Any]) -> dict[str, Any]:
    """POST a trip with `Prefer: wait=60`: the trip as it settled (it has a termination)."""
    response = httpx2.post(
        f"{service.base_url}/v1/trips",
        json=body,
        headers=api_headers(service, {"Prefer": "wait=60"}),
        timeout=90,
    )
    assert response.status_code == 200, response.text
    trip: dict[str, Any] = response.json()
    assert trip["termination"] is not None, trip["status"]
    return trip


def get_trip(service: ServiceProcess, trip_id: str) -> dict[str, Any]:
    response = httpx2.get(f"{service.base_url}/v1/trips/{trip_id}", headers=api_headers(service), timeout=10)
    response.raise_for_status()
    trip: dict[str, Any] = response.json()
    return trip


def wait_for_trip(
    service: ServiceProcess,
    trip_id: str,
    statuses: frozenset[str] | set[str] = SETTLED_STATUSES,
    timeout: float = 90,
) -> dict[str, Any]:
    """Poll the trip until its status is one of `statuses` (settled by default)."""
    deadline = time.monotonic() + timeout
    trip = get_trip(service, trip_id)
    while trip["status"] not in statuses:
        if time.monotonic() > deadline:
            raise AssertionError(f"trip {trip_id} still {trip['status']} after {timeout}s")
        time.sleep(0.2)
        trip = get_trip(service, trip_id)
    return trip


def wait_queue_drained(redis_url: str, timeout: float = 120) -> None:
    """Wait until the trip queue on this Redis holds no job: every trip queued there has run
    (a worker deletes a job once it is done with it). Call it before counting tool calls on
    servers that other tests' trips use."""
    client = SyncRedis.from_url(redis_url, decode_responses=True)
    try:
        wait_until(lambda: int(client.xlen(STREAM)) == 0, timeout, "an empty trip queue")
    finally:
        client.close()


def tool_calls(service: ServiceProcess) -> dict[str, int]:
    """The calls that reached each tool of a tool server (its fault injector's count)."""
    return {tool: int(n) for tool, n in service.admin("GET", "/admin/stats")["calls"].items()}


def worker_pid(trip: dict[str, Any]) -> int:
    """The process id in the name of the worker a trip records (`<host>-<pid>-<suffix>`)."""
    return int(str(trip["worker"]).rsplit("-", 2)[1])


def new_trip(status: TripStatus = "queued", **fields: Any) -> Trip:
    """A trip document of the suite's tenant, as a store would create it (not stored)."""
    created = now()
    return Trip(
        id=uuid.uuid4().hex,
        tenant="suite",
        status=status,
        created_at=created,
        updated_at=created,
        request=TripRequest(destination="Denver"),
        **fields,
    )
