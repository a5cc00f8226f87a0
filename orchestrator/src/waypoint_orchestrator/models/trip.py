"""A trip as stored and answered: its status, steps, itinerary, bookings, budgets and end."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from waypoint_common.results.flights import FlightOffer
from waypoint_common.results.hotels import HotelOffer
from waypoint_common.results.restaurants import RestaurantOffer
from waypoint_common.results.weather import DailyForecast
from waypoint_orchestrator.models.request import Problem, ResolvedTrip, RouterDecision, TripKind, TripRequest

TripStatus = Literal[
    "queued",
    "running",
    "needs_input",
    "planned",
    "booking",
    "booked",
    "partial",
    "over_budget",
    "failed",
    "cancelled",
]
# States a trip does not leave by itself (confirm and cancel may still move some of them).
SETTLED_STATUSES: frozenset[str] = frozenset(
    {"needs_input", "planned", "booked", "partial", "over_budget", "failed", "cancelled"}
)


class Limits(BaseModel):
    """A trip's budgets as they apply: the server's defaults, overridden by the request within caps."""

    max_steps: int = Field(ge=1)
    max_tool_calls: int = Field(ge=1)
    max_tokens: int = Field(ge=0)
    max_wall_seconds: float = Field(gt=0)


class Used(BaseModel):
    steps: int = 0
    tool_calls: int = Field(0, description="Tool call attempts, retries, look-ups and cancels included.")
    tokens: int = Field(
        0, description="Language-model tokens, input and output, as the endpoint reported them."
    )
    cost_usd: float = Field(0, description="What the language-model calls cost, at the configured prices.")


class TripUsage(BaseModel):
    limits: Limits
    used: Used
    deadline: dt.datetime = Field(description="When the wall-time budget runs out.")


StepStatus = Literal["pending", "running", "succeeded", "failed", "skipped"]


class StepRecord(BaseModel):
    """One step of a trip's plan and how it went."""

    id: str
    agent: str
    action: str
    depends_on: list[str] = Field(default_factory=list)
    status: StepStatus = "pending"
    attempts: int = 0
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    summary: str | None = None
    error: str | None = None
    degraded: str | None = Field(
        None,
        description="What the trip lacks when it goes on without this step's answer (or a stale one).",
    )


class BookingRecord(BaseModel):
    """A booking the trip made at a tool server, and what became of it."""

    kind: Literal["flight", "hotel", "dinner"]
    booking_id: str
    request_id: str
    status: Literal["confirmed", "cancelled"]
    amount_usd: float
    description: str


class CostLine(BaseModel):
    item: str
    amount_usd: float


class BudgetUse(BaseModel):
    budget_usd: float | None
    total_usd: float
    remaining_usd: float | None = None
    shortfall_usd: float | None = None
    within_budget: bool | None = None
    lines: list[CostLine] = Field(default_factory=list)


class ItineraryDay(BaseModel):
    date: dt.date
    day: int
    title: str
    activities: list[str] = Field(default_factory=list)
    weather: str | None = None
    outdoor_suitability: float | None = None
    hike: bool = False
    dinner: bool = False


class PlannedDinner(BaseModel):
    """A dinner the plan holds a table for: the restaurant as its server offered it."""

    date: dt.date
    time: str = Field(description="Seating time, HH:MM local.")
    estimated_cost_usd: float = Field(
        ge=0,
        # Checkpoints written before the field was renamed still read.
        validation_alias=AliasChoices("estimated_cost_usd", "cost"),
    )
    restaurant: RestaurantOffer


class Itinerary(BaseModel):
    """The plan: each item exactly as its tool server offered it, and the day-by-day view."""

    summary: str
    days: list[ItineraryDay]
    flight: FlightOffer | None = None
    hotel: HotelOffer | None = None
    dinners: list[PlannedDinner] = Field(default_factory=list)
    forecast: list[DailyForecast] = Field(default_factory=list)
    budget: BudgetUse
    narrative: str = Field("", description="The trip in a few sentences, for the traveller.")
    narrative_by: Literal["template", "model"] = Field(
        "template", description="Who wrote the narrative: the template, or the language model (checked)."
    )


TerminationReason = Literal[
    "done",
    "needs_input",
    "unsupported",
    "over_budget",
    "booking_failed",
    "cancelled",
    "error",
    "budget_exhausted",
    "no_progress",
    "spend_cap_exceeded",
]


class Termination(BaseModel):
    """Why the trip stopped where it did."""

    reason: TerminationReason
    detail: str = ""


class SpendAuthority(BaseModel):
    """The API key whose daily booking spend pays for the trip's bookings, and that key's cap."""

    key_id: str
    daily_cap_usd: float
    reserved_on: dt.date | None = Field(None, description="The UTC day the trip's amount was reserved on.")


class Trip(BaseModel):
    """A trip as stored in Redis and returned by the API."""

    id: str
    tenant: str = Field(description="The tenant the trip belongs to; only its API keys see it.")
    status: TripStatus
    created_at: dt.datetime
    updated_at: dt.datetime
    request: TripRequest
    kind: TripKind | Literal["unsupported"] | None = None
    decision: RouterDecision | None = None
    problems: list[Problem] = Field(default_factory=list)
    resolved: ResolvedTrip | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    itinerary: Itinerary | None = None
    bookings: list[BookingRecord] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    termination: Termination | None = None
    manual_intervention_required: bool = False
    cancel_requested: bool = False
    spend: SpendAuthority | None = Field(
        None, description="Whose daily booking spend the bookings count against (set when booking is asked)."
    )
    usage: TripUsage | None = Field(
        None, description="The trip's budgets: their limits, what was used, and the deadline."
    )
    trace_id: str | None = None
    trace_url: str | None = None
    traceparent: str | None = Field(None, description="W3C trace context the trip's jobs continue.")
    worker: str | None = None
    # Internal, never in API answers: the queue job each action was given (a job the trip did
    # not record is a stale duplicate and is dropped), and jobs a worker gave up waiting for.
    jobs: SkipJsonSchema[dict[str, str]] = Field(default_factory=dict)
    refused_jobs: SkipJsonSchema[list[str]] = Field(default_factory=list)

    def step(self, step_id: str) -> StepRecord:
        for record in self.steps:
            if record.id == step_id:
                return record
        raise KeyError(step_id)
