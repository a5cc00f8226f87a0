"""Redis goes away mid-run: new trips get 503 (fail closed), and every trip accepted before finishes."""

from __future__ import annotations

import concurrent.futures
import time

import httpx2

from tests.helpers import days_ahead, spoken
from tests.support import Harness, ServiceProcess, api_headers, orchestrator_env, wait_until

SETTLED = {"needs_input", "planned", "booked", "partial", "over_budget", "failed", "cancelled"}


def test_new_trips_get_503_while_redis_is_down_and_accepted_trips_finish(
    servers: dict[str, ServiceProcess], harness: Harness
) -> None:
    state = harness.redis(persistent=True)
    orchestrator = harness.start(
        "waypoint-orchestrator",
        orchestrator_env(state.url, servers, WAYPOINT_WORKERS="3", WAYPOINT_JOB_LEASE_SECONDS="2"),
    )
    # Slow hotel searches keep trips in flight while Redis goes away.
    servers["mcp-hotels"].admin("PUT", "/admin/faults", {"search_hotels": {"latency_ms": 400}})
    try:

        def submit(day: int) -> str:
            response = httpx2.post(
                f"{orchestrator.base_url}/v1/trips",
                headers=api_headers(orchestrator),
                json={
                    "query": f"3-day trip to Boston from Denver on {spoken(days_ahead(30 + day))} for two, "
                    "budget $5000",
                    "book": True,
                },
                timeout=10,
            )
            assert response.status_code == 202, response.text
            return str(response.json()["id"])

        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            accepted = list(pool.map(submit, range(1, 13)))

        def in_flight() -> bool:
            trips = [
                httpx2.get(
                    f"{orchestrator.base_url}/v1/trips/{trip_id}",
                    headers=api_headers(orchestrator),
                    timeout=10,
                ).json()
                for trip_id in accepted
            ]
            return any(t["status"] in ("running", "booking") for t in trips)

        # Redis goes away while trips are being worked on (the hotel searches are slow).
        wait_until(in_flight, 30, "a trip in flight")
        state.kill()

        refused = httpx2.post(
            f"{orchestrator.base_url}/v1/trips",
            headers=api_headers(orchestrator),
            json={
                "query": f"3-day trip to Boston from Denver on {spoken(days_ahead(50))} for two, budget $5000"
            },
            timeout=30,
        )
        assert refused.status_code == 503
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["Retry-After"]
        assert httpx2.get(f"{orchestrator.base_url}/readyz", timeout=10).status_code == 503
        assert httpx2.get(f"{orchestrator.base_url}/healthz", timeout=10).status_code == 200
        time.sleep(2)  # how long the outage lasts (more than the 2-second job lease), not a wait
        state.restart()

        deadline = time.monotonic() + 120
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            statuses = {
                trip_id: httpx2.get(
                    f"{orchestrator.base_url}/v1/trips/{trip_id}",
                    headers=api_headers(orchestrator),
                    timeout=10,
                ).json()["status"]
                for trip_id in accepted
            }
            if set(statuses.values()) <= SETTLED:
                break
            time.sleep(0.5)
        assert set(statuses.values()) == {"booked"}, statuses
    finally:
        servers["mcp-hotels"].admin("PUT", "/admin/faults", {})
        orchestrator.stop()
        state.stop()
