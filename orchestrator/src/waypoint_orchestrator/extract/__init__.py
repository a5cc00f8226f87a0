"""Deterministic free-text extraction: a trip request's fields from what the traveller wrote.

No language model: compiled patterns, read in a fixed order. Each reader masks the words it
used, so later readers do not see them again: "in March" is a date, never a place; "for 2
weeks" is a length, never a party of two; "$3000" is a budget, never a year.

Where each field is read, in the order `extract` reads them:

- `budget.py`: `fields.budget` (a sum and its currency; per person, multiplied by the party).
- `dates.py`: `fields.start_date` and `fields.end_date`.
- `length.py`: `fields.days`, and whether the trip is a weekend.
- `dining.py`: `fields.dining`.
- `travelers.py`: `fields.travelers`.
- `places.py`: `fields.origin` and `fields.destination`.
- `interests.py`: `fields.interests`.
- `kind.py`: `fields.kind` (`kind_hint`, `kind_reason`) and `unsupported`; read over the whole
  text, masked or not.

`reading.py` is the machinery they share: the text being read (`_Scan`: what was read masked,
the notes, the deadline), case-folded patterns (`_Pattern`) and counts. This module puts the
fields together into an `Extraction`.

Conventions:

- `fields.origin` and `fields.destination` hold the IATA code of the airport the text
  resolved to through `waypoint_common.geography` ("Patagonia" -> "FTE"). A name that follows
  a cue word ("to Atlantis") but resolves to nothing is kept as written, so that the
  validation gate can name it.
- Dates are kept as written, even in the past ("March 1 2020"): refusing them is the gate's
  job. A date without a year is its next occurrence on or after `today`.
- `fields.days` counts both ends ("3 nights" = 4 days); `fields.end_date` is set only when the
  text names the last day.
- Every guess is recorded in `assumptions`, in plain words.

Reading time: every pattern is linear in the length of the text (no two unbounded quantifiers
over overlapping characters can trade a run between them: such runs are matched possessively,
`\\s*+`), and no pass rescans the text once per word. `tests/test_extract.py` audits the
compiled patterns of every module of this package for that, and `bench/extraction.py` measures
the worst case over adversarial queries. A caller that must stop in time passes a `deadline` (a
`time.thread_time()` value: the CPU time of the reading thread, so a busy machine does not count
against the query): the extractor checks it between patterns and between words, and raises
`ExtractionTimedOut` past it.

Known limits: numeric dates ("12/03") are not read (day and month order is ambiguous); "next
Friday" is the first Friday after today; a weekend together with a month does not snap to
Friday-Sunday; lower-case place names with no cue word are not taken for places; a budget the
request model refuses (over 1,000,000 in its currency) is dropped with a note.
"""

from __future__ import annotations

import datetime as dt
import logging

from pydantic import BaseModel, ConfigDict, Field

from waypoint_orchestrator.extract.budget import _budget, _read_budget
from waypoint_orchestrator.extract.dates import _next_friday, _read_dates
from waypoint_orchestrator.extract.dining import _read_dining
from waypoint_orchestrator.extract.interests import _read_interests
from waypoint_orchestrator.extract.kind import _kind_hint, _unsupported
from waypoint_orchestrator.extract.length import _read_duration
from waypoint_orchestrator.extract.places import _read_places
from waypoint_orchestrator.extract.reading import ExtractionTimedOut, _Scan
from waypoint_orchestrator.extract.travelers import _read_travelers
from waypoint_orchestrator.models import TripFields, TripKind

__all__ = ["Extraction", "ExtractionTimedOut", "extract", "warm_up"]

log = logging.getLogger(__name__)


class Extraction(BaseModel):
    """What the extractor read from a query."""

    model_config = ConfigDict(frozen=True)

    fields: TripFields
    kind_hint: TripKind | None = None
    kind_reason: str | None = Field(
        None, description="Why `kind_hint`, as a clause: \"the query says 'flights only'\"."
    )
    unsupported: str | None = Field(None, description="Why the request is something Waypoint does not do.")
    assumptions: list[str] = Field(default_factory=list)
    assumptions_by_field: dict[str, list[str]] = Field(
        default_factory=dict,
        description="The same assumptions, keyed by the field each one filled (`dates`, `budget`, ...).",
    )


def extract(query: str, today: dt.date, *, deadline: float | None = None) -> Extraction:
    """Read a trip request's fields from free text; `today` anchors relative and year-less dates.

    `deadline` is a `time.thread_time()` value: past it, `ExtractionTimedOut` is raised (it is
    checked between patterns and between words, so the extractor stops within a pattern's time).
    """
    scan = _Scan(query, today, deadline)
    budget, per_person = _read_budget(scan)
    start_date, end_date = _read_dates(scan)
    days, weekend = _read_duration(scan)
    dining = _read_dining(scan)
    travelers = _read_travelers(scan)
    origin, destination = _read_places(scan)
    interests = _read_interests(scan)

    if weekend and start_date is None and (start_date := _next_friday(today)) is not None:
        scan.note("dates", f"start date assumed {start_date.isoformat()}, the next Friday, for a weekend")
    if budget is not None and per_person:
        if travelers is not None:
            scan.note(
                "budget", f"budget of {budget.amount:g} {budget.currency} per person counted for {travelers}"
            )
            written = f"{budget.amount:g} {budget.currency} x {travelers}"
            budget = _budget(scan, budget.amount * travelers, budget.currency, written)
        else:
            scan.note("budget", "budget given per person, but the party size is unknown: taken as the total")

    fields = TripFields(
        origin=origin,
        destination=destination,
        start_date=start_date,
        end_date=end_date,
        days=days,
        travelers=travelers,
        budget=budget,
        interests=interests,
        dining=dining,
    )
    signals = any((origin, destination, start_date, days, budget, travelers, dining, interests))
    kind, reason = _kind_hint(scan, fields)
    fields = fields.model_copy(update={"kind": kind})
    by_field: dict[str, list[str]] = {}
    for topic, text in scan.notes:
        by_field.setdefault(topic, []).append(text)
    unsupported = _unsupported(scan, signals)
    return Extraction(
        fields=fields,
        kind_hint=kind,
        kind_reason=reason,
        unsupported=unsupported,
        assumptions=[text for _, text in scan.notes],
        assumptions_by_field=by_field,
    )


def warm_up() -> None:
    """Load what the first reading would otherwise load (the airport tables: a few hundred ms)."""
    try:
        extract("a week in Paris from Seattle in March for two, $3000", dt.date(2026, 1, 1))
    except Exception:  # a thread pool's initializer must not fail: the first real query warms up instead
        log.exception("extractor warm-up failed")
