"""Argument types and checks shared by the tool servers.

Pydantic checks shapes and bounds (its errors name the argument); the checks here cover
what depends on today's date or on two arguments at once, and raise `ToolError`s whose
message starts with the argument's name.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field, StringConstraints

from waypoint_common import geography
from waypoint_common.geography import Place

MAX_DAYS_AHEAD = 365
MAX_STAY_NIGHTS = 30

RequestId = Annotated[
    str,
    Field(
        min_length=8,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:\-]+$",
        description=(
            "Idempotency key chosen by the caller (8-128 of A-Z a-z 0-9 . _ : -). Repeating a call "
            "with the same request_id returns the first result and writes nothing more."
        ),
    ),
]
PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(description="Name the booking is made under (1-100 characters)."),
]
PartySize = Annotated[int, Field(ge=1, le=9, description="Number of people (1-9).")]
LocationText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120),
    Field(description="IATA airport code, city name ('Seattle', 'Portland, US') or region ('Patagonia')."),
]


def today() -> dt.date:
    """Today in UTC: the reference for 'in the past' and 'more than a year ahead'."""
    return dt.datetime.now(dt.UTC).date()


def check_place(field: str, text: str) -> Place:
    """Resolve a place or fail naming the argument."""
    try:
        return geography.resolve(text)
    except geography.UnknownPlace as exc:
        raise ToolError(f"{field}: {exc}") from None


def check_travel_date(field: str, value: dt.date, *, reference: dt.date | None = None) -> dt.date:
    """A date that is neither in the past nor more than a year ahead."""
    now = reference or today()
    if value < now:
        raise ToolError(f"{field}: {value.isoformat()} is in the past (today is {now.isoformat()})")
    if value > now + dt.timedelta(days=MAX_DAYS_AHEAD):
        raise ToolError(f"{field}: {value.isoformat()} is more than {MAX_DAYS_AHEAD} days ahead")
    return value


def check_date_range(
    start_field: str, start: dt.date, end_field: str, end: dt.date, *, max_days: int, allow_same_day: bool
) -> None:
    """Both dates valid, the end after (or on) the start, and the span within `max_days`."""
    check_travel_date(start_field, start)
    check_travel_date(end_field, end)
    if end < start or (end == start and not allow_same_day):
        relation = "on or after" if allow_same_day else "after"
        raise ToolError(
            f"{end_field}: {end.isoformat()} must be {relation} {start_field} {start.isoformat()}"
        )
    if (end - start).days > max_days:
        raise ToolError(f"{end_field}: the range from {start_field} spans more than {max_days} days")
