"""Running a trip's jobs: the loop that takes a job, checks it is one to run, and hands it on.

A `TripRunner` handles the three kinds of job: `plan` (`planning.TripPlanner`: everything up to
`planned`, then the saga when the request asked to book at once), `book` (`saga.BookingSaga`,
after a confirm) and `cancel` (the saga's compensation). Every change of state goes through
`TripStore.update` and the state table (`states.py`); every finished step is checkpointed
(`steps.StepRunner`), so a job that runs again (another worker took it over after a crash)
skips what is done. Every write to a tool server carries a `request_id` derived from the trip
and the step, so nothing is booked twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, StatusCode

from waypoint_common import keys
from waypoint_common.connections import REDIS_UNAVAILABLE
from waypoint_common.telemetry import span_context_of, trip_context
from waypoint_orchestrator.agents import Agents
from waypoint_orchestrator.budgets import BudgetLedger
from waypoint_orchestrator.jobs import Job
from waypoint_orchestrator.llm.narrative import Narrator
from waypoint_orchestrator.llm.reading import ModelReader
from waypoint_orchestrator.llm.tools import ModelTools
from waypoint_orchestrator.models import SETTLED_STATUSES, Limits, Trip, TripLimits
from waypoint_orchestrator.planning import TripPlanner
from waypoint_orchestrator.quotas import SpendLedger
from waypoint_orchestrator.saga import BookingSaga
from waypoint_orchestrator.searches import Searches
from waypoint_orchestrator.states import settle
from waypoint_orchestrator.steps import StepRunner
from waypoint_orchestrator.store import TripStore

log = logging.getLogger(__name__)
tracer = trace.get_tracer("waypoint.orchestrator")

Event = tuple[str, dict[str, Any]]
MAX_DELIVERIES = 3
# How long a worker waits for a job's trip to record it (the job is queued just before), looking
# again after 2 ms, then twice as long each time up to 0.25 s: an idle worker usually takes a job
# a moment before its trip is stored, and a flat 0.25 s first wait was most of a short trip's
# plan time (`bench/trips.py`).
JOB_GRACE_SECONDS = 5.0
JOB_GRACE_FIRST_POLL_SECONDS = 0.002
JOB_GRACE_POLL_SECONDS = 0.25


class TripRunner:
    def __init__(
        self,
        store: TripStore,
        agents: Agents,
        worker_id: str,
        ledger: BudgetLedger,
        limits_for: Callable[[TripLimits | None], tuple[Limits, list[tuple[str, str]]]],
        spend: SpendLedger | None = None,
        *,
        reader: ModelReader | None = None,
        model_tools: ModelTools | None = None,
        model_agents: frozenset[str] = frozenset(),
        narrator: Narrator | None = None,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        steps = StepRunner(store, ledger)
        self.saga = BookingSaga(store, agents, ledger, steps, spend)
        self.planner = TripPlanner(
            store,
            agents,
            ledger,
            steps,
            self.saga,
            worker_id,
            limits_for,
            reader=reader,
            searches=Searches(agents, steps, model_tools, model_agents),
            narrator=narrator,
        )

    async def run(self, job: Job) -> None:
        """Run a job as part of the trip's trace: a child of the request that created the trip.

        A job the trip does not record is dropped (see `_trip_for`). An exception inside the job
        ends the trip at once (`failed`, reason `error`), compensating what it booked: running
        the job again would fail the same way. Only Redis being unreachable (and cancellation)
        propagates, leaving the job pending for another delivery.
        """
        handlers: dict[str, Callable[[str], Awaitable[None]]] = {
            "plan": self.planner.plan,
            "book": self.saga.book,
            "cancel": self.saga.cancel,
        }
        trip = await self._trip_for(job)
        if trip is None:
            return
        with trip_context(job.trip_id, trip.traceparent):
            # The request that accepted the trip: the job's parent (one trace per trip), and a
            # link; a job another request asked for (a confirm, a cancel) links to that one too.
            accepted_by = trace.get_current_span().get_span_context()
            links = [Link(accepted_by, {"waypoint.link": "accepted_by"})] if accepted_by.is_valid else []
            requested_by = span_context_of(job.requested_by)
            if requested_by is not None and requested_by != accepted_by:
                links.append(Link(requested_by, {"waypoint.link": "requested_by"}))
            with tracer.start_as_current_span(
                f"process trip.{job.action}",
                kind=SpanKind.CONSUMER,
                links=links or None,
                attributes={
                    "messaging.system": "redis",
                    "messaging.operation.name": "process",
                    "messaging.destination.name": keys.JOBS,
                    "messaging.message.id": job.id,
                    "waypoint.job.action": job.action,
                    "waypoint.job.deliveries": job.deliveries,
                    "waypoint.worker": self.worker_id,
                },
            ):
                try:
                    if job.deliveries > MAX_DELIVERIES:
                        await self._no_progress(job)
                    else:
                        await handlers[job.action](job.trip_id)
                except REDIS_UNAVAILABLE:
                    raise
                except Exception as exc:
                    log.exception("%s job failed; the trip ends with reason error", job.action)
                    span = trace.get_current_span()
                    span.set_attribute("error.type", type(exc).__name__)
                    span.set_status(StatusCode.ERROR, f"{job.action} job failed")
                    await self._errored(job, exc)

    async def _trip_for(self, job: Job) -> Trip | None:
        """The job's trip, or None when the job is not one to run (it is then dropped).

        A job is queued before the trip change that records it is stored. So a worker may see a
        job whose trip does not exist yet, or does not record it yet: it waits `JOB_GRACE_SECONDS`.
        A plan job whose trip still does not exist tombstones the trip id (a late create is
        refused); a book or cancel job still not recorded is marked refused on the trip (a late
        confirm or cancel refuses too). A job another job of the same action replaced is stale.
        Trips stored before jobs were recorded (no plan job on record) run every job.
        """
        deadline = asyncio.get_running_loop().time() + JOB_GRACE_SECONDS
        pause = JOB_GRACE_FIRST_POLL_SECONDS
        while True:
            trip = await self.store.find(job.trip_id)
            if trip is None and job.action == "plan":
                if asyncio.get_running_loop().time() >= deadline:
                    if await self.store.bury(job.trip_id) == "tombstoned":
                        log.warning(
                            "plan job for a trip never created dropped", extra={"trip_id": job.trip_id}
                        )
                        return None
                    continue  # created just now
            elif trip is None:
                log.warning("job for an unknown trip dropped", extra={"trip_id": job.trip_id})
                return None
            else:
                if "plan" not in trip.jobs or trip.jobs.get(job.action) == job.id:
                    return trip
                if job.id in trip.refused_jobs:
                    return None
                if job.action == "plan" or asyncio.get_running_loop().time() >= deadline:
                    if job.action != "plan" and await self.store.resolve_job(job.trip_id, job.action, job.id):
                        continue
                    log.info(
                        "%s job not recorded by its trip dropped", job.action, extra={"trip_id": job.trip_id}
                    )
                    return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, JOB_GRACE_POLL_SECONDS)

    async def _errored(self, job: Job, exc: Exception) -> None:
        """End the trip after an exception in its job: compensate its bookings, then `failed`
        with reason `error`. The detail names the exception's type only (its message may quote
        what the traveller sent)."""
        detail = f"{type(exc).__name__} in the {job.action} job"
        trip = await self.store.get(job.trip_id)
        if trip.status in SETTLED_STATUSES and job.action != "cancel":
            return
        if job.action != "cancel" and any(b.status == "confirmed" for b in trip.bookings):
            try:
                await self.saga.compensate(job.trip_id, "error", detail)
                return
            except REDIS_UNAVAILABLE:
                raise
            except Exception as again:
                log.exception("compensation after an error failed too")
                detail += f"; compensating failed too ({type(again).__name__})"

        def fail(t: Trip) -> list[Event]:
            left = [b for b in t.bookings if b.status == "confirmed"]
            if left:
                t.manual_intervention_required = True
                t.warnings.extend(
                    f"manual intervention needed: {b.kind} booking {b.booking_id} may still be confirmed"
                    for b in left
                )
            for record in t.steps:
                if record.status in ("pending", "running"):
                    record.status = "skipped" if record.status == "pending" else "failed"
            return settle(t, "failed", "error", detail)

        await self.store.update(job.trip_id, fail)

    async def _no_progress(self, job: Job) -> None:
        """A job that keeps coming back without finishing (its worker dies each time)."""
        detail = f"the {job.action} job was delivered {job.deliveries} times without finishing"
        trip = await self.store.get(job.trip_id)
        if trip.status in SETTLED_STATUSES:
            return
        if any(b.status == "confirmed" for b in trip.bookings):
            await self.saga.compensate(job.trip_id, "no_progress", detail)
            return
        await self.store.update(job.trip_id, lambda t: settle(t, "failed", "no_progress", detail))
