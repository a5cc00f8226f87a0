"""The router: what kind of request a trip request is, and the fields to plan it with.

Free text goes through the deterministic extractor; every structured field the client set wins
over what the text says. Dates are one field in spirit: a structured start or end date replaces
the dates read from the text, and a structured length replaces a last day read from it, so that
the two sources are never mixed into a range neither of them meant.

Reading the text takes time proportional to its length (the worst adversarial query a request
may carry takes ~15 ms: bench/extraction.py), and it never runs on the event loop: `route_in_thread`
runs `route` on a small thread pool of its own, with a time limit (`EXTRACTION_TIME_LIMIT_SECONDS`
by default) of CPU time: the reading thread's own, so a loaded machine, where a query waits for a
core, does not make an ordinary query look adversarial. The extractor checks its deadline
between patterns and words, so a run past the limit stops there; the decision is then a
`QueryNotRead`, which the gate turns into one problem on `query` (`QUERY_NOT_READ`): the trip
ends `needs_input`, asking for structured fields.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from waypoint_orchestrator.extract import Extraction, ExtractionTimedOut, extract, warm_up
from waypoint_orchestrator.models import (
    Budget,
    DiningWish,
    ReadBy,
    RouterDecision,
    TripFields,
    TripKind,
    TripRequest,
)

__all__ = [
    "EXTRACTION_TIME_LIMIT_SECONDS",
    "QUERY_NOT_READ",
    "QueryNotRead",
    "decide",
    "query_not_read",
    "route",
    "route_in_thread",
]

# How much CPU time the extractor may spend on one query; far above the worst case
# (bench/extraction.py: ~16 ms).
EXTRACTION_TIME_LIMIT_SECONDS = 0.5
# Wall time the event loop waits for a reading before it gives up on it. The extractor stops by
# itself at its CPU limit, so this only covers a thread that cannot get to run at all: it is
# generous, because a queued or CPU-starved reading of an ordinary query is not the query's fault.
_WALL_LIMIT_SECONDS = 10.0
# Threads that read queries (per process): enough for a few workers, never all the cores.
_THREADS = 2
QUERY_NOT_READ = (
    "the text could not be read in time: give the trip's details as structured fields (origin, "
    "destination, start_date, days or end_date, travelers, budget) or a shorter query"
)

KIND_LABELS: dict[TripKind, str] = {
    "full_trip": "a full trip",
    "flights_only": "flights only",
    "hotels_only": "a hotel only",
    "weather_only": "a weather forecast only",
    "dining_only": "a restaurant table only",
}
NO_DESTINATION = "could not tell what to plan: name a destination"


class QueryNotRead(RouterDecision):
    """A decision made without the query, which could not be read before the deadline.

    Its fields are the structured ones alone; its kind is the request's `kind`, else `full_trip`.
    The gate does not plan it: it answers one problem on `query` (`QUERY_NOT_READ`).
    """


def route(request: TripRequest, today: dt.date, *, deadline: float | None = None) -> RouterDecision:
    """Classify a request and merge its structured fields over the ones read from its query.

    `deadline` (a `time.thread_time()` value of the calling thread) bounds the reading of the
    query: past it, the decision is a `QueryNotRead`.
    """
    try:
        extraction = extract(request.query, today, deadline=deadline) if request.query else None
    except ExtractionTimedOut:
        return query_not_read(request)
    return decide(request, extraction, "rules" if extraction is not None else "structured")


def decide(request: TripRequest, extraction: Extraction | None, source: ReadBy) -> RouterDecision:
    """The decision for a request and what was read from its query (by the rules or the model)."""
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
        read_by=source,
    )


def query_not_read(request: TripRequest) -> QueryNotRead:
    """The decision for a request whose query could not be read in time."""
    fields, _ = _merge(request, TripFields())
    kind: TripKind = request.kind or "full_trip"
    return QueryNotRead(
        kind=kind,
        reason=_capital(QUERY_NOT_READ) + ".",
        fields=fields.model_copy(update={"kind": kind}),
        extracted=TripFields(),
    )


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _router_threads() -> ThreadPoolExecutor:
    """The process's router threads (created on first use; each warms the extractor first)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=_THREADS, thread_name_prefix="waypoint-router", initializer=warm_up
            )
        return _executor


def _route_from_now(request: TripRequest, today: dt.date, time_limit: float) -> RouterDecision:
    """`route`, allowed `time_limit` seconds of this thread's CPU time from now."""
    return route(request, today, deadline=time.thread_time() + time_limit)


async def route_in_thread(request: TripRequest, today: dt.date, *, time_limit: float) -> RouterDecision:
    """`route` off the event loop, reading the query for at most `time_limit` seconds of CPU.

    The limit is the router thread's CPU time (waiting for a free thread or a free core is not
    the query's fault); the loop itself waits at most `max(_WALL_LIMIT_SECONDS, 10 * time_limit)`
    from the call. Past either, the decision is `query_not_read(request)`, the same whichever
    fired. A request without a query reads no text and is routed at once, on the loop.
    """
    if not request.query:
        return route(request, today)
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(
        _router_threads(), functools.partial(_route_from_now, request, today, time_limit)
    )
    try:
        return await asyncio.wait_for(work, timeout=max(_WALL_LIMIT_SECONDS, 10 * time_limit))
    except TimeoutError:
        return query_not_read(request)


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
