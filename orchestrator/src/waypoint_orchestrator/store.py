"""Trip state in Redis: the trip document, its step results and its event stream.

All of one trip's keys share the hash tag `{trip:<id>}`. The document is changed only through
`update`, an optimistic compare-and-set: it applies the change to the document as this process
last read or wrote it (or reads it), and one script (`_APPEND`) stores the new document only if
the stored one is still that one (its SHA-1), appending the matching events (and a finished
step's checkpoint) in the same step, so the stored state, the checkpoints and the event stream
never disagree, and the API (confirm, cancel) and a worker can both change a trip safely. When
another writer got in first, the script answers with the document as it now is, and the change
runs again on that: one round trip per change when nobody else wrote, no WATCH.

Every script that appends events also PUBLISHes `<trip id> <status>` on `events.CHANNEL` (the
status the trip has after the change), so each process's `EventHub` wakes the requests waiting
for that trip (nobody blocks on the stream), and a request waiting for a status need not read
the trip until it is reached. An event that changes no state publishes the trip id alone. (On a
Redis Cluster a PUBLISH on any node reaches the subscribers of every node.)

A trip id whose creation must never happen (its request failed, or its plan job found no trip)
gets a tombstone, `{trip:<id>}:tombstone`, for `TOMBSTONE_TTL_SECONDS`: `create` refuses it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from cachetools import LRUCache
from opentelemetry import metrics
from redis.exceptions import RedisError

from waypoint_common import keys
from waypoint_common.connections import RedisClient
from waypoint_common.errors import StateError
from waypoint_orchestrator import states
from waypoint_orchestrator.events import CHANNEL
from waypoint_orchestrator.models import Trip

log = logging.getLogger(__name__)
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

TRIP_TOKENS = meter.create_histogram(
    "waypoint.trip.tokens", unit="{token}", description="Language-model tokens a settled trip used"
)
TRIP_MODEL_COST = meter.create_histogram(
    "waypoint.trip.model_cost", unit="USD", description="What a settled trip's model calls cost"
)

TRIP_TTL_SECONDS = 30 * 24 * 3600
EVENTS_MAXLEN = 5000
# Longer than any request takes between queueing a trip's plan job and creating the trip.
TOMBSTONE_TTL_SECONDS = 3600
# How many trip documents a store remembers (see `TripStore.update`).
DOCUMENTS_REMEMBERED = 1024
# Stream ids are `<ms>-<seq>`, two unsigned 64-bit integers.
_MAX_ID_PART = 2**64 - 1

CreateOutcome = Literal["created", "exists", "refused"]

# KEYS: trip, events, tombstone. ARGV: document, trip ttl, event type, event data, events maxlen,
# channel, trip id. Creates the trip unless it exists or is tombstoned, with its first event.
_CREATE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 'refused' end
if not redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX') then return 'exists' end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', ARGV[3], 'data', ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 'created'
"""

# KEYS: trip, events, results. ARGV: the SHA-1 of the document as read ('' to leave the document
# alone), the new document, trip ttl, events maxlen, channel, message, a step's checkpoint (its
# step id, '' for none, and its result), then each event's type and data. Stores the document
# unless it changed since it was read ({'changed', <it now>}) or is gone ({'missing'}), the
# checkpoint, and appends the events; {'ok'}.
_APPEND = """
if ARGV[1] ~= '' then
  local current = redis.call('GET', KEYS[1])
  if not current then return {'missing'} end
  if redis.sha1hex(current) ~= ARGV[1] then return {'changed', current} end
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[7], ARGV[8])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
if #ARGV > 8 then
  for i = 9, #ARGV, 2 do
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'type', ARGV[i], 'data', ARGV[i + 1])
  end
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end
return {'ok'}
"""

# KEYS: trip, tombstone. ARGV: ttl. Makes sure the trip either exists or never will.
_BURY = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1], 'NX')
return 'tombstoned'
"""


class TripNotFound(StateError, KeyError):
    pass


class TransitionRefused(StateError):
    """`update`'s function refused the change (the trip is in the wrong state)."""


def parse_event_id(value: str) -> tuple[int, int] | None:
    """A stream id `<ms>-<seq>` as two integers, or None when it is not one Redis could hold."""
    ms, sep, seq = value.partition("-")
    if not sep or not (ms.isascii() and ms.isdigit() and seq.isascii() and seq.isdigit()):
        return None
    parts = (int(ms), int(seq))
    return parts if max(parts) <= _MAX_ID_PART else None


@dataclass(frozen=True, slots=True)
class TripEvent:
    id: str
    type: str
    data: dict[str, Any]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TripStore:
    def __init__(self, redis: RedisClient, *, model_in_use: bool = True) -> None:
        self.redis = redis
        # Whether a settled trip's language-model use is worth reading for the metrics (no
        # model configured: no trip used one).
        self.model_in_use = model_in_use
        # Trip documents as this process last read or wrote them (the most recently used
        # trips'): `update` starts from them (the script checks they are still the stored ones).
        self._known: LRUCache[str, str] = LRUCache(maxsize=DOCUMENTS_REMEMBERED)
        self._register_scripts()

    # The trip's keys (waypoint_common.keys): all under the hash tag {trip:<id>}.
    key = staticmethod(keys.trip)
    events_key = staticmethod(keys.trip_events)
    results_key = staticmethod(keys.trip_results)
    tombstone_key = staticmethod(keys.trip_tombstone)

    def _register_scripts(self) -> None:
        self._create = self.redis.register_script(_CREATE)
        self._bury = self.redis.register_script(_BURY)
        self._append = self.redis.register_script(_APPEND)

    async def create(self, trip: Trip, event: tuple[str, dict[str, Any]]) -> CreateOutcome:
        """Store a new trip with its first event: `created`, or `exists` (nothing written; the
        trip was stored before, perhaps by this very call retried), or `refused` (tombstoned)."""
        if trip.status != "queued":
            raise states.IllegalTransition(trip.id, "(new)", trip.status)
        kind, data = event
        document = trip.model_dump_json()
        outcome = await self._create(
            keys=[self.key(trip.id), self.events_key(trip.id), self.tombstone_key(trip.id)],
            args=[
                document,
                TRIP_TTL_SECONDS,
                kind,
                orjson.dumps(data).decode(),
                EVENTS_MAXLEN,
                CHANNEL,
                notice(trip.id, trip.status),
            ],
        )
        if outcome == "created":
            self._known[trip.id] = document
        return str(outcome)  # type: ignore[return-value]

    async def bury(self, trip_id: str) -> Literal["exists", "tombstoned"]:
        """Settle whether a trip exists: `exists`, or `tombstoned` (it never will: `create` refuses)."""
        outcome = await self._bury(
            keys=[self.key(trip_id), self.tombstone_key(trip_id)], args=[TOMBSTONE_TTL_SECONDS]
        )
        return str(outcome)  # type: ignore[return-value]

    async def find(self, trip_id: str) -> Trip | None:
        try:
            return await self.get(trip_id)
        except TripNotFound:
            return None

    async def get(self, trip_id: str) -> Trip:
        raw = await self.redis.get(self.key(trip_id))
        if raw is None:
            self._known.pop(trip_id, None)
            raise TripNotFound(trip_id)
        self._known[trip_id] = str(raw)
        return Trip.model_validate_json(raw)

    async def update(
        self,
        trip_id: str,
        change: Callable[[Trip], list[tuple[str, dict[str, Any]]]],
        *,
        checkpoint: tuple[str, Any] | None = None,
    ) -> Trip:
        """Apply `change` to the stored trip and append the events it returns, atomically; with
        `checkpoint` (a step id and its result, JSON-ready), store that step's checkpoint with it.

        `change` mutates the trip it is given and returns the events to append; it may raise
        `TransitionRefused`. It can run more than once (when another writer got in first). It
        first runs on the document this process last read or wrote, when it has it (one round
        trip instead of two): the script stores nothing unless that is still the stored one, and
        when `change` refuses it the change runs again on the document as read.
        """
        raw = self._known.get(trip_id)
        verified = raw is None  # raw as just read, not as remembered
        if raw is None:
            raw = await self.redis.get(self.key(trip_id))  # type: ignore[assignment]  # decoded
        while True:
            if raw is None:
                self._known.pop(trip_id, None)
                raise TripNotFound(trip_id)
            trip = Trip.model_validate_json(raw)
            before = trip.status
            try:
                events = change(trip)
                # Only the moves in the state table are stored (states.py).
                states.check(trip_id, before, trip.status)
            except Exception:
                if verified:
                    raise
                raw, verified = await self.redis.get(self.key(trip_id)), True  # type: ignore[assignment]
                continue
            trip.updated_at = now()
            document = trip.model_dump_json()
            answer = await self._run_append(
                trip_id,
                hashlib.sha1(raw.encode()).hexdigest(),
                document,
                events,
                trip.status,
                checkpoint,
            )
            if answer[0] == "missing":
                self._known.pop(trip_id, None)
                raise TripNotFound(trip_id)
            if answer[0] == "changed" and answer[1] != document:
                raw, verified = str(answer[1]), True
                continue  # another writer got in first: the change runs again on what it wrote
            # Stored (`changed` to this very document: the script ran again after its answer was
            # lost, and found its own write).
            self._known[trip_id] = document
            for kind, data in events:
                if kind == "trip.settled":
                    _record_settlement(trip, data)
                    if self.model_in_use:
                        await self._record_model_use(trip_id, data)
            return trip

    async def _run_append(
        self,
        trip_id: str,
        read_sha: str,
        document: str,
        events: list[tuple[str, dict[str, Any]]],
        status: str | None,
        checkpoint: tuple[str, Any] | None = None,
    ) -> list[str]:
        step, result = checkpoint if checkpoint is not None else ("", None)
        args: list[str | int | bytes] = [
            read_sha,
            document,
            TRIP_TTL_SECONDS,
            EVENTS_MAXLEN,
            CHANNEL,
            notice(trip_id, status),
            step,
            orjson.dumps(result) if checkpoint is not None else "",
        ]
        for kind, data in events:
            args += [kind, orjson.dumps(data)]
        answer: list[str] = await self._append(
            keys=[self.key(trip_id), self.events_key(trip_id), self.results_key(trip_id)], args=args
        )
        return answer

    async def emit(self, trip_id: str, kind: str, data: dict[str, Any]) -> None:
        """Append an event that changes no state (a step started, a retry)."""
        await self._run_append(trip_id, "", "", [(kind, data)], None)

    async def events(self, trip_id: str, after: str | None = None, *, count: int = 5000) -> list[TripEvent]:
        """Events after the given id (all of them when None). Never blocks: to wait for new
        events, use the process's `EventHub`."""
        entries: Any = await self.redis.xrange(
            self.events_key(trip_id), min=f"({after}" if after else "-", count=count
        )
        return [TripEvent(str(eid), str(f["type"]), orjson.loads(f["data"])) for eid, f in entries]

    async def last_event_id(self, trip_id: str) -> str | None:
        """The id of the trip's latest event (None when it has none)."""
        entries: Any = await self.redis.xrevrange(self.events_key(trip_id), count=1)
        return str(entries[0][0]) if entries else None

    async def resolve_job(self, trip_id: str, action: str, job_id: str) -> bool:
        """A worker gives up waiting for job `job_id` to be recorded on the trip: True if the trip
        recorded it meanwhile; else it is refused for good (False): an update still on its way
        that would record it finds it refused and gives up (see `TripStore.update`'s callers)."""
        recorded = False

        def decide(t: Trip) -> list[tuple[str, dict[str, Any]]]:
            nonlocal recorded
            recorded = t.jobs.get(action) == job_id
            if not recorded and job_id not in t.refused_jobs:
                t.refused_jobs = [*t.refused_jobs[-19:], job_id]
            return []

        await self.update(trip_id, decide)
        return recorded

    async def _record_model_use(self, trip_id: str, data: dict[str, Any]) -> None:
        """The language-model tokens and cost a settled trip used (when it used any).

        After the settlement is written: a Redis failure here is logged and the metric skipped,
        never an error for the caller (its change is stored).
        """
        fields = ["used:tokens", "used:cost_microusd"]
        try:
            tokens, cost = await self.redis.hmget(keys.trip_budget(trip_id), fields)
        except RedisError:
            log.warning("model use of a settled trip not recorded", extra={"trip_id": trip_id})
            return
        if not tokens:
            return
        attributes = {"status": str(data.get("status")), "reason": str(data.get("reason"))}
        TRIP_TOKENS.record(int(tokens), attributes)
        TRIP_MODEL_COST.record(int(cost or 0) / 1_000_000, attributes)

    async def results(self, trip_id: str) -> dict[str, Any]:
        raw: dict[str, str] = await self.redis.hgetall(self.results_key(trip_id))  # type: ignore[assignment]
        return {step: orjson.loads(value) for step, value in raw.items()}


def notice(trip_id: str, status: str | None) -> str:
    """What is published on `CHANNEL` when a trip's events are appended: `<trip id> <status>`
    (its status after the change), or the trip id alone when the status is not known."""
    return trip_id if status is None else f"{trip_id} {status}"


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
