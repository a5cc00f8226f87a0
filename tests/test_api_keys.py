"""API keys and per-key quotas against a real Redis, and the `waypoint-admin` command."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import uuid

import pytest
from redis.asyncio import Redis

from tests.support import BIN, RedisServer, free_port
from waypoint_common import keys
from waypoint_orchestrator.apikeys import ApiKeyStore, InvalidKeyRequest, KeyLimits
from waypoint_orchestrator.quotas import RequestRate, SpendLedger, WaitSlots


def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def test_a_key_is_stored_only_as_a_hash(redis: Redis) -> None:
    store = ApiKeyStore(redis)
    presented, key = await store.create(tenant(), ["trips:read"], name="reporting")
    secret = presented.rsplit("_", 1)[1]
    assert presented.startswith(f"wpk_{key.id}_")
    records = [name async for name in redis.scan_iter(match=keys.api_key("*"))]
    assert records  # the record
    assert await redis.exists(keys.API_KEY_INDEX)
    names = [*records, keys.API_KEY_INDEX]
    for name in names:
        kind = await redis.type(name)
        values = await redis.hgetall(name) if kind == "hash" else {}
        dumped = json.dumps(values) + str(name)
        assert secret not in dumped
        assert presented not in dumped


async def test_authenticate_accepts_the_key_and_nothing_near_it(redis: Redis) -> None:
    store = ApiKeyStore(redis)
    presented, key = await store.create(tenant(), ["trips:read", "trips:write"])
    found = await store.authenticate(presented)
    assert found is not None
    assert found.id == key.id
    assert found.tenant == key.tenant
    assert found.allows("trips:write")
    assert not found.allows("trips:book")
    last = presented[-1]
    near = [
        presented[:-1] + ("A" if last != "A" else "B"),
        presented + "x",
        presented.upper(),
        "",
        "Bearer " + presented,
        presented.replace(key.id, "0" * 12),
    ]
    for candidate in near:
        assert await store.authenticate(candidate) is None, candidate


async def test_another_keys_id_inside_a_key_is_refused(redis: Redis) -> None:
    """A record is found by the whole key's hash; the id inside must also be that record's."""
    store = ApiKeyStore(redis)
    first, _ = await store.create(tenant(), ["trips:read"])
    _, second = await store.create(tenant(), ["trips:read"])
    forged = first.replace(first.split("_")[1], second.id)
    assert await store.authenticate(forged) is None


async def test_revoke_takes_effect_at_once_and_last_use_is_recorded(redis: Redis) -> None:
    store = ApiKeyStore(redis)
    owner = tenant()
    presented, key = await store.create(owner, ["trips:read"])
    assert await store.authenticate(presented) is not None
    (listed,) = await store.list_keys(owner)
    assert listed.id == key.id
    assert listed.last_used_at is not None
    assert await store.revoke(key.id)
    assert await store.authenticate(presented) is None
    assert await store.list_keys(owner) == []
    assert not await store.revoke(key.id)


async def test_a_key_is_made_only_as_asked(redis: Redis) -> None:
    store = ApiKeyStore(redis)
    for bad_tenant in ("", "Upper", "has space", "x" * 64, "-lead"):
        with pytest.raises(InvalidKeyRequest, match="tenant"):
            await store.create(bad_tenant, ["trips:read"])
    for scopes in ([], ["trips:admin"], ["trips:read", "root"]):
        with pytest.raises(InvalidKeyRequest, match="scopes"):
            await store.create(tenant(), scopes)
    with pytest.raises(InvalidKeyRequest, match="requests_per_minute"):
        await store.create(tenant(), ["trips:read"], limits=KeyLimits(requests_per_minute=0))
    _, key = await store.create(
        tenant(),
        ["trips:book"],
        limits=KeyLimits(requests_per_minute=5, concurrent_waits=0, daily_spend_usd=0),
    )
    assert key.limits == KeyLimits(requests_per_minute=5, concurrent_waits=0, daily_spend_usd=0.0)


async def test_request_rate_is_shared_by_every_limiter_on_the_redis(redis: Redis) -> None:
    """Two limiters (as two orchestrator replicas have) count one key's requests together."""
    first, second = RequestRate(redis), RequestRate(redis)
    key_id = uuid.uuid4().hex[:12]
    decisions = [await (first if i % 2 else second).hit(key_id, 5) for i in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[-1]
    assert 0 < refused.reset_seconds <= 60
    headers = refused.headers()
    assert headers["RateLimit-Policy"] == '"default";q=5;w=60'
    assert headers["RateLimit"].startswith('"default";r=0;t=')
    assert (await first.hit(uuid.uuid4().hex[:12], 5)).allowed  # another key is not affected


async def test_concurrent_hits_never_let_more_than_the_limit_through(redis: Redis) -> None:
    rate = RequestRate(redis)
    key_id = uuid.uuid4().hex[:12]
    decisions = await asyncio.gather(*(rate.hit(key_id, 10) for _ in range(40)))
    assert sum(d.allowed for d in decisions) == 10


async def test_wait_slots_cap_a_key_and_come_back(redis: Redis) -> None:
    slots = WaitSlots(redis)
    key_id = uuid.uuid4().hex[:12]
    taken = await asyncio.gather(*(slots.take(key_id, 3, 30) for _ in range(10)))
    held = [s for s in taken if s is not None]
    assert len(held) == 3
    assert await slots.held(key_id) == 3
    assert await slots.take(uuid.uuid4().hex[:12], 3, 30) is not None  # per key
    await slots.release(key_id, held[0])
    assert await slots.take(key_id, 3, 30) is not None
    assert await slots.take(key_id, 0, 30) is None  # a key allowed none gets none


async def test_a_dead_holders_slot_expires_with_its_lease(redis: Redis) -> None:
    slots = WaitSlots(redis)
    key_id = uuid.uuid4().hex[:12]
    short = await slots.take(key_id, 1, 0.2)
    assert short is not None
    assert await slots.take(key_id, 1, 30) is None
    renewed = await slots.renew(key_id, short, 0.2)
    assert renewed
    # The holder died: nobody renews, and the lease runs out.
    for _ in range(100):
        if await slots.held(key_id) == 0:
            break
        await asyncio.sleep(0.05)
    assert await slots.held(key_id) == 0
    assert await slots.take(key_id, 1, 30) is not None
    assert not await slots.renew(key_id, short, 30)  # an expired slot is not revived


async def test_spend_is_reserved_once_per_trip_and_never_past_the_cap(redis: Redis) -> None:
    ledger = SpendLedger(redis)
    key_id = uuid.uuid4().hex[:12]
    day = dt.datetime.now(dt.UTC).date()
    decisions = await asyncio.gather(
        *(ledger.reserve(key_id, day, f"trip-{i}", 100.0, 1000.0) for i in range(25))
    )
    assert sum(d.allowed for d in decisions) == 10
    assert await ledger.spent(key_id, day) == pytest.approx(1000.0)
    allowed_trip = next(f"trip-{i}" for i, d in enumerate(decisions) if d.allowed)
    again = await ledger.reserve(key_id, day, allowed_trip, 100.0, 1000.0)
    assert again.allowed
    assert await ledger.spent(key_id, day) == pytest.approx(1000.0)
    assert await ledger.refund(key_id, day, allowed_trip)
    assert not await ledger.refund(key_id, day, allowed_trip)
    assert await ledger.spent(key_id, day) == pytest.approx(900.0)
    other_day = day + dt.timedelta(days=1)
    assert (await ledger.reserve(key_id, other_day, "trip-x", 1000.0, 1000.0)).allowed


def admin(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "waypoint-admin"), *args],
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_waypoint_admin_creates_lists_and_revokes_keys(redis_server: RedisServer, redis: Redis) -> None:
    owner = tenant()
    made = admin(
        redis_server.url,
        "keys",
        "create",
        "--tenant",
        owner,
        "--scope",
        "trips:read",
        "--requests-per-minute",
        "7",
    )
    assert made.returncode == 0, made.stderr
    presented = made.stdout.strip()
    assert ApiKeyStore.well_formed(presented)
    stored = json.loads(made.stderr.strip().splitlines()[-1])
    assert stored["tenant"] == owner
    assert stored["scopes"] == ["trips:read"]
    assert stored["limits"] == {"requests_per_minute": 7}
    assert (await ApiKeyStore(redis).authenticate(presented)) is not None

    listed = admin(redis_server.url, "keys", "list", "--tenant", owner, "--json")
    assert listed.returncode == 0
    (entry,) = json.loads(listed.stdout)
    assert entry["id"] == stored["id"]
    assert presented.rsplit("_", 1)[1] not in listed.stdout

    assert admin(redis_server.url, "keys", "revoke", stored["id"]).returncode == 0
    assert (await ApiKeyStore(redis).authenticate(presented)) is None
    gone = admin(redis_server.url, "keys", "revoke", stored["id"])
    assert gone.returncode == 1
    assert "no key" in gone.stderr


def test_waypoint_admin_refuses_bad_requests_and_an_unreachable_redis(redis_server: RedisServer) -> None:
    bad = admin(redis_server.url, "keys", "create", "--tenant", "Not A Tenant")
    assert bad.returncode == 2
    assert "tenant" in bad.stderr
    assert bad.stdout == ""
    scope = admin(redis_server.url, "keys", "create", "--tenant", tenant(), "--scope", "everything")
    assert scope.returncode == 2
    assert "scopes" in scope.stderr
    nowhere = admin(f"redis://127.0.0.1:{free_port()}/0", "keys", "list")
    assert nowhere.returncode == 3
    assert "unreachable" in nowhere.stderr
