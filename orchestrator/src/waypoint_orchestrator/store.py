"""Trip state in Redis: the trip document, its step results and its event stream.

All of one trip's keys share the hash tag `{trip:<id>}`. The document is changed only through
`update`, an optimistic transaction (WATCH/MULTI) that also appends the matching event, so the
stored state and the event stream never disagree, and the API (confirm, cancel) and a worker
can both change a trip safely.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry import metrics
from redis.asyncio import Redis
from redis.exceptions import WatchError

from waypoint_orchestrator.models import Trip

meter = metrics.get_meter("waypoint.orchestrator")
TRIPS_SETTLED = meter.create_counter(
    "waypoint.trips.settled", unit="{trip}", description="Trips by final state"
)
TRIP_COST = meter.create_histogram(
    "waypoint.trip.cost", unit="USD", description="Planned cost of a settled trip"
)
TRIP_TOOL_CALLS = meter.create_histogram(
    "waypoint.trip.tool_calls", unit="{call}", description="Tool call attempts a trip used"
)
TRIP_STEPS = meter.create_histogram("waypoint.trip.steps", unit="{step}", description="Steps a trip ran")
TRIP_DURATION = meter.create_histogram(
    "waypoint.trip.duration", unit="s", description="Acceptance to settlement"
)

TRIP_TTL_SECONDS = 30 * 24 * 3600
EVENTS_MAXLEN = 5000


class TripNotFound(KeyError):
    pass


class TransitionRefused(Exception):
    """`update`'s function refused the change (the trip is in the wrong state)."""


@dataclass(frozen=True, slots=True)
class TripEvent:
    id: str
    type: str
    data: dict[str, Any]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TripStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @staticmethod
    def key(trip_id: str) -> str:
        return f"{{trip:{trip_id}}}"

    @classmethod
    def events_key(cls, trip_id: str) -> str:
        return f"{cls.key(trip_id)}:events"

    @classmethod
    def results_key(cls, trip_id: str) -> str:
        return f"{cls.key(trip_id)}:results"

    async def create(self, trip: Trip, event: tuple[str, dict[str, Any]]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.key(trip.id), trip.model_dump_json(), ex=TRIP_TTL_SECONDS, nx=True)
        self._add_event(pipe, trip.id, *event)
        await pipe.execute()

    async def get(self, trip_id: str) -> Trip:
        raw = await self.redis.get(self.key(trip_id))
        if raw is None:
            raise TripNotFound(trip_id)
        return Trip.model_validate_json(raw)

    async def update(self, trip_id: str, change: Callable[[Trip], list[tuple[str, dict[str, Any]]]]) -> Trip:
        """Apply `change` to the stored trip and append the events it returns, atomically.

        `change` mutates the trip it is given and returns the events to append; it may raise
        `TransitionRefused`. It can run more than once (when another writer got in first).
        """
        key = self.key(trip_id)
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise TripNotFound(trip_id)
                    trip = Trip.model_validate_json(raw)
                    events = change(trip)
                    trip.updated_at = now()
                    pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                    pipe.set(key, trip.model_dump_json(), ex=TRIP_TTL_SECONDS)
                    for kind, data in events:
                        self._add_event(pipe, trip_id, kind, data)
                    await pipe.execute()
                except WatchError:
                    continue
                for kind, data in events:
                    if kind == "trip.settled":
                        _record_settlement(trip, data)
                return trip

    def _add_event(self, pipe: Any, trip_id: str, kind: str, data: dict[str, Any]) -> None:
        pipe.xadd(
            self.events_key(trip_id),
            {"type": kind, "data": orjson.dumps(data).decode()},
            maxlen=EVENTS_MAXLEN,
            approximate=True,
        )
        pipe.expire(self.events_key(trip_id), TRIP_TTL_SECONDS)

    async def emit(self, trip_id: str, kind: str, data: dict[str, Any]) -> None:
        """Append an event that changes no state (a step started, a retry)."""
        pipe = self.redis.pipeline(transaction=True)
        self._add_event(pipe, trip_id, kind, data)
        await pipe.execute()

    async def events(self, trip_id: str, after: str | None = None, *, block_ms: int = 0) -> list[TripEvent]:
        """Events after the given id (all of them when None); waits up to `block_ms` for new ones."""
        key = self.events_key(trip_id)
        entries: Any
        if block_ms:
            reply: Any = await self.redis.xread({key: after or "0-0"}, block=block_ms, count=500)
            entries = reply[0][1] if reply else []
        else:
            entries = await self.redis.xrange(key, min=f"({after}" if after else "-", count=5000)
        return [TripEvent(str(eid), str(f["type"]), orjson.loads(f["data"])) for eid, f in entries]

    async def save_result(self, trip_id: str, step_id: str, result: Any) -> None:
        """Checkpoint a step's result; a resumed trip reuses it instead of calling the tool again."""
        key = self.results_key(trip_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, step_id, orjson.dumps(result))
        pipe.expire(key, TRIP_TTL_SECONDS)
        await pipe.execute()

    async def results(self, trip_id: str) -> dict[str, Any]:
        raw: dict[str, str] = await self.redis.hgetall(self.results_key(trip_id))  # type: ignore[assignment]
        return {step: orjson.loads(value) for step, value in raw.items()}


def _record_settlement(trip: Trip, data: dict[str, Any]) -> None:
    """What a trip used, once it settles: per-trip budget consumption and final states."""
    attributes = {"status": str(data.get("status")), "reason": str(data.get("reason"))}
    TRIPS_SETTLED.add(1, attributes)
    ran = [s for s in trip.steps if s.status in ("succeeded", "failed")]
    TRIP_STEPS.record(len(ran), attributes)
    TRIP_TOOL_CALLS.record(sum(s.attempts for s in ran), attributes)
    TRIP_DURATION.record((trip.updated_at - trip.created_at).total_seconds(), attributes)
    if trip.itinerary is not None:
        TRIP_COST.record(trip.itinerary.budget.total_usd, attributes)
