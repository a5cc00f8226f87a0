"""Every Redis key Waypoint writes, in one place: how it is spelled, its hash tag, who owns it,
its type and how long it lives.

Code builds keys only through the functions here, and the tests do too (`REGISTRY` also lets a
test check that every key found in Redis after a trip is one of these). Keys that one Lua script
or transaction touches together share a hash tag (`{trip:<id>}`, `{flight:<offer>}`), so the
scripts also run on Redis Cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

RedisType = Literal["string", "hash", "set", "zset", "list", "stream", "channel"]


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One family of keys."""

    pattern: str  # how it is spelled, with <placeholders>
    owner: str  # the service that writes it
    type: RedisType
    lifetime: str
    purpose: str

    def regex(self) -> re.Pattern[str]:
        """A regular expression matching every key of the family."""
        parts = re.split(r"(<[a-z0-9_ ]+>)", self.pattern)
        body = "".join(".+?" if p.startswith("<") and p.endswith(">") else re.escape(p) for p in parts)
        return re.compile(f"^{body}$")


# -- the orchestrator: trips, their jobs and events --------------------------------------------


def trip(trip_id: str) -> str:
    return f"{{trip:{trip_id}}}"


def trip_events(trip_id: str) -> str:
    return f"{trip(trip_id)}:events"


def trip_results(trip_id: str) -> str:
    return f"{trip(trip_id)}:results"


def trip_tombstone(trip_id: str) -> str:
    return f"{trip(trip_id)}:tombstone"


def trip_budget(trip_id: str) -> str:
    return f"{trip(trip_id)}:budget"


def trip_charges(trip_id: str) -> str:
    return f"{trip(trip_id)}:charges"


JOBS = "wp:jobs"
JOBS_GROUP = "workers"
TRIP_EVENTS_CHANNEL = "wp:trip-events"


def idempotency_record(tenant_key_digest: str) -> str:
    """A client's Idempotency-Key (scoped by tenant, hashed) and the trip it made."""
    return f"wp:idempotency:{tenant_key_digest}"


def search_cache(namespace: str, tool: str, digest: str) -> str:
    return f"wp:{namespace}:{tool}:{digest}"


# -- the orchestrator: API keys and their limits ----------------------------------------------

API_KEY_INDEX = "wp:{apikeys}:index"


def api_key(digest: str) -> str:
    return f"wp:{{apikeys}}:key:{digest}"


RATE_PREFIX = "wp:rate"


def wait_slots(key_id: str) -> str:
    return f"wp:waits:{{{key_id}}}"


def spend(key_id: str, day_iso: str) -> str:
    return f"wp:spend:{{{key_id}}}:{day_iso}"


# -- the tool servers: inventory, bookings and write records ------------------------------------


def capacity(tag: str, counter: str) -> str:
    """What is left of one counter of an item (`{flight:<offer>}:cap:seats`)."""
    return f"{{{tag}}}:cap:{counter}"


def booking(tag: str, booking_id: str) -> str:
    return f"{{{tag}}}:booking:{booking_id}"


def write_record(tag: str, request_id: str) -> str:
    """What a write with this request id answered (replays get it), under its item's tag."""
    return f"{{{tag}}}:req:{request_id}"


def under(tag: str) -> str:
    """A SCAN pattern for every key of one item (`{flight:<offer>}:*`)."""
    return f"{{{tag}}}:*"


def write_claim(service: str, request_id: str) -> str:
    """A request id's claim: the write's fingerprint and its item's tag."""
    return f"wp:{service}:claim:{request_id}"


REGISTRY: tuple[KeySpec, ...] = (
    KeySpec("{trip:<id>}", "orchestrator", "string", "30 days", "the trip document (JSON)"),
    KeySpec("{trip:<id>}:events", "orchestrator", "stream", "30 days", "the trip's events (SSE ids)"),
    KeySpec("{trip:<id>}:results", "orchestrator", "hash", "30 days", "step checkpoints: step id -> result"),
    KeySpec("{trip:<id>}:tombstone", "orchestrator", "string", "1 hour", "a trip id never to be created"),
    KeySpec("{trip:<id>}:budget", "orchestrator", "hash", "30 days", "limits, use and deadline"),
    KeySpec("{trip:<id>}:charges", "orchestrator", "set", "30 days", "charge ids already counted"),
    KeySpec(JOBS, "orchestrator", "stream", "until acknowledged", "the job queue (group `workers`)"),
    KeySpec(TRIP_EVENTS_CHANNEL, "orchestrator", "channel", "none (pub/sub)", "wakes waiters of a trip"),
    KeySpec("wp:idempotency:<sha256>", "orchestrator", "hash", "24 hours", "Idempotency-Key records"),
    KeySpec("wp:search-cache:<tool>:<digest>", "orchestrator", "string", "15 minutes", "last good search"),
    KeySpec(API_KEY_INDEX, "orchestrator", "hash", "until revoked", "key id -> digest"),
    KeySpec("wp:{apikeys}:key:<sha256>", "orchestrator", "hash", "until revoked", "an API key's record"),
    KeySpec(f"{RATE_PREFIX}:<limit>", "orchestrator", "list", "1 minute", "request rate (limits library)"),
    KeySpec("wp:waits:{<key id>}", "orchestrator", "zset", "a lease", "held streams and waits"),
    KeySpec("wp:spend:{<key id>}:<day>", "orchestrator", "hash", "3 days", "booking spend per UTC day"),
    KeySpec("{<kind>:<item>}:cap:<counter>", "tool servers", "string", "none", "capacity left"),
    KeySpec("{<kind>:<item>}:booking:<id>", "tool servers", "hash", "none", "a booking and its owner"),
    KeySpec("{<kind>:<item>}:req:<request id>", "tool servers", "hash", "30 days", "a write's answer"),
    KeySpec("wp:<service>:claim:<request id>", "tool servers", "string", "30 days", "a request id's claim"),
)


def spec_of(key: str) -> KeySpec | None:
    """The registered family a key belongs to (the most specific one), or None."""
    matches = [spec for spec in REGISTRY if spec.regex().match(key)]
    return max(matches, key=lambda s: len(s.pattern)) if matches else None
