"""One step of a trip's plan: run it (or reuse its checkpoint), charge it, record it, trace it.

`StepRunner.run` is the only way a step runs, for searches, choosing, summarizing and bookings
alike: it reuses a finished step's checkpoint (a resumed job skips what is done), charges the
trip's step budget and every tool call attempt, records the step's state and events, and is
one span (`invoke_agent <agent>` for the specialists). It raises `StepFailed` when the step
failed and `BudgetExhausted` when a budget stopped it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import StatusCode
from pydantic import TypeAdapter

from waypoint_common.errors import FinalError, ToolCallError
from waypoint_common.results.flights import FlightBooking
from waypoint_common.results.hotels import HotelBooking
from waypoint_common.results.restaurants import Reservation
from waypoint_orchestrator.agents.base import CallContext
from waypoint_orchestrator.budgets import BudgetExhausted, BudgetLedger
from waypoint_orchestrator.chooser import Selection
from waypoint_orchestrator.models import Itinerary, StepRecord, Trip
from waypoint_orchestrator.store import TripStore, now

tracer = trace.get_tracer("waypoint.orchestrator")
Event = tuple[str, dict[str, Any]]
T = TypeVar("T")


class StepFailed(FinalError):
    """A step failed for good (its retries are spent, or its tool refused); the cause is chained.

    A spent budget is not a step failure: `StepRunner.run` records the step failed and re-raises
    the `BudgetExhausted` itself, so callers catch it by its own type.
    """

    def __init__(self, step_id: str, error: str) -> None:
        super().__init__(f"{step_id}: {error}")
        self.step_id = step_id
        self.error = error


class StepRunner:
    """Runs steps of any trip on this process's store and budget ledger."""

    def __init__(self, store: TripStore, ledger: BudgetLedger) -> None:
        self.store = store
        self.ledger = ledger

    async def start(self, trip_id: str, steps: list[StepRecord]) -> Trip:
        """Record steps that run side by side as started, in one change (each then runs with
        `run(..., started=<the trip this returns>)`)."""

        def started(t: Trip) -> list[Event]:
            events: list[Event] = []
            for step in steps:
                record = t.step(step.id)
                record.status = "running"
                record.started_at = now()
                events.append(("step.started", {"step": step.id, "agent": step.agent}))
            return events

        return await self.store.update(trip_id, started)

    async def run(
        self,
        trip_id: str,
        step: StepRecord,
        results: dict[str, Any],
        action: Callable[[CallContext], Awaitable[T]],
        adapter: TypeAdapter[T],
        *,
        started: Trip | None = None,
    ) -> T:
        """Run one step (or reuse its checkpoint), recording it and its events.

        `results` holds the trip's checkpoints as stored (JSON); `adapter` reads the step's one
        back into its type, and writes a new one. `started` is the trip as `start` left it when
        the step was recorded started with others; without it, this records the start.
        """
        if step.id in results:
            return adapter.validate_python(results[step.id])
        trip = started if started is not None else await self.start(trip_id, [step])

        async def charge_call(charge_id: str) -> None:
            await self.ledger.charge(trip_id, "tool_calls", 1, charge_id)

        async def on_retry(tool: str, attempt: int, error: str) -> None:
            await self.store.emit(
                trip_id, "step.retried", {"step": step.id, "tool": tool, "attempt": attempt, "error": error}
            )

        ctx = CallContext(trip_id, step.id, on_retry, charge_call, owner=trip.tenant)
        ctx.deadline = await self.ledger.deadline(trip_id)
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

            def failed(t: Trip) -> list[Event]:
                record = t.step(step.id)
                record.status = "failed"
                record.attempts = ctx.attempts
                record.finished_at = now()
                record.error = error
                return [("step.failed", {"step": step.id, "attempts": ctx.attempts, "error": error})]

            await self.store.update(trip_id, failed)
            if isinstance(exc, BudgetExhausted):
                raise
            raise StepFailed(step.id, error) from exc
        checkpoint = adapter.dump_python(result, mode="json")

        def finished(t: Trip) -> list[Event]:
            record = t.step(step.id)
            record.status = "succeeded"
            record.attempts = ctx.attempts
            record.finished_at = now()
            record.summary = _summary(result)
            events: list[Event] = [
                ("step.finished", {"step": step.id, "attempts": ctx.attempts, "summary": record.summary})
            ]
            for note in ctx.notes:
                if note not in t.warnings:
                    t.warnings.append(note)
            for note in ctx.stale:
                record.summary += " (stale)"
                record.degraded = f"stale answer: {note}"
                t.warnings.append(f"stale: {note}")
                events.append(("step.degraded", {"step": step.id, "warning": note}))
            return events

        # The checkpoint is stored with the step's success, in one step.
        await self.store.update(trip_id, finished, checkpoint=(step.id, checkpoint))
        results[step.id] = checkpoint
        return result


def _summary(result: object) -> str:
    match result:
        case list():
            return f"{len(result)} option(s)"
        case FlightBooking() | HotelBooking():
            return f"{result.booking_id} {result.status}"
        case Reservation():
            return f"{result.reservation_id} {result.status}"
        case Selection():
            return f"total ${result.total:,.2f}" + ("" if result.within_budget else " (over budget)")
        case Itinerary():
            return result.summary
    return "done"
