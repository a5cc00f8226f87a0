"""The switches for measuring only: `WAYPOINT_BUDGETS_ENABLED`, `WAYPOINT_IDEMPOTENCY_KEYS_ENABLED`
and `WAYPOINT_BREAKERS_ENABLED` (the trip benchmark weighs what each mechanism costs). Each is on
by default, a production orchestrator refuses to start with one off, and off really skips the
mechanism: on two orchestrators sharing one fleet, one with the defaults and one with every
switch off, the same requests show the difference."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from redis import Redis as SyncRedis

from tests.helpers import days_ahead, plan_and_wait, spoken
from tests.support import (
    Harness,
    ServiceProcess,
    api_headers,
    orchestrator_env,
    own_tool_servers,
    suite_key,
)
from waypoint_common import keys
from waypoint_common.resilience import CircuitBreaker
from waypoint_orchestrator.settings import OrchestratorSettings

SWITCHES = ("budgets_enabled", "idempotency_keys_enabled", "breakers_enabled")
OFF = {f"WAYPOINT_{name.upper()}": "false" for name in SWITCHES}
TRIP = "3-day trip to Denver from Chicago on {day} for two with a fancy dinner, budget $5000"


def test_every_switch_is_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SWITCHES:
        monkeypatch.delenv(f"WAYPOINT_{name.upper()}", raising=False)
    settings = OrchestratorSettings()
    assert all(getattr(settings, name) is True for name in SWITCHES)
    assert settings.startup_problem() is None


@pytest.mark.parametrize("switch", SWITCHES)
def test_production_refuses_a_switch_off(switch: str) -> None:
    token = uuid.uuid4().hex
    production = {"environment": "production", "service_token": token}
    off = {switch: False}
    refused = OrchestratorSettings.model_validate({**production, **off}).startup_problem()
    assert f"WAYPOINT_{switch.upper()}=false" in (refused or "")
    assert OrchestratorSettings.model_validate(production).startup_problem() is None
    assert (
        OrchestratorSettings.model_validate({"environment": "development", **off}).startup_problem() is None
    )


def test_a_switched_off_breaker_never_opens() -> None:
    breaker = CircuitBreaker("mcp-weather", failures=1)
    breaker.enabled = False
    for _ in range(5):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "closed"
    assert breaker.openings == 0


@pytest.fixture(scope="module")
def fleet(harness: Harness) -> Iterator[tuple[dict[str, ServiceProcess], ServiceProcess, ServiceProcess]]:
    """Tool servers of this module's own; an orchestrator with the defaults and one with every
    switch off, each on a Redis of its own (each runs only the trips posted to it). Breakers
    open after one failure; no retries."""
    with own_tool_servers(harness) as (redis, servers):
        own_redis = harness.redis()
        env = orchestrator_env(redis.url, servers, WAYPOINT_BREAKER_FAILURES="1", WAYPOINT_TOOL_ATTEMPTS="1")
        defaults = harness.spawn("waypoint-orchestrator", env)
        switched_off = harness.spawn("waypoint-orchestrator", {**env, **OFF, "REDIS_URL": own_redis.url})
        try:
            harness.wait_ready(defaults, switched_off)
            yield servers, defaults, switched_off
        finally:
            switched_off.stop()
            defaults.stop()
            own_redis.stop()


def post(service: ServiceProcess, body: dict[str, Any], idempotency_key: str) -> httpx2.Response:
    response = httpx2.post(
        f"{service.base_url}/v1/trips",
        json=body,
        headers=api_headers(service, {"Idempotency-Key": idempotency_key}),
        timeout=30,
    )
    assert response.status_code in (200, 202), response.text
    return response


@contextlib.contextmanager
def redis_of(service: ServiceProcess) -> Iterator[SyncRedis]:
    """A client of the Redis this orchestrator keeps its trips in."""
    client = SyncRedis.from_url(service.env["REDIS_URL"], decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def idempotency_record(redis_url: str, idempotency_key: str) -> str:
    tenant = suite_key(redis_url).tenant
    return keys.idempotency_record(hashlib.sha256(f"{tenant}:{idempotency_key}".encode()).hexdigest())


def test_idempotency_keys_off_writes_no_record_and_replays_nothing(
    fleet: tuple[dict[str, ServiceProcess], ServiceProcess, ServiceProcess],
) -> None:
    _, defaults, switched_off = fleet
    for service, kept in ((defaults, True), (switched_off, False)):
        key = f"switch-{uuid.uuid4()}"
        body = {"query": TRIP.format(day=spoken(days_ahead(40)))}
        first, second = post(service, body, key), post(service, body, key)
        assert (first.json()["id"] == second.json()["id"]) is kept
        assert (second.headers.get("Idempotent-Replayed") == "true") is kept
        with redis_of(service) as client:
            assert bool(client.exists(idempotency_record(service.env["REDIS_URL"], key))) is kept


def test_budgets_off_charges_and_enforces_nothing(
    fleet: tuple[dict[str, ServiceProcess], ServiceProcess, ServiceProcess],
) -> None:
    _, defaults, switched_off = fleet
    # A full trip makes at least four tool calls: a budget of one stops it, unless budgets are off.
    body = {"query": TRIP.format(day=spoken(days_ahead(41))), "limits": {"max_tool_calls": 1}}
    stopped = plan_and_wait(defaults, body)
    assert stopped["termination"]["reason"] == "budget_exhausted"
    assert stopped["usage"] is not None
    planned = plan_and_wait(switched_off, body)
    assert planned["status"] == "planned", planned["termination"]
    assert planned["usage"] is None
    with redis_of(defaults) as client:
        assert client.exists(keys.trip_budget(stopped["id"])) == 1
    with redis_of(switched_off) as client:
        assert client.exists(keys.trip_budget(planned["id"]), keys.trip_charges(planned["id"])) == 0


def test_breakers_off_let_every_call_through(
    fleet: tuple[dict[str, ServiceProcess], ServiceProcess, ServiceProcess],
) -> None:
    servers, defaults, switched_off = fleet
    weather = servers["mcp-weather"]
    weather.admin("PUT", "/admin/faults", {"get_forecast": {"error_rate": 1.0}})
    try:
        for offset, (service, expected_calls) in enumerate(((defaults, 1), (switched_off, 2))):
            weather.admin("DELETE", "/admin/stats")
            # Days no other trip asked for: no cached forecast stands in for the failing server.
            for n in range(2):
                trip = plan_and_wait(
                    service, {"query": TRIP.format(day=spoken(days_ahead(50 + 2 * offset + n)))}
                )
                assert trip["status"] == "partial", trip["termination"]
            # One failure opens the default breaker: the second trip's forecast never leaves the process.
            assert weather.admin("GET", "/admin/stats")["calls"].get("get_forecast", 0) == expected_calls
    finally:
        weather.admin("PUT", "/admin/faults", {})
