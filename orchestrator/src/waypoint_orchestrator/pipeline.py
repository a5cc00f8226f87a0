"""Running a trip: route, gate, plan, execute, choose, summarize, and the booking saga.

A `TripRunner` handles the three kinds of job: `plan` (everything up to `planned`, then the
saga when the request asked to book at once), `book` (the saga, after a confirm) and `cancel`
(compensate every booking). Every change of state goes through `TripStore.update`, which also
appends the event; every finished step's result is checkpointed, so a job that runs again
(another worker picked it up after a crash) skips what is done. Every write to a tool server
carries a `request_id` derived from the trip and the step, so nothing is booked twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, StatusCode

from waypoint_common.connections import REDIS_UNAVAILABLE
from waypoint_common.retries import ToolCallError, ToolRejected
from waypoint_common.telemetry import span_context_of, trip_context
from waypoint_orchestrator.agents.base import CallContext
from waypoint_orchestrator.agents.dining import DiningAgent
from waypoint_orchestrator.agents.flights import FlightsAgent
from waypoint_orchestrator.agents.hotels import HotelsAgent
from waypoint_orchestrator.agents.weather import WeatherAgent
from waypoint_orchestrator.budgets import BudgetExhausted, BudgetLedger
from waypoint_orchestrator.chooser import Dinner, NothingToChoose, Selection, choose
from waypoint_orchestrator.gate import check as gate_check
from waypoint_orchestrator.jobs import Job
from waypoint_orchestrator.models import (
    SETTLED_STATUSES,
    BookingRecord,
    DiningWish,
    Itinerary,
    ResolvedTrip,
    StepRecord,
    TerminationReason,
    Trip,
    TripStatus,
    jsonable,
)
from waypoint_orchestrator.planner import TripShape, booking_steps, plan, shape
from waypoint_orchestrator.quotas import SpendLedger
from waypoint_orchestrator.router import EXTRACTION_TIME_LIMIT_SECONDS, route_in_thread
from waypoint_orchestrator.states import move, settle
from waypoint_orchestrator.store import TransitionRefused, TripStore, now
from waypoint_orchestrator.summarizer import summarize

log = logging.getLogger(__name__)
tracer = trace.get_tracer("waypoint.orchestrator")

Event = tuple[str, dict[str, Any]]
# Searches whose loss degrades the trip instead of ending it.
OPTIONAL_AGENTS = frozenset({"weather", "dining"})
COMPENSATION_ATTEMPTS = 6


@dataclass(frozen=True)
class Agents:
    flights: FlightsAgent
    hotels: HotelsAgent
    weather: WeatherAgent
    dining: DiningAgent


class StepFailed(Exception):
    def __init__(self, step_id: str, error: str, budget: BudgetExhausted | None = None) -> None:
        super().__init__(f"{step_id}: {error}")
        self.step_id = step_id
        self.error = error
        self.budget = budget


MAX_DELIVERIES = 3
# How long a worker waits for a job's trip to record it (the job is queued just before).
JOB_GRACE_SECONDS = 5.0
JOB_GRACE_POLL_SECONDS = 0.25


class TripRunner:
    def __init__(
        self,
        store: TripStore,
        agents: Agents,
        worker_id: str,
        ledger: BudgetLedger,
        limits_for: Callable[[Any], tuple[dict[str, float], Any]],
        spend: SpendLedger | None = None,
    ) -> None:
        self.store = store
        self.agents = agents
        self.worker_id = worker_id
        self.ledger = ledger
        self.limits_for = limits_for
        self.spend = spend

    async def run(self, job: Job) -> None:
        """Run a job as part of the trip's trace: a child of the request that created the trip.

        A job the trip does not record is dropped (see `_trip_for`). An exception inside the job
        ends the trip at once (`failed`, reason `error`), compensating what it booked: running
        the job again would fail the same way. Only Redis being unreachable (and cancellation)
        propagates, leaving the job pending for another delivery.
        """
        handlers: dict[str, Callable[[str], Awaitable[None]]] = {
            "plan": self.plan,
            "book": self.book,
            "cancel": self.cancel,
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
                    "messaging.destination.name": "wp:jobs",
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
            await asyncio.sleep(JOB_GRACE_POLL_SECONDS)

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
                await self._compensate(job.trip_id, "error", detail)
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
            await self._compensate(job.trip_id, "no_progress", detail)
            return
        await self.store.update(job.trip_id, lambda t: settle(t, "failed", "no_progress", detail))

    # -- planning ---------------------------------------------------------------------------

    async def plan(self, trip_id: str) -> None:
        trip = await self.store.get(trip_id)
        if trip.status == "booking":
            # This job went on to book (the request asked to) and its worker died meanwhile.
            await self.book(trip_id)
            return
        if trip.status not in ("queued", "running"):
            return  # a repeated delivery of a job that already finished
        today = dt.datetime.now(dt.UTC).date()

        def start(t: Trip) -> list[Event]:
            if t.status not in ("queued", "running"):
                raise TransitionRefused(t.status)
            if t.cancel_requested:
                return settle(t, "cancelled", "cancelled", "cancelled before it started")
            t.worker = self.worker_id
            return move(t, "running")

        try:
            trip = await self.store.update(trip_id, start)
        except TransitionRefused:
            return
        if trip.status != "running":
            return

        decision = await route_in_thread(trip.request, today, time_limit=EXTRACTION_TIME_LIMIT_SECONDS)
        verdict = gate_check(decision, trip.request, today)

        def routed(t: Trip) -> list[Event]:
            t.decision = decision
            t.kind = decision.kind
            events: list[Event] = [
                (
                    "router.decided",
                    {"kind": decision.kind, "reason": decision.reason, "assumptions": decision.assumptions},
                ),
            ]
            for note in [*decision.assumptions, *verdict.warnings]:
                if note not in t.warnings:
                    t.warnings.append(note)
            if not verdict.passed or verdict.trip is None:
                t.problems = verdict.problems
                events.append(("gate.failed", {"problems": [jsonable(p) for p in verdict.problems]}))
                reason: TerminationReason = "unsupported" if decision.kind == "unsupported" else "needs_input"
                detail = "; ".join(f"{p.field}: {p.reason}" for p in verdict.problems)
                return events + settle(t, "needs_input", reason, detail)
            t.resolved = verdict.trip
            planned = plan(verdict.trip)
            known = {s.id for s in t.steps}
            t.steps.extend(s for s in planned if s.id not in known)
            events.append(("gate.passed", {"trip": jsonable(verdict.trip)}))
            events.append(("plan.created", {"steps": [jsonable(s) for s in t.steps]}))
            return events

        trip = await self.store.update(trip_id, routed)
        if trip.status != "running" or trip.resolved is None:
            return
        limits, _ = self.limits_for(trip.request.limits)
        await self.ledger.open(
            trip_id,
            steps=int(limits["max_steps"]),
            tool_calls=int(limits["max_tool_calls"]),
            tokens=int(limits["max_tokens"]),
            wall_seconds=limits["max_wall_seconds"],
        )
        await self._execute_plan(trip)

    async def _execute_plan(self, trip: Trip) -> None:
        assert trip.resolved is not None
        resolved, trip_shape = trip.resolved, shape(trip.resolved)
        results = await self.store.results(trip.id)
        searches = [s for s in trip.steps if s.agent not in ("planner", "summarizer")]
        outcomes = await asyncio.gather(
            *(
                self._step(trip.id, s, results, self._search_action(resolved, trip_shape, s))
                for s in searches
            ),
            return_exceptions=True,
        )
        warnings: list[str] = []
        degraded: dict[str, str] = {}  # step id -> what the trip goes without
        spent = [o.budget for o in outcomes if isinstance(o, StepFailed) and o.budget is not None]
        if spent:
            await self._budget_exhausted(trip.id, spent[0])
            return
        for step, outcome in zip(searches, outcomes, strict=True):
            if isinstance(outcome, StepFailed):
                if step.agent in OPTIONAL_AGENTS:
                    what = "forecast" if step.agent == "weather" else "dinner"
                    warnings.append(f"no {what}: {step.id} failed ({outcome.error})")
                    degraded[step.id] = f"no {what}"
                    continue
                await self._fail(
                    trip.id, "error", f"{step.id} failed: {outcome.error}", skip=["choose", "summarize"]
                )
                return
            if isinstance(outcome, BaseException):
                raise outcome
        if await self._cancelled(trip.id):
            return

        flights = results.get("search_flights")
        hotels = results.get("search_hotels")
        forecast = results.get("get_forecast")
        dinner_options = [
            (date, results[f"search_restaurants_{i + 1}"])
            for i, date in enumerate(trip_shape.dinner_dates)
            if f"search_restaurants_{i + 1}" in results
        ]
        choice_step = next((s for s in trip.steps if s.id == "choose"), None)
        selection = Selection()
        if choice_step is not None:

            async def choose_action(_: CallContext) -> Any:
                try:
                    chosen = choose(resolved, flights, hotels, dinner_options)
                except NothingToChoose as exc:
                    raise StepFailed("choose", str(exc)) from exc
                return _selection_json(chosen)

            try:
                selection = _selection_from(await self._step(trip.id, choice_step, results, choose_action))
            except StepFailed as exc:
                if exc.budget is not None:
                    await self._budget_exhausted(trip.id, exc.budget)
                else:
                    await self._fail(trip.id, "error", exc.error, skip=["summarize"])
                return
        warnings.extend(selection.warnings)
        summarize_step = trip.step("summarize")

        async def summarize_action(_: CallContext) -> Any:
            return jsonable(summarize(resolved, trip_shape, selection, forecast, warnings))

        try:
            itinerary = await self._step(trip.id, summarize_step, results, summarize_action)
        except StepFailed as exc:
            # Summarizing calls no tool: only a spent budget (steps, wall time) stops it.
            if exc.budget is not None:
                await self._budget_exhausted(trip.id, exc.budget)
            else:
                await self._fail(trip.id, "error", exc.error, skip=[])
            return

        def planned(t: Trip) -> list[Event]:
            t.itinerary = Itinerary.model_validate(itinerary)
            for w in warnings:
                if w not in t.warnings:
                    t.warnings.append(w)
            if not selection.within_budget:
                return settle(
                    t,
                    "over_budget",
                    "over_budget",
                    f"cheapest complete option costs ${selection.total:,.2f}, "
                    f"${selection.shortfall:,.2f} over the budget",
                )
            for step_id, lacking in degraded.items():
                t.step(step_id).degraded = lacking
            # Partial is a fact about the steps (one went without its answer, or used a stale one),
            # not about the wording of a warning: a one-way trip's notes make nothing partial.
            status: TripStatus = "partial" if any(r.degraded for r in t.steps) else "planned"
            if t.request.book and not t.cancel_requested:
                return [("itinerary.ready", {"summary": t.itinerary.summary}), *move(t, "booking")]
            return [("itinerary.ready", {"summary": t.itinerary.summary}), *settle(t, status, "done")]

        trip = await self.store.update(trip.id, planned)
        if trip.status == "booking":
            await self.book(trip.id)

    def _search_action(
        self, trip: ResolvedTrip, trip_shape: TripShape, step: StepRecord
    ) -> Callable[[CallContext], Awaitable[Any]]:
        agents = self.agents
        if step.action == "search_flights":
            return lambda ctx: agents.flights.search(trip, ctx)
        if step.action == "search_hotels":
            return lambda ctx: agents.hotels.search(trip, trip_shape.check_in, trip_shape.check_out, ctx)
        if step.action == "get_forecast":
            return lambda ctx: agents.weather.forecast(trip, ctx)
        if step.action == "search_restaurants":
            index = int(step.id.rsplit("_", 1)[1]) - 1
            date = trip_shape.dinner_dates[index]
            assert trip.dining is not None or trip.kind == "dining_only"
            wish = trip.dining or DiningWish()
            return lambda ctx: agents.dining.search(trip, date, wish, ctx)
        raise ValueError(f"no action for step {step.id}")

    async def _step(
        self,
        trip_id: str,
        step: StepRecord,
        results: dict[str, Any],
        action: Callable[[CallContext], Awaitable[Any]],
    ) -> Any:
        """Run one step (or reuse its checkpoint), recording it and its events."""
        if step.id in results:
            return results[step.id]

        def started(t: Trip) -> list[Event]:
            record = t.step(step.id)
            record.status = "running"
            record.started_at = now()
            return [("step.started", {"step": step.id, "agent": step.agent})]

        await self.store.update(trip_id, started)

        async def charge_call(charge_id: str) -> None:
            await self.ledger.charge(trip_id, "tool_calls", 1, charge_id)

        async def on_retry(tool: str, attempt: int, error: str) -> None:
            await self.store.emit(
                trip_id, "step.retried", {"step": step.id, "tool": tool, "attempt": attempt, "error": error}
            )

        ctx = CallContext(
            trip_id, step.id, on_retry, charge_call, owner=(await self.store.get(trip_id)).tenant
        )
        ctx.deadline = (await self.ledger.usage(trip_id)).get("deadline")
        specialist = step.agent not in ("planner", "summarizer")
        span_name = f"invoke_agent {step.agent}" if specialist else f"{step.agent} {step.action}"
        attributes: dict[str, str] = {"waypoint.step.id": step.id, "waypoint.step.action": step.action}
        if specialist:
            attributes |= {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": step.agent}
        try:
            with tracer.start_as_current_span(
                span_name, attributes=attributes, record_exception=False
            ) as span:
                try:
                    await self.ledger.charge(trip_id, "steps", 1, f"step:{step.id}")
                    result = await action(ctx)
                except (ToolCallError, StepFailed, BudgetExhausted) as failure:
                    span.set_attribute("error.type", type(failure).__name__)
                    span.set_status(StatusCode.ERROR, f"{step.id} failed")
                    raise
                span.set_attribute("waypoint.step.attempts", ctx.attempts)
        except (ToolCallError, StepFailed, BudgetExhausted) as exc:
            error = exc.error if isinstance(exc, StepFailed) else str(exc)
            budget = exc if isinstance(exc, BudgetExhausted) else None

            def failed(t: Trip) -> list[Event]:
                record = t.step(step.id)
                record.status = "failed"
                record.attempts = ctx.attempts
                record.finished_at = now()
                record.error = error
                return [("step.failed", {"step": step.id, "attempts": ctx.attempts, "error": error})]

            await self.store.update(trip_id, failed)
            raise StepFailed(step.id, error, budget) from exc
        await self.store.save_result(trip_id, step.id, result)
        results[step.id] = result

        def finished(t: Trip) -> list[Event]:
            record = t.step(step.id)
            record.status = "succeeded"
            record.attempts = ctx.attempts
            record.finished_at = now()
            record.summary = _summary(step, result)
            events: list[Event] = [
                ("step.finished", {"step": step.id, "attempts": ctx.attempts, "summary": record.summary})
            ]
            for note in ctx.stale:
                record.summary += " (stale)"
                record.degraded = f"stale answer: {note}"
                t.warnings.append(f"stale: {note}")
                events.append(("step.degraded", {"step": step.id, "warning": note}))
            return events

        await self.store.update(trip_id, finished)
        return result

    async def _fail(self, trip_id: str, reason: TerminationReason, detail: str, skip: list[str]) -> None:
        def fail(t: Trip) -> list[Event]:
            for record in t.steps:
                if record.id in skip and record.status == "pending":
                    record.status = "skipped"
            return settle(t, "failed", reason, detail)

        await self.store.update(trip_id, fail)

    async def _budget_exhausted(self, trip_id: str, exc: BudgetExhausted) -> None:
        """Stop on a spent budget, keeping what was done (the steps and their results)."""
        detail = f"{exc.budget}: {exc.used:g} of {exc.limit:g} used"

        def stop(t: Trip) -> list[Event]:
            for record in t.steps:
                if record.status == "pending":
                    record.status = "skipped"
            done = any(r.status == "succeeded" for r in t.steps)
            return [
                ("budget.exhausted", {"budget": exc.budget, "used": exc.used, "limit": exc.limit}),
                *settle(t, "partial" if done else "failed", "budget_exhausted", detail),
            ]

        await self.store.update(trip_id, stop)

    async def _cancelled(self, trip_id: str) -> bool:
        trip = await self.store.get(trip_id)
        if not trip.cancel_requested:
            return False
        await self.store.update(
            trip_id, lambda t: settle(t, "cancelled", "cancelled", "cancelled on request")
        )
        return True

    # -- booking (the saga) -----------------------------------------------------------------

    async def book(self, trip_id: str) -> None:
        with tracer.start_as_current_span("saga book_trip", attributes={"waypoint.saga": "book_trip"}):
            await self._book(trip_id)

    async def _book(self, trip_id: str) -> None:
        trip = await self.store.get(trip_id)
        if trip.status != "booking" or trip.itinerary is None or trip.resolved is None:
            return
        itinerary, resolved = trip.itinerary, trip.resolved
        trip_shape = shape(resolved)
        wanted = {
            "flight": int(itinerary.flight is not None),
            "hotel": int(itinerary.hotel is not None),
            "dinners": len(itinerary.dinners),
        }

        def extend(t: Trip) -> list[Event]:
            known = {s.id for s in t.steps}
            new = [s for s in booking_steps(wanted) if s.id not in known]
            t.steps.extend(new)
            return [("plan.extended", {"steps": [jsonable(s) for s in new]})] if new else []

        if not await self._reserve_spend(trip):
            return
        trip = await self.store.update(trip_id, extend)
        results = await self.store.results(trip_id)
        agents = self.agents

        essential: list[tuple[str, Callable[[CallContext], Awaitable[Any]], str, str]] = []
        if itinerary.flight is not None:
            offer = itinerary.flight
            essential.append(
                (
                    "book_flight",
                    lambda ctx: agents.flights.book(
                        offer["offer_id"], resolved.travelers, f"{trip_id}:book_flight", ctx
                    ),
                    "flight",
                    f"{offer['carrier']} {offer['slices'][0]['origin']}→{offer['slices'][0]['destination']}",
                )
            )
        if itinerary.hotel is not None:
            hotel = itinerary.hotel
            essential.append(
                (
                    "book_hotel",
                    lambda ctx: agents.hotels.book(
                        hotel["hotel_id"],
                        trip_shape.check_in.isoformat(),
                        trip_shape.check_out.isoformat(),
                        resolved,
                        f"{trip_id}:book_hotel",
                        ctx,
                    ),
                    "hotel",
                    f"{hotel['name']}, {trip_shape.check_in} to {trip_shape.check_out}",
                )
            )
        for step_id, action, kind, description in essential:
            if await self._cancel_requested(trip_id):
                await self._compensate(trip_id, "cancelled", "cancelled on request during booking")
                return
            try:
                booking = await self._step(trip_id, trip.step(step_id), results, action)
            except StepFailed as exc:
                await self._compensate(
                    trip_id,
                    "budget_exhausted" if exc.budget is not None else "booking_failed",
                    f"{kind} booking failed: {exc.error}",
                    uncertain=(step_id, kind) if _uncertain(exc) else None,
                )
                return
            await self._record_booking(trip_id, kind, booking, step_id, description)

        for i, dinner in enumerate(itinerary.dinners):
            step_id = f"reserve_table_{i + 1}"
            restaurant = dinner["restaurant"]

            def reserve(
                ctx: CallContext,
                r: dict[str, Any] = restaurant,
                d: dict[str, Any] = dinner,
                sid: str = step_id,
            ) -> Awaitable[Any]:
                return agents.dining.reserve(
                    r["restaurant_id"], d["date"], d["time"], resolved, f"{trip_id}:{sid}", ctx
                )

            try:
                booking = await self._step(trip_id, trip.step(step_id), results, reserve)
            except StepFailed as exc:
                # The dinner is optional, but a reservation whose answer was lost may exist:
                # look it up by its request id, so it is either reported or known absent.
                found, unknown = (
                    (await self._find_booking(trip_id, "dinner", step_id)) if _uncertain(exc) else (None, "")
                )
                if found is not None:
                    booking = found
                else:
                    note = f"dinner at {restaurant['name']} on {dinner['date']} not reserved: {exc.error}"
                    if unknown:
                        note += f"; manual intervention needed: {unknown}"

                    def warn(t: Trip, note: str = note, manual: bool = bool(unknown)) -> list[Event]:
                        t.warnings.append(note)
                        t.manual_intervention_required |= manual
                        return [("booking.failed", {"kind": "dinner", "optional": True, "warning": note})]

                    await self.store.update(trip_id, warn)
                    continue
            await self._record_booking(
                trip_id,
                "dinner",
                booking,
                step_id,
                f"{restaurant['name']}, {dinner['date']} {dinner['time']}",
            )

        if await self._cancel_requested(trip_id):
            await self._compensate(trip_id, "cancelled", "cancelled on request during booking")
            return
        trip = await self.store.update(trip_id, lambda t: settle(t, "booked", "done"))
        if trip.cancel_requested:
            # The cancel came in after the last check: the API left it to this saga, so undo now.
            await self._compensate(trip_id, "cancelled", "cancelled on request during booking")

    async def _reserve_spend(self, trip: Trip) -> bool:
        """Reserve the trip's cost against the booking key's daily spend cap, before anything is
        booked (once per trip: a resumed saga passes again). Over the cap, the trip ends here."""
        if trip.spend is None or trip.itinerary is None or self.spend is None:
            return True
        authority = trip.spend
        day = authority.reserved_on or dt.datetime.now(dt.UTC).date()
        amount = trip.itinerary.budget.total_usd
        decision = await self.spend.reserve(authority.key_id, day, trip.id, amount, authority.daily_cap_usd)
        if decision.allowed:
            if authority.reserved_on is None:

                def reserved(t: Trip) -> list[Event]:
                    if t.spend is not None:
                        t.spend.reserved_on = day
                    return []

                await self.store.update(trip.id, reserved)
            return True
        detail = (
            f"booking ${amount:,.2f} would take API key {authority.key_id}'s booking spend on {day} "
            f"to ${decision.spent_usd + amount:,.2f}, over its daily cap of ${authority.daily_cap_usd:,.2f}; "
            "nothing was booked"
        )

        def refused(t: Trip) -> list[Event]:
            return [
                (
                    "spend.refused",
                    {
                        "amount_usd": amount,
                        "spent_usd": decision.spent_usd,
                        "cap_usd": authority.daily_cap_usd,
                    },
                ),
                *settle(t, "failed", "spend_cap_exceeded", detail),
            ]

        await self.store.update(trip.id, refused)
        return False

    async def _refund_spend(self, trip_id: str) -> None:
        """Give the reservation back once every booking of the trip is undone."""
        trip = await self.store.get(trip_id)
        if self.spend is None or trip.spend is None or trip.spend.reserved_on is None:
            return
        if any(b.status == "confirmed" for b in trip.bookings):
            return
        await self.spend.refund(trip.spend.key_id, trip.spend.reserved_on, trip_id)

    def _undo_context(self, trip_id: str, step_id: str, owner: str) -> CallContext:
        """For the calls that look bookings up or undo them: every attempt counts in the trip's
        tool-call budget, but a spent budget (or a passed deadline) never stops them."""

        async def count(charge_id: str) -> None:
            await self.ledger.charge(trip_id, "tool_calls", 1, charge_id, enforce=False)

        return CallContext(trip_id, step_id, charge_call=count, owner=owner)

    async def _find_booking(self, trip_id: str, kind: str, step_id: str) -> tuple[dict[str, Any] | None, str]:
        """Learn what a booking step whose answer was lost did, by its request id (read only):
        (the booking, "") if it holds one, (None, "") if it booked nothing (or it is undone
        already), (None, why) when the server still gives no answer."""
        trip = await self.store.get(trip_id)
        agent = {"flight": self.agents.flights, "hotel": self.agents.hotels, "dinner": self.agents.dining}[
            kind
        ]
        request_id = f"{trip_id}:{step_id}"
        try:
            found = await agent.find(request_id, self._undo_context(trip_id, f"find_{step_id}", trip.tenant))
        except ToolCallError as exc:
            return None, f"could not learn whether request {request_id} was booked ({exc})"
        if found is None or found.get("status") != "confirmed":
            return None, ""
        return found, ""

    async def _cancel_requested(self, trip_id: str) -> bool:
        return (await self.store.get(trip_id)).cancel_requested

    async def _record_booking(
        self, trip_id: str, kind: str, booking: dict[str, Any], step_id: str, description: str
    ) -> None:
        booking_id = str(booking.get("booking_id") or booking.get("reservation_id"))
        amount = float(booking.get("total_price") or booking.get("estimated_total") or 0.0)

        def record(t: Trip) -> list[Event]:
            if any(b.booking_id == booking_id for b in t.bookings):
                return []
            t.bookings.append(
                BookingRecord(
                    kind=kind,
                    booking_id=booking_id,
                    request_id=f"{trip_id}:{step_id}",
                    status="confirmed",
                    amount_usd=amount,
                    description=description,
                )
            )
            return [("booking.made", {"kind": kind, "booking_id": booking_id, "amount_usd": amount})]

        await self.store.update(trip_id, record)

    async def _compensate(
        self,
        trip_id: str,
        reason: TerminationReason,
        detail: str,
        uncertain: tuple[str, str] | None = None,
    ) -> None:
        """Cancel every booking in reverse order; what cannot be undone is flagged for a person.

        `uncertain` is a booking step (and its kind) that failed without a definite answer (a
        timeout, a lost response): it may have been written. It is looked up by its request id,
        which finds the booking if there is one (then cancelled); nothing is written to learn it.
        """
        with tracer.start_as_current_span("saga compensate", attributes={"waypoint.saga.reason": reason}):
            await self._compensate_all(trip_id, reason, detail, uncertain)

    async def _compensate_all(
        self,
        trip_id: str,
        reason: TerminationReason,
        detail: str,
        uncertain: tuple[str, str] | None,
    ) -> None:
        manual: list[str] = []
        if uncertain is not None:
            step_id, kind = uncertain
            found, unknown = await self._find_booking(trip_id, kind, step_id)
            if unknown:
                manual.append(unknown)
            if found is not None:
                await self._record_booking(
                    trip_id, kind, found, step_id, f"{kind} (found while compensating)"
                )
        trip = await self.store.get(trip_id)
        for booking in reversed(trip.bookings):
            if booking.status != "confirmed":
                continue
            ctx = self._undo_context(trip_id, f"cancel_{booking.kind}", trip.tenant)
            cancel_id = f"{booking.request_id}:cancel"
            try:
                if booking.kind == "flight":
                    await self.agents.flights.cancel(
                        booking.booking_id, cancel_id, ctx, COMPENSATION_ATTEMPTS
                    )
                elif booking.kind == "hotel":
                    await self.agents.hotels.cancel(booking.booking_id, cancel_id, ctx, COMPENSATION_ATTEMPTS)
                else:
                    await self.agents.dining.cancel(booking.booking_id, cancel_id, ctx, COMPENSATION_ATTEMPTS)
            except ToolCallError as exc:
                manual.append(f"{booking.kind} booking {booking.booking_id} could not be cancelled: {exc}")
                await self.store.emit(
                    trip_id,
                    "compensation.failed",
                    {"kind": booking.kind, "booking_id": booking.booking_id, "error": str(exc)},
                )
                continue

            def cancelled(
                t: Trip, booking_id: str = booking.booking_id, kind: str = booking.kind
            ) -> list[Event]:
                for b in t.bookings:
                    if b.booking_id == booking_id:
                        b.status = "cancelled"
                return [("compensation.done", {"kind": kind, "booking_id": booking_id})]

            await self.store.update(trip_id, cancelled)

        def finish(t: Trip) -> list[Event]:
            if manual:
                t.manual_intervention_required = True
                t.warnings.extend(f"manual intervention needed: {m}" for m in manual)
            status: TripStatus = "cancelled" if reason == "cancelled" else "failed"
            full = detail + ("; manual intervention needed" if manual else "")
            return settle(t, status, reason, full)

        await self.store.update(trip_id, finish)
        await self._refund_spend(trip_id)

    # -- cancelling -------------------------------------------------------------------------

    async def cancel(self, trip_id: str) -> None:
        trip = await self.store.get(trip_id)
        if trip.status == "cancelled":
            return
        if trip.status == "booking":
            return  # the saga sees the request at its next step and compensates itself
        await self._compensate(trip_id, "cancelled", "cancelled on request")


def _uncertain(exc: StepFailed) -> bool:
    """A failure that does not say whether the write happened (the call went out and no answer came)."""
    cause = exc.__cause__
    return exc.budget is None and not isinstance(cause, ToolRejected)


def _summary(step: StepRecord, result: Any) -> str:
    if isinstance(result, list):
        return f"{len(result)} option(s)"
    if isinstance(result, dict):
        for key in ("booking_id", "reservation_id"):
            if key in result:
                return f"{result[key]} {result.get('status', '')}".strip()
        if "total" in result:
            return f"total ${float(result['total']):,.2f}" + (
                "" if result.get("within_budget") else " (over budget)"
            )
        if "summary" in result:
            return str(result["summary"])
    return "done"


def _selection_json(selection: Selection) -> dict[str, Any]:
    return {
        "flight": selection.flight,
        "hotel": selection.hotel,
        "dinners": [
            {"date": d.date.isoformat(), "time": d.time, "restaurant": d.restaurant, "cost": d.cost}
            for d in selection.dinners
        ],
        "total": selection.total,
        "within_budget": selection.within_budget,
        "shortfall": selection.shortfall,
        "warnings": selection.warnings,
    }


def _selection_from(data: dict[str, Any]) -> Selection:
    return Selection(
        flight=data["flight"],
        hotel=data["hotel"],
        dinners=[
            Dinner(dt.date.fromisoformat(d["date"]), d["time"], d["restaurant"], float(d["cost"]))
            for d in data["dinners"]
        ],
        total=float(data["total"]),
        within_budget=bool(data["within_budget"]),
        shortfall=float(data["shortfall"]),
        warnings=list(data["warnings"]),
    )
