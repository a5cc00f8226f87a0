"""Where flights come from: a small interface, and a simulated airline network on real geography.

A real provider (an airline or GDS API) would implement `FlightProvider`; the simulation is
deterministic, so every replica and every run offers the same flights for the same query.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Protocol

from waypoint_common import geography
from waypoint_common.errors import InputError
from waypoint_common.geography import Place
from waypoint_common.inventory import money, seeded_rng
from waypoint_common.results.flights import Airport, Cabin, FlightSlice

CABIN_CODES: dict[Cabin, str] = {"economy": "Y", "premium_economy": "W", "business": "J", "first": "F"}
CABIN_BY_CODE: dict[str, Cabin] = {code: cabin for cabin, code in CABIN_CODES.items()}
CABIN_PRICE_FACTOR: dict[Cabin, float] = {
    "economy": 1.0,
    "premium_economy": 1.6,
    "business": 3.2,
    "first": 5.5,
}
CABIN_SEATS: dict[Cabin, int] = {"economy": 9, "premium_economy": 6, "business": 4, "first": 2}

CARRIERS: tuple[tuple[str, str], ...] = (
    ("Polaris Airways", "PX"),
    ("Meridian Air", "MD"),
    ("Cordillera Airlines", "CQ"),
    ("Atlas Pacific", "AP"),
    ("Northwind Air", "NW"),
    ("Southern Cross Air", "SX"),
    ("Transoceanic", "TO"),
    ("Blue Condor", "BC"),
    ("Boreal Air", "BR"),
    ("Sol Airlines", "SL"),
)

HUBS = (
    "ATL",
    "DFW",
    "ORD",
    "LAX",
    "JFK",
    "MIA",
    "IAH",
    "SEA",
    "SFO",
    "DEN",
    "YYZ",
    "MEX",
    "PTY",
    "BOG",
    "LIM",
    "SCL",
    "EZE",
    "GRU",
    "LHR",
    "CDG",
    "FRA",
    "AMS",
    "MAD",
    "IST",
    "DXB",
    "DOH",
    "ADD",
    "JNB",
    "DEL",
    "SIN",
    "HKG",
    "NRT",
    "ICN",
    "SYD",
    "AKL",
)

_OFFER_ID = re.compile(r"^([A-Z]{3})([A-Z]{3})-(\d{8})-(\d{8}|OW)-([YWJF])-(\d)$")


class UnknownOffer(InputError):
    """The offer id does not name an offer this provider sells."""


@dataclass(frozen=True, slots=True)
class OfferQuote:
    """An offer before seat-dependent pricing: what the provider sells."""

    offer_id: str
    carrier: str
    carrier_code: str
    cabin: Cabin
    slices: tuple[FlightSlice, ...]
    base_fare: float
    capacity: int

    @property
    def departs(self) -> dt.date:
        return self.slices[0].departure_local.date()


class FlightProvider(Protocol):
    def search(
        self, origin: Place, destination: Place, depart: dt.date, return_date: dt.date | None, cabin: Cabin
    ) -> list[OfferQuote]: ...

    def quote(self, offer_id: str) -> OfferQuote: ...

    def fare(self, quote: OfferQuote, seats_left: int) -> float: ...


def airport_model(place: Place) -> Airport:
    return Airport(code=place.code, name=place.airport, city=place.city, country=place.country, tz=place.tz)


def _leg_minutes(km: float) -> int:
    return int(30 + km / 13.5)


class SimulatedFlights:
    """A deterministic airline network: great-circle durations, distance-based fares."""

    offers_per_day = 5

    def search(
        self, origin: Place, destination: Place, depart: dt.date, return_date: dt.date | None, cabin: Cabin
    ) -> list[OfferQuote]:
        ret = return_date.strftime("%Y%m%d") if return_date else "OW"
        stem = f"{origin.code}{destination.code}-{depart:%Y%m%d}-{ret}-{CABIN_CODES[cabin]}"
        return [
            _build(f"{stem}-{i}", origin, destination, depart, return_date, cabin, i, _today())
            for i in range(self.offers_per_day)
        ]

    def quote(self, offer_id: str) -> OfferQuote:
        match = _OFFER_ID.match(offer_id)
        if match is None:
            raise UnknownOffer(offer_id)
        o, d, dep, ret, cabin_code, index = match.groups()
        try:
            origin, destination = geography.airport(o), geography.airport(d)
            depart = dt.datetime.strptime(dep, "%Y%m%d").date()
            return_date = None if ret == "OW" else dt.datetime.strptime(ret, "%Y%m%d").date()
        except (geography.UnknownPlace, ValueError):
            raise UnknownOffer(offer_id) from None
        if origin == destination or int(index) >= self.offers_per_day:
            raise UnknownOffer(offer_id)
        if return_date is not None and return_date < depart:
            raise UnknownOffer(offer_id)
        return _build(
            offer_id,
            origin,
            destination,
            depart,
            return_date,
            CABIN_BY_CODE[cabin_code],
            int(index),
            _today(),
        )

    def fare(self, quote: OfferQuote, seats_left: int) -> float:
        """Per-passenger price: the base fare, dearer as the cabin fills up."""
        scarcity = 1 + 0.6 * (1 - seats_left / quote.capacity)
        return money(quote.base_fare * scarcity)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@lru_cache(maxsize=16384)
def _build(
    offer_id: str,
    origin: Place,
    destination: Place,
    depart: dt.date,
    return_date: dt.date | None,
    cabin: Cabin,
    index: int,
    today: dt.date,
) -> OfferQuote:
    """An offer: a pure function of the query and today's date (fares rise close to departure)."""
    rng = seeded_rng("offer", origin.code, destination.code, depart, return_date, index)
    name, code = CARRIERS[rng.randrange(len(CARRIERS))]
    carrier_factor = rng.uniform(0.85, 1.25)
    legs = [_slice(origin, destination, depart, code, rng)]
    if return_date is not None:
        legs.append(_slice(destination, origin, return_date, code, rng))
    fare = sum((40 + 0.035 * km) * (1.15 if s.stops == 0 else 1.0) for s, km in legs)
    days_ahead = (depart - today).days
    advance = 1.35 if days_ahead < 14 else 1.15 if days_ahead < 30 else 1.0
    weekend = 1.1 if depart.weekday() in (4, 6) else 1.0
    base = fare * carrier_factor * advance * weekend * CABIN_PRICE_FACTOR[cabin]
    return OfferQuote(
        offer_id=offer_id,
        carrier=name,
        carrier_code=code,
        cabin=cabin,
        slices=tuple(s for s, _ in legs),
        base_fare=money(base),
        capacity=CABIN_SEATS[cabin],
    )


def _slice(
    origin: Place, destination: Place, day: dt.date, carrier: str, rng: random.Random
) -> tuple[FlightSlice, float]:
    """One direction of travel, and the distance actually flown."""
    km = geography.great_circle_km(origin, destination)
    stops = 0 if km < 1500 else rng.choice((0, 1)) if km < 5000 else rng.choice((1, 1, 2))
    via = _connections(origin, destination, stops, rng)
    path = [origin, *via, destination]
    minutes, flown = 0, 0.0
    for i, (a, b) in enumerate(pairwise(path)):
        leg_km = geography.great_circle_km(a, b)
        flown += leg_km
        minutes += _leg_minutes(leg_km)
        if i < len(path) - 2:
            minutes += rng.choice((55, 75, 95, 120, 150))
    departure = dt.datetime.combine(
        day, dt.time(rng.randrange(6, 22), rng.choice((0, 10, 20, 30, 40, 50))), tzinfo=origin.zone
    )
    arrival = (departure + dt.timedelta(minutes=minutes)).astimezone(destination.zone)
    flight = FlightSlice(
        origin=origin.code,
        origin_tz=origin.tz,
        destination=destination.code,
        destination_tz=destination.tz,
        flight_numbers=[f"{carrier}{rng.randrange(100, 9900)}" for _ in range(len(path) - 1)],
        via=[p.code for p in via],
        stops=len(via),
        departure_local=departure,
        arrival_local=arrival,
        duration_minutes=minutes,
    )
    return flight, flown


def _connections(origin: Place, destination: Place, stops: int, rng: random.Random) -> list[Place]:
    """Hubs that add the least distance: one for a one-stop trip, two for two stops."""
    if stops == 0:
        return []
    direct = geography.great_circle_km(origin, destination)
    hubs = [geography.airport(h) for h in HUBS if h not in (origin.code, destination.code)]

    def detour(path: list[Place]) -> float:
        full = [origin, *path, destination]
        return sum(geography.great_circle_km(a, b) for a, b in pairwise(full)) - direct

    firsts = sorted(hubs, key=lambda h: detour([h]))[:3]
    first = firsts[rng.randrange(len(firsts))]
    if stops == 1:
        return [first]
    # The second connection must bring the traveller clearly closer to the destination.
    onward = geography.great_circle_km(first, destination) - 500
    seconds = [h for h in hubs if h != first and geography.great_circle_km(h, destination) < onward]
    if not seconds:
        return [first]
    return [first, min(seconds, key=lambda h: detour([first, h]))]
