"""The deterministic free-text extractor, form by form, against a fixed `today`."""

from __future__ import annotations

import datetime as dt
import importlib
import itertools
import pkgutil
import random
import re
import time
from types import ModuleType

import pytest

from bench import adversarial_queries
from tests import regex_audit
from waypoint_common import geography
from waypoint_orchestrator import extract as extract_module
from waypoint_orchestrator.extract import Extraction, ExtractionTimedOut, extract, places, reading
from waypoint_orchestrator.models import DiningWish

TODAY = dt.date(2026, 11, 25)  # a Wednesday
REFERENCE = "4-day hiking trip to Patagonia from Seattle in March with one fancy dinner, under $3000 for two"


def read(query: str, today: dt.date = TODAY) -> Extraction:
    return extract(query, today)


def test_reference_query() -> None:
    found = read(REFERENCE)
    fields = found.fields
    assert fields.destination == "FTE"
    assert fields.origin == "SEA"
    assert fields.start_date == dt.date(2027, 3, 10)
    assert fields.end_date is None  # the gate derives it from the length
    assert fields.days == 4
    assert fields.travelers == 2
    assert fields.budget is not None
    assert (fields.budget.amount, fields.budget.currency) == (3000, "USD")
    assert fields.interests == ["hiking"]
    assert fields.dining == DiningWish(style="fancy", count=1)
    assert found.kind_hint == "full_trip"
    assert fields.kind == "full_trip"
    assert found.unsupported is None
    assert "start date assumed 2027-03-10 from 'in March'" in found.assumptions
    assert found.assumptions_by_field["dates"] == ["start date assumed 2027-03-10 from 'in March'"]


def test_extraction_is_deterministic() -> None:
    assert read(REFERENCE) == read(REFERENCE)


# -- places ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "origin", "destination"),
    [
        ("trip to Patagonia from Seattle", "SEA", "FTE"),
        ("from Seattle to Patagonia", "SEA", "FTE"),
        ("Seattle to Denver flights", "SEA", "DEN"),
        ("seattle to denver flights", "SEA", "DEN"),
        ("SEA to FTE on March 10", "SEA", "FTE"),
        ("flights from SEA to JFK", "SEA", "JFK"),
        ("Seattle -> Denver", "SEA", "DEN"),
        ("flights SEA \u2192 FTE", "SEA", "FTE"),
        ("visit Kyoto in April", None, "KIX"),
        ("a week in Buenos Aires", None, "EZE"),
        ("San Francisco to New York", "SFO", "JFK"),
        ("Torres del Paine hiking trip", None, "PNT"),
        ("trip to torres del paine from seattle", "SEA", "PNT"),
        ("TRIP TO PARIS FROM SEATTLE", "SEA", "CDG"),
        ("Trip To Paris From Seattle", "SEA", "CDG"),
        ("trip to Portland, Maine from Boston", "BOS", "PWM"),
        ("trip to Portland, Oregon", None, "PDX"),
        ("trip to Nice in May", None, "NCE"),
        ("Patagonia's glaciers in March", None, "FTE"),
        ("fly out of Seattle to Rome", "SEA", "FCO"),
        ("I live in Chicago and want to visit Lisbon", "ORD", "LIS"),
        ("to Rome, then back to London", "LHR", "FCO"),
        ("explore the Amalfi Coast from Milan", "MXP", "NAP"),
        ("trip to São Paulo", None, "GRU"),
        ("hiking in patagonia", None, "FTE"),
        ("in Tuscany for the wine", None, "FLR"),
    ],
)
def test_places(query: str, origin: str | None, destination: str | None) -> None:
    fields = read(query).fields
    assert (fields.origin, fields.destination) == (origin, destination)


def test_an_unknown_name_after_a_cue_is_kept_as_written() -> None:
    fields = read("trip to Atlantis from Seattle").fields
    assert (fields.origin, fields.destination) == ("SEA", "Atlantis")


@pytest.mark.parametrize(
    "query",
    [
        "a nice dinner in March",
        "I may go somewhere nice",
        "going to the beach",
        "cheap flights to the sea",
        "USD 300 to spend",
        "a couple of days away",
        "of course, a dinner for two",
        "what a flat fare, I hope to see wildlife",
        "plan a trip in the mountains",
        "reading in the park, a dinner in town",
        "trip for the family in December",
        "we want to go on holiday next month",
        "book a table for 4",
        "THE AND FOR tickets",
        "trip to the USA",
    ],
)
def test_ordinary_words_are_not_places(query: str) -> None:
    fields = read(query).fields
    assert (fields.origin, fields.destination) == (None, None)


def test_places_are_explained_in_the_assumptions() -> None:
    assert "destination 'Patagonia' read as El Calafate, AR (FTE)" in read(REFERENCE).assumptions


# -- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2027-03-10", dt.date(2027, 3, 10), None),
        ("March 10", dt.date(2027, 3, 10), None),
        ("10 March", dt.date(2027, 3, 10), None),
        ("the 10th of March", dt.date(2027, 3, 10), None),
        ("Mar 10th", dt.date(2027, 3, 10), None),
        ("March 10, 2027", dt.date(2027, 3, 10), None),
        ("march 10 2027", dt.date(2027, 3, 10), None),
        ("from March 10 to March 14", dt.date(2027, 3, 10), dt.date(2027, 3, 14)),
        ("March 10-14", dt.date(2027, 3, 10), dt.date(2027, 3, 14)),
        ("March 10 to 14", dt.date(2027, 3, 10), dt.date(2027, 3, 14)),
        ("10-14 March", dt.date(2027, 3, 10), dt.date(2027, 3, 14)),
        ("2027-03-10 to 2027-03-14", dt.date(2027, 3, 10), dt.date(2027, 3, 14)),
        ("Dec 28 to Jan 3", dt.date(2026, 12, 28), dt.date(2027, 1, 3)),
        ("leaving March 10, returning March 14", dt.date(2027, 3, 10), dt.date(2027, 3, 14)),
        ("tomorrow", dt.date(2026, 11, 26), None),
        ("the day after tomorrow", dt.date(2026, 11, 27), None),
        ("today", TODAY, None),
        ("next Friday", dt.date(2026, 11, 27), None),
        ("on Monday", dt.date(2026, 11, 30), None),
        ("Friday to Sunday", dt.date(2026, 11, 27), dt.date(2026, 11, 29)),
        ("next Wednesday", dt.date(2026, 12, 2), None),
        ("in 3 weeks", dt.date(2026, 12, 16), None),
        ("in ten days", dt.date(2026, 12, 5), None),
        ("in a month", dt.date(2026, 12, 25), None),
        ("two weeks from now", dt.date(2026, 12, 9), None),
        ("next week", dt.date(2026, 11, 30), None),
        ("next month", dt.date(2026, 12, 10), None),
        ("in March", dt.date(2027, 3, 10), None),
        ("during march", dt.date(2027, 3, 10), None),
        ("in December", dt.date(2026, 12, 10), None),
        ("in November", dt.date(2027, 11, 10), None),
        ("in May", dt.date(2027, 5, 10), None),
        ("March 2027", dt.date(2027, 3, 10), None),
        ("early April", dt.date(2027, 4, 5), None),
        ("mid-April", dt.date(2027, 4, 15), None),
        ("in late June", dt.date(2027, 6, 22), None),
        ("November 20", dt.date(2027, 11, 20), None),
        ("March 1 2020", dt.date(2020, 3, 1), None),
        ("2020-03-01", dt.date(2020, 3, 1), None),
    ],
)
def test_dates(text: str, start: dt.date, end: dt.date | None) -> None:
    fields = read(f"trip to Rome {text}").fields
    assert (fields.start_date, fields.end_date) == (start, end)


def test_a_month_alone_starts_at_least_two_weeks_ahead() -> None:
    # On 20 November, 10 December is far enough ahead.
    assert read("Rome in December", dt.date(2026, 11, 20)).fields.start_date == dt.date(2026, 12, 10)
    # On 30 November it is only ten days away: the first December day two weeks ahead, not the
    # next year's 10th (more than a year ahead, which the gate refuses).
    assert read("Rome in December", dt.date(2026, 11, 30)).fields.start_date == dt.date(2026, 12, 14)
    # Said in December itself, two weeks ahead is already January: the next December it is.
    assert read("Rome in December", dt.date(2026, 12, 20)).fields.start_date == dt.date(2027, 12, 10)
    assert read("Rome in January", dt.date(2026, 12, 20)).fields.start_date == dt.date(2027, 1, 10)


def test_a_month_alone_records_the_assumption() -> None:
    found = read("Rome in March")
    assert found.assumptions_by_field["dates"] == ["start date assumed 2027-03-10 from 'in March'"]


@pytest.mark.parametrize("text", ["I may come", "may I book", "march on", "a nice dinner"])
def test_words_that_look_like_months_are_not_dates(text: str) -> None:
    assert read(f"trip to Rome, {text}").fields.start_date is None


def test_an_impossible_date_is_not_taken() -> None:
    assert read("trip to Rome on February 30").fields.start_date is None


# -- trip length -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("4-day", 4),
        ("4 day", 4),
        ("4 days", 4),
        ("ten-day", 10),
        ("fourteen days", 14),
        ("a day", 1),
        ("a week", 7),
        ("one week", 7),
        ("two weeks", 14),
        ("2 weeks", 14),
        ("3 nights", 4),
        ("a fortnight", 14),
        ("week-long", 7),
        ("a couple of days", 2),
        ("weekend", 3),
        ("long weekend", 4),
    ],
)
def test_durations(text: str, days: int) -> None:
    assert read(f"{text} trip to Rome").fields.days == days


def test_nights_count_both_ends_and_say_so() -> None:
    found = read("3 nights in Rome")
    assert found.fields.days == 4
    assert "4 days from '3 nights'" in found.assumptions


def test_a_weekend_without_a_date_is_the_next_friday_to_sunday() -> None:
    fields = read("a weekend in Paris").fields
    assert (fields.start_date, fields.days) == (dt.date(2026, 11, 27), 3)


def test_a_weekend_with_a_date_keeps_the_date() -> None:
    fields = read("a weekend in Paris in March").fields
    assert (fields.start_date, fields.days) == (dt.date(2027, 3, 10), 3)


def test_in_three_weeks_is_a_date_not_a_length() -> None:
    fields = read("Rome in 3 weeks for 5 days").fields
    assert (fields.start_date, fields.days) == (dt.date(2026, 12, 16), 5)


# -- travellers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "travelers"),
    [
        ("for two", 2),
        ("for 2", 2),
        ("for three people", 3),
        ("2 people", 2),
        ("3 adults", 3),
        ("4 travellers", 4),
        ("4 travelers", 4),
        ("5 guests", 5),
        ("6 of us", 6),
        ("family of four", 4),
        ("group of 5", 5),
        ("2 adults and 2 kids", 4),
        ("me and 3 friends", 4),
        ("with my 2 kids", 3),
        ("as a couple", 2),
        ("couples retreat", 2),
        ("honeymoon", 2),
        ("with my wife", 2),
        ("with my husband", 2),
        ("with my partner", 2),
        ("with my girlfriend", 2),
        ("with my boyfriend", 2),
        ("my wife and I", 2),
        ("solo", 1),
        ("alone", 1),
        ("just me", 1),
        ("by myself", 1),
    ],
)
def test_travelers(text: str, travelers: int) -> None:
    assert read(f"trip to Rome {text}").fields.travelers == travelers


@pytest.mark.parametrize(
    "query",
    [
        "trip to Rome for 2 weeks",
        "trip to Rome for a couple of days",
        "trip to Rome for one fancy dinner",
        "trip to Rome for $2000",
        "trip to Rome for March 10",
    ],
)
def test_numbers_that_are_not_party_sizes(query: str) -> None:
    assert read(query).fields.travelers is None


def test_an_implied_party_size_is_an_assumption() -> None:
    found = read("honeymoon in Bali")
    assert found.fields.travelers == 2
    assert found.assumptions_by_field["travelers"] == ["2 travellers from 'honeymoon'"]


# -- budget ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("under $3,000", 3000, "USD"),
        ("under $3000", 3000, "USD"),
        ("$3000", 3000, "USD"),
        ("$ 3000", 3000, "USD"),
        ("US$3000", 3000, "USD"),
        ("3k", 3000, "USD"),
        ("$2.5k", 2500, "USD"),
        ("$1,200.50", 1200.5, "USD"),
        ("budget of 3000 USD", 3000, "USD"),
        ("budget 3000", 3000, "USD"),
        ("under 3000", 3000, "USD"),
        ("3000 dollars", 3000, "USD"),
        ("max 2000 EUR", 2000, "EUR"),
        ("€2.500", 2500, "EUR"),
        ("€2,500", 2500, "EUR"),
        ("2.500€", 2500, "EUR"),
        ("2000 euros", 2000, "EUR"),
        ("£1500", 1500, "GBP"),
        ("1500 pounds", 1500, "GBP"),
        ("CHF 4000", 4000, "CHF"),
        ("4000 swiss francs", 4000, "CHF"),
        ("¥300000", 300000, "JPY"),
        ("A$3000", 3000, "AUD"),
        ("C$3000", 3000, "CAD"),
        ("3000 canadian dollars", 3000, "CAD"),
        ("NZ$3000", 3000, "NZD"),
        ("5000 THB", 5000, "THB"),
        ("3 grand", 3000, "USD"),
    ],
)
def test_budgets(text: str, amount: float, currency: str) -> None:
    budget = read(f"trip to Rome {text}").fields.budget
    assert budget is not None
    assert (budget.amount, budget.currency) == (amount, currency)


def test_a_small_budget_is_read_as_written() -> None:
    budget = read("$200 budget for Patagonia hiking, 4 days from Seattle in March").fields.budget
    assert budget is not None
    assert (budget.amount, budget.currency) == (200, "USD")


def test_the_budget_is_the_sum_with_a_budget_word() -> None:
    budget = read("Rome with $150 dinners, total budget $4000").fields.budget
    assert budget is not None
    assert budget.amount == 4000


def test_a_budget_per_person_counts_every_traveller() -> None:
    found = read("Rome, $1500 per person for two")
    assert found.fields.budget is not None
    assert found.fields.budget.amount == 3000
    assert found.assumptions_by_field["budget"] == ["budget of 1500 USD per person counted for 2"]


def test_a_bare_number_budget_assumes_dollars_and_says_so() -> None:
    found = read("Rome in March, 3k")
    assert found.assumptions_by_field["budget"] == ["budget currency assumed USD for '3k'"]


@pytest.mark.parametrize(
    "query", ["Rome for 4 days", "Rome March 2027", "Rome under 3 stars", "Rome, 2 people"]
)
def test_numbers_that_are_not_budgets(query: str) -> None:
    assert read(query).fields.budget is None


# -- interests and dining ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "interests"),
    [
        ("hiking", ["hiking"]),
        ("trekking and hikes", ["hiking"]),
        ("beaches, museums and food", ["beach", "museums", "food"]),
        ("skiing", ["skiing"]),
        ("wine tasting at vineyards", ["wine"]),
        ("nightlife and shopping", ["nightlife", "shopping"]),
        ("wildlife photography", ["wildlife", "photography"]),
        ("culture and history", ["culture", "history"]),
        ("SNORKELING", ["diving"]),
        ("nothing special", []),
    ],
)
def test_interests(text: str, interests: list[str]) -> None:
    assert read(f"trip to Rome: {text}").fields.interests == interests


@pytest.mark.parametrize(
    ("text", "dining"),
    [
        ("one fancy dinner", DiningWish(style="fancy", count=1)),
        ("a fancy dinner", DiningWish(style="fancy", count=1)),
        ("two fancy dinners", DiningWish(style="fancy", count=2)),
        ("2 fancy dinners", DiningWish(style="fancy", count=2)),
        ("fine dining", DiningWish(style="fancy", count=1)),
        ("a nice dinner", DiningWish(style="fancy", count=1)),
        ("a romantic dinner", DiningWish(style="fancy", count=1)),
        ("a special dinner", DiningWish(style="fancy", count=1)),
        ("a michelin restaurant", DiningWish(style="fancy", count=1)),
        ("a michelin-starred restaurant", DiningWish(style="fancy", count=1)),
        ("an upscale dinner", DiningWish(style="fancy", count=1)),
        ("a casual dinner", DiningWish(style="casual", count=1)),
        ("dinner", DiningWish(style="any", count=1)),
        ("a restaurant", DiningWish(style="any", count=1)),
        ("sushi", DiningWish(cuisine="Japanese")),
        ("an italian dinner", DiningWish(cuisine="Italian")),
        ("a fancy Italian dinner", DiningWish(style="fancy", cuisine="Italian")),
        ("a fancy steakhouse dinner", DiningWish(style="fancy", cuisine="Steakhouse")),
        ("a seafood restaurant", DiningWish(cuisine="Seafood")),
        ("a fancy dinner and sushi", DiningWish(style="fancy", cuisine="Japanese")),
        ("no dinner", None),
        ("hotel reservation", None),
        ("nothing to eat", None),
    ],
)
def test_dining(text: str, dining: DiningWish | None) -> None:
    assert read(f"trip to Rome with {text}").fields.dining == dining


def test_more_than_three_dinners_are_capped() -> None:
    found = read("trip to Rome with five fancy dinners")
    assert found.fields.dining == DiningWish(style="fancy", count=3)
    assert found.assumptions_by_field["dining"] == ["5 dinners asked for; at most 3 are planned"]


# -- kinds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("flights only to Paris from Seattle", "flights_only"),
        ("only flights to Paris", "flights_only"),
        ("just a flight to Paris", "flights_only"),
        ("one-way flight to Paris", "flights_only"),
        ("flights from SEA to JFK on March 10", "flights_only"),
        ("just a hotel in Paris", "hotels_only"),
        ("hotel only in Paris", "hotels_only"),
        ("where to stay in Lisbon", "hotels_only"),
        ("a hotel in Paris for 3 nights", "hotels_only"),
        ("weather in Paris tomorrow", "weather_only"),
        ("forecast for Rome next week", "weather_only"),
        ("will it rain in London on Friday", "weather_only"),
        ("book a table in Paris for 2", "dining_only"),
        ("restaurant only in Rome", "dining_only"),
        ("dinner reservation in Rome for 2", "dining_only"),
        ("a fancy dinner in Rome on Friday", "dining_only"),
        ("vacation in Rome", "full_trip"),
        ("holiday in Rome", "full_trip"),
        ("getaway to Rome", "full_trip"),
        ("itinerary for Rome", "full_trip"),
        ("honeymoon in Bali", "full_trip"),
        ("a trip to Rome with good weather", "full_trip"),
        ("Seattle to Rome on March 10 for 4 days with a fancy dinner", "full_trip"),
        (REFERENCE, "full_trip"),
        ("Rome", None),
    ],
)
def test_kind_hints(query: str, kind: str | None) -> None:
    found = read(query)
    assert found.kind_hint == kind
    assert found.fields.kind == kind
    assert (found.kind_reason is None) == (kind is None)


@pytest.mark.parametrize(
    ("query", "what"),
    [
        ("rent a car in Denver", "car rental"),
        ("car hire at LAX next week", "car rental"),
        ("I need a rental car in Seattle", "car rental"),
        ("a cruise to Alaska", "cruises"),
        ("do I need a visa for Brazil", "visas"),
        ("train tickets from Paris to Rome", "trains"),
        ("write me a poem", "not look like a travel request"),
        ("what is the capital of France?", "not look like a travel request"),
        ("tell me a joke about Paris", "not look like a travel request"),
    ],
)
def test_unsupported_requests(query: str, what: str) -> None:
    reason = read(query).unsupported
    assert reason is not None
    assert what in reason


@pytest.mark.parametrize(
    "query",
    [
        REFERENCE,
        "business class flight to Tokyo",
        "Torres del Paine trek in March",
        "I want to go hiking and see some wildlife",
        "Rome",
    ],
)
def test_supported_requests(query: str) -> None:
    assert read(query).unsupported is None


def test_budgets_the_model_refuses_are_dropped_with_a_note() -> None:
    found = read("trip to Santiago, budget 2000000 CLP")
    assert found.fields.budget is None
    assert "at most 1,000,000" in found.assumptions_by_field["budget"][0]
    assert read("trip to Rome for €0").fields.budget is None


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "$",
        "€ k",
        "March 32",
        "2027-13-45 to 2027-02-30",
        "99 people for 0 days in 0 weeks",
        "for 0",
        "x" * 2000,
        "\U0001f642 trip to Paris \U0001f642",
        "New York New York New York",
        "to to to to from from in in",
        "from March 10 to",
        "Portland, ",
        "in late",
        "12/03/2027",
    ],
)
def test_odd_text_never_breaks_the_extractor(query: str) -> None:
    found = read(query)
    assert isinstance(found.assumptions, list)


@pytest.mark.parametrize(
    "query", ["Rome, sushi twice a week", "Rome at $100 a day", "Rome, I'd like to try it"]
)
def test_phrases_that_are_not_lengths(query: str) -> None:
    assert read(query).fields.days is None


def test_lower_case_codes_that_are_words_are_not_currencies() -> None:
    found = read("I'd like to try 4 days in Rome")
    assert (found.fields.budget, found.fields.days) == (None, 4)
    budget = read("5000 TRY for Istanbul").fields.budget
    assert budget is not None
    assert budget.currency == "TRY"


def test_given_names_are_not_places_unless_a_cue_says_so() -> None:
    assert read("Mary and I want sushi").fields.destination is None
    assert read("trip to Mary, Turkmenistan").fields.destination == "MYP"


# -- reading time: linear patterns, a deadline, nothing that raises ----------------------------


def _extractor_modules() -> dict[str, ModuleType]:
    """Every module of the extractor's package, by its name in the package."""
    found = {"__init__": extract_module}
    for info in pkgutil.walk_packages(extract_module.__path__, f"{extract_module.__name__}."):
        found[info.name.rpartition(".")[2]] = importlib.import_module(info.name)
    return found


MODULES = _extractor_modules()
# The modules that read a field, each with patterns of its own.
FIELD_MODULES = {"budget", "dates", "dining", "interests", "kind", "length", "places", "travelers"}


def _extractor_patterns() -> tuple[dict[str, re.Pattern[str]], dict[str, reading._Pattern]]:
    """Every pattern the extractor compiles, by module and name (both forms of a `_Pattern`, each
    place it is kept); and the `_Pattern`s among them, each once."""
    found: dict[str, re.Pattern[str]] = {}
    folded: dict[str, reading._Pattern] = {}

    def collect(value: object, name: str) -> None:
        if isinstance(value, re.Pattern):
            found[name] = value
        elif isinstance(value, reading._Pattern):
            found[name], found[f"{name}.fast"] = value.exact, value.fast
            if all(value is not other for other in folded.values()):
                folded[name] = value
        elif isinstance(value, tuple):
            for index, item in enumerate(value):
                collect(item, f"{name}[{index}]")

    for module_name, module in MODULES.items():
        for name, value in vars(module).items():
            collect(value, f"{module_name}.{name}")
    return found, folded


PATTERNS, FOLDED_PATTERNS = _extractor_patterns()


def test_the_audit_sees_the_patterns_of_every_module() -> None:
    """The audits below walk the package: each field's module is walked and has patterns."""
    assert {"__init__", "reading"} | FIELD_MODULES <= set(MODULES)
    assert {name.partition(".")[0] for name in PATTERNS} >= FIELD_MODULES
    # The place reader walks words with plain `re` patterns: no `_Pattern` of its own.
    assert {name.partition(".")[0] for name in FOLDED_PATTERNS} >= FIELD_MODULES - {"places"}
    assert len(PATTERNS) > 150
    assert len(FOLDED_PATTERNS) > 60


def test_the_audit_finds_the_shapes_that_backtrack() -> None:
    assert regex_audit.problems(re.compile(r"(?!\s*-?\s*days)"))  # the old _UNIT_AFTER
    assert regex_audit.problems(re.compile(r"(\w+\s?)*$"))
    assert regex_audit.problems(re.compile(r"x\s+\s*y"))
    assert not regex_audit.problems(re.compile(r"(?!\s*+-?\s*+days)"))
    assert not regex_audit.problems(re.compile(r"\s*(?:-|to)\s*\d"))


def test_no_pattern_can_backtrack_over_a_run() -> None:
    """Every pattern is linear in the text: no two greedy runs can trade characters (issue 9)."""
    assert len(PATTERNS) > 100
    found = {name: problems for name, p in PATTERNS.items() if (problems := regex_audit.problems(p))}
    assert found == {}


def test_folded_patterns_match_nothing_empty_and_spell_no_capital() -> None:
    for name, pattern in FOLDED_PATTERNS.items():
        assert regex_audit.min_width(pattern.exact) > 0, name
        capitals = {c for c in regex_audit.literals(pattern.fast) if reading._fold(c) != c}
        # [A-Za-z] may spell capitals: what they fold to is in the same class.
        assert all(reading._fold(c) in regex_audit.literals(pattern.fast) for c in capitals), name


def test_folding_keeps_each_character_and_what_ignorecase_equates() -> None:
    """`_fold`, over every code point: one character each, same \\w/\\d/\\s class, and each letter a
    folded pattern spells matches exactly the characters re.IGNORECASE would match."""
    text = "".join(chr(i) for i in range(0x110000) if not 0xD800 <= i <= 0xDFFF)
    folded = reading._fold(text)
    assert len(folded) == len(text)
    for category in (r"\w", r"\d", r"\s"):
        assert [m.start() for m in re.finditer(category, text)] == [
            m.start() for m in re.finditer(category, folded)
        ]
    spelled = {c for p in FOLDED_PATTERNS.values() for c in regex_audit.literals(p.fast)}
    for letter in sorted(c for c in spelled if reading._fold(c) == c):
        wanted = [m.start() for m in re.finditer(re.escape(letter), text, re.I)]
        assert [m.start() for m in re.finditer(re.escape(letter), folded)] == wanted, letter


@pytest.mark.parametrize("family", ["unicode", "generated", "places", "money"])
def test_folded_patterns_find_what_ignorecase_finds(family: str) -> None:
    queries = adversarial_queries.corpus(generated_count=20)[family]
    queries += [
        "Trip to NICE in \u0130STANBUL, \u017fix days, $3000 US$ \u212a",
        "DINNER FANCY Sushi \u0130n MAY, wee\u212aEND, \u017fUSHI, CAR RENTAL",
    ]
    for query in queries:
        folded = reading._fold(query)
        for name, pattern in FOLDED_PATTERNS.items():
            fast = [(m.span(), m.groups()) for m in pattern.finditer(query, folded)]
            assert fast == [(m.span(), m.groups()) for m in pattern.exact.finditer(query)], name


@pytest.mark.parametrize(
    ("family", "queries"),
    list(adversarial_queries.corpus(generated_count=40).items()),
    ids=list(adversarial_queries.corpus(generated_count=0)),
)
def test_adversarial_queries_are_read(family: str, queries: list[str]) -> None:
    """The longest queries a request accepts, built to make the extractor work hardest: read, no
    exception. (How long it takes is bench/extraction.py's business, not a unit test's.)"""
    for query in queries:
        assert len(query.strip()) <= adversarial_queries.MAX_QUERY
        found = read(query)
        assert isinstance(found, Extraction), family


def test_names_are_normalized_word_by_word_as_geography_does_it_whole() -> None:
    """The place reader normalizes each word once and joins them; the same as the whole run."""
    families = adversarial_queries.corpus()
    queries = [q for family in ("places", "unicode", "generated") for q in families[family]]
    queries += ["Val-d'Is\u00e8re. Saint  Paul\tde Vence, \u00c5re \u0130zmir O'Hare"]
    queries += ["\u03a3\u039f\u03a3 \u00df Paris"]
    for query in queries:
        words = list(places._WORD.finditer(query))
        keys: dict[str, str] = {}
        for i in range(len(words)):
            for j in range(i, min(i + places._MAX_PLACE_WORDS, len(words))):
                gaps = (query[words[k].end() : words[k + 1].start()] for k in range(i, j))
                if not all(places._WORD_GAP.fullmatch(gap) for gap in gaps):
                    break
                names = [w.group(0) for w in words[i : j + 1]]
                text = query[words[i].start() : words[j].end()]
                assert places._normalized(names, keys) == geography.normalize(text), text


def test_long_runs_of_whitespace_keep_the_meaning() -> None:
    """The reported query ('March 1', ~2,000 spaces, 'x') and its kin read as the short ones do."""
    run = adversarial_queries.run_between
    assert read(run("March 1", "x")).fields.start_date == read("March 1 x").fields.start_date
    assert read(run("March 1", "x")).fields.start_date == dt.date(2027, 3, 1)
    assert read(run("March 1", "days")).fields.start_date is None  # "1 days": a length
    assert read(run("March 1", "days")).fields.days == 1
    budget = read(run("under 500", "x")).fields.budget
    assert budget is not None
    assert (budget.amount, budget.currency) == (500, "USD")
    assert read(run("under 500", "people")).fields.budget is None
    budget = read(run("5k", "x")).fields.budget
    assert budget is not None
    assert budget.amount == 5000
    for blank in adversarial_queries.BLANKS:
        assert read(run("March 1", "x", blank)).fields.start_date == dt.date(2027, 3, 1), repr(blank)


def _random_text(rng: random.Random) -> str:
    """Up to MAX_QUERY characters of tokens, separators and any characters at all."""
    pieces: list[str] = []
    length, wanted = 0, rng.randint(1, adversarial_queries.MAX_QUERY)
    while length < wanted:
        kind = rng.random()
        if kind < 0.5:
            pieces.append(rng.choice(adversarial_queries.TOKENS))
        elif kind < 0.8:
            pieces.append(rng.choice(adversarial_queries.SEPARATORS))
        else:  # any code point but a lone surrogate (a request cannot carry one)
            pieces.append(
                chr(rng.choice([rng.randrange(0x80), rng.randrange(0xD800), rng.randrange(0xE000, 0x110000)]))
            )
        length += len(pieces[-1])
    return "".join(pieces)[: adversarial_queries.MAX_QUERY]


def test_generated_text_never_breaks_the_extractor() -> None:
    """Random text (seeded: the same every run), read twice: no exception, the same answer."""
    rng = random.Random(9)
    for _ in range(150):
        query = _random_text(rng)
        assert read(query) == read(query)


@pytest.mark.parametrize(
    ("query", "days", "start"),
    [
        ("\u017fix days in Paris", 6, None),  # '\u017f' (long s) matches 's' under re.IGNORECASE
        ("trip to Paris in Augu\u017ft 2027", None, dt.date(2027, 8, 10)),
        ("m\u0131d March trip to Rome", None, dt.date(2027, 3, 15)),  # dotless i
        ("3 wee\u212as in Paris", 21, None),  # Kelvin sign
        ("\u0130n March, to Rome", None, dt.date(2027, 3, 10)),  # dotted capital I
    ],
)
def test_letters_ignorecase_equates_with_ascii_are_read(query: str, days: int | None, start: dt.date) -> None:
    """They used to raise KeyError: the matched word was looked up as written."""
    fields = read(query).fields
    assert (fields.days, fields.start_date) == (days, start)


def test_a_cuisine_spelled_with_a_long_s_is_read() -> None:
    dining = read("\u017fu\u017fhi dinner in Paris").fields.dining
    assert dining is not None
    assert dining.cuisine == "Japanese"


@pytest.mark.parametrize(
    ("query", "amount"),
    [("budget $1,000,00", 1000.0), ("\u00a51,000,000 \u00a52", 1_000_000.0), ("$1,000.000", 1_000_000.0)],
)
def test_sums_with_odd_separators_are_read(query: str, amount: float) -> None:
    """'1,000,00' and '1,000.000' used to raise ValueError (float('1.000.00'))."""
    budget = read(query).fields.budget
    assert budget is not None
    assert budget.amount == amount


@pytest.mark.parametrize(
    ("query", "days", "budget", "travelers"),
    [
        ("\u0663 days in Paris", 3, None, None),  # Arabic-Indic three
        ("\uff13 days in Paris for \uff12 people", 3, None, 2),  # fullwidth
        ("\u20ac\u0663\u0660\u0660\u0660 trip to Rome", None, 3000, None),
    ],
)
def test_digits_of_other_scripts_are_numbers(
    query: str, days: int | None, budget: float | None, travelers: int | None
) -> None:
    fields = read(query).fields
    assert fields.days == days
    assert (fields.budget.amount if fields.budget else None) == budget
    assert fields.travelers == travelers


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("trip to Paris from 9999-12-31 until Friday", dt.date.max, dt.date.max),  # a Friday
        ("trip to Paris from 9999-12-30 until Saturday", dt.date(9999, 12, 30), None),  # none left
        ("trip to Paris 0001-01-01 for 3 days", dt.date.min, None),
        ("trip to Paris 9999-12-31 for 4 days", dt.date.max, None),
    ],
)
def test_dates_at_the_ends_of_the_calendar(query: str, start: dt.date, end: dt.date | None) -> None:
    """'until Saturday' after 9999-12-30 used to overflow (OverflowError); the gate judges them."""
    fields = read(query).fields
    assert (fields.start_date, fields.end_date) == (start, end)


def test_a_deadline_already_past_stops_the_extractor() -> None:
    with pytest.raises(ExtractionTimedOut):
        extract(REFERENCE, TODAY, deadline=time.thread_time())


def test_a_deadline_far_ahead_changes_nothing() -> None:
    assert extract(REFERENCE, TODAY, deadline=time.thread_time() + 3600) == read(REFERENCE)


def test_the_deadline_is_checked_between_patterns_and_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that ticks once a reading: the extractor reads it at every pattern and every word,
    and stops at the first reading past the deadline, whatever it was doing."""
    query = adversarial_queries.fill("to Paris ")
    readings = itertools.count()
    monkeypatch.setattr(reading, "_clock", lambda: float(next(readings)))
    extract(query, TODAY, deadline=1e9)
    checks = next(readings)
    assert checks > query.count("Paris") + len(PATTERNS) // 2
    for deadline in (1, 40, checks // 2, checks - 1):
        readings = itertools.count()
        with pytest.raises(ExtractionTimedOut):
            extract(query, TODAY, deadline=deadline)
        assert next(readings) == deadline + 1  # it stopped at the reading that passed
