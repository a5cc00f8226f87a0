"""Deterministic free-text extraction: a trip request's fields from what the traveller wrote.

No language model: compiled patterns, read in a fixed order. Each reader masks the words it
used, so later readers do not see them again: "in March" is a date, never a place; "for 2
weeks" is a length, never a party of two; "$3000" is a budget, never a year.

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
compiled patterns for that, and `bench/extraction.py` measures the worst case over adversarial
queries. A caller that must stop in time passes a `deadline` (a `time.thread_time()` value: the
CPU time of the reading thread, so a busy machine does not count against the query): the
extractor checks it between patterns and between words, and raises `ExtractionTimedOut` past it.

Known limits: numeric dates ("12/03") are not read (day and month order is ambiguous); "next
Friday" is the first Friday after today; a weekend together with a month does not snap to
Friday-Sunday; lower-case place names with no cue word are not taken for places; a budget the
request model refuses (over 1,000,000 in its currency) is dropped with a note.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import itertools
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from waypoint_common import geography
from waypoint_common.errors import FinalError
from waypoint_orchestrator.models import Budget, DiningWish, TripFields, TripKind

__all__ = ["Extraction", "ExtractionTimedOut", "extract", "warm_up"]

log = logging.getLogger(__name__)


class ExtractionTimedOut(FinalError):
    """The extractor was still reading when its deadline passed."""


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


# -- vocabulary ------------------------------------------------------------------------------


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Under re.IGNORECASE four non-ASCII letters match ASCII ones ("\u017fix" matches "six", "\u0130n"
# matches "in"); a matched word is folded back before it is looked up in the tables below.
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
    no quick rejection of alternatives), and the readers below run dozens of patterns over the
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
# Words after a number that make it something other than a day of the month or a budget. The
# whitespace runs are possessive: `\s*-?\s*` would try every split of a run (quadratic).
_UNIT_AFTER = (
    r"(?!\s*+-?\s*+(?:days?|nights?|weeks?|months?|hours?|people|persons|adults?|kids?|children"
    r"|travell?ers?|guests?|friends?|passengers?|pax|of us|stars?|km|miles|%)\b)"
)
_RANGE_JOIN = r"\s*(?:-|\u2013|\u2014|to|through|thru|until|till)\s*"

_CURRENCY_SYMBOLS: dict[str, str] = {
    "US$": "USD",
    "AU$": "AUD",
    "A$": "AUD",
    "CA$": "CAD",
    "C$": "CAD",
    "NZ$": "NZD",
    "R$": "BRL",
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
}
_CURRENCY_WORDS: dict[str, str] = {
    "dollar": "USD",
    "dollars": "USD",
    "bucks": "USD",
    "us dollars": "USD",
    "american dollars": "USD",
    "canadian dollars": "CAD",
    "australian dollars": "AUD",
    "new zealand dollars": "NZD",
    "euro": "EUR",
    "euros": "EUR",
    "pound": "GBP",
    "pounds": "GBP",
    "quid": "GBP",
    "yen": "JPY",
    "franc": "CHF",
    "francs": "CHF",
    "swiss francs": "CHF",
    "reais": "BRL",
    "rupees": "INR",
    "kronor": "SEK",
}
# ISO 4217 codes recognised next to an amount; the gate decides which ones it can convert.
_CURRENCY_CODES = _word_set(
    "USD EUR GBP JPY CHF CAD AUD NZD SEK NOK DKK ISK MXN BRL ARS CLP PEN COP INR CNY HKD TWD KRW SGD"
    " THB VND IDR MYR PHP ZAR EGP MAD KES AED ILS TRY PLN CZK HUF RON"
)

_LOWER_CASE_CODES = _word_set("USD EUR GBP JPY CHF CAD AUD NZD SEK NOK DKK MXN BRL ARS CLP INR")

# City names in the airport data that are also ordinary English words or given names: taken for
# a place only when capitalized after a cue word ("to Nice"), never on their own.
_ENGLISH_CITY_WORDS = _word_set(
    """alert alliance alpine antlers argyle auburn banana banning beaver billings bishop bonanza
    boulder boundary bountiful buckeye buffalo burns bush butler butte candle canton caribou cascade
    central chaparral chicken circle colon concord cork corolla coronation cottonwood council crane
    defiance delta eagle emerald enterprise eureka fare farewell flat flint gage gander globe gore
    grants gurney hawker hays hickory hit homer homestead homeward hope hue imperial independence
    jackpot jasper junction lander laurel liberal limestone linden lock lonely luau magnolia male
    marathon mare marina marks mayo mercury meridian mesa mesquite midland mobile moron needles
    newton nice ogle omega orange page paradise parsons pica platinum portage price providence
    pueblo rampart ranger reading rifle riverside rogers roundup ruby saga salmon sandstone sari save
    shire singleton split sterling stow summit superior tamale tame teller temple terrace trail troy
    union upland valentine van vermilion vernal ware wells westerly wheeling wick willow willows wink
    wise"""
    # and given names of small towns: "Mary and I" is no trip to Mary, Turkmenistan
    """ mary david anthony ashley george shirley brandon tyler adam douglas lawrence bryan alice logan
    beverly russell philip hugo leon cody enid alma amos elim"""
)
_COMMON_PLACE_PHRASES = frozenset({"old town", "the valley", "show low", "high level", "may creek"})
# Words never taken as (the first or last word of) a place name.
_STOPWORDS = _word_set(
    """a an the my our your his her their this that these those some any all every each other
    and or but of for with without at by on in into to from via near around about over under
    i me we us you it he she they is are was be am do does did go going get have has had want
    like would could should can will may might must need let please just only also too very
    one two three four five six seven eight nine ten day days night nights week weeks month
    months year weekend trip vacation holiday holidays getaway journey itinerary honeymoon travel
    flight flights fly flying hotel hotels stay stays room weather forecast rain dinner dinners
    restaurant restaurants table meal lunch breakfast food plan planning book booking visit
    visiting explore see tour budget people adults kids family friends couple solo hiking beach
    fancy fine romantic cheap luxury business economy first next last early mid late
    tomorrow today tonight summer winter autumn year usa"""
)
_NOT_PLACE_WORDS = _STOPWORDS | frozenset(_MONTHS) | frozenset(_WEEKDAYS)
# Upper-case three-letter words that are airport codes but, in a query, mean something else.
_NOT_CODES = frozenset({"USA", "THE", "AND", "FOR", "BUT", "DAY", "NOT", "ALL", "ANY"}) | _CURRENCY_CODES

_INTERESTS: tuple[tuple[str, str], ...] = (
    ("hiking", r"hik(?:e|es|ing)|trek(?:s|king)?|backpacking|trails?"),
    ("beach", r"beach(?:es)?|seaside|sunbathing"),
    ("museums", r"museums?|art galleries|galler(?:y|ies)"),
    ("food", r"food(?:ie)?|culinary|gastronomy|cooking class(?:es)?"),
    ("skiing", r"ski(?:s|ing)?|snowboard(?:ing)?"),
    ("wine", r"wine(?:s|ry|ries)?|vineyards?"),
    ("nightlife", r"night\s?life|clubbing|bars|pubs"),
    ("shopping", r"shopping|shops|boutiques"),
    ("wildlife", r"wildlife|safaris?|animals|penguins|whales?|bird(?:ing|watching)"),
    ("photography", r"photograph(?:y|s)?|photos?"),
    ("culture", r"culture|cultural"),
    ("history", r"history|historic(?:al)?|ruins|castles?"),
    ("architecture", r"architecture"),
    ("nature", r"nature|national parks?|scenery|glaciers?|mountains?|lakes"),
    ("climbing", r"climb(?:ing)?|bouldering"),
    ("kayaking", r"kayak(?:s|ing)?|canoe(?:s|ing)?|rafting"),
    ("diving", r"div(?:e|ing)|scuba|snorkel(?:l?ing)?"),
    ("surfing", r"surf(?:ing)?"),
    ("cycling", r"cycling|biking|bikes?|bicycles?"),
    ("spa", r"spas?|wellness|hot springs"),
    ("camping", r"camping"),
    ("golf", r"golf(?:ing)?"),
    ("music", r"music|concerts?|jazz"),
    ("festivals", r"festivals?"),
    ("theater", r"theat(?:er|re)s?|broadway|opera"),
    ("fishing", r"fishing"),
)
_INTEREST_PATTERNS = tuple((tag, _Pattern(rf"\b(?:{words})\b")) for tag, words in _INTERESTS)

# Cuisine words and the cuisine names the restaurant server uses.
_CUISINE_NOUNS: dict[str, str] = {
    "sushi": "Japanese",
    "ramen": "Japanese",
    "izakaya": "Japanese",
    "pizza": "Italian",
    "pasta": "Italian",
    "trattoria": "Italian",
    "tapas": "Spanish",
    "paella": "Spanish",
    "steakhouse": "Steakhouse",
    "steak": "Steakhouse",
    "seafood": "Seafood",
    "fish": "Seafood",
    "tacos": "Mexican",
    "ceviche": "Peruvian",
    "asado": "Argentine",
    "parrilla": "Argentine",
    "dim sum": "Chinese",
    "curry": "Indian",
    "pho": "Vietnamese",
    "bistro": "Bistro",
    "vegan": "Vegetarian",
    "vegetarian": "Vegetarian",
    "fusion": "Fusion",
}
_CUISINE_ADJECTIVES: dict[str, str] = {
    name.lower(): name
    for name in _word_set(
        "Italian French Japanese Mexican Thai Indian Chinese Greek Spanish Korean Vietnamese Turkish"
        " Moroccan Peruvian Argentine Chilean Brazilian Mediterranean Nordic American British German"
        " Portuguese"
    )
}
_CUISINE_ADJECTIVES["argentinian"] = "Argentine"
_FANCY = (
    r"fancy|fine|nice|romantic|special|michelin(?:[- ]star(?:red)?)?|upscale|gourmet|luxury|luxurious"
    r"|elegant|celebration|high[- ]end|posh|classy|splurge|memorable|tasting[- ]menu"
)
_CASUAL = r"casual|cheap|inexpensive|simple|relaxed|laid[- ]back|low[- ]key"
_CUISINE = "|".join(sorted([*_CUISINE_NOUNS, *_CUISINE_ADJECTIVES], key=len, reverse=True))


# -- the text being read ---------------------------------------------------------------------

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


# -- budget ----------------------------------------------------------------------------------

_AMOUNT = r"\d{1,3}(?:[,.]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?"
_SCALE = r"(?:\s?(?P<scale>k|thousand|grand)\b)?"
_SYMBOL = "|".join(re.escape(s.lower()) for s in sorted(_CURRENCY_SYMBOLS, key=len, reverse=True))
_CURRENCY_WORD = "|".join(sorted(_CURRENCY_WORDS, key=len, reverse=True))

_MONEY_SYMBOL_FIRST = _Pattern(rf"(?<![A-Za-z])(?P<sym>{_SYMBOL})\s?(?P<num>{_AMOUNT}){_SCALE}")
_MONEY_CODE_FIRST = _Pattern(rf"\b(?P<code>[A-Za-z]{{3}})\s?(?P<num>{_AMOUNT}){_SCALE}")
_MONEY_UNIT_AFTER = _Pattern(
    rf"(?<![\w.,])(?P<num>{_AMOUNT}){_SCALE}\s?(?:(?P<word>{_CURRENCY_WORD})\b|(?P<sym>[€£¥₹$])"
    rf"|(?P<code>[A-Za-z]{{3}})\b)",
)
_MONEY_THOUSANDS = _Pattern(
    rf"(?<![\w.,])(?P<num>\d+(?:[.,]\d+)?)\s?(?P<scale>k|thousand|grand)\b{_UNIT_AFTER}"
)
_MONEY_CUED_NUMBER = _Pattern(
    r"\b(?:budget(?:\s+(?:of|is|around|about))?:?|under|below|max(?:imum)?|up to|less than|at most"
    rf"|no more than|within|spend(?:ing)?)\s+(?P<num>{_AMOUNT})\b{_SCALE}{_UNIT_AFTER}",
)
_BUDGET_CUE_BEFORE = re.compile(
    r"\b(?:budget|under|below|max(?:imum)?|up to|less than|at most|no more than|within|total|spend"
    r"|spending|cap(?:ped)?|afford)\b[\s:]*(?:\w+\s+){0,2}$",
    re.I,
)
# One of them is in (the folded) text wherever _BUDGET_CUE_BEFORE matches: a quick test first.
_BUDGET_CUE_WORDS = _word_set("budget under below max within total spend cap afford") | {
    "up to",
    "less than",
    "at most",
    "no more than",
}
# Matched at the end of a sum (`.match(text, end)`), hence no `^`.
_BUDGET_CUE_AFTER = re.compile(r"\s*+(?:total\s++)?budget\b", re.I)
_PER_PERSON = re.compile(
    r"\s*+(?:per\s+(?:person|head|travell?er|adult)|a\s+(?:person|head)|each|pp|/\s*+person)\b", re.I
)
_THOUSANDS_SEPARATED = re.compile(r"\d{1,3}(?:([,.])\d{3})(?:\1\d{3})*+")
_COMMA_THOUSANDS_POINT_CENTS = re.compile(r"\d{1,3}(?:,\d{3})++\.\d{1,2}")
_POINT_THOUSANDS_COMMA_CENTS = re.compile(r"\d{1,3}(?:\.\d{3})++,\d{1,2}")
_SEPARATOR = re.compile(r"[,.]")
_NOT_DIGIT = re.compile(r"\D")


def _amount(text: str, scale: str | None) -> float:
    """'3,000' or '3.000' is three thousand; '2.5' or '2,5' two and a half; 'k' multiplies.

    Separators used some other way ('1,000.000', '1.000.00') are thousands, except a last group
    of one or two digits, which is cents.
    """
    if _THOUSANDS_SEPARATED.fullmatch(text):
        value = float(_SEPARATOR.sub("", text))
    elif _COMMA_THOUSANDS_POINT_CENTS.fullmatch(text):
        value = float(text.replace(",", ""))
    elif _POINT_THOUSANDS_COMMA_CENTS.fullmatch(text):
        value = float(text.replace(".", "").replace(",", "."))
    elif len(_SEPARATOR.findall(text)) <= 1:
        value = float(text.replace(",", "."))
    else:
        *groups, last = _SEPARATOR.split(text)
        value = float("".join(groups) + ("." if len(last) <= 2 else "") + last)
    if scale is not None:
        value *= 1000
    return value


@dataclass(frozen=True, slots=True)
class _Money:
    start: int
    end: int
    amount: float
    currency: str
    assumed_currency: bool


def _money_mentions(scan: _Scan) -> list[_Money]:
    found: list[_Money] = []

    def add(match: re.Match[str], currency: str | None, *, assumed: bool = False, group: str = "") -> None:
        """Record a sum; `group` narrows the masked span (a cue word like "under" stays readable)."""
        if currency is None:
            return
        amount = _amount(match["num"], match["scale"])
        if assumed and amount < 50:  # "under 3" is not a budget
            return
        start, end = (match.start(group), match.end(group)) if group else (match.start(), match.end())
        found.append(_Money(start, end, amount, currency, assumed))
        scan.consume(start, end)

    for match in scan.find(_MONEY_SYMBOL_FIRST):
        add(match, _CURRENCY_SYMBOLS.get(match["sym"].upper()))
    for match in scan.find(_MONEY_CODE_FIRST):
        add(match, _currency_code(match["code"]))
    for match in scan.find(_MONEY_UNIT_AFTER):
        if match["word"]:
            add(match, _CURRENCY_WORDS[" ".join(_fold(match["word"]).split())])
        elif match["sym"]:
            add(match, _CURRENCY_SYMBOLS[match["sym"]])
        else:
            add(match, _currency_code(match["code"]))
    for match in scan.find(_MONEY_THOUSANDS):
        add(match, "USD", assumed=True)
    for match in scan.find(_MONEY_CUED_NUMBER):
        add(match, "USD", assumed=True, group="num")
    return sorted(found, key=lambda m: m.start)


def _currency_code(word: str) -> str | None:
    """An ISO code next to an amount; in lower case only the common ones ("try 3" is no lira)."""
    code = word.upper()
    if code not in _CURRENCY_CODES or (word != code and code not in _LOWER_CASE_CODES):
        return None
    return code


def _read_budget(scan: _Scan) -> tuple[Budget | None, bool]:
    """The budget, and whether it was given per person."""
    mentions = _money_mentions(scan)
    if not mentions:
        return None, False

    def cued(m: _Money) -> bool:
        start = max(0, m.start - 40)
        folded = scan.folded_text[start : m.start]
        before = any(word in folded for word in _BUDGET_CUE_WORDS) and _BUDGET_CUE_BEFORE.search(
            scan.text[start : m.start]
        )
        return bool(before or _BUDGET_CUE_AFTER.match(scan.text, m.end))

    chosen = next((m for m in mentions if cued(m)), mentions[0])
    written = scan.text[chosen.start : chosen.end].strip()
    budget = _budget(scan, chosen.amount, chosen.currency, written)
    if budget is not None and chosen.assumed_currency:
        scan.note("budget", f"budget currency assumed USD for '{written}'")
    return budget, bool(_PER_PERSON.match(scan.text, chosen.end))


def _budget(scan: _Scan, amount: float, currency: str, written: str) -> Budget | None:
    """A Budget, or None (with a note) for an amount the model refuses (nothing, or over a million)."""
    try:
        return Budget(amount=round(amount, 2), currency=currency)
    except ValidationError:
        scan.note("budget", f"budget '{written}' ignored: it must be more than 0 and at most 1,000,000")
        return None


# -- dates -----------------------------------------------------------------------------------


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


# -- trip length -----------------------------------------------------------------------------

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


# -- dining ----------------------------------------------------------------------------------

_DINING = _Pattern(
    rf"\b(?:(?P<count>{_NUM}|an?|no)\s+)?"
    rf"(?P<adjs>(?:(?:very\s+|really\s+)?(?:{_FANCY}|{_CASUAL})(?:\s*,\s*|\s+(?:and\s+)?)){{0,4}})"
    rf"(?:(?P<cuisine>{_CUISINE})\s+)?"
    r"(?P<noun>dinners?|meals?|restaurants?|dining|suppers?|(?:dinner\s+)?reservations?)\b",
)
_BOOK_TABLE = _Pattern(r"\b(?:book|reserve|get)\s+(?:us\s+|me\s+)?(?:a\s+)?table\b")
_CUISINE_ALONE = _Pattern(rf"\b(?P<cuisine>{'|'.join(sorted(_CUISINE_NOUNS, key=len, reverse=True))})\b")
_FANCY_WORD = re.compile(rf"\b(?:{_FANCY})\b", re.I)
_CASUAL_WORD = re.compile(rf"\b(?:{_CASUAL})\b", re.I)


def _cuisine(word: str) -> str:
    key = " ".join(_fold(word).split())
    return _CUISINE_NOUNS.get(key) or _CUISINE_ADJECTIVES[key]


def _read_dining(scan: _Scan) -> DiningWish | None:
    wishes: list[DiningWish] = []
    for match in scan.find(_DINING):
        if _fold(match["noun"]).startswith("reservation") and not match["adjs"] and not match["cuisine"]:
            continue  # "hotel reservation" is not a dinner
        if _fold(match["count"] or "") == "no":
            scan.consume(match.start(), match.end())
            continue
        adjectives = match["adjs"] or ""
        style = (
            "fancy"
            if _FANCY_WORD.search(adjectives)
            else "casual"
            if _CASUAL_WORD.search(adjectives)
            else "any"
        )
        count = _number(match["count"]) if match["count"] else 1
        if count > 3:
            scan.note("dining", f"{count} dinners asked for; at most 3 are planned")
            count = 3
        cuisine = _cuisine(match["cuisine"]) if match["cuisine"] else None
        wishes.append(DiningWish(style=style, count=count, cuisine=cuisine))
        scan.consume(match.start(), match.end())
    for match in scan.find(_BOOK_TABLE):
        wishes.append(DiningWish())
        scan.consume(match.start(), match.end())
    cuisine = next((_cuisine(m["cuisine"]) for m in scan.find(_CUISINE_ALONE)), None)
    if not wishes:
        return DiningWish(cuisine=cuisine) if cuisine else None
    wish = next((w for w in wishes if w.style == "fancy"), wishes[0])
    if wish.cuisine is None:
        cuisine = next((w.cuisine for w in wishes if w.cuisine), cuisine)
        wish = wish.model_copy(update={"cuisine": cuisine})
    return wish


# -- travellers ------------------------------------------------------------------------------

_PARTY_MEMBERS = _Pattern(
    rf"\b(?P<n>{_NUM})\s+(?P<who>adults?|grown-?ups|children|kids?|teens?|teenagers?|infants?|bab(?:y|ies)"
    r"|toddlers?)\b",
)
_PEOPLE = _Pattern(
    rf"\b(?P<n>{_NUM})\s+(?:people|persons|travell?ers|guests|passengers|pax|of us)\b",
)
_ME_AND_OTHERS = _Pattern(
    rf"\b(?:(?:me|i|myself)\s+(?:and|\+|&|plus)|with)\s+(?:my\s+)?(?P<n>{_NUM})\s+"
    r"(?:friends?|others|kids|children|colleagues|buddies|pals|mates|family members|people)\b",
)
_GROUP_OF = _Pattern(rf"\b(?:family|group|party|team)\s+of\s+(?P<n>{_NUM})\b")
_FOR_COUNT = _Pattern(
    rf"\b(?:table\s+)?for\s+(?P<n>{_NUM})\b"
    r"(?=\s*(?:$|[,.;:!?)\u2591]|(?:and|in|to|from|on|at|with|under|below|for|during|next|this|starting"
    r"|leaving|departing|travell?ing|going|please|max|budget|around|by|via|over|between|who|staying)\b))",
)
_PAIR = _Pattern(
    r"\b(?:couples?\b(?!\s+of)|honeymoon(?:ers)?|(?:with|and)\s+my\s+(?:wife|husband|partner"
    r"|girlfriend|boyfriend|fianc[eé]e?|spouse)|my\s+(?:wife|husband|partner|girlfriend|boyfriend|fianc[eé]e?"
    r"|spouse)\s+and\s+(?:i|me)|the\s+two\s+of\s+us|both\s+of\s+us)\b",
)
_SOLO = _Pattern(r"\b(?:solo|alone|just\s+me|only\s+me|by\s+myself|on\s+my\s+own|single\s+traveller)\b")


_COUNTED_PARTIES: tuple[_Pattern, ...] = (
    _PEOPLE,
    _GROUP_OF,
    _FOR_COUNT,
)
_IMPLIED_PARTIES: tuple[tuple[_Pattern, int], ...] = ((_PAIR, 2), (_SOLO, 1))


def _read_travelers(scan: _Scan) -> int | None:
    """The party size: counted members ("2 adults and 1 child"), a count, or one implied by words."""
    for match in scan.find(_ME_AND_OTHERS):  # "me and my 2 kids": the speaker counts too
        scan.consume(match.start(), match.end())
        return _number(match["n"]) + 1
    members = list(scan.find(_PARTY_MEMBERS))
    if members:
        for member in members:
            scan.consume(member.start(), member.end())
        return sum(_number(m["n"]) for m in members)
    for pattern in _COUNTED_PARTIES:
        for match in scan.find(pattern):
            scan.consume(match.start(), match.end())
            return _number(match["n"])
    for pattern, party in _IMPLIED_PARTIES:
        for match in scan.find(pattern):
            scan.note("travelers", f"{party} traveller{'s' if party > 1 else ''} from '{match.group(0)}'")
            return party
    return None


# -- places ----------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]++(?:['\u2019\-](?![sS]\b)[^\W\d_]++)*+")
_WORD_GAP = re.compile(r"\.?[ \t]++")
_UPPER_CODE = re.compile(r"[A-Z]{3}")
_CUE_BEFORE = re.compile(
    r"(?:\b(?P<cue>(?:back|return(?:ing)?|home|fly(?:ing)?\s+back)\s+to|out\s+of|from|leaving|departing"
    r"|depart|(?:based|live|living|home|am|i'm)\s+in|to|into|towards?|visit(?:ing)?|explor(?:e|ing)"
    r"|see(?:ing)?|in|around)|(?P<arrow>->|\u2192))\s*$",
    re.I,
)
# What a text ends with when `_CUE_BEFORE` can match at its end (before trailing whitespace).
_CUE_ENDINGS = tuple(
    _word_set("to of from leaving departing depart in into toward towards visit visiting explore exploring")
    | _word_set("see seeing around -> \u2192")
)
_CUE_LAST_CHARS = frozenset(ending[-1] for ending in _CUE_ENDINGS)
_CUE_ENDING_MAX = max(map(len, _CUE_ENDINGS))
_ORIGIN_CUES = _word_set(
    "back return returning home fly flying out from leaving departing depart based live living am i'm"
)
_STRONG_CUES = _word_set("to into toward towards visit visiting explore exploring see seeing ->")
_ARROW_BETWEEN = re.compile(r"\s*+(?:to|->|\u2192|\u2013|\u2014|-)\s*+", re.I)  # fullmatch
_QUALIFIER = re.compile(r",\s*+(?P<q>[^\W\d_]++(?P<more>\s[^\W\d_]++)?)")  # .match(text, end)
_MAX_PLACE_WORDS = 4


@dataclass(frozen=True, slots=True)
class _PlaceMention:
    start: int
    end: int
    text: str
    code: str | None  # None: a name after a cue word that resolves to no airport
    cue: str | None
    uncued_ok: bool  # a capitalized, unambiguous name: a place even without a cue word


def _is_capitalized(word: str) -> bool:
    return word[:1].isupper()


def _code_for(
    text: str, words: list[str], cued: bool, normalized: Callable[[], str]
) -> tuple[str | None, bool]:
    """The airport a word sequence names (if any), and whether it may stand without a cue word.

    Upper-case codes ("SEA") and lower-case names ("seattle") count only after a cue word or in
    "X to Y"; ordinary English words that happen to be towns ("nice", "reading") only when
    capitalized. `normalized()` is `geography.normalize(text)`.
    """
    first, last = words[0].lower(), words[-1].lower()
    if first in _NOT_PLACE_WORDS or last in _NOT_PLACE_WORDS:
        return None, False
    if len(words) == 1 and _UPPER_CODE.fullmatch(text):
        if text in _NOT_CODES:
            return None, False
        try:
            return geography.airport(text).code, False
        except geography.UnknownPlace:
            return None, False
    key = normalized()
    if key not in geography.ALIASES and key not in geography._cities():
        return None, False
    capitalized = _is_capitalized(words[0]) and _is_capitalized(words[-1])
    common = key in _ENGLISH_CITY_WORDS or key in _COMMON_PLACE_PHRASES
    long_enough = len(key.replace(" ", "")) >= 4
    if (common and not capitalized) or (not long_enough and not (cued and capitalized)):
        return None, False
    try:
        place = geography.resolve(text)
    except geography.UnknownPlace:
        return None, False
    return place.code, capitalized and not common and long_enough


def _cue_before(masked: str, position: int) -> str | None:
    window = masked[max(0, position - 30) : position]
    tail = window.rstrip()
    if _fold(tail[-1:]) not in _CUE_LAST_CHARS or not _fold(tail[-_CUE_ENDING_MAX:]).endswith(_CUE_ENDINGS):
        return None  # the cue's last word (or arrow) must end the window: no search needed
    match = _CUE_BEFORE.search(window)
    if match is None:
        return None
    return "->" if match["arrow"] else " ".join(_fold(match["cue"]).split())


def _place_mentions(scan: _Scan) -> list[_PlaceMention]:
    """Every word sequence that names a place, longest first, left to right."""
    masked = scan.masked
    words = list(_WORD.finditer(masked))
    # joined[k]: words k and k+1 are separated by blanks only (or ". "), so may form one name.
    joined = [bool(_WORD_GAP.fullmatch(masked, a.end(), b.start())) for a, b in itertools.pairwise(words)]
    keys: dict[str, str] = {}  # each word's normalized form, once per distinct word
    mentions: list[_PlaceMention] = []
    i = 0
    while i < len(words):
        scan.check()
        if words[i].group(0).lower() in _NOT_PLACE_WORDS:
            i += 1  # no name starts with a stopword (`_code_for`, `_unresolved_name`)
            continue
        cue = _cue_before(masked, words[i].start())
        mention = _longest_place(scan, words, joined, keys, i, cue) or _unresolved_name(
            scan, words, joined, i, cue
        )
        if mention is None:
            i += 1
            continue
        mentions.append(mention)
        while i < len(words) and words[i].start() < mention.end:
            i += 1
    return mentions


def _word_key(name: str, keys: dict[str, str]) -> str:
    """`geography.normalize(name)` for one word, kept in `keys`."""
    key = keys.get(name)
    if key is None:
        key = keys[name] = name.lower() if name.isascii() and name.isalpha() else geography.normalize(name)
    return key


def _normalized(names: list[str], keys: dict[str, str]) -> str:
    """`geography.normalize` of words joined by blanks, from each word's own form (kept in `keys`).

    The same string: normalizing works character by character (no combining mark starts a word)
    and turns the blanks between words, like any other run of non-alphanumerics, into one space.
    """
    return " ".join(key for name in names if (key := _word_key(name, keys)))


def _longest_place(
    scan: _Scan, words: list[re.Match[str]], joined: list[bool], keys: dict[str, str], i: int, cue: str | None
) -> _PlaceMention | None:
    masked = scan.masked
    # The runs of words from i that could name a place (a known name, or a lone code), shortest
    # first; then `_code_for` decides, longest first. (Trying every run with `_code_for` costs
    # a few microseconds a word: tens of milliseconds over a long query.)
    spans: list[int] = []
    parts: list[str] = []
    cities = geography._cities()
    for j in range(i, min(len(words), i + _MAX_PLACE_WORDS)):
        if j > i and not joined[j - 1]:
            break  # longer runs are not contiguous either
        if key := _word_key(words[j].group(0), keys):
            parts.append(key)
        key = " ".join(parts)
        if key in geography.ALIASES or key in cities or (j == i and _UPPER_CODE.fullmatch(words[i].group(0))):
            spans.append(j)
    for j in reversed(spans):
        start, end = words[i].start(), words[j].end()
        text = scan.text[start:end]
        names = [w.group(0) for w in words[i : j + 1]]
        code, uncued_ok = _code_for(text, names, cue is not None, functools.partial(_normalized, names, keys))
        if code is None:
            continue
        if code != text:
            end, code = _with_qualifier(masked, text, end, code)
        return _PlaceMention(start, end, scan.text[start:end], code, cue, uncued_ok)
    return None


def _with_qualifier(masked: str, name: str, end: int, code: str) -> tuple[int, str]:
    """'Portland, Maine': a state or country after a comma picks among cities of the same name."""
    match = _QUALIFIER.match(masked, end)
    if match is None:
        return end, code
    qualifiers = [match["q"], match["q"].split()[0]] if match["more"] else [match["q"]]
    for qualifier in qualifiers:
        try:
            place = geography.resolve(f"{name}, {qualifier}")
        except geography.UnknownPlace:
            continue
        return match.start("q") + len(qualifier), place.code
    return end, code


def _unresolved_name(
    scan: _Scan, words: list[re.Match[str]], joined: list[bool], i: int, cue: str | None
) -> _PlaceMention | None:
    """A capitalized name right after "to", "from" or "visit" that is no known place ("to Atlantis")."""
    if cue is None or not (cue in _STRONG_CUES or cue == "from"):
        return None
    j = i
    while (
        j < len(words)
        and j - i < _MAX_PLACE_WORDS
        and _is_capitalized(words[j].group(0))
        and words[j].group(0).lower() not in _NOT_PLACE_WORDS
        and (j == i or joined[j - 1])
    ):
        j += 1
    if j == i:
        return None
    start, end = words[i].start(), words[j - 1].end()
    return _PlaceMention(start, end, scan.text[start:end], None, cue, False)


def _role(mention: _PlaceMention, following: _PlaceMention | None, text: str) -> tuple[str, int] | None:
    """('origin' or 'destination', rank: lower wins) for a mention, or None when it is no place."""
    cue = mention.cue
    if cue is not None and cue.split()[0] in _ORIGIN_CUES:
        return "origin", 0
    if cue in _STRONG_CUES:
        return "destination", 0
    if following is not None and _ARROW_BETWEEN.fullmatch(text, mention.end, following.start):
        return "origin", 1  # "Seattle to Denver", "SEA -> FTE"
    if cue is not None:
        return "destination", 1  # "in Denver", "around Kyoto"
    if mention.uncued_ok:
        return "destination", 2  # "Patagonia hiking"
    return None


def _read_places(scan: _Scan) -> tuple[str | None, str | None]:
    """Origin and destination: IATA codes, or the text as written for an unknown name after a cue."""
    origins: list[tuple[bool, int, int, _PlaceMention]] = []
    destinations: list[tuple[bool, int, int, _PlaceMention]] = []
    mentions = _place_mentions(scan)
    for index, mention in enumerate(mentions):
        following = mentions[index + 1] if index + 1 < len(mentions) else None
        role = _role(mention, following, scan.text)
        if role is None:
            continue
        scan.consume(mention.start, mention.end)
        ranked = (mention.code is None, role[1], mention.start, mention)
        (origins if role[0] == "origin" else destinations).append(ranked)
    origin = min(origins, key=lambda r: r[:3])[3] if origins else None
    if origin is not None and origin.code is not None:
        destinations = [d for d in destinations if d[3].code != origin.code] or destinations
    destination = min(destinations, key=lambda r: r[:3])[3] if destinations else None
    for topic, chosen in (("origin", origin), ("destination", destination)):
        if chosen is not None and chosen.code is not None and chosen.text.upper() != chosen.code:
            scan.note(topic, f"{topic} '{chosen.text}' read as {geography.airport(chosen.code).label}")
    return (
        None if origin is None else origin.code or origin.text,
        None if destination is None else destination.code or destination.text,
    )


# -- interests -------------------------------------------------------------------------------


def _read_interests(scan: _Scan) -> list[str]:
    found = [(match.start(), tag) for tag, pattern in _INTEREST_PATTERNS if (match := scan.search(pattern))]
    return [tag for _, tag in sorted(found)]


# -- what kind of request --------------------------------------------------------------------


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


# -- the whole ---------------------------------------------------------------------------------


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
