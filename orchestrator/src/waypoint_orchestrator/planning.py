"""Planning a trip: route and gate the request, run the plan's searches in parallel, choose,
summarize, and settle it (`planned`, `partial`, `over_budget`, `needs_input`, `failed`), or go
straight on to the booking saga when the request asked to book.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from pydantic import TypeAdapter

from waypoint_common.results.flights import FlightOffer
from waypoint_common.results.hotels import HotelOffer
from waypoint_common.results.restaurants import RestaurantOffer
from waypoint_common.results.weather import DailyForecast
from waypoint_orchestrator.agents import Agents
from waypoint_orchestrator.agents.base import CallContext
from waypoint_orchestrator.budgets import BudgetExhausted, BudgetLedger
from waypoint_orchestrator.chooser import NothingToChoose, Selection, choose
from waypoint_orchestrator.gate import check as gate_check
from waypoint_orchestrator.llm.narrative import Narrator
from waypoint_orchestrator.llm.reading import ModelReader
from waypoint_orchestrator.models import (
    Itinerary,
    Limits,
    RouterDecision,
    TerminationReason,
    Trip,
    TripLimits,
    TripStatus,
    jsonable,
)
from waypoint_orchestrator.planner import plan, shape
from waypoint_orchestrator.router import EXTRACTION_TIME_LIMIT_SECONDS, decide, route_in_thread
from waypoint_orchestrator.saga import BookingSaga
from waypoint_orchestrator.searches import Searches
from waypoint_orchestrator.states import move, settle
from waypoint_orchestrator.steps import StepFailed, StepRunner
from waypoint_orchestrator.store import TransitionRefused, TripStore
from waypoint_orchestrator.summarizer import summarize

tracer = trace.get_tracer("waypoint.orchestrator")
Event = tuple[str, dict[str, Any]]
# How the choice and the itinerary are read back from their checkpoints and written to them.
SELECTION = TypeAdapter(Selection)
ITINERARY = TypeAdapter(Itinerary)
# Searches whose loss degrades the trip instead of ending it.
OPTIONAL_AGENTS = frozenset({"weather", "dining"})


class TripPlanner:
    def __init__(
        self,
        store: TripStore,
        agents: Agents,
        ledger: BudgetLedger,
        steps: StepRunner,
        saga: BookingSaga,
        worker_id: str,
        limits_for: Callable[[TripLimits | None], tuple[Limits, list[tuple[str, str]]]],
        *,
        reader: ModelReader | None = None,
        searches: Searches | None = None,
        narrator: Narrator | None = None,
    ) -> None:
        self.reader = reader
        self.narrator = narrator
        self.searches = searches or Searches(agents, steps)
        self.store = store
        self.agents = agents
        self.ledger = ledger
        self.steps = steps
        self.saga = saga
        self.worker_id = worker_id
        self.limits_for = limits_for

    async def plan(self, trip_id: str) -> None:
        trip = await self.store.get(trip_id)
        if trip.status == "booking":
            # This job went on to book (the request asked to) and its worker died meanwhile.
            await self.saga.book(trip_id)
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

        # The budgets open before the query is read: a model reading it spends tokens.
        limits, _ = self.limits_for(trip.request.limits)
        await self.ledger.open(trip_id, limits)
        try:
            decision, fallback = await self._route(trip, today)
        except BudgetExhausted as exc:
            await self._budget_exhausted(trip_id, exc)
            return
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
            for note in [*fallback, *decision.assumptions, *verdict.warnings]:
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
        await self._execute_plan(trip)

    async def _route(self, trip: Trip, today: dt.date) -> tuple[RouterDecision, list[str]]:
        """The router's decision, the query read by the model when one is configured (else, or
        when the model fails, by the rules), and a warning when the rules stood in for it."""
        query = trip.request.query
        if self.reader is None or not query:
            decision = await route_in_thread(trip.request, today, time_limit=EXTRACTION_TIME_LIMIT_SECONDS)
            return decision, []
        with tracer.start_as_current_span(
            "invoke_agent router",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "router"},
        ):
            reading, why_not = await self.reader.read(trip.id, query, today)
        if reading is not None:
            return decide(trip.request, reading, "model"), []
        decision = await route_in_thread(trip.request, today, time_limit=EXTRACTION_TIME_LIMIT_SECONDS)
        return decision, [why_not]

    async def _execute_plan(self, trip: Trip) -> None:
        assert trip.resolved is not None
        resolved, trip_shape = trip.resolved, shape(trip.resolved)
        results = await self.store.results(trip.id)
        searches = [s for s in trip.steps if s.agent not in ("planner", "summarizer")]
        # The searches that run (those without a checkpoint) are recorded started in one change.
        pending = [s for s in searches if s.id not in results]
        started = await self.steps.start(trip.id, pending) if pending else None
        outcomes = await asyncio.gather(
            *(self.searches.run(trip.id, s, results, resolved, trip_shape, started) for s in searches),
            return_exceptions=True,
        )
        warnings: list[str] = []
        degraded: dict[str, str] = {}  # step id -> what the trip goes without
        spent = [o for o in outcomes if isinstance(o, BudgetExhausted)]
        if spent:
            await self._budget_exhausted(trip.id, spent[0])
            return
        found: dict[str, Any] = {}  # step id -> its typed answer
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
            found[step.id] = outcome
        if await self._cancelled(trip.id):
            return

        flights: list[FlightOffer] | None = found.get("search_flights")
        hotels: list[HotelOffer] | None = found.get("search_hotels")
        forecast: list[DailyForecast] | None = found.get("get_forecast")
        dinner_options: list[tuple[dt.date, list[RestaurantOffer]]] = [
            (date, found[f"search_restaurants_{i + 1}"])
            for i, date in enumerate(trip_shape.dinner_dates)
            if f"search_restaurants_{i + 1}" in found
        ]
        choice_step = next((s for s in trip.steps if s.id == "choose"), None)
        selection = Selection()
        if choice_step is not None:

            async def choose_action(_: CallContext) -> Selection:
                try:
                    return choose(resolved, flights, hotels, dinner_options)
                except NothingToChoose as exc:
                    raise StepFailed("choose", str(exc)) from exc

            try:
                selection = await self.steps.run(trip.id, choice_step, results, choose_action, SELECTION)
            except BudgetExhausted as exc:
                await self._budget_exhausted(trip.id, exc)
                return
            except StepFailed as exc:
                await self._fail(trip.id, "error", exc.error, skip=["summarize"])
                return
        warnings.extend(selection.warnings)
        summarize_step = trip.step("summarize")

        async def summarize_action(ctx: CallContext) -> Itinerary:
            itinerary = summarize(resolved, trip_shape, selection, forecast, warnings)
            if self.narrator is None:
                return itinerary
            return await self.narrator.narrate(trip.id, itinerary, ctx)

        try:
            itinerary = await self.steps.run(trip.id, summarize_step, results, summarize_action, ITINERARY)
        except BudgetExhausted as exc:
            # Summarizing calls no tool: a spent budget (steps, wall time) is what stops it.
            await self._budget_exhausted(trip.id, exc)
            return
        except StepFailed as exc:
            await self._fail(trip.id, "error", exc.error, skip=[])
            return

        def planned(t: Trip) -> list[Event]:
            t.itinerary = itinerary
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
            await self.saga.book(trip.id)

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
