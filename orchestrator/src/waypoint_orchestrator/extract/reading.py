"""The reading machinery every field's reader shares.

`_Scan` is the text being read: the words a reader used are masked, so later readers do not see
them again; the notes made on the way; the deadline, checked between patterns and between words.
`_Pattern` is a case-insensitive pattern found in case-folded text (fast). Also the vocabulary of
counts the readers share (`_NUM`, `_COUNT`, `_number`) and `_UNIT_AFTER`.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from waypoint_common.errors import FinalError


class ExtractionTimedOut(FinalError):
    """The extractor was still reading when its deadline passed."""


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Under re.IGNORECASE four non-ASCII letters match ASCII ones ("\u017fix" matches "six", "\u0130n"
# matches "in"); a matched word is folded back before it is looked up in the readers' tables.
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def _fold(word: str) -> str:
    """Lower case, with the four letters above as the ASCII ones they match: same length.

    A matched word, folded, is the key it matched; a whole text, folded, is what `_Pattern`s
    search in.
    """
    return word.translate(_FOLD).lower()


class _Pattern:
    """A case-insensitive pattern, found case-sensitively in the folded text.

    `re` is several times slower under IGNORECASE (every letter compared through its lower case,
    no quick rejection of alternatives), and the readers run dozens of patterns over the
    whole text. So each is compiled twice: `fast` (no flag) is searched in `_fold(text)`, where
    it matches exactly where `exact` (re.IGNORECASE) matches in `text`: folding keeps every
    character's length and class, and maps each letter to the one re.IGNORECASE equates it with
    (tests/test_extract.py checks both over every code point). At each place `fast` finds,
    `exact` is matched in the text itself, so groups read as written ("Nice", "USD").

    `fast` also leaves out a leading `\\b`: without it, a pattern that starts with words lets
    `re` skip ahead to the letters they start with instead of trying every position. It then
    matches wherever `exact` does, and perhaps elsewhere ("dinner" in "xdinner"); such a place
    fails `exact`, and the search goes on from the next character, so the matches are
    `exact.finditer(text)`'s, in order. The source must not spell a letter in upper case (it
    would never be found in folded text), and must not match an empty string.
    """

    __slots__ = ("exact", "fast")

    def __init__(self, source: str) -> None:
        self.exact = re.compile(source, re.I)
        self.fast = re.compile(source.removeprefix(r"\b"))

    def finditer(self, text: str, folded: str) -> Iterator[re.Match[str]]:
        """`exact.finditer(text)`, given `folded == _fold(text)`."""
        position = 0
        while (found := self.fast.search(folded, position)) is not None:
            match = self.exact.match(text, found.start())
            if match is None:
                position = found.start() + 1
                continue
            yield match
            position = match.end()

    def search(self, text: str, folded: str) -> re.Match[str] | None:
        """`exact.search(text)`, given `folded == _fold(text)`."""
        return next(self.finditer(text, folded), None)


_NUMBER_WORDS: dict[str, int] = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
}
_NUM = r"(?:\d{1,3}|" + "|".join(_NUMBER_WORDS) + r")"
# Counts that also accept "a week", "a couple of days".
_COUNT = rf"(?:{_NUM}|an?|(?:a\s+)?couple(?:\s+of)?)"

# Words after a number that make it something other than a day of the month or a budget. The
# whitespace runs are possessive: `\s*-?\s*` would try every split of a run (quadratic).
_UNIT_AFTER = (
    r"(?!\s*+-?\s*+(?:days?|nights?|weeks?|months?|hours?|people|persons|adults?|kids?|children"
    r"|travell?ers?|guests?|friends?|passengers?|pax|of us|stars?|km|miles|%)\b)"
)


_MASK = "\u2591"
# The clock deadlines are read on: the reading thread's CPU time (tests count its readings).
_clock: Callable[[], float] = time.thread_time


@dataclass
class _Scan:
    """The query, with the parts already read masked out, and the notes made on the way."""

    text: str
    today: dt.date
    deadline: float | None = None  # a time.thread_time() value; None: no limit
    folded_text: str = field(init=False)  # _fold(text)
    notes: list[tuple[str, str]] = field(default_factory=list)
    # The text with what was read masked, as characters (masking is cheap) and as a string (made
    # again only when a reader asks for it after something was masked); and the same, folded.
    _masked_chars: list[str] = field(init=False)
    _folded_chars: list[str] = field(init=False)
    _strings: tuple[str, str] | None = field(init=False)

    def __post_init__(self) -> None:
        self.folded_text = _fold(self.text)
        self._masked_chars, self._folded_chars = list(self.text), list(self.folded_text)
        self._strings = (self.text, self.folded_text)

    def _current(self) -> tuple[str, str]:
        if self._strings is None:
            self._strings = ("".join(self._masked_chars), "".join(self._folded_chars))
        return self._strings

    @property
    def masked(self) -> str:
        """The text, with what was read masked."""
        return self._current()[0]

    @property
    def folded(self) -> str:
        """`_fold(masked)`: what `_Pattern`s search in."""
        return self._current()[1]

    def check(self) -> None:
        """Raise `ExtractionTimedOut` when the deadline has passed."""
        if self.deadline is not None and _clock() >= self.deadline:
            raise ExtractionTimedOut(f"extraction stopped at its deadline ({len(self.text)} characters)")

    def find(self, pattern: _Pattern | re.Pattern[str]) -> Iterator[re.Match[str]]:
        """Matches in the text not read yet (positions are the same as in `text`)."""
        self.check()
        if isinstance(pattern, _Pattern):
            return pattern.finditer(self.masked, self.folded)
        return pattern.finditer(self.masked)

    def search(self, pattern: _Pattern) -> re.Match[str] | None:
        """The first match in the text not read yet."""
        self.check()
        return pattern.search(self.masked, self.folded)

    def search_all(self, pattern: _Pattern) -> re.Match[str] | None:
        """The first match in the whole text, read or not."""
        self.check()
        return pattern.search(self.text, self.folded_text)

    def consume(self, start: int, end: int) -> None:
        self._masked_chars[start:end] = self._folded_chars[start:end] = _MASK * (end - start)
        self._strings = None

    def note(self, topic: str, text: str) -> None:
        self.notes.append((topic, text))


def _number(word: str) -> int:
    """A count: digits, a number word, "a"/"an" (1) or "a couple (of)" (2)."""
    word = " ".join(_fold(word).split())
    if word.isdigit():
        return int(word)
    if word in ("a", "an"):
        return 1
    if "couple" in word:
        return 2
    return _NUMBER_WORDS[word]
