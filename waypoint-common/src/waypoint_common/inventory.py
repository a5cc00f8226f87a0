"""Helpers for the simulated providers: deterministic randomness, money, per-city item ids."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from waypoint_common import geography

T = TypeVar("T")
_CITY_ITEM = re.compile(r"^([A-Z]{2})-([A-Z]{3})-(\d{2})$")


def seeded_rng(*parts: object) -> random.Random:
    """A generator seeded by the parts, identical on every replica and every run.

    (Python's `hash()` is salted per process, so it cannot be used for this.)
    """
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def money(amount: float) -> float:
    """Round to cents."""
    return round(amount + 1e-9, 2)


def city_item_id(prefix: str, city_code: str, index: int) -> str:
    """The id of a generated item: its kind, its city's airport and its place in the city's list."""
    return f"{prefix}-{city_code}-{index:02d}"


def city_item(prefix: str, item_id: str, per_city: Callable[[str], Sequence[T]]) -> T | None:
    """The item an id from `city_item_id` names, regenerated from its city; None when there is none."""
    match = _CITY_ITEM.match(item_id)
    if match is None or match.group(1) != prefix:
        return None
    try:
        items = per_city(match.group(2))
    except geography.UnknownPlace:
        return None
    index = int(match.group(3))
    return items[index] if index < len(items) else None
