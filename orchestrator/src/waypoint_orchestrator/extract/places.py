"""`origin` and `destination`: place names resolved to airports through `waypoint_common.geography`.

Every word sequence that could name a place is tried, longest first; a cue word before it ("to",
"from", "in") or an arrow after it ("Seattle to Denver") gives it its role.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from waypoint_common import geography
from waypoint_orchestrator.extract.budget import _CURRENCY_CODES
from waypoint_orchestrator.extract.dates import _MONTHS, _WEEKDAYS
from waypoint_orchestrator.extract.reading import _fold, _Scan, _word_set

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
