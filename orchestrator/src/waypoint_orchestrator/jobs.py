"""The work queue: a Redis stream with one consumer group that every orchestrator worker reads.

Each job is delivered to one worker. A worker acknowledges a job when it is done with it; a job
whose worker died stays pending and is claimed by another worker once it has been idle longer
than the lease.

A job is queued before the trip change that needs it is stored, and that change records the
job's id on the trip (`Trip.jobs`): so a stored change always has its job, and a job the trip
does not record (its request failed, or a duplicate) is dropped by the worker (`TripRunner.run`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from redis.exceptions import ResponseError

from waypoint_common import keys
from waypoint_common.connections import RedisClient

JobAction = Literal["plan", "book", "cancel"]
STREAM = keys.JOBS
GROUP = keys.JOBS_GROUP


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    trip_id: str
    action: JobAction
    deliveries: int = 1
    requested_by: str | None = None  # W3C traceparent of the request that queued it, if traced


class JobQueue:
    def __init__(self, redis: RedisClient, *, lease_ms: int = 60_000) -> None:
        self.redis = redis
        self.lease_ms = lease_ms

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def enqueue(self, trip_id: str, action: JobAction, *, requested_by: str | None = None) -> str:
        """Queue a job; its id is what the trip records. `requested_by` is the trace context of
        the request that asked for it (a confirm, a cancel): the job's span links to it."""
        fields = {"trip_id": trip_id, "action": action}
        if requested_by:
            fields["requested_by"] = requested_by
        return str(await self.redis.xadd(STREAM, fields))  # type: ignore[arg-type]

    async def discard(self, job_id: str) -> None:
        """Remove a queued job no trip will record (a worker would drop it anyway)."""
        await self.redis.xdel(STREAM, job_id)

    async def next(self, consumer: str, *, block_ms: int = 1000) -> Job | None:
        """The next job for this worker: first one abandoned by a dead worker, else a new one."""
        autoclaimed: Any = await self.redis.xautoclaim(
            STREAM, GROUP, consumer, min_idle_time=self.lease_ms, start_id="0-0", count=1
        )
        claimed = autoclaimed[1]
        if claimed:
            job_id, fields = claimed[0]
            pending: Any = await self.redis.xpending_range(STREAM, GROUP, min=job_id, max=job_id, count=1)
            deliveries = int(pending[0]["times_delivered"]) if pending else 2
            return Job(
                job_id,
                fields["trip_id"],
                fields["action"],
                deliveries=deliveries,
                requested_by=fields.get("requested_by"),
            )
        reply: Any = await self.redis.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=1, block=block_ms)
        if not reply or not reply[0][1]:
            return None
        job_id, fields = reply[0][1][0]
        return Job(job_id, fields["trip_id"], fields["action"], requested_by=fields.get("requested_by"))

    async def touch(self, job: Job, consumer: str) -> None:
        """Renew the lease: a job being worked on is not idle, so no other worker takes it."""
        await self.redis.xclaim(STREAM, GROUP, consumer, min_idle_time=0, message_ids=[job.id], justid=True)

    async def ack(self, job: Job) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(STREAM, GROUP, job.id)
            pipe.xdel(STREAM, job.id)
            await pipe.execute()
