"""Helpers for the simulated providers: deterministic randomness and money."""

from __future__ import annotations

import hashlib
import random


def seeded_rng(*parts: object) -> random.Random:
    """A generator seeded by the parts, identical on every replica and every run.

    (Python's `hash()` is salted per process, so it cannot be used for this.)
    """
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def money(amount: float) -> float:
    """Round to cents."""
    return round(amount + 1e-9, 2)
