"""Redis Cluster: every key a Lua script or transaction touches shares one slot, the stores work the
same on one redis-server and on a real three-master cluster, the services take a
`redis+cluster://` URL, and a trip is planned and booked through the API on the cluster.

The idempotent writes (`test_idempotent_writes.py`), the budget (`test_resilience.py`), the job
queue (`test_workers.py`) and the trip store (`test_trip_states.py`) have their own tests on both
backends too."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError

from tests.conftest import BACKENDS
from tests.helpers import month_ahead, new_trip
from tests.support import (
    Harness,
    RedisClusterServers,
    ServiceProcess,
    api_headers,
    bookings_of,
    free_port,
    make_key,
    read_sse,
    redis_client,
)
from waypoint_common import keys
from waypoint_common.connections import ClusterClient, RedisClient, cluster_url, connect_redis, redis_ready
from waypoint_common.settings import ServiceSettings
from waypoint_orchestrator.apikeys import ApiKeyStore
from waypoint_orchestrator.budgets import BudgetLedger
from waypoint_orchestrator.events import EventHub
from waypoint_orchestrator.idempotency_keys import IdempotencyKeys, StoredResponse
from waypoint_orchestrator.jobs import GROUP, STREAM, JobQueue
from waypoint_orchestrator.models import Limits, Trip
from waypoint_orchestrator.quotas import SpendLedger, WaitSlots
from waypoint_orchestrator.store import TripStore

ON_BOTH = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
MONTH, _ = month_ahead(60)


def slots(*names: str) -> set[int]:
    return {key_slot(name.encode()) for name in names}


# -- the keys: one slot per script and per transaction ------------------------------------------


def test_every_script_and_transaction_keeps_its_keys_in_one_slot() -> None:
    """The key sets each Lua script and each MULTI touches, built by the code's own functions:
    one slot each (a cluster would refuse them with CROSSSLOT otherwise)."""
    trip = uuid.uuid4().hex
    together = {
        "TripStore.create (script)": [
            TripStore.key(trip),
            TripStore.events_key(trip),
            TripStore.tombstone_key(trip),
        ],
        "TripStore.bury (script)": [TripStore.key(trip), TripStore.tombstone_key(trip)],
        "TripStore.update / emit (script)": [
            TripStore.key(trip),
            TripStore.events_key(trip),
            TripStore.results_key(trip),
        ],
        "BudgetLedger charge / settle (scripts), open (MULTI)": [
            keys.trip_budget(trip),
            keys.trip_charges(trip),
        ],
        "ApiKeyStore create / revoke (MULTI)": [keys.api_key("ab" * 32), keys.API_KEY_INDEX],
        "IdempotencyKeys (scripts, MULTI)": [keys.idempotency_record("cd" * 32)],
        "WaitSlots (scripts)": [keys.wait_slots("0123456789ab")],
        "SpendLedger (scripts)": [keys.spend("0123456789ab", "2030-01-01")],
        "JobQueue.ack (MULTI)": [keys.JOBS],
    }
    for tag in ("flight:FL-abc", "hotel:HT-1", "restaurant:RS-9"):
        together[f"IdempotentWriteStore commit / release on {tag} (scripts)"] = [
            keys.write_record(tag, f"{trip}:book"),
            keys.booking(tag, "B-1"),
            keys.capacity(tag, "night:2030-01-01"),
            keys.capacity(tag, "night:2030-01-02"),
            keys.capacity(tag, "seats"),
        ]
    for what, names in together.items():
        assert len(slots(*names)) == 1, f"{what}: {names} span slots {sorted(slots(*names))}"
    # And they do spread: different trips land in different slots (a cluster shares the work).
    assert len(slots(*(TripStore.key(uuid.uuid4().hex) for _ in range(50)))) > 40


# -- the URL ---------------------------------------------------------------------------------------


def test_the_services_take_a_cluster_url_and_refuse_a_broken_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis+cluster://user:secret@10.0.0.1:7000,[::1]:7001,redis-2")
    settings = ServiceSettings()
    parsed = cluster_url(settings.redis_url)
    assert parsed is not None
    assert parsed.nodes == (("10.0.0.1", 7000), ("::1", 7001), ("redis-2", 6379))
    assert parsed.node_urls() == [
        "redis://user:secret@10.0.0.1:7000/0",
        "redis://user:secret@[::1]:7001/0",
        "redis://user:secret@redis-2:6379/0",
    ]
    assert parsed.connection_options() == {"username": "user", "password": "secret"}
    tls = cluster_url("rediss+cluster://r1:7000?ssl_cert_reqs=none")
    assert tls is not None
    assert tls.connection_options() == {"ssl": True, "ssl_cert_reqs": "none"}
    # A single Redis stays what it was.
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6380")
    assert ServiceSettings().redis_url == "redis://127.0.0.1:6380/0"
    assert cluster_url(ServiceSettings().redis_url) is None
    for broken, reason in (
        ("redis+cluster://", "at least one node"),
        ("redis+cluster://r1:70000", "invalid port"),
        ("redis+cluster://r1:7000/2", "only database 0"),
        ("redis+cluster://:7000", "no host"),
    ):
        monkeypatch.setenv("REDIS_URL", broken)
        with pytest.raises(ValueError, match=reason):
            ServiceSettings()


# -- the cluster client ----------------------------------------------------------------------------


async def test_a_cluster_nobody_answers_is_a_connection_error_and_not_ready() -> None:
    """As with a single Redis that is down: a ConnectionError (the API's 503, a worker's pause),
    not redis-py's RedisClusterException."""
    client = connect_redis(f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}")
    try:
        assert isinstance(client, ClusterClient)
        assert await redis_ready(client) is False
        with pytest.raises(RedisConnectionError, match="no Redis Cluster node answers"):
            await client.get("anything")
        with pytest.raises(RedisConnectionError):
            await TripStore(client).emit("t", "step.started", {})
    finally:
        await client.aclose()


async def blocked_reads(cluster: RedisClusterServers) -> int:
    """Clients blocked in XREAD, on every node of the cluster."""
    blocked = 0
    for node in cluster.nodes:
        client = Redis.from_url(node.url, decode_responses=True)
        try:
            listed = await client.client_list()
        finally:
            await client.aclose()
        blocked += sum(1 for c in listed if c.get("cmd") == "xread" and "b" in c.get("flags", ""))
    return blocked


async def read_one(client: RedisClient, stream: str) -> str:
    """Block until the stream has a new entry; the stream's name."""
    reply: Any = await client.xread({stream: "$"}, block=0)
    return str(reply[0][0])


async def get(client: RedisClient, key: str) -> str | None:
    value = await client.get(key)
    return None if value is None else str(value)


async def test_a_command_waits_for_its_nodes_only_connection_and_without_a_wait_is_refused(
    redis_cluster: RedisClusterServers,
) -> None:
    """The cluster client's pool is bounded per node and waits like the single-node one: with one
    connection per node held by a blocking read, a command on that node waits for it (redis-py
    alone fails it at once, as it does here with no time to wait)."""
    parsed = cluster_url(redis_cluster.url)
    assert parsed is not None
    stream = f"{{wait-test}}:{uuid.uuid4().hex}"
    other = connect_redis(redis_cluster.url)
    for pool_timeout, waits in ((30.0, True), (0.0, False)):
        client = ClusterClient(parsed, max_connections=1, pool_timeout=pool_timeout)
        try:
            await client.ping()
            before = await blocked_reads(redis_cluster)
            reader = asyncio.create_task(read_one(client, stream))
            for _ in range(200):
                if await blocked_reads(redis_cluster) > before:
                    break
                await asyncio.sleep(0.05)
            assert await blocked_reads(redis_cluster) > before, "the read never blocked"
            if waits:
                getter = asyncio.create_task(get(client, f"{{wait-test}}:{uuid.uuid4().hex}"))
                await asyncio.sleep(0.2)
                assert not getter.done(), "the command did not wait for the connection"
                await other.xadd(stream, {"n": "1"})  # the read returns, its connection comes free
                assert await getter is None
            else:
                with pytest.raises(MaxConnectionsError):
                    await client.get(f"{{wait-test}}:{uuid.uuid4().hex}")
                await other.xadd(stream, {"n": "1"})
            assert await reader == stream
        finally:
            await client.aclose()
    await other.aclose()


async def test_a_transaction_queued_while_the_client_must_find_the_cluster_again(
    redis_cluster: RedisClusterServers,
) -> None:
    """redis-py 8.1 queues a transaction's commands on a helper thread with a loop of its own and
    would discover the cluster there (connections tied to a loop that is gone); `ClusterClient`
    leaves discovery to its own loop: the transaction works, and so does everything after it."""
    client = connect_redis(redis_cluster.url)
    trip = new_trip()
    try:
        store = TripStore(client)
        assert await store.create(trip, ("trip.accepted", {})) == "created"
        await client.aclose()  # what redis-py does after CLUSTERDOWN: discovery is due again
        pipe = client.pipeline(transaction=True)  # no `async with`: nothing discovers it first
        pipe.hset(TripStore.results_key(trip.id), "step", "1")
        pipe.expire(TripStore.results_key(trip.id), 60)
        assert await pipe.execute() == [1, True]
        assert await store.results(trip.id) == {"step": 1}
        assert [e.type for e in await store.events(trip.id)] == ["trip.accepted"]
    finally:
        await client.aclose()  # closes cleanly: no connection of another loop to close


# -- the stores, on one redis-server and on the cluster ---------------------------------------------


@ON_BOTH
async def test_concurrent_updates_of_a_trip_each_count_once_and_wake_its_waiters(
    redis: RedisClient, redis_url: str
) -> None:
    """Twenty writers change one trip at once (WATCH/MULTI, retried on conflict): every change is
    stored once with its event, and the process's subscriber wakes the trip's waiter."""
    store = TripStore(redis)
    hub = EventHub(redis_url, recheck_seconds=60)
    await hub.start()
    try:
        await asyncio.wait_for(hub.connected.wait(), 10)
        trip = new_trip()
        async with hub.subscribe(trip.id) as waiter:
            assert await store.create(trip, ("trip.accepted", {})) == "created"
            assert await waiter.wait(10), "the creation woke nobody"
            waiter.clear()

            def change(n: int) -> Any:
                def apply(t: Trip) -> list[tuple[str, dict[str, Any]]]:
                    t.warnings.append(f"change {n}")
                    return [("test.changed", {"n": n})]

                return apply

            await asyncio.gather(*(store.update(trip.id, change(n)) for n in range(20)))
            assert await waiter.wait(10), "the updates woke nobody"
        stored = await store.get(trip.id)
        assert sorted(stored.warnings) == sorted(f"change {n}" for n in range(20))
        events = await store.events(trip.id)
        assert [e.type for e in events] == ["trip.accepted"] + ["test.changed"] * 20
        assert sorted(e.data["n"] for e in events[1:]) == list(range(20))
        # The order of the events is the order of the stored changes.
        assert [e.data["n"] for e in events[1:]] == [int(w.split()[1]) for w in stored.warnings]
        assert await store.create(trip, ("trip.accepted", {})) == "exists"
        other = new_trip()
        assert await store.bury(other.id) == "tombstoned"
        assert await store.create(other, ("trip.accepted", {})) == "refused"
    finally:
        await hub.stop()


@ON_BOTH
async def test_an_event_on_any_node_wakes_a_waiter_subscribed_on_one(
    redis: RedisClient, redis_url: str
) -> None:
    """Trips whose keys live on each of the masters (on a single Redis: on the one): each one's
    event wakes its waiter, whichever node the hub subscribed on."""
    store = TripStore(redis)
    assert await redis.ping()  # a cluster client knows its nodes once it has talked to one
    trips: dict[str, Trip] = {}
    nodes = {n.name for n in redis.get_primaries()} if isinstance(redis, ClusterClient) else {"one"}
    while len(trips) < len(nodes):
        trip = new_trip()
        found = redis.get_node_from_key(TripStore.key(trip.id)) if isinstance(redis, ClusterClient) else None
        node = found.name if found is not None else "one"
        trips.setdefault(node, trip)
    hub = EventHub(redis_url, recheck_seconds=60)
    await hub.start()
    try:
        await asyncio.wait_for(hub.connected.wait(), 10)
        for trip in trips.values():
            async with hub.subscribe(trip.id) as waiter:
                waiter.clear()
                assert await store.create(trip, ("trip.accepted", {})) == "created"
                assert await waiter.wait(10), f"nothing woke the waiter of a trip on {trip.id}"
                waiter.clear()
                await store.emit(trip.id, "step.started", {"step": "flights"})
                assert await waiter.wait(10)
    finally:
        await hub.stop()
    assert len(trips) == (3 if isinstance(redis, ClusterClient) else 1)


@ON_BOTH
async def test_idempotency_keys_claim_replay_and_refuse(redis: RedisClient) -> None:
    records = IdempotencyKeys(redis)
    key = f"suite:{uuid.uuid4().hex}"
    first = await records.claim(key, "body-1", "trip-1", "request-a")
    assert (first.outcome, first.trip_id, first.resumed) == ("claimed", "trip-1", False)
    assert (await records.claim(key, "body-1", "trip-2", "request-b")).outcome == "in_flight"
    assert (await records.claim(key, "body-2", "trip-3", "request-c")).outcome == "mismatch"
    assert await records.rebind(key, "request-a", "trip-1", "trip-4") is True
    await records.complete(key, StoredResponse(202, {"Location": "/v1/trips/trip-4"}, {"id": "trip-4"}))
    replay = await records.claim(key, "body-1", "trip-5", "request-d")
    assert replay.outcome == "replay"
    assert replay.response == StoredResponse(202, {"Location": "/v1/trips/trip-4"}, {"id": "trip-4"})


@ON_BOTH
async def test_api_keys_are_made_found_listed_and_revoked(redis: RedisClient) -> None:
    store = ApiKeyStore(redis)
    tenant = f"cluster-{uuid.uuid4().hex[:8]}"
    presented, made = await store.create(tenant, ["trips:read", "trips:write"], name="cluster test")
    found = await store.authenticate(presented)
    assert found is not None
    assert (found.id, found.tenant, found.scopes) == (
        made.id,
        tenant,
        frozenset({"trips:read", "trips:write"}),
    )
    assert [k.id for k in await store.list_keys(tenant)] == [made.id]
    assert await store.revoke(made.id) is True
    assert await store.authenticate(presented) is None
    assert await store.list_keys(tenant) == []
    assert await store.revoke(made.id) is False


@ON_BOTH
async def test_wait_slots_and_the_spend_cap_hold_their_limits(redis: RedisClient) -> None:
    key_id = uuid.uuid4().hex[:12]
    slots_ = WaitSlots(redis)
    first = await slots_.take(key_id, 2, 30)
    second = await slots_.take(key_id, 2, 30)
    assert first is not None
    assert second is not None
    assert await slots_.take(key_id, 2, 30) is None
    assert await slots_.renew(key_id, first, 30) is True
    await slots_.release(key_id, first)
    assert await slots_.held(key_id) == 1
    assert await slots_.take(key_id, 2, 30) is not None

    spend = SpendLedger(redis)
    day = dt.date(2030, 1, 1)
    assert (await spend.reserve(key_id, day, "trip-1", 600, 1000)).allowed
    assert (await spend.reserve(key_id, day, "trip-1", 600, 1000)).allowed  # the same trip again
    refused = await spend.reserve(key_id, day, "trip-2", 500, 1000)
    assert (refused.allowed, refused.spent_usd) == (False, 600)
    assert await spend.refund(key_id, day, "trip-1") is True
    assert await spend.refund(key_id, day, "trip-1") is False
    assert (await spend.reserve(key_id, day, "trip-2", 500, 1000)).allowed
    assert await spend.spent(key_id, day) == 500


@ON_BOTH
async def test_a_charge_and_its_settlement_count_once(redis: RedisClient) -> None:
    ledger = BudgetLedger(redis)
    trip_id = uuid.uuid4().hex
    await ledger.open(trip_id, Limits(max_steps=5, max_tool_calls=5, max_tokens=1000, max_wall_seconds=60))
    await ledger.charge(trip_id, "tokens", 400, "model:1")
    await ledger.charge(trip_id, "tokens", 400, "model:1")
    await ledger.settle_tokens(trip_id, "model:1:settle", reserved=400, used=150, cost_usd=0.25)
    await ledger.settle_tokens(trip_id, "model:1:settle", reserved=400, used=150, cost_usd=0.25)
    usage = await ledger.usage(trip_id)
    assert usage is not None
    assert (usage.used.tokens, usage.used.cost_usd) == (150, 0.25)


@ON_BOTH
async def test_a_trip_keeps_the_deadline_its_budgets_were_first_opened_with(redis: RedisClient) -> None:
    limits = Limits(max_steps=5, max_tool_calls=5, max_tokens=1000, max_wall_seconds=60)
    first, resumed = BudgetLedger(redis), BudgetLedger(redis)  # two processes' ledgers
    trip_id = uuid.uuid4().hex
    assert await first.deadline(trip_id) is None  # not opened yet
    await first.open(trip_id, limits)
    opened = await first.deadline(trip_id)
    assert opened is not None
    await resumed.open(trip_id, limits.model_copy(update={"max_wall_seconds": 600}))
    assert await resumed.deadline(trip_id) == opened
    usage = await BudgetLedger(redis).usage(trip_id)
    assert usage is not None
    assert usage.deadline.timestamp() == pytest.approx(opened)


@pytest.fixture
def own_redis_url(backend: str, harness: Harness) -> Iterator[str]:
    """A Redis (or Redis Cluster) of the test's own: no orchestrator reads its job queue."""
    if backend == "cluster":
        cluster = harness.redis_cluster()
        try:
            yield cluster.url
        finally:
            cluster.stop()
    else:
        server = harness.redis()
        try:
            yield server.url
        finally:
            server.stop()


@ON_BOTH
async def test_the_job_queue_gives_each_job_once_and_a_dead_workers_job_to_another(
    own_redis_url: str,
) -> None:
    client = connect_redis(own_redis_url)
    try:
        queue = JobQueue(client, lease_ms=300)
        await queue.ensure_group()
        await queue.ensure_group()  # already there: fine
        queued = [await queue.enqueue(f"trip-{n}", "plan") for n in range(12)]
        taken: dict[str, list[str]] = {}

        async def worker(name: str) -> None:
            while (job := await queue.next(name, block_ms=200)) is not None:
                taken.setdefault(job.id, []).append(name)
                assert job.trip_id == f"trip-{queued.index(job.id)}"
                await queue.ack(job)

        await asyncio.gather(worker("a"), worker("b"), worker("c"))
        assert sorted(taken) == sorted(queued)
        assert all(len(names) == 1 for names in taken.values()), taken

        # A job whose worker died (taken, never acknowledged) goes to another once its lease is out.
        lost = await queue.enqueue("trip-lost", "book", requested_by="00-trace-span-01")
        job = await queue.next("dies", block_ms=200)
        assert job is not None
        assert job.id == lost
        again = None
        for _ in range(100):
            again = await queue.next("survivor", block_ms=100)
            if again is not None:
                break
        assert again is not None
        assert (again.id, again.trip_id, again.action, again.deliveries) == (lost, "trip-lost", "book", 2)
        assert again.requested_by == "00-trace-span-01"
        await queue.ack(again)
        assert await client.xlen(STREAM) == 0
        assert await client.xpending_range(STREAM, GROUP, min="-", max="+", count=10) == []
    finally:
        await client.aclose()


# -- end to end: the fleet on the cluster ----------------------------------------------------------


@ON_BOTH
async def test_a_trip_is_planned_booked_and_cancelled_through_the_api(
    trip_api: ServiceProcess, redis: RedisClient, backend: str
) -> None:
    """The orchestrator and the four tool servers on the backend's Redis (on the cluster: started
    with its `redis+cluster://` URL): a trip planned with an Idempotency-Key, replayed, booked
    once, its events streamed, then cancelled, every booking undone."""
    assert trip_api.env["REDIS_URL"].startswith("redis+cluster://" if backend == "cluster" else "redis://")
    body = {
        "query": f"4-day hiking trip to Patagonia from Seattle in {MONTH} with one fancy dinner, "
        "under $3000 for two"
    }
    key = f"cluster-{uuid.uuid4().hex}"
    headers = api_headers(trip_api, {"Prefer": "wait=60", "Idempotency-Key": key})
    url = f"{trip_api.base_url}/v1/trips"
    planned = httpx2.post(url, json=body, headers=headers, timeout=90)
    assert planned.status_code == 200, planned.text
    trip = planned.json()
    assert trip["status"] == "planned", (trip["status"], trip["problems"], trip["termination"])
    assert [s["status"] for s in trip["steps"]] == ["succeeded"] * len(trip["steps"])
    replayed = httpx2.post(url, json=body, headers=headers, timeout=90)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["id"] == trip["id"]
    assert await bookings_of(redis, trip["id"]) == {}

    confirmed = httpx2.post(
        f"{url}/{trip['id']}/confirm", headers=api_headers(trip_api, {"Prefer": "wait=60"}), timeout=90
    )
    assert confirmed.status_code == 200, confirmed.text
    booked = confirmed.json()
    assert booked["status"] == "booked", booked
    assert sorted(b["kind"] for b in booked["bookings"]) == ["dinner", "flight", "hotel"]
    assert await bookings_of(redis, trip["id"]) == {
        "flight": ["confirmed"],
        "hotel": ["confirmed"],
        "dinner": ["confirmed"],
    }
    events = read_sse(f"{url}/{trip['id']}/events", auth=api_headers(trip_api))
    kinds = [e.event for e in events]
    assert kinds[0] == "trip.accepted"
    assert kinds.count("booking.made") == 3
    assert kinds[-1] == "trip.settled"

    cancelled = httpx2.post(
        f"{url}/{trip['id']}/cancel", headers=api_headers(trip_api, {"Prefer": "wait=60"}), timeout=90
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert await bookings_of(redis, trip["id"]) == {
        "flight": ["cancelled"],
        "hotel": ["cancelled"],
        "dinner": ["cancelled"],
    }


async def test_waypoint_admin_makes_and_revokes_a_key_on_the_cluster(
    redis_cluster: RedisClusterServers,
) -> None:
    """The admin command takes the cluster URL too (its first command is a transaction)."""
    made = make_key(redis_cluster.url, "cluster-admin", "trips:read")
    client = redis_client(redis_cluster.url)
    try:
        found = await ApiKeyStore(client).authenticate(made.key)
        assert found is not None
        assert (found.id, found.tenant, found.scopes) == (made.id, "cluster-admin", frozenset({"trips:read"}))
        made.revoke(redis_cluster.url)
        assert await ApiKeyStore(client).authenticate(made.key) is None
    finally:
        await client.aclose()
