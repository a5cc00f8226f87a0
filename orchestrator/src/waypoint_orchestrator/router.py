"""The router: what kind of request a trip request is, and the fields to plan it with.

Free text goes through the deterministic extractor; every structured field the client set wins
over what the text says. Dates are one field in spirit: a structured start or end date replaces
the dates read from the text, and a structured length replaces a last day read from it, so that
the two sources are never mixed into a range neither of them meant.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from waypoint_orchestrator.extract import Extraction, extract
from waypoint_orchestrator.models import Budget, DiningWish, RouterDecision, TripFields, TripKind, TripRequest

__all__ = ["route"]

KIND_LABELS: dict[TripKind, str] = {
    "full_trip": "a full trip",
    "flights_only": "flights only",
    "hotels_only": "a hotel only",
    "weather_only": "a weather forecast only",
    "dining_only": "a restaurant table only",
}
NO_DESTINATION = "could not tell what to plan: name a destination"


def route(request: TripRequest, today: dt.date) -> RouterDecision:
    """Classify a request and merge its structured fields over the ones read from its query."""
    extraction = extract(request.query, today) if request.query else None
    extracted = extraction.fields if extraction is not None else TripFields()
    fields, replaced = _merge(request, extracted)
    kind, reason = _kind(request, extraction, fields)
    fields = fields.model_copy(update={"kind": None if kind == "unsupported" else kind})
    return RouterDecision(
        kind=kind,
        reason=reason,
        fields=fields,
        extracted=extracted,
        assumptions=_assumptions(extraction, replaced),
    )


def _merge(request: TripRequest, extracted: TripFields) -> tuple[TripFields, dict[str, str]]:
    """The merged fields, and the extracted topics the request replaced (topic -> what the text said)."""
    replaced: dict[str, str] = {}

    def pick(topic: str, given: object, read: object) -> None:
        if given is not None and read is not None and given != read:
            replaced[topic] = _describe(read)

    pick("origin", request.origin, extracted.origin)
    pick("destination", request.destination, extracted.destination)
    pick("travelers", request.travelers, extracted.travelers)
    pick("budget", request.budget, extracted.budget)
    pick("dining", request.dining, extracted.dining)

    dates_given = request.start_date is not None or request.end_date is not None
    start = request.start_date if dates_given else extracted.start_date
    end = request.end_date if dates_given or request.days is not None else extracted.end_date
    days = request.days
    if days is None and not (request.start_date and request.end_date):
        days = extracted.days
    if (start, end) != (extracted.start_date, extracted.end_date) and (
        extracted.start_date or extracted.end_date
    ):
        replaced["dates"] = " to ".join(
            d.isoformat() for d in (extracted.start_date, extracted.end_date) if d
        )
    if days != extracted.days and extracted.days is not None:
        replaced["days"] = f"{extracted.days} days"

    interests = list(dict.fromkeys([*request.interests, *extracted.interests]))
    fields = TripFields(
        origin=request.origin or extracted.origin,
        destination=request.destination or extracted.destination,
        start_date=start,
        end_date=end,
        days=days,
        travelers=request.travelers or extracted.travelers,
        budget=request.budget or extracted.budget,
        interests=interests,
        dining=request.dining or extracted.dining,
    )
    return fields, replaced


def _kind(
    request: TripRequest, extraction: Extraction | None, fields: TripFields
) -> tuple[TripKind | Literal["unsupported"], str]:
    if request.kind is not None:
        return request.kind, f"{_capital(KIND_LABELS[request.kind])}, as the request's `kind` asks."
    if extraction is not None and extraction.unsupported is not None:
        return "unsupported", _capital(extraction.unsupported) + "."
    if extraction is not None and extraction.kind_hint is not None:
        label = KIND_LABELS[extraction.kind_hint]
        return (
            extraction.kind_hint,
            f"{_capital(label)}, because {extraction.kind_reason or 'the query says so'}.",
        )
    if fields.destination is not None:
        return "full_trip", "A full trip: the request names a destination and asks for nothing narrower."
    return "unsupported", _capital(NO_DESTINATION) + "."


def _assumptions(extraction: Extraction | None, replaced: dict[str, str]) -> list[str]:
    """The extractor's assumptions about fields that were kept, and a note for each one replaced."""
    if extraction is None:
        return []
    stale = {text for topic in replaced for text in extraction.assumptions_by_field.get(topic, [])}
    kept = [text for text in extraction.assumptions if text not in stale]
    notes = [
        f"{topic} from the structured request used instead of '{read}' read from the query"
        for topic, read in replaced.items()
    ]
    return kept + notes


def _describe(value: object) -> str:
    if isinstance(value, Budget):
        return f"{value.amount:g} {value.currency}"
    if isinstance(value, DiningWish):
        return f"{value.count} {value.style} dinner{'s' if value.count != 1 else ''}"
    return str(value)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
