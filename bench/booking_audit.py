"""The audit after a chaos run: the tool servers' Redis against the bookings the trips report.

The three writing tool servers keep, under each inventory item's hash tag (`{flight:<offer id>}`,
`{hotel:<hotel id>}`, `{restaurant:<restaurant id>}`; see `waypoint_common.idempotency`):

- `{<kind>:<item>}:booking:<booking id>`: a hash of the booking's JSON (`data`), its `status`
  (`confirmed` or `cancelled`), the `request_id` that made it and its `owner`. Booking ids are
  random, made on the first write and returned by every replay of it, so a write committed
  twice leaves two records with one request id;
- `{<kind>:<item>}:cap:<counter>`: the capacity left on one counter of the item, absent until
  its first booking. What a booking takes, and from which counters:

  | item | counter | a booking takes |
  |---|---|---|
  | flight offer | `seats` | `passengers` |
  | hotel | `night:<date>`, each night from check-in to the night before check-out | `hotel.rooms` |
  | restaurant | `slot:<date>:<time>` | `tables` |

  A cancel gives it back. The initial capacity is the simulated providers' (the servers' own):
  the cabin's seats, the hotel's rooms, the restaurant's tables.

`audit_bookings` checks that:

1. no request id made more than one booking (a double commit);
2. every booking in Redis is reported by exactly one trip, the one whose request made it, as the
   same kind and with the same status; every booking a trip reports is in Redis;
3. for every counter of every item, the capacity taken (initial capacity minus what is left)
   equals the sum of what the item's confirmed bookings took from it.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from waypoint_flights.provider import SimulatedFlights
from waypoint_hotels.provider import SimulatedHotels, nights
from waypoint_restaurants.provider import SimulatedRestaurants

BOOKING_MARK = ":booking:"
CAPACITY_MARK = ":cap:"


@dataclass(frozen=True, slots=True)
class Inventory:
    """One kind of bookable item: how trips and Redis name it, its capacity, what a booking takes."""

    kind: str  # as trips report it: flight, hotel, dinner
    tag: str  # the kind in the item's hash tag: flight, hotel, restaurant
    capacity: Callable[[str], int]  # item id -> initial capacity of each of its counters
    takes: Callable[[Mapping[str, Any]], dict[str, int]]  # booking data -> counter -> amount


def _flight_takes(data: Mapping[str, Any]) -> dict[str, int]:
    return {"seats": int(data["passengers"])}


def _hotel_takes(data: Mapping[str, Any]) -> dict[str, int]:
    stay = nights(dt.date.fromisoformat(data["check_in"]), dt.date.fromisoformat(data["check_out"]))
    return {f"night:{night.isoformat()}": int(data["hotel"]["rooms"]) for night in stay}


def _restaurant_takes(data: Mapping[str, Any]) -> dict[str, int]:
    return {f"slot:{data['date']}:{data['time']}": int(data["tables"])}


_flights, _hotels, _restaurants = SimulatedFlights(), SimulatedHotels(), SimulatedRestaurants()
INVENTORIES: tuple[Inventory, ...] = (
    Inventory("flight", "flight", lambda item: _flights.quote(item).capacity, _flight_takes),
    Inventory("hotel", "hotel", lambda item: _hotels.hotel(item).rooms, _hotel_takes),
    Inventory("dinner", "restaurant", lambda item: _restaurants.restaurant(item).tables, _restaurant_takes),
)


@dataclass(frozen=True, slots=True)
class StoredBooking:
    """A booking record as the tool servers' Redis holds it."""

    inventory: Inventory
    key: str
    item: str
    booking_id: str
    request_id: str
    status: str
    data: Mapping[str, Any]


@dataclass
class BookingAudit:
    """What the audit found; `clean` when every list is empty."""

    bookings_in_redis: int = 0
    bookings_reported: int = 0
    counters_checked: int = 0
    # request id -> the booking ids it made, where it made more than one
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    orphans: list[str] = field(default_factory=list)  # in Redis, reported by no trip
    missing: list[str] = field(default_factory=list)  # reported, not in Redis
    reported_twice: list[str] = field(default_factory=list)  # by two trips, or twice by one
    misattributed: list[str] = field(default_factory=list)  # reported by another trip, or as another kind
    mismatched: list[str] = field(default_factory=list)  # reported with another status
    capacity: list[str] = field(default_factory=list)  # counters whose capacity taken is not the bookings'

    @property
    def clean(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """One line per kind of problem found, naming up to 10 of them."""
        found = {
            "request ids with more than one booking": [
                f"{request_id} ({', '.join(ids)})" for request_id, ids in self.duplicates.items()
            ],
            "orphans (in Redis, reported by no trip)": self.orphans,
            "missing (reported, not in Redis)": self.missing,
            "reported more than once": self.reported_twice,
            "reported by a trip whose request did not make them": self.misattributed,
            "status mismatches": self.mismatched,
            "capacity counters off": self.capacity,
        }
        return [f"{label}: {len(items)}: {'; '.join(items[:10])}" for label, items in found.items() if items]


def stored_bookings(client: redis.Redis) -> list[StoredBooking]:
    """Every booking record of the three writing tool servers."""
    found: list[StoredBooking] = []
    for inventory in INVENTORIES:
        keys = sorted(
            str(k) for k in client.scan_iter(match=f"{{{inventory.tag}:*}}{BOOKING_MARK}*", count=1000)
        )
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        for key, fields in zip(keys, pipe.execute(), strict=True):
            tag, booking_id = key.split(BOOKING_MARK, 1)
            found.append(
                StoredBooking(
                    inventory=inventory,
                    key=key,
                    item=tag.removeprefix(f"{{{inventory.tag}:").removesuffix("}"),
                    booking_id=booking_id,
                    request_id=str(fields.get("request_id", "")),
                    status=str(fields.get("status", "")),
                    data=json.loads(fields.get("data") or "{}"),
                )
            )
    return found


def capacity_left(client: redis.Redis) -> dict[str, int]:
    """Every capacity counter of the three writing tool servers: key -> capacity left."""
    counters: dict[str, int] = {}
    for inventory in INVENTORIES:
        keys = sorted(
            str(k) for k in client.scan_iter(match=f"{{{inventory.tag}:*}}{CAPACITY_MARK}*", count=1000)
        )
        values = client.mget(keys) if keys else []
        counters.update(
            {key: int(value) for key, value in zip(keys, values, strict=True) if value is not None}
        )
    return counters


def _capacity_problems(bookings: list[StoredBooking], left: Mapping[str, int]) -> tuple[int, list[str]]:
    held: collections.Counter[str] = collections.Counter()
    unreadable: list[str] = []
    item_of: dict[str, tuple[Inventory, str]] = {}
    for booking in bookings:
        prefix = f"{{{booking.inventory.tag}:{booking.item}}}{CAPACITY_MARK}"
        try:
            takes = booking.inventory.takes(booking.data)
        except (KeyError, TypeError, ValueError) as exc:
            unreadable.append(f"{booking.key}: what it takes is unreadable ({type(exc).__name__}: {exc})")
            continue
        for counter, amount in takes.items():
            item_of[prefix + counter] = (booking.inventory, booking.item)
            if booking.status == "confirmed":
                held[prefix + counter] += amount
    for key in left:
        for inventory in INVENTORIES:
            head = f"{{{inventory.tag}:"
            if key.startswith(head):
                item_of.setdefault(key, (inventory, key[len(head) : key.index("}" + CAPACITY_MARK)]))
    problems = unreadable
    for key in sorted(item_of):
        inventory, item = item_of[key]
        try:
            initial = inventory.capacity(item)
        except ValueError as exc:  # UnknownOffer, UnknownHotel, UnknownRestaurant
            problems.append(f"{key}: the {inventory.tag} {item!r} is unknown ({type(exc).__name__})")
            continue
        taken = initial - left.get(key, initial)
        if taken != held[key]:
            problems.append(f"{key}: {taken} taken of {initial}, confirmed bookings hold {held[key]}")
    return len(item_of), problems


def audit_bookings(client: redis.Redis, trips: Iterable[Mapping[str, Any]]) -> BookingAudit:
    """Compare the tool servers' Redis (`client`, decoding responses) with what `trips` report.

    `trips` are trip documents as `GET /v1/trips/{id}` returns them: each with its `id` and its
    `bookings` (`kind`, `booking_id`, `request_id`, `status`).
    """
    bookings = stored_bookings(client)
    audit = BookingAudit(bookings_in_redis=len(bookings))

    by_request: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for booking in bookings:
        by_request[(booking.inventory.tag, booking.request_id)].append(booking.booking_id)
    audit.duplicates = {request_id: ids for (_, request_id), ids in by_request.items() if len(ids) > 1}

    reports: dict[str, list[tuple[str, Mapping[str, Any]]]] = collections.defaultdict(list)
    for trip in trips:
        for reported in trip.get("bookings") or []:
            reports[str(reported["booking_id"])].append((str(trip["id"]), reported))
    audit.bookings_reported = sum(len(r) for r in reports.values())
    audit.reported_twice = sorted(b for b, r in reports.items() if len(r) > 1)

    stored = {b.booking_id: b for b in bookings}
    audit.orphans = sorted(b for b in stored if b not in reports)
    audit.missing = sorted(b for b in reports if b not in stored)
    for booking_id, found in sorted(reports.items()):
        record = stored.get(booking_id)
        if record is None:
            continue
        for trip_id, reported in found:
            request_id = str(reported.get("request_id") or "")
            made_by_trip = record.request_id.startswith(f"{trip_id}:") and (
                not request_id or request_id == record.request_id
            )
            if not made_by_trip or reported.get("kind") != record.inventory.kind:
                audit.misattributed.append(
                    f"{booking_id} (made by request {record.request_id}, reported by trip {trip_id} "
                    f"as a {reported.get('kind')})"
                )
            if reported.get("status") != record.status:
                audit.mismatched.append(
                    f"{booking_id} ({record.status} in Redis, {reported.get('status')} in trip {trip_id})"
                )
    audit.counters_checked, audit.capacity = _capacity_problems(bookings, capacity_left(client))
    return audit
