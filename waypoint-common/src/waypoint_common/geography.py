"""Real places: airports and the cities they serve, from the `airportsdata` package.

Every service resolves place names here, so the tool servers and the orchestrator agree
on what "Patagonia" or "Seattle" means. Resolution is deterministic: the same text gives
the same airport on every replica and every run.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

import airportsdata

from waypoint_common.errors import InputError


@dataclass(frozen=True, slots=True)
class Place:
    """An airport and the city it serves."""

    code: str
    airport: str
    city: str
    subdivision: str
    country: str
    lat: float
    lon: float
    tz: str

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.tz)

    @property
    def label(self) -> str:
        return f"{self.city}, {self.country} ({self.code})"


class UnknownPlace(InputError):
    """No airport or city matches the text."""


# Regions and common English names that the data set spells otherwise or lacks,
# mapped to the airport a traveller would fly into.
ALIASES: dict[str, str] = {
    "patagonia": "FTE",
    "el chalten": "FTE",
    "torres del paine": "PNT",
    "bariloche": "BRC",
    "ushuaia": "USH",
    "tierra del fuego": "USH",
    "buenos aires": "EZE",
    "florence": "FLR",
    "tuscany": "FLR",
    "naples": "NAP",
    "amalfi coast": "NAP",
    "amalfi": "NAP",
    "milan": "MXP",
    "rome": "FCO",
    "venice": "VCE",
    "vancouver": "YVR",
    "banff": "YYC",
    "yosemite": "FAT",
    "iceland": "KEF",
    "reykjavik": "KEF",
    "london": "LHR",
    "new york": "JFK",
    "nyc": "JFK",
    "paris": "CDG",
    "tokyo": "HND",
    "washington": "IAD",
    "washington dc": "IAD",
    "chicago": "ORD",
    "seattle": "SEA",
    "houston": "IAH",
    "los angeles": "LAX",
    "san francisco": "SFO",
    "sao paulo": "GRU",
    "moscow": "SVO",
    "munich": "MUC",
    "vienna": "VIE",
    "lisbon": "LIS",
    "prague": "PRG",
    "copenhagen": "CPH",
    "swiss alps": "ZRH",
    "dolomites": "VCE",
    "machu picchu": "CUZ",
    "cusco": "CUZ",
    "kyoto": "KIX",
    "osaka": "KIX",
    "bali": "DPS",
    "hawaii": "HNL",
    "honolulu": "HNL",
    "maui": "OGG",
    "scottish highlands": "INV",
    "lake district": "MAN",
    "new zealand": "AKL",
    "queenstown": "ZQN",
    # Metropolitan areas whose main airport the data set does not single out.
    "dallas": "DFW",
    "phoenix": "PHX",
    "istanbul": "IST",
    "detroit": "DTW",
    "orlando": "MCO",
    "las vegas": "LAS",
    "minneapolis": "MSP",
    "philadelphia": "PHL",
    "montreal": "YUL",
    "toronto": "YYZ",
    "berlin": "BER",
    "madrid": "MAD",
    "barcelona": "BCN",
    "amsterdam": "AMS",
    "frankfurt": "FRA",
    "dubai": "DXB",
    "singapore": "SIN",
    "hong kong": "HKG",
    "bangkok": "BKK",
    "beijing": "PEK",
    "shanghai": "PVG",
    "seoul": "ICN",
    "sydney": "SYD",
    "melbourne": "MEL",
    "mexico city": "MEX",
    "bogota": "BOG",
    "lima": "LIM",
    "santiago": "SCL",
    "rio de janeiro": "GIG",
    "cape town": "CPT",
    "johannesburg": "JNB",
    "cairo": "CAI",
    "nairobi": "NBO",
    "delhi": "DEL",
    "new delhi": "DEL",
    "mumbai": "BOM",
    "stockholm": "ARN",
    "oslo": "OSL",
    "helsinki": "HEL",
    "athens": "ATH",
    "dublin": "DUB",
    "edinburgh": "EDI",
    "manchester": "MAN",
    "brussels": "BRU",
    "zurich": "ZRH",
    "geneva": "GVA",
    "boston": "BOS",
    "miami": "MIA",
    "atlanta": "ATL",
    "denver": "DEN",
    "austin": "AUS",
    "san diego": "SAN",
    "portland": "PDX",
    "warsaw": "WAW",
}

_NOT_AN_AIRPORT = re.compile(r"heliport|seaplane|air base|air force|army|naval|harbor|harbour|\bbase\b", re.I)


def normalize(text: str) -> str:
    """Lower case, no accents, single spaces: the form names are matched in."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", " ", plain.lower()).strip()


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _place(row: airportsdata.Airport) -> Place:
    return Place(
        code=row["iata"],
        airport=row["name"],
        city=row["city"] or row["name"],
        subdivision=row["subd"] or "",
        country=row["country"],
        lat=float(row["lat"]),
        lon=float(row["lon"]),
        tz=row["tz"],
    )


@cache
def _airports() -> dict[str, Place]:
    rows = airportsdata.load("IATA")
    return {code: _place(row) for code, row in rows.items() if row.get("tz") and len(code) == 3}


def _rank(place: Place) -> tuple[int, str]:
    """Lower is better: international airports first, then by code for determinism."""
    score = 0
    if "international" in place.airport.lower():
        score -= 2
    if _NOT_AN_AIRPORT.search(place.airport):
        score += 10
    return (score, place.code)


@cache
def _cities() -> dict[str, tuple[Place, ...]]:
    by_city: dict[str, list[Place]] = {}
    for place in _airports().values():
        by_city.setdefault(normalize(place.city), []).append(place)
    return {name: tuple(sorted(places, key=_rank)) for name, places in by_city.items()}


def airport_codes() -> frozenset[str]:
    """Every airport code known here."""
    return frozenset(_airports())


def city_names() -> frozenset[str]:
    """Every city with an airport, normalized (`normalize`)."""
    return frozenset(_cities())


def airport(code: str) -> Place:
    """The airport with this IATA code."""
    place = _airports().get(code.strip().upper())
    if place is None:
        raise UnknownPlace(f"unknown airport code {code!r}")
    return place


def resolve(text: str) -> Place:
    """An airport for a code, a city ('Seattle', 'Portland, US') or a known region ('Patagonia')."""
    raw = text.strip()
    if not raw:
        raise UnknownPlace("empty place name")
    if len(raw) > 120:
        raise UnknownPlace("place name longer than 120 characters")
    if re.fullmatch(r"[A-Za-z]{3}", raw) and raw.upper() in _airports():
        return _airports()[raw.upper()]
    name, _, qualifier = raw.partition(",")
    key = normalize(name)
    if key in ALIASES and not qualifier:
        return _airports()[ALIASES[key]]
    candidates = _cities().get(key, ())
    if qualifier:
        wanted = normalize(qualifier)
        candidates = tuple(
            p for p in candidates if wanted in (normalize(p.country), normalize(p.subdivision))
        )
    usable = [p for p in candidates if not _NOT_AN_AIRPORT.search(p.airport)]
    if not usable:
        raise UnknownPlace(f"no airport or city called {raw!r}")
    return usable[0]


def great_circle_km(a: Place, b: Place) -> float:
    """Distance between two places along the Earth's surface (haversine, mean radius)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


# Relative price level of a country (1.0 = United States), for hotels and restaurants.
_COST_INDEX: dict[str, float] = {
    "CH": 1.5,
    "NO": 1.35,
    "IS": 1.4,
    "DK": 1.25,
    "GB": 1.15,
    "IE": 1.1,
    "US": 1.0,
    "AU": 1.0,
    "NZ": 0.95,
    "CA": 0.95,
    "JP": 0.9,
    "FR": 1.0,
    "DE": 0.95,
    "NL": 1.0,
    "AT": 0.95,
    "SE": 1.05,
    "FI": 1.05,
    "BE": 0.95,
    "IT": 0.9,
    "ES": 0.8,
    "PT": 0.7,
    "GR": 0.7,
    "CZ": 0.65,
    "PL": 0.6,
    "CL": 0.7,
    "AR": 0.55,
    "BR": 0.6,
    "PE": 0.5,
    "MX": 0.55,
    "CO": 0.45,
    "ZA": 0.5,
    "TH": 0.45,
    "VN": 0.4,
    "ID": 0.4,
    "IN": 0.35,
    "NP": 0.35,
    "CN": 0.6,
    "KR": 0.8,
    "SG": 1.1,
    "AE": 1.0,
    "TR": 0.5,
    "EG": 0.35,
    "MA": 0.45,
    "KE": 0.45,
}


def cost_index(country: str) -> float:
    """How expensive a country is relative to the United States (0.6 when unknown)."""
    return _COST_INDEX.get(country.upper(), 0.6)
