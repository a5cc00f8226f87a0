"""`days`: the trip's length ("for 2 weeks", "3 nights", "a fortnight"), and whether it is a weekend."""

from __future__ import annotations

from waypoint_orchestrator.extract.reading import _COUNT, _fold, _number, _Pattern, _Scan

# Not "twice a week" nor "$100 a day" (a sum already read, masked).
_DURATION = _Pattern(
    r"(?<!once )(?<!twice )(?<!times )(?<!\u2591 )"
    rf"\b(?P<n>{_COUNT})[\s-]*(?P<unit>days?|nights?|weeks?|months?)\b(?:[\s-]*long\b)?",
)
_WEEK_LONG = _Pattern(r"\b(?P<unit>week|month)[\s-]?long\b")
_FORTNIGHT = _Pattern(r"\b(?:a\s+)?fortnight\b")
_WEEKEND = _Pattern(r"\b(?P<long>long\s+)?week-?end\b")
_DAYS_PER_UNIT = {"day": 1, "week": 7, "month": 30}


def _read_duration(scan: _Scan) -> tuple[int | None, bool]:
    """The trip's length in days (both ends counted), and whether it is a weekend."""
    found: list[tuple[int, int, str, bool]] = []  # position, days, as written, worth a note
    for match in scan.find(_DURATION):
        count, unit = _number(match["n"]), _fold(match["unit"]).rstrip("s")
        days = count + 1 if unit == "night" else count * _DAYS_PER_UNIT[unit]
        found.append((match.start(), days, match.group(0), unit in ("night", "month")))
        scan.consume(match.start(), match.end())
    for match in scan.find(_WEEK_LONG):
        found.append((match.start(), _DAYS_PER_UNIT[_fold(match["unit"])], match.group(0), False))
        scan.consume(match.start(), match.end())
    for match in scan.find(_FORTNIGHT):
        found.append((match.start(), 14, match.group(0), False))
        scan.consume(match.start(), match.end())
    weekend = next(scan.find(_WEEKEND), None)
    if weekend is not None:
        scan.consume(weekend.start(), weekend.end())
        found.append((len(scan.text), 4 if weekend["long"] else 3, weekend.group(0), True))
    if not found:
        return None, False
    _, days, written, explain = min(found)  # the first length named; a weekend only when alone
    if explain:
        scan.note("days", f"{days} days from '{written.strip()}'")
    return days, weekend is not None
