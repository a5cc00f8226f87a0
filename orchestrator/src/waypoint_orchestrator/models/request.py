"""What a client asks for, and what the router and the validation gate make of it."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints, model_validator

from waypoint_common.results.flights import Cabin

TripKind = Literal["full_trip", "flights_only", "hotels_only", "weather_only", "dining_only"]
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
        None, description="Language-model tokens (used only when a model is configured)."
    )
    max_wall_seconds: Annotated[float, Field(gt=0), NumberCheck] | None = Field(
        None, description="Time from the start of planning."
    )


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


ReadBy = Literal["model", "rules", "structured"]


class RouterDecision(BaseModel):
    """The router's answer: what kind of request this is, and the fields it found."""

    kind: TripKind | Literal["unsupported"]
    reason: str = Field(description="Why this kind, in a sentence; for `unsupported`, what is not supported.")
    fields: TripFields = Field(description="Structured fields merged over the extracted ones.")
    extracted: TripFields = Field(description="What the free-text extractor found on its own.")
    assumptions: list[str] = Field(default_factory=list, description="Choices made for the traveller.")
    read_by: ReadBy = Field(
        "rules",
        description="What read the query: the language model, the deterministic rules, or nothing "
        "(`structured`: the request had no query).",
    )


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
