"""Adversarial free-text queries for the extractor: the longest a request accepts, built to make a
backtracking pattern or a per-word pass work as hard as it can.

Shared by `tests/test_extract.py` (the extractor must read every one of them, correctly and
without raising) and `bench/extraction.py` (how long it takes, worst case per family).

Every query is at most `MAX_QUERY` characters once stripped, as `TripRequest.query` allows.
"""

from __future__ import annotations

import random

MAX_QUERY = 2000  # TripRequest.query's max_length

# Whitespace a run can be made of: ASCII, no-break, em and ideographic spaces, line breaks.
BLANKS = (" ", "\t", "\n", "\u00a0", "\u2003", "\u3000", "\r\n")


def fill(unit: str, length: int = MAX_QUERY) -> str:
    """`unit` repeated to exactly `length` characters."""
    return (unit * (length // len(unit) + 1))[:length]


def run_between(head: str, tail: str, blank: str = " ") -> str:
    """`head`, a run of `blank` as long as fits, then `tail`: MAX_QUERY characters."""
    return head + fill(blank, MAX_QUERY - len(head) - len(tail)) + tail


def _whitespace() -> list[str]:
    heads = [
        "March 1",
        "March 1 -",
        "1 March",
        "under 500",
        "budget of 500",
        "5k",
        "$500",
        "500 USD",
        "for 2",
    ]
    heads += ["3 days", "a couple", "in a", "fancy", "very fancy", "to Paris", "couple", "May", "next"]
    queries = [run_between(head, tail) for head in heads for tail in ("x", "days", "-", "")]
    queries += [run_between("March 1", "x", blank) for blank in BLANKS]
    queries += [run_between("under 500", "x", blank) for blank in BLANKS]
    queries += [
        fill(" -"),
        fill(" - -  "),
        "x" + fill("\t \u00a0", MAX_QUERY - 2) + "x",
        "x" + fill(" ", MAX_QUERY - 2) + "x",
    ]
    queries += ["March 1" + fill(" \t\n-", MAX_QUERY - 8) + "x", "1" + fill("-", MAX_QUERY - 2) + "x"]
    return queries


def _digits() -> list[str]:
    units = ["1", "1 ", "12 ", "1,", "1.", "1-", "1/", "1,000 ", "1.000,00 ", "2027-03-10 ", "9999-12-31 "]
    units += [
        "0001-01-01 ",
        "31st ",
        "1st-2nd ",
        "1 - ",
        "100%",
        "\u0663 ",
        "\uff13 ",
        "\u0663\u0660\u0660\u0660 ",
    ]
    queries = [fill(unit) for unit in units]
    queries += ["$" + fill("1,000", MAX_QUERY - 1), "under " + fill("1,000", MAX_QUERY - 6)]
    queries += ["budget " + fill("9", MAX_QUERY - 7), fill("1", MAX_QUERY - 5) + " days"]
    return queries


def _punctuation() -> list[str]:
    units = ["-", ".", ",", "->", "\u2192", "\u2013", "!?", "()", "''", "\u2019s ", "/ ", ", ", "- - ", ":"]
    return [fill(unit) for unit in units]


def _months() -> list[str]:
    units = ["March ", "March 1 ", "March 1 to ", "March 1-", "1 March ", "1-2 March ", "early March "]
    units += ["the end of March ", "Sept. ", "may ", "May 2027 ", "March 1, 2027 ", "in March and "]
    units += ["Friday ", "next Friday ", "tomorrow ", "in 3 weeks ", "3 months from now ", "weekend "]
    return [fill(unit) for unit in units]


def _money() -> list[str]:
    units = ["$", "$1 ", "$ 1 ", "\u20ac1,000 ", "\u00a3", "US$", "USD 1 ", "1 USD ", "1 usd ", "1 euros "]
    units += ["1 thousand ", "5k ", "under 500 ", "budget 1,000 ", "$1.5k ", "\u00a51,000,000 ", "R$"]
    units += ["1 dollars per person ", "$100 a day "]
    return [fill(unit) for unit in units]


def _places() -> list[str]:
    units = ["to Paris ", "Paris ", "from Seattle to Paris ", "Abc ", "to Atlantis ", "San Francisco "]
    units += ["Portland, Maine ", "SEA ", "SEA -> FTE ", "to SEA ", "Nice ", "to Nice ", "New York City "]
    units += ["back to ", "to to ", "Zu\u0308rich ", "Z\u00fcrich ", "S\u00e3o Paulo "]
    return [fill(unit) for unit in units]


def _words() -> list[str]:
    units = ["a ", "a couple of ", "for 1 ", "me and my 2 friends ", "2 adults ", "3 days ", "3 nights "]
    units += ["fancy ", "fancy , ", "very fancy and ", "sushi ", "fancy sushi dinner ", "no dinners "]
    units += ["hiking ", "flights only ", "book a table ", "car rental ", "the ", "Abc-def ", "trip "]
    # A first word glued to the one before it ("xfancy"): the search goes on inside it.
    glued = ["x" + fill("fancy ", MAX_QUERY - 7) + "dinner", fill("xfancy ", MAX_QUERY - 7) + "dinner"]
    return [fill(unit) for unit in units] + glued


def _unicode() -> list[str]:
    units = ["\u017fix days ", "\u0130n March ", "mid-\u0131 ", "\u212a ", "\U0001f600 ", "\u2591 ", "\u2591"]
    units += ["\u05e9\u05dc\u05d5\u05dd ", "e\u0301", "\u200d", "\u0000", "\U0010ffff", "\ufeff", "\u00df "]
    units += ["\u0663 days in \u0645\u0635\u0631 ", "\uff13 days ", "\uff24\uff41\uff59 "]
    return [fill(unit) for unit in units]


FAMILIES: dict[str, list[str]] = {
    "whitespace": _whitespace(),
    "digits": _digits(),
    "punctuation": _punctuation(),
    "months": _months(),
    "money": _money(),
    "places": _places(),
    "words": _words(),
    "unicode": _unicode(),
}

# Pieces generated queries are made of: words every reader looks for, and what sits between them.
TOKENS = (
    "March", "may", "1", "31st", "2027", "2027-03-10", "9999-12-31", "to", "-", "from", "Paris", "Seattle",
    "SEA", "in", "a", "couple", "of", "3", "days", "nights", "week", "weekend", "$", "\u20ac", "1,000", "5k",
    "under", "budget", "per", "person", "for", "2", "people", "adults", "fancy", "sushi", "dinner", "and",
    "me", "my", "friends", "hiking", "flights", "only", "hotel", "next", "Friday", "tomorrow", "->", ",",
    ".", "\u017fix", "\u0663", "\uff13", "\u2591", "Nice", "New", "York", "until", "returning", "back",
)  # fmt: skip
SEPARATORS = (" ", " ", " ", "  ", "\t", ", ", "-", "", "\n", " " * 40)


def generated(count: int, seed: int = 9) -> list[str]:
    """`count` queries of random tokens and separators, each as long as a request allows."""
    rng = random.Random(seed)
    queries = []
    for _ in range(count):
        parts: list[str] = []
        length = 0
        while length < MAX_QUERY:
            piece = rng.choice(TOKENS) + rng.choice(SEPARATORS)
            parts.append(piece)
            length += len(piece)
        queries.append("".join(parts)[:MAX_QUERY].strip() or "x")
    return queries


def corpus(generated_count: int = 40) -> dict[str, list[str]]:
    """Every family, and `generated_count` generated queries as the family `generated`."""
    return {**FAMILIES, "generated": generated(generated_count)}
