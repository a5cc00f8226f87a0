"""The Redis key registry (waypoint_common.keys) names every key the fleet writes, with its type."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx2
from redis.asyncio import Redis

from tests.support import ROOT, ServiceProcess, api_headers
from waypoint_common import keys


def test_every_family_is_spelled_as_its_builder_spells_it() -> None:
    built = {
        keys.trip("t1"): "{trip:<id>}",
        keys.trip_events("t1"): "{trip:<id>}:events",
        keys.trip_results("t1"): "{trip:<id>}:results",
        keys.trip_tombstone("t1"): "{trip:<id>}:tombstone",
        keys.trip_budget("t1"): "{trip:<id>}:budget",
        keys.trip_charges("t1"): "{trip:<id>}:charges",
        keys.idempotency_record("ab" * 32): "wp:idempotency:<sha256>",
        keys.search_cache("search-cache", "search_flights", "cd" * 16): "wp:search-cache:<tool>:<digest>",
        keys.api_key("ef" * 32): "wp:{apikeys}:key:<sha256>",
        keys.wait_slots("k1"): "wp:waits:{<key id>}",
        keys.spend("k1", "2027-01-01"): "wp:spend:{<key id>}:<day>",
        keys.capacity("flight:OFF-1", "seats"): "{<kind>:<item>}:cap:<counter>",
        keys.booking("hotel:HT-1", "HB-x-HT-1"): "{<kind>:<item>}:booking:<id>",
        keys.write_record("restaurant:RS-1", "t1:reserve_table_1"): "{<kind>:<item>}:req:<request id>",
        keys.write_claim("flights", "t1:book_flight"): "wp:<service>:claim:<request id>",
    }
    for key, pattern in built.items():
        spec = keys.spec_of(key)
        assert spec is not None, key
        assert spec.pattern == pattern, (key, spec.pattern)
    # A trip's keys and an item's keys each share one hash tag (one slot on Redis Cluster).
    assert {k.split("}")[0] for k in (keys.trip("t1"), keys.trip_events("t1"), keys.trip_budget("t1"))} == {
        "{trip:t1"
    }


async def test_every_key_in_redis_after_the_suite_is_registered_with_its_type(
    orchestrator: ServiceProcess, redis: Redis
) -> None:
    # A trip through every path that writes: an Idempotency-Key, a wait, booking with a dinner,
    # the spend cap, cancelling; the suite before this test has written the rest.
    start = dt.date.today() + dt.timedelta(days=47)
    response = httpx2.post(
        f"{orchestrator.base_url}/v1/trips",
        json={
            "origin": "SEA",
            "destination": "Denver",
            "start_date": start.isoformat(),
            "days": 3,
            "travelers": 2,
            "budget": {"amount": 6000},
            "dining": {"style": "any", "count": 1},
            "book": True,
        },
        headers=api_headers(orchestrator, {"Prefer": "wait=60", "Idempotency-Key": uuid.uuid4().hex}),
        timeout=90,
    )
    assert response.status_code == 200, response.text
    trip_id = response.json()["id"]
    cancelled = httpx2.post(
        f"{orchestrator.base_url}/v1/trips/{trip_id}/cancel",
        headers=api_headers(orchestrator, {"Prefer": "wait=60"}),
        timeout=90,
    )
    assert cancelled.json()["status"] == "cancelled"

    unregistered: list[str] = []
    wrong_type: list[tuple[str, str, str]] = []
    families: set[str] = set()
    async for key in redis.scan_iter(match="*", count=1000):
        spec = keys.spec_of(key)
        if spec is None:
            unregistered.append(key)
            continue
        families.add(spec.pattern)
        kind = str(await redis.type(key))
        if kind != spec.type:
            wrong_type.append((key, kind, spec.type))
    assert unregistered == []
    assert wrong_type == []
    # This trip alone touched these families; the registry is not just the empty answer.
    assert {
        "{trip:<id>}",
        "{trip:<id>}:events",
        "{trip:<id>}:results",
        "{trip:<id>}:budget",
        "{trip:<id>}:charges",
        keys.JOBS,
        "wp:idempotency:<sha256>",
        "wp:{apikeys}:key:<sha256>",
        "wp:spend:{<key id>}:<day>",
        "{<kind>:<item>}:cap:<counter>",
        "{<kind>:<item>}:booking:<id>",
        "{<kind>:<item>}:req:<request id>",
        "wp:<service>:claim:<request id>",
    } <= families


def test_the_readme_lists_every_family() -> None:
    readme = (ROOT / "README.md").read_text()
    for spec in keys.REGISTRY:
        assert f"| `{spec.pattern}` | {spec.owner} | {spec.type} |" in readme, spec.pattern
