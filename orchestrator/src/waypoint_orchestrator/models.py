"""The trip API's data: what a client sends, what the pipeline works on, what a client gets back."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from waypoint_common.results.flights import Cabin, FlightOffer
from waypoint_common.results.hotels import HotelOffer
from waypoint_common.results.restaurants import RestaurantOffer
from waypoint_common.results.weather import DailyForecast

TripKind = Literal["full_trip", "flights_only", "hotels_only", "weather_only", "dining_only"]
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

# Text fields are stripped; `\S` says in the schema that blank text is not text.
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120, pattern=r"\S")
]
Interest = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=40, pattern=r"\S")
]


# What a client sends is taken as the schema says, not coerced: "3" is not a number, 1 not a
# boolean, 0 not a date (pydantic's lax mode would take each). Schema-valid is accepted,
# schema-invalid refused.
def _json_number(value: object) -> object:
    """A JSON number (an integer may be written 3.0, as JSON Schema allows), never text or a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


# Bounds go inside the annotation, before the validator, so the schema states them for an
# optional field too (as `minimum`/`maximum` of the number's branch).
NumberCheck = BeforeValidator(_json_number)
JsonBool = Annotated[bool, Strict()]
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_date_only(value: object) -> object:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


JsonDate = Annotated[dt.date, BeforeValidator(_iso_date_only)]

CurrencyCode = Annotated[str, StringConstraints(to_upper=True, pattern=r"^[A-Za-z]{3}$")]


class Budget(BaseModel):
    """The most the whole trip may cost, for all travellers."""

    model_config = ConfigDict(extra="forbid")

    amount: Annotated[float, Field(gt=0, le=1_000_000), NumberCheck]
    currency: CurrencyCode = "USD"


class DiningWish(BaseModel):
    """Dinners to plan (and book): `fancy` means price level 3-4."""

    model_config = ConfigDict(extra="forbid")

    style: Literal["fancy", "casual", "any"] = "any"
    count: Annotated[int, Field(ge=0, le=3), NumberCheck] = 1
    cuisine: ShortText | None = None


class TripLimits(BaseModel):
    """Per-request budget overrides; each must stay within the server's cap."""

    model_config = ConfigDict(extra="forbid")

    max_steps: Annotated[int, Field(ge=1), NumberCheck] | None = Field(
        None, description="Steps the trip may run (searches, choosing, bookings)."
    )
    max_tool_calls: Annotated[int, Field(ge=1), NumberCheck] | None = Field(
        None, description="Tool call attempts, retries included."
    )
    max_tokens: Annotated[int, Field(ge=0), NumberCheck] | None = Field(
        None, description="Language-model tokens (none are used by default)."
    )
    max_wall_seconds: Annotated[float, Field(gt=0), NumberCheck] | None = Field(
        None, description="Time from the start of planning."
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
    tokens: int = 0


class TripUsage(BaseModel):
    limits: Limits
    used: Used
    deadline: dt.datetime = Field(description="When the wall-time budget runs out.")


class TripRequest(BaseModel):
    """`POST /v1/trips`: structured fields and/or a free-text `query`; structured fields win."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "query": "4-day hiking trip to Patagonia from Seattle in March with one fancy dinner, "
                    "under $3000 for two"
                },
                {
                    "origin": "SEA",
                    "destination": "Patagonia",
                    "start_date": "2027-03-10",
                    "days": 4,
                    "travelers": 2,
                    "budget": {"amount": 3000, "currency": "USD"},
                    "interests": ["hiking"],
                    "dining": {"style": "fancy", "count": 1},
                    "book": False,
                },
            ],
            # What `_something_to_plan` checks, said in the schema: a query or a destination.
            "anyOf": [
                {"required": ["query"], "properties": {"query": {"type": "string"}}},
                {"required": ["destination"], "properties": {"destination": {"type": "string"}}},
            ],
        },
    )

    query: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=r"\S")]
        | None
    ) = None
    kind: TripKind | None = Field(None, description="What to plan; inferred from the query when absent.")
    origin: ShortText | None = Field(None, description="IATA code or city the travellers leave from.")
    destination: ShortText | None = Field(None, description="IATA code, city or region ('Patagonia').")
    start_date: JsonDate | None = None
    end_date: JsonDate | None = Field(None, description="Last day of the trip (the return flight's day).")
    days: Annotated[int, Field(ge=1, le=30), NumberCheck] | None = Field(
        None, description="Trip length in days, counting both ends."
    )
    travelers: Annotated[int, Field(ge=1, le=9), NumberCheck] | None = None
    budget: Budget | None = None
    interests: list[Interest] = Field(default_factory=list, max_length=10)
    dining: DiningWish | None = None
    cabin: Cabin = "economy"
    traveler_name: ShortText | None = Field(None, description="Name for the bookings.")
    book: JsonBool = Field(
        False, description="Book at once; otherwise the trip stops at `planned` until confirmed."
    )
    limits: TripLimits | None = Field(None, description="Budget overrides, within the server's caps.")

    @model_validator(mode="after")
    def _something_to_plan(self) -> TripRequest:
        if self.query is None and self.destination is None:
            raise ValueError("give a free-text `query`, or at least a `destination`")
        return self


class TripFields(BaseModel):
    """What is known about a trip request, before validation. Every field is optional."""

    kind: TripKind | None = None
    origin: str | None = None
    destination: str | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    days: int | None = None
    travelers: int | None = None
    budget: Budget | None = None
    interests: list[str] = Field(default_factory=list)
    dining: DiningWish | None = None


class RouterDecision(BaseModel):
    """The router's answer: what kind of request this is, and the fields it found."""

    kind: TripKind | Literal["unsupported"]
    reason: str = Field(description="Why this kind, in a sentence; for `unsupported`, what is not supported.")
    fields: TripFields = Field(description="Structured fields merged over the extracted ones.")
    extracted: TripFields = Field(description="What the free-text extractor found on its own.")
    assumptions: list[str] = Field(default_factory=list, description="Choices made for the traveller.")


class Problem(BaseModel):
    """One reason a request cannot be planned yet."""

    field: str
    reason: str


class PlaceRef(BaseModel):
    code: str
    city: str
    country: str
    lat: float
    lon: float
    tz: str


class ResolvedTrip(BaseModel):
    """A request that passed the validation gate: everything the planner needs, resolved."""

    kind: TripKind
    origin: PlaceRef | None = Field(None, description="Absent only where the kind needs no origin.")
    destination: PlaceRef
    start_date: dt.date
    end_date: dt.date
    travelers: int
    budget_usd: float | None = Field(None, description="Absent only where the kind needs no budget.")
    budget: Budget | None = None
    interests: list[str] = Field(default_factory=list)
    dining: DiningWish | None = None
    cabin: Cabin = "economy"
    traveler_name: str = "Waypoint Traveller"

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    @property
    def dinner_count(self) -> int:
        if self.dining is not None:
            return self.dining.count
        return 1 if self.kind == "dining_only" else 0


class GateResult(BaseModel):
    """The validation gate's verdict: a resolved trip, or the problems that stop it."""

    trip: ResolvedTrip | None = None
    problems: list[Problem] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.trip is not None and not self.problems


def jsonable(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


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
