"""`start_date` and `end_date`: written dates, ranges, months, relative days ("next Friday").

Also `_next_friday`, the start a weekend with no date assumes, and the month and weekday names
the place reader must not take for places.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from waypoint_orchestrator.extract.reading import _COUNT, _UNIT_AFTER, _fold, _number, _Pattern, _Scan

_MONTHS: dict[str, int] = {
    **{name.lower(): i for i, name in enumerate(calendar.month_name) if name},
    **{name.lower(): i for i, name in enumerate(calendar.month_abbr) if name},
    "sept": 9,
}
_MONTH = r"(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_FULL_MONTH = r"(?:" + "|".join(m.lower() for m in calendar.month_name[1:]) + r")"
_WEEKDAYS: dict[str, int] = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_WEEKDAY = r"(?:" + "|".join(_WEEKDAYS) + r")"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?(?!\d)"
_YEAR = r"(?:19|20)\d\d"
_RANGE_JOIN = r"\s*(?:-|\u2013|\u2014|to|through|thru|until|till)\s*"
_NOT_DIGIT = re.compile(r"\D")


def _month(word: str) -> int:
    return _MONTHS[_fold(word).rstrip(".")]


def _day(word: str) -> int:
    return int(_NOT_DIGIT.sub("", word))


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _next_on_or_after(month: int, day: int, earliest: dt.date) -> dt.date | None:
    """The first `month`/`day` on or after `earliest` (None for a day no month has, like 31 April)."""
    for year in range(earliest.year, earliest.year + 5):
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate >= earliest:
            return candidate
    return None


def _plus_days(day: dt.date, days: int) -> dt.date | None:
    """`day` moved by `days`, or None past the ends of the calendar (date.min, date.max)."""
    try:
        return day + dt.timedelta(days=days)
    except OverflowError:
        return None


def _add_months(day: dt.date, months: int) -> dt.date | None:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        return None
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True, slots=True)
class _DateMention:
    start: int
    end: int
    first: dt.date
    last: dt.date | None = None
    assumption: str | None = None
    # What was left unsaid: "year" for "March 10", "week" for "Friday".
    floating: str | None = None


_ISO_DATE = re.compile(r"\b(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})\b")
_MONTH_DAY_RANGE = _Pattern(
    rf"\b(?P<m>{_MONTH})\s+(?P<d1>{_DAY}){_RANGE_JOIN}(?P<d2>{_DAY})(?:,?\s+(?P<y>{_YEAR}))?\b{_UNIT_AFTER}",
)
_DAY_MONTH_RANGE = _Pattern(
    rf"\b(?P<d1>{_DAY}){_RANGE_JOIN}(?P<d2>{_DAY})\s+(?:of\s+)?(?P<m>{_MONTH})(?:,?\s+(?P<y>{_YEAR}))?\b",
)
_MONTH_DAY = _Pattern(rf"\b(?P<m>{_MONTH})\s+(?P<d>{_DAY})(?:,?\s+(?P<y>{_YEAR}))?\b{_UNIT_AFTER}")
_DAY_MONTH = _Pattern(rf"\b(?P<d>{_DAY})\s+(?:of\s+)?(?P<m>{_MONTH})(?:,?\s+(?P<y>{_YEAR}))?\b")
_MONTH_YEAR = _Pattern(
    rf"\b(?:(?P<q>early|mid|late)[\s-]+)?(?P<m>{_MONTH})\s+(?P<y>{_YEAR})\b",
)
_MONTH_ALONE = _Pattern(
    r"\b(?:(?P<cue>in|during|this|next|for|around|by)\s+)?"
    r"(?:(?P<q>early|mid|late|(?:the\s+)?(?:end|beginning|start)\s+of)[\s-]+)?"
    rf"(?P<m>{_FULL_MONTH}|sept)\b(?!\s*\d)",
)
_DAY_AFTER_TOMORROW = _Pattern(r"\b(?:the\s+)?day after tomorrow\b")
_TOMORROW = _Pattern(r"\btomorrow\b")
_TODAY = _Pattern(r"\b(?:today|tonight|this evening)\b")
_IN_PERIOD = _Pattern(rf"\bin\s+(?P<n>{_COUNT})\s+(?P<unit>days?|weeks?|months?)\b")
_PERIOD_FROM_NOW = _Pattern(rf"\b(?P<n>{_COUNT})\s+(?P<unit>days?|weeks?|months?)\s+from\s+(?:now|today)\b")
_NEXT_WEEK = _Pattern(r"\bnext\s+week\b")
_NEXT_MONTH = _Pattern(r"\bnext\s+month\b")
_WEEKDAY_NAMED = _Pattern(rf"\b(?:(?P<cue>next|this|coming|on)\s+)?(?P<wd>{_WEEKDAY})\b")
_DATE_JOIN = re.compile(r"\s*+(?:-|\u2013|\u2014|to|until|till|through|thru|and)\s*+", re.I)  # fullmatch
# Words before a later date that make it the last day: "..., returning March 14".
_RETURN_CUE = re.compile(
    r"\b(?:return(?:ing)?|back|coming\s+back|fly(?:ing)?\s+(?:back|home)|home|until|till|through)"
    r"\s+(?:on\s+|by\s+)?$",
    re.I,
)
_QUALIFIED_DAY = {"early": 5, "mid": 15, "late": 22, "end": 24, "beginning": 3, "start": 3}


def _written_date(scan: _Scan, match: re.Match[str], month: int, day: int) -> _DateMention | None:
    """A day of a month, in the year written or else the next one on or after today."""
    if match["y"]:
        found = _safe_date(int(match["y"]), month, day)
        return None if found is None else _DateMention(match.start(), match.end(), found)
    found = _next_on_or_after(month, day, scan.today)
    if found is None:
        return None
    return _DateMention(match.start(), match.end(), found, floating="year")


def _date_ranges(scan: _Scan) -> Iterator[_DateMention]:
    for pattern in (_MONTH_DAY_RANGE, _DAY_MONTH_RANGE):
        for match in scan.find(pattern):
            month = _month(match["m"])
            first = _written_date(scan, match, month, _day(match["d1"]))
            if first is None:
                continue
            last = _next_on_or_after(month, _day(match["d2"]), first.first)
            if last is None:
                continue
            scan.consume(match.start(), match.end())
            yield _DateMention(match.start(), match.end(), first.first, last, floating=first.floating)


def _single_dates(scan: _Scan) -> Iterator[_DateMention]:
    for match in scan.find(_ISO_DATE):
        found = _safe_date(int(match["y"]), int(match["m"]), int(match["d"]))
        if found is not None:
            scan.consume(match.start(), match.end())
            yield _DateMention(match.start(), match.end(), found)
    for pattern in (_MONTH_DAY, _DAY_MONTH):
        for match in scan.find(pattern):
            mention = _written_date(scan, match, _month(match["m"]), _day(match["d"]))
            if mention is not None:
                scan.consume(match.start(), match.end())
                yield mention


def _qualified_day(qualifier: str | None) -> int:
    """The day a month-only date starts on: the 10th, or 5th/15th/22nd for "early/mid/late March"."""
    if not qualifier:
        return 10
    word = next(w for w in _fold(qualifier).split() if w not in ("the", "of"))
    return _QUALIFIED_DAY[word]


def _month_start(scan: _Scan, match: re.Match[str], month: int, qualifier: str | None) -> _DateMention:
    """A month alone: a day in it (see `_qualified_day`) at least two weeks ahead; when that day
    is too soon but the month's rest is not, the first day two weeks ahead (said on 28 November,
    "in December" is 12 December, not the next year's 10th, more than a year ahead)."""
    day = _qualified_day(qualifier)
    written = match.group(0).strip()
    if match.groupdict().get("y"):
        start = dt.date(int(match["y"]), month, day)
    else:
        earliest = scan.today + dt.timedelta(days=14)
        if month == earliest.month:
            # The month two weeks ahead: its usual day, or the first one left in it.
            start = max(dt.date(earliest.year, month, day), earliest)
        else:
            start = dt.date(earliest.year + (month < earliest.month), month, day)
    note = f"start date assumed {start.isoformat()} from '{written}'"
    return _DateMention(match.start(), match.end(), start, assumption=note)


def _months(scan: _Scan) -> Iterator[_DateMention]:
    for match in scan.find(_MONTH_YEAR):
        scan.consume(match.start(), match.end())
        yield _month_start(scan, match, _month(match["m"]), match["q"])
    for match in scan.find(_MONTH_ALONE):
        word = match["m"]
        cue, qualifier = match["cue"], match["q"]
        if _fold(word) == "may":
            # "may" is mostly a verb: only "in May", "during may", "early May" make it a month.
            if not (qualifier or (cue and _fold(cue) in ("in", "during")) or (cue and word[0].isupper())):
                continue
        elif not (cue or qualifier or word[0].isupper()):
            continue
        scan.consume(match.start(), match.end())
        yield _month_start(scan, match, _month(word), qualifier)


def _relative_dates(scan: _Scan) -> Iterator[_DateMention]:
    today = scan.today

    def mentions(
        pattern: _Pattern, day: Callable[[re.Match[str]], dt.date | None], floating: str | None = None
    ) -> Iterator[_DateMention]:
        """Each match of `pattern` as the day it names (none past the ends of the calendar)."""
        for match in scan.find(pattern):
            found = day(match)
            if found is None:
                continue
            scan.consume(match.start(), match.end())
            note = f"start date {found.isoformat()} from '{match.group(0).strip()}'"
            yield _DateMention(match.start(), match.end(), found, assumption=note, floating=floating)

    def period(match: re.Match[str]) -> dt.date | None:
        count, unit = _number(match["n"]), _fold(match["unit"])
        if unit.startswith("month"):
            return _add_months(today, count)
        return _plus_days(today, count * (7 if unit.startswith("week") else 1))

    def next_month(_: re.Match[str]) -> dt.date | None:
        first_of_next = _add_months(today.replace(day=1), 1)
        two_weeks = _plus_days(today, 14)
        return (
            None
            if first_of_next is None or two_weeks is None
            else max(first_of_next.replace(day=10), two_weeks)
        )

    def weekday(match: re.Match[str]) -> dt.date | None:
        if not match["cue"] and not match["wd"][0].isupper():
            return None
        return _plus_days(today, (_WEEKDAYS[_fold(match["wd"])] - today.weekday() - 1) % 7 + 1)

    yield from mentions(_DAY_AFTER_TOMORROW, lambda _: _plus_days(today, 2))
    yield from mentions(_TOMORROW, lambda _: _plus_days(today, 1))
    yield from mentions(_TODAY, lambda _: today)
    yield from mentions(_IN_PERIOD, period)
    yield from mentions(_PERIOD_FROM_NOW, period)
    yield from mentions(_NEXT_WEEK, lambda _: _plus_days(today, 7 - today.weekday()))
    yield from mentions(_NEXT_MONTH, next_month)
    yield from mentions(_WEEKDAY_NAMED, weekday, floating="week")


def _pair_dates(scan: _Scan, mentions: list[_DateMention]) -> tuple[dt.date | None, dt.date | None]:
    """The first date mentioned, and the last day when the text names one."""
    if not mentions:
        return None, None
    first = mentions[0]
    if first.assumption:
        scan.note("dates", first.assumption)
    if first.last is not None:
        return first.first, first.last
    later = (
        m
        for k, m in enumerate(mentions[1:])
        if (k == 0 and _DATE_JOIN.fullmatch(scan.text, first.end, m.start))
        or _RETURN_CUE.search(scan.text[max(first.end, m.start - 30) : m.start])
    )
    second = next(later, None)
    if second is None:
        return first.first, None
    last = second.first
    if second.floating == "year" and last < first.first:
        last = _next_on_or_after(last.month, last.day, first.first) or last
    if second.floating == "week" and last < first.first:
        # "from 2027-06-01 until Friday": the first such weekday on or after the start.
        weeks = -(-(first.first - last).days // 7)
        moved = _plus_days(last, 7 * weeks)
        if moved is None:
            return first.first, None
        last = moved
    return first.first, last


def _read_dates(scan: _Scan) -> tuple[dt.date | None, dt.date | None]:
    mentions = [*_date_ranges(scan), *_single_dates(scan), *_months(scan), *_relative_dates(scan)]
    mentions.sort(key=lambda m: m.start)
    return _pair_dates(scan, mentions)


def _next_friday(today: dt.date) -> dt.date | None:
    return _plus_days(today, (calendar.FRIDAY - today.weekday() - 1) % 7 + 1)
