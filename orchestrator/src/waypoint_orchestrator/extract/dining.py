"""`dining`: the dinner wished for: how many, how fancy, which cuisine."""

from __future__ import annotations

import re

from waypoint_orchestrator.extract.reading import _NUM, _fold, _number, _Pattern, _Scan, _word_set
from waypoint_orchestrator.models import DiningWish

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
