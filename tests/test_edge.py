"""The edge: API keys and tenants, scopes, per-key rate, wait and spend limits, body size.

Real orchestrator processes on real Redis; keys are made with the real `waypoint-admin` command.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from redis.asyncio import Redis

from tests.helpers import SETTLED_STATUSES, days_ahead
from tests.support import (
    ApiKey,
    Harness,
    RedisServer,
    ServiceProcess,
    bookings_of,
    make_key,
    orchestrator_env,
    wait_until,
)
from waypoint_orchestrator.quotas import WaitSlots

TRIP_ROUTES = (
    ("POST", "/v1/trips"),
    ("GET", "/v1/trips/{id}"),
    ("GET", "/v1/trips/{id}/events"),
    ("POST", "/v1/trips/{id}/confirm"),
    ("POST", "/v1/trips/{id}/cancel"),
)


def structured_trip(**overrides: Any) -> dict[str, Any]:
    """A complete structured request, dated from today so the test works on any day."""
    start = days_ahead(40)
    body: dict[str, Any] = {
        "origin": "SEA",
        "destination": "Denver",
        "start_date": start.isoformat(),
        "days": 3,
        "travelers": 1,
        "budget": {"amount": 5000, "currency": "USD"},
    }
    body.update(overrides)
    return body


def call(
    service: ServiceProcess, method: str, path: str, key: ApiKey | None, **kwargs: Any
) -> httpx2.Response:
    headers = dict(kwargs.pop("headers", {}))
    if key is not None:
        headers.setdefault("Authorization", f"Bearer {key.key}")
    return httpx2.request(method, f"{service.base_url}{path}", headers=headers, timeout=90, **kwargs)


def settle(service: ServiceProcess, key: ApiKey, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = call(service, "POST", "/v1/trips", key, json=body, headers={"Prefer": "wait=60", **headers})
    assert response.status_code == 200, response.text
    trip: dict[str, Any] = response.json()
    return trip


def wait_settled(service: ServiceProcess, key: ApiKey, *trip_ids: str) -> None:
    """Wait for trips this test started and did not wait for, so that their searches are over
    before another test counts calls at the tool servers."""
    deadline = time.monotonic() + 90
    for trip_id in trip_ids:
        while call(service, "GET", f"/v1/trips/{trip_id}", key).json()["status"] not in SETTLED_STATUSES:
            assert time.monotonic() < deadline, f"trip {trip_id} did not settle"
            time.sleep(0.2)


def slots_held(redis_url: str, key_id: str) -> int:
    """How many held-request slots the key holds now."""

    async def count() -> int:
        client = Redis.from_url(redis_url, decode_responses=True)
        try:
            return await WaitSlots(client).held(key_id)
        finally:
            await client.aclose()

    return asyncio.run(count())


def assert_problem(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


@pytest.fixture(scope="module")
def acme(redis_server: RedisServer, orchestrator: ServiceProcess) -> ApiKey:
    return make_key(redis_server.url, f"acme-{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def globex(redis_server: RedisServer, orchestrator: ServiceProcess) -> ApiKey:
    return make_key(redis_server.url, f"globex-{uuid.uuid4().hex[:6]}")


# -- authentication -------------------------------------------------------------------------


def test_every_trip_route_needs_a_valid_key(
    orchestrator: ServiceProcess, redis_server: RedisServer, acme: ApiKey
) -> None:
    trip_id = settle(orchestrator, acme, structured_trip())["id"]
    revoked = make_key(redis_server.url, acme.tenant)
    revoked.revoke(redis_server.url)
    wrong = [
        ({}, False),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, False),
        ({"Authorization": "Bearer"}, False),
        ({"Authorization": "Bearer wpk_000000000000_" + "A" * 43}, True),
        ({"Authorization": f"Bearer {acme.key}x"}, True),
        ({"Authorization": f"Bearer {revoked.key}"}, True),
    ]
    for method, template in TRIP_ROUTES:
        path = template.format(id=trip_id)
        for headers, invalid in wrong:
            response = call(orchestrator, method, path, None, headers=headers, json=structured_trip())
            problem = assert_problem(response, 401)
            challenge = response.headers["www-authenticate"]
            assert challenge.startswith('Bearer realm="waypoint"')
            assert ('error="invalid_token"' in challenge) is invalid, (headers, challenge)
            assert acme.key not in response.text
            assert problem["instance"] == path
    # Nothing was changed by any of the refused calls.
    trip = call(orchestrator, "GET", f"/v1/trips/{trip_id}", acme).json()
    assert trip["status"] == "planned"
    assert trip["bookings"] == []


def test_open_endpoints_stay_open(orchestrator: ServiceProcess) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert httpx2.get(f"{orchestrator.base_url}{path}", timeout=10).status_code == 200


def test_openapi_documents_the_bearer_scheme(orchestrator: ServiceProcess) -> None:
    document = httpx2.get(f"{orchestrator.base_url}/openapi.json", timeout=10).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["ApiKey"]["description"],
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/v1/"):
                assert operation.get("security") == [{"ApiKey": []}], (method, path)
                assert "401" in operation["responses"], (method, path)
                assert "429" in operation["responses"], (method, path)


# -- tenants ----------------------------------------------------------------------------------


def test_another_tenants_trip_is_not_found(
    orchestrator: ServiceProcess, redis: Redis, acme: ApiKey, globex: ApiKey
) -> None:
    trip = settle(orchestrator, acme, structured_trip(traveler_name="Ada Acme"))
    trip_id = trip["id"]
    assert trip["tenant"] == acme.tenant
    missing = uuid.uuid4().hex
    for method, template in TRIP_ROUTES[1:]:
        theirs = call(orchestrator, method, template.format(id=trip_id), globex)
        nobody = call(orchestrator, method, template.format(id=missing), globex)
        problem = assert_problem(theirs, 404)
        assert_problem(nobody, 404)
        # Indistinguishable from a trip that does not exist: no 403, no hint it is someone's.
        assert problem["type"] == nobody.json()["type"]
        assert problem["detail"].replace(trip_id, missing) == nobody.json()["detail"]
        assert "Ada" not in theirs.text
    after = call(orchestrator, "GET", f"/v1/trips/{trip_id}", acme).json()
    assert after["status"] == "planned"
    assert not after["cancel_requested"]
    assert after["bookings"] == []


def test_idempotency_keys_are_per_tenant(orchestrator: ServiceProcess, acme: ApiKey, globex: ApiKey) -> None:
    key = f"shared-{uuid.uuid4().hex}"
    body = structured_trip(traveler_name="Ada Acme")
    first = call(orchestrator, "POST", "/v1/trips", acme, json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    theirs = call(orchestrator, "POST", "/v1/trips", globex, json=body, headers={"Idempotency-Key": key})
    assert theirs.status_code == 202, theirs.text
    assert theirs.json()["id"] != first.json()["id"]
    assert theirs.json()["tenant"] == globex.tenant
    assert "idempotent-replayed" not in theirs.headers
    replay = call(orchestrator, "POST", "/v1/trips", acme, json=body, headers={"Idempotency-Key": key})
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["id"] == first.json()["id"]
    # Another tenant's body under the same key is not a mismatch of the first tenant's record.
    other = call(
        orchestrator,
        "POST",
        "/v1/trips",
        globex,
        json=structured_trip(days=4),
        headers={"Idempotency-Key": key},
    )
    assert_problem(other, 422)
    wait_settled(orchestrator, acme, first.json()["id"])
    wait_settled(orchestrator, globex, theirs.json()["id"])


# -- scopes -------------------------------------------------------------------------------------


def test_booking_needs_the_book_scope(
    orchestrator: ServiceProcess, redis: Redis, redis_server: RedisServer, acme: ApiKey
) -> None:
    planner = make_key(redis_server.url, acme.tenant, "trips:read", "trips:write")
    reader = make_key(redis_server.url, acme.tenant, "trips:read")

    refused = call(orchestrator, "POST", "/v1/trips", planner, json=structured_trip(book=True))
    problem = assert_problem(refused, 403)
    assert problem["scope"] == "trips:book"
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]

    trip = settle(orchestrator, planner, structured_trip())
    assert trip["status"] == "planned"
    assert_problem(call(orchestrator, "POST", f"/v1/trips/{trip['id']}/confirm", planner), 403)
    assert_problem(call(orchestrator, "POST", f"/v1/trips/{trip['id']}/cancel", reader), 403)
    assert_problem(call(orchestrator, "POST", "/v1/trips", reader, json=structured_trip()), 403)
    assert call(orchestrator, "GET", f"/v1/trips/{trip['id']}", reader).status_code == 200
    after = call(orchestrator, "GET", f"/v1/trips/{trip['id']}", reader).json()
    assert after["status"] == "planned"
    assert after["bookings"] == []
    # The same tenant's key with the scope books it.
    booked = call(
        orchestrator, "POST", f"/v1/trips/{trip['id']}/confirm", acme, headers={"Prefer": "wait=60"}
    )
    assert booked.status_code == 200, booked.text
    assert booked.json()["status"] == "booked"


# -- request rate, across replicas ------------------------------------------------------------------


@pytest.fixture(scope="module")
def second_orchestrator(
    redis_server: RedisServer, servers: dict[str, ServiceProcess], harness: Harness
) -> Iterator[ServiceProcess]:
    """An API-only replica on the same Redis as the suite's orchestrator."""
    service = harness.start(
        "waypoint-orchestrator", orchestrator_env(redis_server.url, servers, WAYPOINT_WORKERS="0")
    )
    yield service
    service.stop()


def test_the_rate_limit_holds_across_two_orchestrators(
    orchestrator: ServiceProcess, second_orchestrator: ServiceProcess, redis_server: RedisServer
) -> None:
    key = make_key(redis_server.url, f"rate-{uuid.uuid4().hex[:6]}", requests_per_minute=6)
    answers = [
        call((orchestrator, second_orchestrator)[i % 2], "GET", f"/v1/trips/{uuid.uuid4().hex}", key)
        for i in range(10)
    ]
    assert [a.status_code for a in answers] == [404] * 6 + [429] * 4
    for answer in answers:
        assert answer.headers["ratelimit-policy"] == '"default";q=6;w=60'
    remaining = [int(a.headers["ratelimit"].split("r=")[1].split(";")[0]) for a in answers]
    assert remaining == [5, 4, 3, 2, 1, 0, 0, 0, 0, 0]
    refused = answers[-1]
    problem = assert_problem(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "6 requests a minute" in problem["detail"]
    # Another key is not slowed by this one.
    other = make_key(redis_server.url, f"rate-{uuid.uuid4().hex[:6]}", requests_per_minute=6)
    assert call(second_orchestrator, "GET", f"/v1/trips/{uuid.uuid4().hex}", other).status_code == 404


# -- spend cap ----------------------------------------------------------------------------------------------


async def test_the_daily_spend_cap_stops_a_booking_before_anything_is_booked(
    orchestrator: ServiceProcess, redis: Redis, redis_server: RedisServer
) -> None:
    tenant = f"spend-{uuid.uuid4().hex[:6]}"
    planned = settle(orchestrator, make_key(redis_server.url, tenant), structured_trip())
    cost = planned["itinerary"]["budget"]["total_usd"]
    # Room for one such trip a day, not two.
    key = make_key(redis_server.url, tenant, daily_spend_usd=round(cost * 1.5, 2))

    first = settle(orchestrator, key, structured_trip(book=True))
    assert first["status"] == "booked", first["termination"]
    second = settle(orchestrator, key, structured_trip(book=True))
    assert second["status"] == "failed"
    assert second["termination"]["reason"] == "spend_cap_exceeded"
    assert "nothing was booked" in second["termination"]["detail"]
    assert second["bookings"] == []
    assert await bookings_of(redis, second["id"]) == {}
    events = [e for e in _events(orchestrator, key, second["id"]) if e["event"] == "spend.refused"]
    assert len(events) == 1

    # Cancelling the first gives its spend back: the next trip books again.
    cancelled = call(
        orchestrator, "POST", f"/v1/trips/{first['id']}/cancel", key, headers={"Prefer": "wait=60"}
    )
    assert cancelled.json()["status"] == "cancelled"
    third = settle(orchestrator, key, structured_trip(book=True))
    assert third["status"] == "booked", third["termination"]


def _events(service: ServiceProcess, key: ApiKey, trip_id: str) -> list[dict[str, str]]:
    events = []
    with httpx2.stream(
        "GET",
        f"{service.base_url}/v1/trips/{trip_id}/events",
        headers={"Authorization": f"Bearer {key.key}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if not line:
                if fields:
                    events.append(fields)
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.strip()
    return events


# -- held requests ----------------------------------------------------------------------------------------


@pytest.fixture
def api_only(
    servers: dict[str, ServiceProcess], harness: Harness
) -> Iterator[tuple[ServiceProcess, RedisServer]]:
    """An orchestrator with no workers on a Redis of its own: its trips stay queued, so streams
    and waits on them are held for as long as the client likes."""
    redis = harness.redis()
    service = harness.start(
        "waypoint-orchestrator",
        orchestrator_env(redis.url, servers, WAYPOINT_WORKERS="0", WAYPOINT_MAX_WAIT_SECONDS="20"),
    )
    yield service, redis
    service.stop()
    redis.stop()


async def test_held_streams_and_waits_of_one_key_leave_everyone_else_served(
    api_only: tuple[ServiceProcess, RedisServer],
) -> None:
    service, redis_server = api_only
    flooder = make_key(redis_server.url, "flooder", requests_per_minute=100_000)
    neighbour = make_key(redis_server.url, "neighbour")
    trip = call(service, "POST", "/v1/trips", flooder, json=structured_trip()).json()
    events_url = f"{service.base_url}/v1/trips/{trip['id']}/events"
    auth = {"Authorization": f"Bearer {flooder.key}"}
    limits = httpx2.Limits(max_connections=700, max_keepalive_connections=0)
    statuses: list[int] = []
    release = asyncio.Event()
    async with httpx2.AsyncClient(timeout=60, limits=limits) as client:

        async def hold_stream() -> None:
            async with client.stream("GET", events_url, headers=auth) as response:
                statuses.append(response.status_code)
                if response.status_code == 200:
                    await release.wait()

        async def hold_wait() -> None:
            response = await client.post(
                f"{service.base_url}/v1/trips",
                headers={**auth, "Prefer": "wait=15"},
                json=structured_trip(),
            )
            statuses.append(response.status_code)

        held = [asyncio.create_task(hold_stream()) for _ in range(500)]
        held += [asyncio.create_task(hold_wait()) for _ in range(100)]
        # Every request has its answer (a held stream has its headers) before the neighbour comes.
        deadline = time.monotonic() + 60
        while len(statuses) < len(held):
            assert time.monotonic() < deadline, f"{len(statuses)} of {len(held)} answered"
            await asyncio.sleep(0.1)
        # Meanwhile another tenant is served normally.
        for _ in range(5):
            made = await client.post(
                f"{service.base_url}/v1/trips",
                headers={"Authorization": f"Bearer {neighbour.key}"},
                json=structured_trip(),
            )
            assert made.status_code == 202, made.text
            seen = await client.get(
                f"{service.base_url}/v1/trips/{made.json()['id']}",
                headers={"Authorization": f"Bearer {neighbour.key}"},
            )
            assert seen.status_code == 200
        # ... while the streams that got their slot are still open.
        assert len([task for task in held if not task.done()]) == statuses.count(200)
        release.set()
        await asyncio.gather(*held)
    assert 503 not in statuses
    assert all(s in (200, 202, 429) for s in statuses), sorted(set(statuses))
    # 20 slots a key (the default): 20 streams held, the rest refused with 429, and the waits
    # that found no slot were answered at once instead of holding the server.
    assert statuses.count(200) == 20
    assert statuses.count(429) == 480
    assert statuses.count(202) == 100


def test_a_wait_without_a_free_slot_is_answered_at_once(
    api_only: tuple[ServiceProcess, RedisServer],
) -> None:
    service, redis_server = api_only
    key = make_key(redis_server.url, "narrow", concurrent_waits=1)
    trip = call(service, "POST", "/v1/trips", key, json=structured_trip()).json()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        holding = pool.submit(
            call, service, "POST", "/v1/trips", key, json=structured_trip(), headers={"Prefer": "wait=6"}
        )
        # The waiting request holds the key's one slot.
        wait_until(lambda: slots_held(redis_server.url, key.id) == 1, 30, "the held wait's slot")
        quick = call(service, "GET", f"/v1/trips/{trip['id']}/events", key)
        assert_problem(quick, 429)
        unwaited = call(
            service, "POST", "/v1/trips", key, json=structured_trip(), headers={"Prefer": "wait=6"}
        )
        assert not holding.done()  # answered while the one slot was still held
        assert unwaited.status_code == 202
        assert "preference-applied" not in unwaited.headers
        waited = holding.result()
    assert waited.status_code == 202
    assert waited.headers["preference-applied"] == "wait=6"


# -- body size ----------------------------------------------------------------------------------------------


def test_an_oversized_body_is_refused_before_it_is_read(orchestrator: ServiceProcess, acme: ApiKey) -> None:
    sent = 0

    def hundred_megabytes() -> Iterator[bytes]:
        nonlocal sent
        chunk = b" " * 65536
        yield b'{"query": "'
        for _ in range(1600):
            sent += len(chunk)
            yield chunk

    response = call(
        orchestrator,
        "POST",
        "/v1/trips",
        acme,
        content=hundred_megabytes(),
        headers={"Content-Type": "application/json"},
    )
    problem = assert_problem(response, 413)
    assert "65536" in problem["detail"]
    assert sent < 10 * 1024 * 1024  # refused early: most of the 100 MB never left the client

    # A declared length over the limit is refused before a byte of the body is sent.
    with socket.create_connection(("127.0.0.1", orchestrator.port), timeout=30) as raw:
        raw.sendall(
            b"POST /v1/trips HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {acme.key}\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n".encode()
        )
        answer = raw.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413 "), answer
    assert "application/problem+json" in answer


def test_a_body_just_under_the_limit_is_read(orchestrator: ServiceProcess, acme: ApiKey) -> None:
    body = json.dumps(structured_trip()) + " " * 60_000
    response = call(
        orchestrator, "POST", "/v1/trips", acme, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text
    wait_settled(orchestrator, acme, response.json()["id"])


# -- dates at the calendar's ends ---------------------------------------------------------------


def test_dates_beyond_the_horizon_are_needs_input_not_a_crashed_job(
    orchestrator: ServiceProcess, acme: ApiKey
) -> None:
    for start, extra in (
        ("9999-12-31", {"days": 3}),
        ("9999-12-29", {"end_date": "9999-12-31"}),
        ("0001-01-01", {"days": 30}),
    ):
        trip = settle(orchestrator, acme, structured_trip(start_date=start, **extra))
        assert trip["status"] == "needs_input", trip["termination"]
        assert trip["termination"]["reason"] == "needs_input"
        fields = {p["field"] for p in trip["problems"]}
        assert fields & {"start_date", "end_date", "days"}, trip["problems"]
        assert not [s for s in trip["steps"] if s["status"] != "pending"]
