"""`kind`: what the query asks for (full trip, flights, hotels, weather or dining only) and why,
and what Waypoint does not do (car rental, cruises, ...; no travel request at all)."""

from __future__ import annotations

from waypoint_orchestrator.extract.reading import _Pattern, _Scan
from waypoint_orchestrator.models import TripFields, TripKind


def _words(*phrases: str) -> _Pattern:
    return _Pattern(r"\b(?:" + "|".join(phrases) + r")\b")


_UNSUPPORTED: tuple[tuple[str, _Pattern], ...] = (
    (
        "car rental",
        _words(
            r"(?:rent|renting|hire|hiring)\s+(?:a\s+|an\s+)?(?:car|vehicle|van|suv|rv)",
            r"car\s+(?:rental|hire)",
            r"rental\s+cars?",
        ),
    ),
    ("cruises", _words(r"cruises?", r"cruise\s+ships?")),
    ("visas", _words(r"visas?", r"visa\s+applications?", r"travel\s+permits?")),
    (
        "trains and buses",
        _words(r"trains?", r"railways?", r"rail\s*pass(?:es)?", r"eurail", r"amtrak", r"bus(?:es)?"),
    ),
)
_NOT_TRAVEL = _words(
    r"(?:write|compose|tell)\s+(?:me\s+)?(?:a\s+|an\s+)?(?:poem|song|story|essay|joke|haiku|limerick|code|program)",
    r"poem|haiku|limerick|recipe|homework|math",
)
_TRAVEL_WORDS = _words(
    r"trips?|travel(?:l?ing)?|vacations?|holidays?|getaway|itinerary|honeymoon|journey|flights?|fly(?:ing)?",
    r"hotels?|stay|accommodation|weather|forecast|dinners?|restaurants?|visit(?:ing)?|tour|explore",
    r"destination|airport|book(?:ing)?|reserv(?:e|ation)",
)
_KIND_CUES: tuple[tuple[TripKind, _Pattern], ...] = (
    (
        "flights_only",
        _words(
            r"flights?\s+only",
            r"only\s+(?:a\s+|the\s+)?(?:flights?|plane\s+tickets?|airfares?)",
            r"just\s+(?:a\s+|the\s+)?(?:flights?|plane\s+tickets?|airfares?)",
            r"one[\s-]way(?:\s+(?:flight|ticket))?",
            r"airfare\s+only",
        ),
    ),
    (
        "hotels_only",
        _words(
            r"hotels?\s+only",
            r"only\s+(?:a\s+|the\s+)?hotels?",
            r"just\s+(?:a\s+|the\s+)?(?:hotels?|room|accommodation|place\s+to\s+stay)",
            r"where\s+to\s+stay",
            r"accommodation\s+only",
        ),
    ),
    (
        "full_trip",
        _words(r"trips?", r"vacations?", r"holidays?", r"getaway", r"itinerary", r"honeymoon", r"journey"),
    ),
    (
        "weather_only",
        _words(
            r"weather",
            r"forecast",
            r"will\s+it\s+(?:rain|snow|be\s+(?:sunny|cold|hot|warm))",
            r"temperatures?",
        ),
    ),
    (
        "dining_only",
        _words(
            r"(?:book|reserve|get)\s+(?:us\s+|me\s+)?(?:a\s+)?table",
            r"restaurants?\s+only",
            r"(?:dinner|restaurant|table)\s+reservations?",
        ),
    ),
)
_FLIGHT_WORDS = _words(r"flights?", r"fly(?:ing)?", r"plane\s+tickets?", r"airfares?")
_HOTEL_WORDS = _words(r"hotels?", r"accommodation", r"(?:place|somewhere)\s+to\s+stay", r"rooms?")


def _unsupported(scan: _Scan, travel_signals: bool) -> str | None:
    for what, pattern in _UNSUPPORTED:
        match = scan.search_all(pattern)
        if match is not None:
            return (
                f"{what} ('{match.group(0)}') is not something Waypoint plans: it plans flights, hotels, "
                "weather forecasts and restaurant tables"
            )
    if scan.search_all(_NOT_TRAVEL) or not (travel_signals or scan.search_all(_TRAVEL_WORDS)):
        return "this does not look like a travel request: Waypoint plans trips, flights, hotels and dinners"
    return None


def _kind_hint(scan: _Scan, fields: TripFields) -> tuple[TripKind | None, str | None]:
    """A kind the query asks for in words, else one its fields suggest; and why, as a clause."""
    for kind, pattern in _KIND_CUES:
        match = scan.search_all(pattern)
        if match is not None:
            return kind, f"the query says '{match.group(0)}'"
    flights, hotels = scan.search_all(_FLIGHT_WORDS), scan.search_all(_HOTEL_WORDS)
    if flights and not hotels and fields.dining is None:
        return "flights_only", f"the query mentions '{flights.group(0)}' and nothing else to plan"
    if hotels and not flights and fields.dining is None:
        return "hotels_only", f"the query mentions '{hotels.group(0)}' and nothing else to plan"
    if fields.origin and fields.destination and (fields.start_date or fields.days):
        return "full_trip", "the query names an origin, a destination and dates"
    if fields.dining is not None and not (flights or hotels or fields.origin or fields.days):
        return "dining_only", "the query asks for a dinner and nothing else"
    return None, None
