"""The booking saga: book a planned trip's items in order, and undo them when it cannot finish.

Each booking is a step with its undo beside it: flight, then hotel (essential: if one fails for
good, what was booked is cancelled in reverse order and the trip fails), then each dinner
(optional: a failed reservation leaves a warning). Before anything is booked, the trip's cost is
reserved against the booking key's daily spend cap. A booking whose answer was lost is looked up
by its request id; every look-up and cancel counts in the trip's tool-call budget but is never
stopped by it. A compensation that keeps failing is flagged for a person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry import trace
from pydantic import TypeAdapter

from waypoint_common.errors import ToolCallError, ToolRejected
from waypoint_common.results.flights import FlightBooking
from waypoint_common.results.hotels import HotelBooking
from waypoint_common.results.restaurants import Reservation
from waypoint_orchestrator.agents import Agents
from waypoint_orchestrator.agents.base import CallContext
from waypoint_orchestrator.booking_spend import BookingSpend
from waypoint_orchestrator.budgets import BudgetExhausted, BudgetLedger
from waypoint_orchestrator.models import (
    BookingRecord,
    PlannedDinner,
    TerminationReason,
    Trip,
    TripStatus,
    jsonable,
)
from waypoint_orchestrator.planner import booking_steps, shape
from waypoint_orchestrator.quotas import SpendLedger
from waypoint_orchestrator.states import settle
from waypoint_orchestrator.steps import StepFailed, StepRunner
from waypoint_orchestrator.store import TripStore

tracer = trace.get_tracer("waypoint.orchestrator")
Event = tuple[str, dict[str, Any]]
COMPENSATION_ATTEMPTS = 6
BookingKind = Literal["flight", "hotel", "dinner"]
Booked = FlightBooking | HotelBooking | Reservation
# A booking step's checkpoint, read back as whichever of the three it is.
BOOKED: TypeAdapter[Booked] = TypeAdapter(Booked)
# Undo a booking: (booking id, request id of the cancel, call context, attempts).
Undo = Callable[[str, str, CallContext, int], Awaitable[Booked]]
Find = Callable[[str, CallContext], Awaitable[Booked | None]]


@dataclass(frozen=True)
class SagaStep:
    """One booking of the saga and how to undo it, side by side."""

    step_id: str
    kind: BookingKind
    description: str
    essential: bool  # a failure undoes what was booked and fails the trip; otherwise a warning
    do: Callable[[CallContext], Awaitable[Booked]]
    undo: Undo


class BookingSaga:
    def __init__(
        self,
        store: TripStore,
        agents: Agents,
        ledger: BudgetLedger,
        steps: StepRunner,
        spend: SpendLedger | None = None,
    ) -> None:
        self.store = store
        self.agents = agents
        self.ledger = ledger
        self.steps = steps
        self.spend = BookingSpend(store, spend)
        # A booking's undo, by kind: also what compensation uses for bookings a past job made.
        self.undo: dict[BookingKind, Undo] = {
            "flight": agents.flights.cancel,
            "hotel": agents.hotels.cancel,
            "dinner": agents.dining.cancel,
        }
        # A booking's look-up by the request id of the write that made it (read only).
        self.find: dict[BookingKind, Find] = {
            "flight": agents.flights.find,
            "hotel": agents.hotels.find,
            "dinner": agents.dining.find,
        }

    async def book(self, trip_id: str) -> None:
        with tracer.start_as_current_span("saga book_trip", attributes={"waypoint.saga": "book_trip"}):
            await self._book(trip_id)

    async def _book(self, trip_id: str) -> None:
        trip = await self.store.get(trip_id)
        if trip.status != "booking" or trip.itinerary is None or trip.resolved is None:
            return
        itinerary = trip.itinerary
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

        if not await self.spend.reserve(trip):
            return
        trip = await self.store.update(trip_id, extend)
        results = await self.store.results(trip_id)
        for entry in saga_steps(trip, self.agents, self.undo):
            if entry.essential and await self._cancel_requested(trip_id):
                await self.compensate(trip_id, "cancelled", "cancelled on request during booking")
                return
            try:
                booking = await self.steps.run(trip_id, trip.step(entry.step_id), results, entry.do, BOOKED)
            except (StepFailed, BudgetExhausted) as exc:
                error = exc.error if isinstance(exc, StepFailed) else str(exc)
                if entry.essential:
                    await self.compensate(
                        trip_id,
                        "budget_exhausted" if isinstance(exc, BudgetExhausted) else "booking_failed",
                        f"{entry.kind} booking failed: {error}",
                        uncertain=(entry.step_id, entry.kind) if _uncertain(exc) else None,
                    )
                    return
                # Optional (a dinner), but a booking whose answer was lost may exist: look it up
                # by its request id, so it is either reported or known absent.
                found, unknown = (
                    await self._find_booking(trip_id, entry.kind, entry.step_id)
                    if _uncertain(exc)
                    else (None, "")
                )
                if found is None:
                    await self._note_optional_failure(
                        trip_id, f"dinner at {entry.description} not reserved: {error}", unknown
                    )
                    continue
                booking = found
            await self._record_booking(trip_id, entry.kind, booking, entry.step_id, entry.description)

        if await self._cancel_requested(trip_id):
            await self.compensate(trip_id, "cancelled", "cancelled on request during booking")
            return
        trip = await self.store.update(trip_id, lambda t: settle(t, "booked", "done"))
        if trip.cancel_requested:
            # The cancel came in after the last check: the API left it to this saga, so undo now.
            await self.compensate(trip_id, "cancelled", "cancelled on request during booking")

    async def _note_optional_failure(self, trip_id: str, note: str, unknown: str) -> None:
        """An optional booking that did not happen: a warning (and a person, if it may exist)."""
        if unknown:
            note += f"; manual intervention needed: {unknown}"

        def warn(t: Trip) -> list[Event]:
            t.warnings.append(note)
            t.manual_intervention_required |= bool(unknown)
            return [("booking.failed", {"kind": "dinner", "optional": True, "warning": note})]

        await self.store.update(trip_id, warn)

    def _undo_context(self, trip_id: str, step_id: str, owner: str) -> CallContext:
        """For the calls that look bookings up or undo them: every attempt counts in the trip's
        tool-call budget, but a spent budget (or a passed deadline) never stops them."""

        async def count(charge_id: str) -> None:
            await self.ledger.charge(trip_id, "tool_calls", 1, charge_id, enforce=False)

        return CallContext(trip_id, step_id, charge_call=count, owner=owner)

    async def _find_booking(self, trip_id: str, kind: BookingKind, step_id: str) -> tuple[Booked | None, str]:
        """Learn what a booking step whose answer was lost did, by its request id (read only):
        (the booking, "") if it holds one, (None, "") if it booked nothing (or it is undone
        already), (None, why) when the server still gives no answer."""
        trip = await self.store.get(trip_id)
        request_id = f"{trip_id}:{step_id}"
        try:
            found = await self.find[kind](
                request_id, self._undo_context(trip_id, f"find_{step_id}", trip.tenant)
            )
        except ToolCallError as exc:
            return None, f"could not learn whether request {request_id} was booked ({exc})"
        if found is None or found.status != "confirmed":
            return None, ""
        return found, ""

    async def _cancel_requested(self, trip_id: str) -> bool:
        return (await self.store.get(trip_id)).cancel_requested

    async def _record_booking(
        self, trip_id: str, kind: BookingKind, booking: Booked, step_id: str, description: str
    ) -> None:
        if isinstance(booking, Reservation):
            booking_id, amount = booking.reservation_id, booking.estimated_total
        else:
            booking_id, amount = booking.booking_id, booking.total_price

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

    async def compensate(
        self,
        trip_id: str,
        reason: TerminationReason,
        detail: str,
        uncertain: tuple[str, BookingKind] | None = None,
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
        uncertain: tuple[str, BookingKind] | None,
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
                await self.undo[booking.kind](booking.booking_id, cancel_id, ctx, COMPENSATION_ATTEMPTS)
            except ToolCallError as exc:
                manual.append(f"{booking.kind} booking {booking.booking_id} could not be cancelled: {exc}")
                await self.store.emit(
                    trip_id,
                    "compensation.failed",
                    {"kind": booking.kind, "booking_id": booking.booking_id, "error": str(exc)},
                )
                continue

            def cancelled(
                t: Trip, booking_id: str = booking.booking_id, kind: BookingKind = booking.kind
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
        await self.spend.refund(trip_id)

    async def cancel(self, trip_id: str) -> None:
        trip = await self.store.get(trip_id)
        if trip.status == "cancelled":
            return
        if trip.status == "booking":
            return  # the saga sees the request at its next step and compensates itself
        await self.compensate(trip_id, "cancelled", "cancelled on request")


def _uncertain(exc: StepFailed | BudgetExhausted) -> bool:
    """A failure that does not say whether the write happened: only a tool's refusal does.

    A spent budget counts as uncertain: it can stop a retry after an earlier attempt went out
    and got no answer, so the booking is looked up by its request id (a read, never a write).
    """
    return not isinstance(exc.__cause__, ToolRejected)


def saga_steps(trip: Trip, agents: Agents, undo: Mapping[BookingKind, Undo]) -> list[SagaStep]:
    """The trip's bookings in order, each with its undo beside it: the flight, the hotel
    (essential), then each dinner (optional)."""
    assert trip.itinerary is not None
    assert trip.resolved is not None
    itinerary, resolved, trip_id = trip.itinerary, trip.resolved, trip.id
    trip_shape = shape(resolved)
    entries: list[SagaStep] = []
    if itinerary.flight is not None:
        offer = itinerary.flight
        entries.append(
            SagaStep(
                "book_flight",
                "flight",
                f"{offer.carrier} {offer.slices[0].origin}→{offer.slices[0].destination}",
                essential=True,
                do=lambda ctx: agents.flights.book(
                    offer.offer_id, resolved.travelers, f"{trip_id}:book_flight", ctx
                ),
                undo=undo["flight"],
            )
        )
    if itinerary.hotel is not None:
        hotel = itinerary.hotel
        entries.append(
            SagaStep(
                "book_hotel",
                "hotel",
                f"{hotel.name}, {trip_shape.check_in} to {trip_shape.check_out}",
                essential=True,
                do=lambda ctx: agents.hotels.book(
                    hotel.hotel_id,
                    trip_shape.check_in,
                    trip_shape.check_out,
                    resolved,
                    f"{trip_id}:book_hotel",
                    ctx,
                ),
                undo=undo["hotel"],
            )
        )
    for i, dinner in enumerate(itinerary.dinners):
        step_id = f"reserve_table_{i + 1}"

        def reserve(ctx: CallContext, d: PlannedDinner = dinner, sid: str = step_id) -> Awaitable[Booked]:
            return agents.dining.reserve(
                d.restaurant.restaurant_id, d.date, d.time, resolved, f"{trip_id}:{sid}", ctx
            )

        entries.append(
            SagaStep(
                step_id,
                "dinner",
                f"{dinner.restaurant.name}, {dinner.date} {dinner.time}",
                essential=False,
                do=reserve,
                undo=undo["dinner"],
            )
        )
    return entries
