"""Workers inside the orchestrator process: they take jobs from the shared queue and run them.

Several orchestrator processes can share one Redis; the consumer group gives each job to one
worker. A job is acknowledged only after it ran; if its worker dies, another claims it once the
lease is over and runs it again from the trip's checkpoints. A job that fails with an exception
has already ended its trip (`TripRunner.run`) and is acknowledged too; only while Redis is
unreachable does a job stay pending, to be delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from opentelemetry.instrumentation.utils import suppress_instrumentation
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from waypoint_common.connections import REDIS_UNAVAILABLE
from waypoint_orchestrator.jobs import Job, JobQueue
from waypoint_orchestrator.pipeline import TripRunner
from waypoint_orchestrator.store import TripNotFound

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class WorkerPool:
    """`count` concurrent workers sharing this process's runner and connections."""

    def __init__(self, queue: JobQueue, runner: TripRunner, count: int) -> None:
        self.queue = queue
        self.runner = runner
        self.count = count
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        for i in range(self.count):
            self._tasks.append(
                asyncio.create_task(self._loop(f"{self.runner.worker_id}-{i}"), name=f"worker-{i}")
            )

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _heartbeat(self, job: Job, consumer: str) -> None:
        """Keep the job's lease while it runs; if this process dies, the lease runs out."""
        interval = max(0.5, self.queue.lease_ms / 3000)
        while True:
            await asyncio.sleep(interval)
            with (
                contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError),
                suppress_instrumentation(),
            ):
                await self.queue.touch(job, consumer)

    async def _loop(self, consumer: str) -> None:
        group_ready = False
        while not self._stopping.is_set():
            try:
                if not group_ready:
                    await self.queue.ensure_group()
                    group_ready = True
                # Polling is not worth a trace of its own every second.
                with suppress_instrumentation():
                    job = await self.queue.next(consumer, block_ms=1000)
                if job is None:
                    continue
                heartbeat = asyncio.create_task(self._heartbeat(job, consumer))
                try:
                    await self.runner.run(job)
                except REDIS_UNAVAILABLE:
                    raise
                except TripNotFound:
                    log.warning("job for an unknown trip dropped", extra={"trip_id": job.trip_id})
                except Exception:
                    # The runner could not even record the failure (say, an unreadable trip):
                    # delivering the job again would fail the same way.
                    log.exception("job could not be run nor its failure recorded; dropped")
                finally:
                    heartbeat.cancel()
                await self.queue.ack(job)
            except asyncio.CancelledError:
                raise
            except REDIS_UNAVAILABLE as exc:
                # Redis is away: the job (if any) stays pending and comes back; wait and retry.
                log.warning("redis unavailable in worker loop: %r", exc)
                await asyncio.sleep(1.0)
            except ResponseError as exc:
                # The queue's stream or group is gone (e.g. Redis restarted without its data).
                log.warning("job queue unusable (%s); creating it again", exc)
                group_ready = False
                await asyncio.sleep(0.5)
            except Exception:
                log.exception("worker loop failed; retrying")
                await asyncio.sleep(0.5)
